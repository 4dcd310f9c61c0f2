"""Alignment prediction networks.

A network maps a batch of padded pairs to alignment logits ``S`` of shape
``(n_pairs, Lx, Ly)``; the core (:mod:`sktap.core`) turns them into the
alignment ``T`` by a masked softmax over target frames and the L1 step.
Each network implements::

    forward(x, y, D, P, mask) -> S

with ``x`` (n_pairs, Lx, d), ``y`` (n_pairs, Ly, d), ``D`` and ``P``
(n_pairs, Lx, Ly) zero outside the valid block, and ``mask``
(n_pairs, 1, Lx, Ly) or ``None`` when every pair fills the block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .. import _thresholds

__all__ = ["TAPNet", "TAPTransNet"]

# The thresholds that choose between the exact paths below, and the
# measurements that set them, are in sktap/_thresholds.py.


def _check_layers(channels, kernel_sizes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    channels = tuple(channels)
    kernel_sizes = tuple(kernel_sizes)
    if len(kernel_sizes) != len(channels) + 1:
        raise ValueError(
            "kernel_sizes needs one entry per layer, i.e. len(channels) + 1 = "
            f"{len(channels) + 1}; got {len(kernel_sizes)}"
        )
    for c in channels:
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise ValueError(f"channels must be positive integers; got {channels}")
    for k in kernel_sizes:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
            raise ValueError(
                "kernel_sizes must be positive odd integers (for 'same' padding); "
                f"got {kernel_sizes}"
            )
    return channels, kernel_sizes


def _valid_blocks(mask):
    """Lengths ``(lx, ly)`` (n_pairs,) of each pair's valid block.

    ``None`` when the mask is not one ``lx x ly`` block at (0, 0) per pair
    (a caller's own mask): the padded path then applies it as given.
    """
    _, Lx, Ly = mask[:, 0].shape
    valid = mask[:, 0] != 0  # (n, Lx, Ly)
    lx = valid[:, :, 0].sum(1)
    ly = valid[:, 0, :].sum(1)
    rows = torch.arange(Lx) < lx[:, None]
    cols = torch.arange(Ly) < ly[:, None]
    if not torch.equal(valid, rows[:, :, None] & cols[:, None, :]):
        return None
    return lx, ly


def _shape_batches(blocks, shape, max_cells):
    """Pairs sorted by valid block, cut into batches of one block shape.

    ``blocks`` is ``(lx, ly)`` or None when every pair fills the ``Lx x Ly``
    grid of ``shape`` (n_pairs, Lx, Ly). Returns ``order`` (n_pairs,), or
    None when the pairs are already in that order, and a list of
    ``(a, b, m)``: the next ``m`` pairs of the order have an ``a x b``
    block. A batch has at most ``max_cells`` cells (``m * a * b``) or a
    single pair.
    """
    n, Lx, Ly = shape
    if blocks is None:
        step = max(1, max_cells // (Lx * Ly))
        return None, [(Lx, Ly, min(step, n - s)) for s in range(0, n, step)]
    lx, ly = blocks
    key = lx * (Ly + 1) + ly
    order = torch.argsort(key, stable=True)
    keys, counts = torch.unique_consecutive(key[order], return_counts=True)
    batches = []
    for k, count in zip(keys.tolist(), counts.tolist()):
        a, b = divmod(k, Ly + 1)
        step = max(1, max_cells // max(1, a * b))
        batches += [(a, b, min(step, count - s)) for s in range(0, count, step)]
    if torch.equal(order, torch.arange(len(order))):
        order = None
    return order, batches


def _sum_dtype(dtype):
    """float32 for the low-precision types, else ``dtype`` itself."""
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def _single_output_conv(conv, h):
    """A "same" C -> 1 k x k convolution of ``h`` (m, C, H, W) -> (m, H, W).

    oneDNN runs a convolution with a single output channel at a few GFLOP/s.
    Where the work is large enough (:data:`_thresholds.CPU_ROWS_MIN_VALUES`),
    the same sum comes from :func:`_single_output_rows`; with autograd on
    the CPU, through :class:`_SingleOutputConv` (whose backward is faster
    too). Other calls with autograd (under autocast, say) keep the plain
    convolution: autograd's backward of the strided sum's overlapping view
    took 3x the whole layer's (6.6 ms against 2.0-2.2 ms, 300 x 400, C = 8,
    bfloat16).
    """
    k = conv.kernel_size[0]
    grad = torch.is_grad_enabled() and (h.requires_grad or conv.weight.requires_grad)
    if grad and _SingleOutputConv.takes(h, conv):
        return _SingleOutputConv.apply(h, conv.weight, conv.bias)
    if grad or k == 1 or h.numel() < _thresholds.CPU_ROWS_MIN_VALUES:
        return conv(h)[:, 0]
    return _single_output_rows(h, conv.weight, conv.bias)


def _single_output_rows(h, weight, bias):
    """A "same" C -> 1 k x k convolution of ``h`` (m, C, H, W) -> (m, H, W)
    as a C -> k convolution by kernel rows, then one strided sum.

    Map ``a`` is the 1 x k convolution with the kernel's row ``a`` over the
    rows of ``h`` padded by ``r = k // 2`` (k output channels, which oneDNN
    runs at speed); ``out[i, j]`` is the sum over ``a`` of map ``a`` at
    padded row ``i + a``, read for all ``a`` at once through one strided
    view. Low precision maps are summed in float32. On 2 threads, 3 x 3,
    this ran 1.5-1.7x as fast as oneDNN's convolution at C = 8 (640 x 896,
    300 x 400, 32 x 20 x 20), 2x at C = 16-30; on small inputs the extra
    call costs more than it saves (:data:`_thresholds.CPU_ROWS_MIN_VALUES`).
    Against the k*k 1 x 1 maps and shifted adds it replaced: 8x as fast on
    640 x 896 at C = 8, 1.0-1.7x at C = 8-16 on smaller grids, 0.93-0.96x
    at C = 30 on 64 x 40 x 40 and 16 x 90 x 90 (``cdist_tap`` of the
    default 30-channel network on 150 sequences of 40 frames: 6.3-7.0 s
    against 6.0-6.5 s, within this machine's noise; 8.5 s with oneDNN's
    convolution). ``bias`` may be None.
    """
    k = weight.shape[-1]
    r = k // 2
    m, C, H, W = h.shape
    rows = weight[0].permute(1, 0, 2).reshape(k, C, 1, k)  # (a, c, 1, b)
    maps = nn.functional.conv2d(h, rows, padding=r)  # (m, k, H + 2r, W)
    maps = maps.to(_sum_dtype(maps.dtype))
    s0, s1, s2, s3 = maps.stride()
    # element (a, i + a, j) of any dense layout: one view over a, i, j
    shifted = maps.as_strided(
        (m, k, H, W), (s0, s1 + s2, s2, s3), maps.storage_offset()
    )
    out = shifted.sum(1)
    return out if bias is None else out + bias[0]


class _SingleOutputConv(torch.autograd.Function):
    """A "same" C -> 1 k x k convolution of ``h`` (m, C, H, W) -> (m, H, W)
    whose weight gradient is one matrix product.

    The forward is :func:`_single_output_rows` (the plain convolution
    for small ``h``). oneDNN computes the weight
    gradient of a single-output convolution at a few GFLOP/s (7.9 ms for
    C = 8, 3 x 3 on a 640 x 896 grid, on 2 threads). That gradient is
    ``dW[c, a, b] = sum_ij g[i - a + r, j - b + r] h[c, i, j]``: the k*k
    shifted copies of the one-channel output gradient ``g`` times the
    channels-last ``h`` (m H W, C), a matrix product (2.5 ms there).
    The input gradient stays oneDNN's.
    """

    @staticmethod
    def takes(h, conv):
        """Whether this path applies: the CPU in float32 or float64, outside
        autocast, square kernel, unit stride and dilation, "same" padding."""
        k = conv.kernel_size
        return (
            h.device.type == "cpu"
            and h.dtype in (torch.float32, torch.float64)
            and h.dtype == conv.weight.dtype
            and not torch.is_autocast_enabled("cpu")
            and conv.bias is not None
            and k[0] == k[1]
            and conv.stride == (1, 1)
            and conv.dilation == (1, 1)
            and conv.padding == (k[0] // 2, k[0] // 2)
        )

    @staticmethod
    def forward(ctx, h, weight, bias):
        ctx.save_for_backward(h, weight)
        k = weight.shape[-1]
        if k > 1 and h.numel() >= _thresholds.CPU_ROWS_MIN_VALUES:
            return _single_output_rows(h, weight, bias)
        return nn.functional.conv2d(h, weight, bias, padding=k // 2)[:, 0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        h, weight = ctx.saved_tensors
        k = weight.shape[-1]
        r = k // 2
        m, C, H, W = h.shape
        g = g[:, None]  # (m, 1, H, W)
        grad_h = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_h = torch.ops.aten.convolution_backward(
                g,
                h,
                weight,
                None,
                [1, 1],
                [r, r],
                [1, 1],
                False,
                [0, 0],
                1,
                [True, False, False],
            )[0]
        if ctx.needs_input_grad[1]:
            padded = nn.functional.pad(g[:, 0], (r, r, r, r))  # (m, H+2r, W+2r)
            shifted = g.new_empty(k * k, m, H, W)
            for t in range(k * k):
                a, b = divmod(t, k)
                shifted[t] = padded[
                    :, 2 * r - a : 2 * r - a + H, 2 * r - b : 2 * r - b + W
                ]
            frames = h.permute(0, 2, 3, 1).reshape(m * H * W, C)  # channels-last
            grad_w = (shifted.view(k * k, -1) @ frames).T.reshape(1, C, k, k)
        if ctx.needs_input_grad[2]:
            grad_b = g.sum().reshape(1)
        return grad_h, grad_w, grad_b


class _DistanceInputConv(torch.autograd.Function):
    """The first layer, a "same" 2 -> C k x k convolution of ``[D, P]``
    (each (m, H, W)), with the input gradient of ``D`` alone.

    The positions ``P`` carry no gradient, yet the plain convolution's
    backward computes both input channels, and oneDNN runs that C -> 2
    gradient at a few GFLOP/s (8.8 ms for C = 8, 5 x 5 on a 640 x 896
    grid, on 2 threads). The gradient of ``D``,
    ``dD[i, j] = sum_{c, a, b} g[c, i - a + r, j - b + r] w[c, 0, a, b]``,
    is a "same" C -> 1 convolution of the output gradient ``g`` with
    ``w[:, 0]`` flipped, which :func:`_single_output_rows` computes (2.7 ms
    there). The weight and bias gradients are oneDNN's, on row strips of
    a large image (:func:`_weight_grad`).
    """

    @staticmethod
    def takes(D, P, conv):
        """Whether this path applies: the CPU in float32 or float64 with
        ``D`` (alone) needing its gradient, outside autocast, a square odd
        kernel, unit stride and dilation, "same" padding."""
        k = conv.kernel_size
        return (
            D.device.type == "cpu"
            and D.requires_grad
            and not P.requires_grad
            and D.dtype in (torch.float32, torch.float64)
            and D.dtype == P.dtype == conv.weight.dtype
            and not torch.is_autocast_enabled("cpu")
            and conv.bias is not None
            and conv.in_channels == 2
            and k[0] == k[1]
            and conv.stride == (1, 1)
            and conv.dilation == (1, 1)
            and conv.padding == (k[0] // 2, k[0] // 2)
        )

    @staticmethod
    def forward(ctx, D, P, weight, bias):
        r = weight.shape[-1] // 2
        h = torch.stack((D, P), dim=-1).permute(0, 3, 1, 2)  # channels-last
        ctx.save_for_backward(h, weight)
        return nn.functional.conv2d(h, weight, bias, padding=r)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        h, weight = ctx.saved_tensors
        grad_D = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            flipped = weight[:, :1].transpose(0, 1).flip(-2, -1)  # (1, C, k, k)
            grad_D = _single_output_rows(g, flipped, None)
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            grad_w, grad_b = _weight_grad(g, h, weight, ctx.needs_input_grad[2:4])
        return grad_D, None, grad_w, grad_b


def _strips(m, H, W):
    """How many row strips one image's weight gradient is cut into
    (:func:`_weight_grad`); 1: not cut."""
    if m != 1 or H * W < _thresholds.CPU_STRIPS_MIN_CELLS:
        return 1
    threads = torch.get_num_threads()
    for n in range(max(threads, 2), 4 * threads + 1):
        if H % n == 0 and H // n >= 8:
            return n
    return 1


def _weight_grad(g, h, weight, needs):
    """Weight and bias gradients of a "same" k x k convolution of ``h``
    (m, C_in, H, W) with output gradient ``g`` (m, C_out, H, W).

    oneDNN parallelises this gradient over the minibatch, so for one large
    image (a packed image, ``m = 1``) it runs on about one thread. The same
    sum over the cells then goes as a minibatch of row strips, each with
    the ``k // 2`` rows above and below it that its cells read (zeros at
    the image's edges); the measurements are those of
    :data:`_thresholds.CPU_STRIPS_MIN_CELLS`.
    """
    m, C, H, W = h.shape
    r = weight.shape[-1] // 2
    n = _strips(m, H, W)
    if n > 1:
        rows = H // n
        # channels-last image with r zero rows at the top and the bottom,
        # then every strip with its halo, laid out one after the other
        padded = nn.functional.pad(h.permute(0, 2, 3, 1), (0, 0, 0, 0, r, r))
        padded = padded.contiguous()
        h = (
            padded.as_strided((n, rows + 2 * r, W, C), (rows * W * C, W * C, C, 1))
            .contiguous()
            .permute(0, 3, 1, 2)
        )
        g = g.permute(0, 2, 3, 1).reshape(n, rows, W, -1).permute(0, 3, 1, 2)
        padding = [0, r]
    else:
        padding = [r, r]
    _, grad_w, grad_b = torch.ops.aten.convolution_backward(
        g,
        h,
        weight,
        [weight.shape[0]],
        [1, 1],
        padding,
        [1, 1],
        False,
        [0, 0],
        1,
        [False, *needs],
    )
    return grad_w, grad_b


def _relu_zeroed_(h, mask=None, gaps=None):
    """ReLU of ``h`` (m, C, H, W) in place, then zero where ``mask``
    (m, 1, H, W) is 0, or at the rows and columns ``gaps`` (two index
    tensors, for a packed image: m = 1)."""
    h = h.relu_()
    if mask is not None:
        return h.mul_(mask)
    if gaps is not None:
        h = h.index_fill_(2, gaps[0], 0).index_fill_(3, gaps[1], 0)
    return h


class _ReluZeroed(torch.autograd.Function):
    """:func:`_relu_zeroed_` with autograd, still in place: one pass and no
    new tensor where ``relu(h) * mask`` makes two of each, forward and
    backward. The gradient passes where the output is positive (the ReLU's
    own rule; zeroed cells are 0)."""

    @staticmethod
    def forward(ctx, h, mask, gaps):
        h = _relu_zeroed_(h, mask, gaps)
        ctx.mark_dirty(h)
        ctx.save_for_backward(h)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(g, out, 0), None, None


class TAPNet(nn.Module):
    """The TAP alignment prediction network (a small CNN over ``[D, P]``).

    Parameters
    ----------
    channels : sequence of int, default=(30, 30)
        Output channels of the hidden layers; the last layer has one.
    kernel_sizes : sequence of int, default=(5, 5, 3)
        Odd kernel size of each layer, ``len(channels) + 1`` entries.

    Notes
    -----
    The network predicts a correction ``g`` of the frame-distance matrix;
    the alignment logits are ``S = -(D + g)``. Activations outside each
    pair's valid ``Lx x Ly`` block are zeroed after every hidden layer, so
    a padded batch gives exactly the per-pair result.

    The paper's variants are one-liners: ``TAPNet(kernel_sizes=(7, 7, 5))``
    (l) and ``TAPNet(channels=(30, 30, 30), kernel_sizes=(5, 5, 5, 3))`` (d).

    On the CPU the same numbers (up to float rounding) come a faster way:
    pairs are grouped by their valid block and each group runs unpadded,
    without masks, in batches small enough for the activations to stay in
    cache; the last layer (one output channel, which oneDNN runs slowly) is
    a convolution to one map per kernel row and one strided sum of those
    maps. On other devices the padded batch runs as one.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022.

    Examples
    --------
    >>> import torch
    >>> from sktap import TAPNet
    >>> net = TAPNet()
    >>> D = torch.rand(2, 4, 5)
    >>> net(None, None, D, torch.zeros_like(D), None).shape
    torch.Size([2, 4, 5])
    """

    def __init__(
        self,
        channels: Sequence[int] = (30, 30),
        kernel_sizes: Sequence[int] = (5, 5, 3),
    ):
        super().__init__()
        channels, kernel_sizes = _check_layers(channels, kernel_sizes)
        self.channels = channels
        self.kernel_sizes = kernel_sizes
        sizes = (2, *channels, 1)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, k, padding=k // 2)
            for c_in, c_out, k in zip(sizes[:-1], sizes[1:], kernel_sizes)
        )

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_sizes={self.kernel_sizes}"

    needs_frames = False

    @property
    def macs_per_cell(self) -> int:
        """Multiply-adds of the layers per cell of the ``Lx x Ly`` grid."""
        return sum(conv.weight.numel() for conv in self.convs)

    def correction(self, D, P, mask):
        """The learned correction ``g`` of shape (n_pairs, Lx, Ly)."""
        # the path by shape needs at least one batch's worth of work: a
        # padded grid under that is not worth scanning the mask for blocks
        least = _thresholds.CPU_MIN_MACS_PER_THREAD * torch.get_num_threads()
        if D.device.type == "cpu" and D.numel() * self.macs_per_cell >= least:
            blocks = None if mask is None else _valid_blocks(mask)
            if mask is None or blocks is not None:
                plan = self._plan_by_shape(blocks, D.shape)
                if plan is not None:
                    return self._correction_by_shape(D, P, *plan)
        return self._correction_padded(D, P, mask)

    def _plan_by_shape(self, blocks, shape):
        """``(order, batches)`` of :func:`_shape_batches`, or None when the
        batches are too small for the path by shape to pay."""
        width = max((2, *self.channels))  # channels of the widest activation
        itemsize = self.convs[0].weight.element_size()
        max_cells = _thresholds.CPU_BATCH_BYTES // (width * itemsize)
        order, batches = _shape_batches(blocks, shape, max_cells)
        macs = sum(a * b * m for a, b, m in batches) * self.macs_per_cell
        least = (
            _thresholds.CPU_MIN_MACS_PER_THREAD * torch.get_num_threads() * len(batches)
        )
        return (order, batches) if macs >= least else None

    def _correction_padded(self, D, P, mask):
        """All pairs in one padded batch, masked after every hidden layer.

        The path for accelerators: a few large launches and no host sync.
        """
        dtype = self.convs[0].weight.dtype
        h = self._hidden(D, P, None if mask is None else mask.to(dtype))
        if (
            h.device.type == "cpu"
            if torch.is_grad_enabled()
            else h.device.type in _thresholds.PADDED_LAST_LAYER_BY_ROWS
        ):
            return _single_output_conv(self.convs[-1], h)
        return self.convs[-1](h)[:, 0]

    def _correction_by_shape(self, D, P, order, batches):
        """The CPU path: pairs of equal ``(Lx, Ly)`` go through unpadded.

        ``order`` and ``batches`` are those of :func:`_shape_batches`.

        An unpadded batch needs no mask (the convolutions' own zero padding
        is the per-pair computation) and computes no padding cells; groups
        are cut so that an activation stays under :data:`_thresholds.CPU_BATCH_BYTES`
        (in cache). Cells outside a pair's valid block are 0 in ``g``.
        """
        n, Lx, Ly = D.shape
        dtype = self.convs[0].weight.dtype
        D, P = D.to(dtype), P.to(dtype)
        if order is not None:
            D, P = D[order], P[order]
        # One split and one cat: autograd then moves each gradient once,
        # where indexing the whole batch per group would cost a full-size
        # gradient per group.
        sizes = [m for _, _, m in batches]
        parts = []
        for (a, b, m), Dc, Pc in zip(batches, D.split(sizes), P.split(sizes)):
            if a and b:
                g = self._layers(Dc[:, :a, :b], Pc[:, :a, :b])  # (m, a, b)
                if (a, b) != (Lx, Ly):
                    g = nn.functional.pad(g, (0, Ly - b, 0, Lx - a))
            else:  # an empty block: nothing to align
                g = D.new_zeros(m, Lx, Ly, dtype=_sum_dtype(dtype))
            parts.append(g)
        g = parts[0] if len(parts) == 1 else torch.cat(parts)
        if order is None:
            return g
        return g[torch.empty_like(order).scatter_(0, order, torch.arange(n))]

    def _layers(self, D, P):
        """The layers on an unpadded batch ``D``, ``P`` (m, a, b)."""
        return _single_output_conv(self.convs[-1], self._hidden(D, P))

    def _hidden(self, D, P, mask=None, gaps=None):
        """The hidden layers (convolution, ReLU) of ``[D, P]`` (each m, a, b).

        ``mask`` (m, 1, a, b), when given, zeroes the padding after each
        layer; ``gaps`` (row indices, column indices) of a packed image
        (m = 1) zero those rows and columns instead.
        """
        # The ReLU and the zeroing run in place on each convolution's output
        # (which the convolution's backward does not read): fresh
        # allocations of these large tensors cost more than the ReLU itself.
        grad = torch.is_grad_enabled()
        first = self.convs[0]
        if len(self.convs) > 1 and grad and _DistanceInputConv.takes(D, P, first):
            h = _DistanceInputConv.apply(D, P, first.weight, first.bias)
        else:
            # (m, 2, a, b) stored channels-last (NHWC), the layout in which
            # oneDNN's direct convolution is fastest, built in one copy
            h = torch.stack((D, P), dim=-1).to(first.weight.dtype).permute(0, 3, 1, 2)
            if len(self.convs) > 1:
                h = first(h)
        for i, conv in enumerate(self.convs[:-1]):
            if i:
                h = conv(h)
            if grad and (mask is not None or gaps is not None):
                h = _ReluZeroed.apply(h, mask, gaps)
            else:
                h = _relu_zeroed_(h, mask, gaps)
        return h

    @property
    def halo(self) -> int:
        """How far (in cells) any layer reads from a cell: the largest
        kernel radius. Grids packed side by side need gaps this wide
        (:mod:`sktap.core._packed`)."""
        return max(self.kernel_sizes) // 2

    def packed_correction(self, D, P, rows, cols):
        """``g`` of one image of packed grids (:mod:`sktap.core._packed`).

        ``D`` and ``P`` (H, W) are zero outside the cells where ``rows``
        (H,) and ``cols`` (W,) are both True; the invalid rows and columns
        (the gaps between grids) are reset to zero after every hidden layer,
        so every grid sees the zero padding of its own convolution.
        """
        gaps = torch.nonzero(~rows)[:, 0], torch.nonzero(~cols)[:, 0]
        h = self._hidden(D[None], P[None], gaps=gaps)
        return _single_output_conv(self.convs[-1], h)[0]

    def forward(self, x, y, D, P, mask):
        return -(D + self.correction(D, P, mask).to(D.dtype))


class TAPTransNet(nn.Module):
    """Transformer-style alignment logits (TAP paper, appendix A.7).

    ``S = -(cdist(W_q x, W_k y) / sqrt(d') + lambda * P)`` with two bias-free
    linear projections to ``d'`` dimensions. Usable wherever a :class:`TAPNet`
    is.

    Parameters
    ----------
    n_features : int
        Feature dimension ``d`` of the frames it compares.
    n_components : int, default=30
        Projection dimension ``d'``.
    position_weight : float, default=50.0
        The weight ``lambda`` of the relative-position term.

    Examples
    --------
    >>> import torch
    >>> from sktap import TAPTransNet
    >>> net = TAPTransNet(3)
    >>> x, y = torch.rand(2, 4, 3), torch.rand(2, 5, 3)
    >>> D = torch.cdist(x, y)
    >>> net(x, y, D, torch.zeros_like(D), None).shape
    torch.Size([2, 4, 5])
    """

    needs_frames = True  # the core passes per-pair frames, not only D and P

    def __init__(self, n_features: int, n_components: int = 30, position_weight=50.0):
        super().__init__()
        if n_features < 1 or n_components < 1:
            raise ValueError("n_features and n_components must be >= 1")
        self.n_features = n_features
        self.n_components = n_components
        self.position_weight = float(position_weight)
        self.query = nn.Linear(n_features, n_components, bias=False)
        self.key = nn.Linear(n_features, n_components, bias=False)

    def forward(self, x, y, D, P, mask):
        if x is None or y is None:
            raise ValueError("TAPTransNet needs the frames x and y, not only D")
        q = self.query(x.to(self.query.weight.dtype))
        k = self.key(y.to(self.key.weight.dtype))
        dist = torch.cdist(q, k).to(D.dtype) / math.sqrt(self.n_components)
        return -(dist + self.position_weight * P)
