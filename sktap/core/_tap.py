"""The TAP distance on padded torch batches (differentiable, device-agnostic).

Shapes: ``x`` (a, Lx, d) and ``y`` (b, Ly, d) are zero-padded sequences
with true lengths ``x_lengths`` (a,) and ``y_lengths`` (b,). The functions
keep the device and dtype of their inputs and know nothing of estimators.

Padded batches reproduce the per-pair result exactly: ``D`` and ``P`` are
zero outside each pair's ``Lx x Ly`` block, the network zeroes activations
there after every hidden layer (reproducing the zero padding of an unpadded
convolution), the softmax ignores padded target frames and the L1 step
divides by the true ``Lx``.
"""

from __future__ import annotations

import torch

from .. import _thresholds
from ._masks import cell_mask, frame_mask

__all__ = ["frame_distances", "tap_paired", "tap_pairwise"]


def frame_distances(x, y, *, paired: bool = False):
    """Euclidean distances between frames.

    Returns ``(a, b, Lx, Ly)``, or ``(n, Lx, Ly)`` with ``paired=True``
    (``x`` and ``y`` then hold ``n`` pairs).
    """
    if paired:
        return _cdist(x, y)
    a, b = x.shape[0], y.shape[0]
    return _pairwise_distances(x, y).view(a, b, x.shape[1], y.shape[1])


_LOW = (torch.bfloat16, torch.float16)


def _cdist(x, y):
    # Direct differences, not the |x|^2 + |y|^2 - 2xy expansion: near-equal
    # frames lose all precision there in float32 (sqrt amplifies the
    # cancellation), and this is O(Lx Ly d), small next to the network's
    # convolutions. With autograd on the CPU the expansion runs in float64
    # instead (_WideEuclidean), whose backward is two matrix products where
    # the direct differences' backward rebuilds them all. Frames from a
    # mixed-precision encoder are compared in float32 all the same.
    if x.dtype in _LOW or y.dtype in _LOW:
        x, y = x.float(), y.float()
    with torch.autocast(x.device.type, enabled=False):
        grad = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)
        if grad and x.device.type == "cpu" and x.dtype in _WIDE_OK:
            return _WideEuclidean.apply(x, y)
        if (
            x.device.type != "cpu"
            and not grad
            and x.shape[-1] <= _thresholds.BY_CHANNEL_MAX_D
        ):
            return _cdist_by_channel(x, y)
        return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


_WIDE_OK = (torch.float32, torch.float64)


class _WideEuclidean(torch.autograd.Function):
    """Euclidean distances (n, Lx, Ly) of frames (n, Lx, d) and (n, Ly, d)
    as ``sqrt(|x|^2 + |y|^2 - 2 x.y)`` in float64, with autograd.

    In float64 the expansion is exact to about 1e-8 times the frames' norms,
    even for near-equal frames (the packed no-grad path computes its
    distances the same way). The gradient of ``D_ij`` is
    ``(x_i - y_j) / D_ij``, 0 where ``D_ij`` is 0 (as ``torch.cdist``
    defines it); summed against the incoming gradient ``g`` it is
    ``x_i * sum_j W_ij - (W y)_i`` with ``W = g / D``: two matrix products
    in float64, where the backward of the direct differences rebuilds every
    difference vector (92 ms of a first training epoch on the data of
    ``benchmarks/bench_fit_time.py``, profiled on the 2-core CPU).
    Differences computed through the expansion lose no more than 1e-16
    times the norms, so each gradient term is exact to about 1e-8 of
    ``|g_ij|``.
    """

    @staticmethod
    def forward(ctx, x, y):
        x64, y64 = x.double(), y.double()
        sq = torch.baddbmm(
            (x64 * x64).sum(-1)[:, :, None], x64, y64.transpose(1, 2), alpha=-2.0
        )
        dist = sq.add_((y64 * y64).sum(-1)[:, None, :]).clamp_(min=0.0).sqrt_()
        ctx.save_for_backward(x64, y64, dist)
        ctx.dtypes = x.dtype, y.dtype
        return dist.to(torch.promote_types(x.dtype, y.dtype))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        x64, y64, dist = ctx.saved_tensors
        w = torch.where(dist > 0, g.double() / dist, 0.0)  # (n, Lx, Ly)
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = x64 * w.sum(2)[:, :, None] - torch.bmm(w, y64)
            gx = gx.to(ctx.dtypes[0])
        if ctx.needs_input_grad[1]:
            gy = y64 * w.sum(1)[:, :, None] - torch.bmm(w.transpose(1, 2), x64)
            gy = gy.to(ctx.dtypes[1])
        return gx, gy


def _cdist_by_channel(x, y):
    """``torch.cdist`` of (n, Lx, d) and (n, Ly, d), one channel at a time,
    for calls without autograd (the only ones that take it).

    The same direct differences, summed in place as d element-wise passes
    over the (n, Lx, Ly) result. On CUDA, torch.cdist gives each distance a
    block of threads that reduces over the d channels: with the few
    channels of frame features (d = 13 in the benchmark) most of those
    threads idle, and the frame distances took 40% of a ``cdist_tap`` call
    on an H100.
    """
    xt, yt = x.transpose(1, 2), y.transpose(1, 2)  # (n, d, L)
    sq = x.new_zeros(x.shape[0], x.shape[1], y.shape[1])
    for k in range(x.shape[-1]):
        diff = xt[:, k, :, None] - yt[:, k, None, :]
        sq.addcmul_(diff, diff)
    return sq.sqrt_()


def _pairs(x, y):
    """Frames of every (i, j) pair, i-major: (a * b, Lx, d) and (a * b, Ly, d)."""
    a, Lx, d = x.shape
    b, Ly, _ = y.shape
    xe = x[:, None].expand(a, b, Lx, d).reshape(a * b, Lx, d)
    ye = y[None].expand(a, b, Ly, d).reshape(a * b, Ly, d)
    return xe, ye


def _pairwise_distances(x, y):
    # Expanding the frames (a*b*L*d values) and one batched cdist writes D
    # directly in pair-major layout; cdist on the flattened sets would need a
    # permuted copy of the (much larger) a*b*Lx*Ly result.
    return _cdist(*_pairs(x, y))


def _as_lengths(lengths, n, device):
    """Lengths as a LongTensor on ``device``, checked to be 1-D of ``n`` (if given)."""
    lengths = torch.as_tensor(lengths, device=device).long()
    if lengths.ndim != 1 or (n is not None and len(lengths) != n):
        raise ValueError(f"lengths must have shape ({n},); got {tuple(lengths.shape)}")
    return lengths


def _positions(lengths, max_len, dtype):
    # (n, max_len): (i + 1) / L for valid i, 0 beyond the end
    idx = torch.arange(1, max_len + 1, device=lengths.device, dtype=dtype)
    pos = idx[None, :] / lengths[:, None].to(dtype)
    return pos * (idx[None, :] <= lengths[:, None])


def _needs_frames(net) -> bool:
    return net is not None and getattr(net, "needs_frames", False)


def _logits(D, lx, ly, full, net, x, y):
    """Alignment logits S (n, Lx, Ly) of the network (or -D without one)."""
    if net is None:
        return -D
    P = (
        _positions(lx, D.shape[1], D.dtype)[:, :, None]
        - _positions(ly, D.shape[2], D.dtype)[:, None, :]
    ).abs()
    if full:
        return net(x, y, D, P, None)
    valid = cell_mask(lx, ly, D.shape[1], D.shape[2])  # (n, Lx, Ly)
    return net(x, y, D * valid, P * valid, valid[:, None].to(D.dtype))


def _tap_core(D, lx, ly, net, x, y, return_alignment):
    """Distances (n,) and optionally T (n, Lx, Ly) of n pairs from their D."""
    _, Lx, Ly = D.shape
    row, col = frame_mask(lx, Lx), frame_mask(ly, Ly)  # (n, Lx), (n, Ly)
    full = bool(row.all()) and bool(col.all())
    S = _logits(D, lx, ly, full, net, x, y)
    if not full:
        S = S.masked_fill(~col[:, None, :], float("-inf"))
    A = torch.softmax(S, dim=-1)  # each source frame spreads mass 1
    # sum_ij T_ij D_ij with T = A / Lx, without materialising T
    row_cost = (A * D).sum(dim=-1)  # (n, Lx)
    if not full:
        row_cost = row_cost * row
    dist = row_cost.sum(dim=-1) / lx.to(D.dtype)
    if not return_alignment:
        return dist, None
    T = A / lx.to(A.dtype)[:, None, None]
    return dist, (T if full else T * row[:, :, None])


def tap_paired(x, x_lengths, y, y_lengths, net=None, *, return_alignment=False):
    """TAP distance of ``n`` pairs ``(x[k], y[k])``, x as the source.

    Parameters
    ----------
    x : Tensor of shape (n, Lx, d)
    x_lengths : Tensor or array of shape (n,)
    y : Tensor of shape (n, Ly, d)
    y_lengths : Tensor or array of shape (n,)
    net : torch.nn.Module or None
        Alignment network (``None``: the parameter-free soft nearest-frame
        distance, ``g = 0``).
    return_alignment : bool, default=False
        Also return the alignments ``T`` of shape (n, Lx, Ly).

    Returns
    -------
    dist : Tensor of shape (n,)
    T : Tensor of shape (n, Lx, Ly), only if ``return_alignment``
    """
    n = x.shape[0]
    lx = _as_lengths(x_lengths, n, x.device)
    ly = _as_lengths(y_lengths, n, x.device)
    dist, T = _tap_core(_cdist(x, y), lx, ly, net, x, y, return_alignment)
    return (dist, T) if return_alignment else dist


def tap_pairwise(
    x,
    x_lengths,
    y,
    y_lengths,
    net=None,
    *,
    symmetric: bool = False,
    return_alignment: bool = False,
):
    """TAP distances between every ``x[i]`` (source) and every ``y[j]``.

    All ``a * b`` pairs go through the network in one batched call.

    Parameters
    ----------
    x : Tensor of shape (a, Lx, d)
    x_lengths : Tensor or array of shape (a,)
    y : Tensor of shape (b, Ly, d)
    y_lengths : Tensor or array of shape (b,)
    net : torch.nn.Module or None
        Alignment network; ``None`` means ``g = 0``.
    symmetric : bool, default=False
        Average ``tap(x, y)`` and ``tap(y, x)``.
    return_alignment : bool, default=False
        Also return the alignments ``T`` (a, b, Lx, Ly) of ``x`` onto ``y``
        (not available with ``symmetric=True``).

    Returns
    -------
    dist : Tensor of shape (a, b)
    T : Tensor of shape (a, b, Lx, Ly), only if ``return_alignment``

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(3, 6, 2)
    >>> tap_pairwise(x, [6, 4, 2], x[:2], [6, 5]).shape
    torch.Size([3, 2])
    """
    if symmetric and return_alignment:
        raise ValueError("return_alignment is not available with symmetric=True")
    a, Lx, _ = x.shape
    b, Ly, _ = y.shape
    lx = _as_lengths(x_lengths, a, x.device)
    ly = _as_lengths(y_lengths, b, x.device)
    xe, ye = _pairs(x, y)
    D = _cdist(xe, ye)  # (a * b, Lx, Ly), pair (i, j) at i * b + j
    lx_p = lx[:, None].expand(a, b).reshape(-1)
    ly_p = ly[None, :].expand(a, b).reshape(-1)
    frames = _needs_frames(net)
    fx, fy = (xe, ye) if frames else (None, None)
    dist, T = _tap_core(D, lx_p, ly_p, net, fx, fy, return_alignment)
    if symmetric:
        # the same pairs read the other way: D transposed, roles swapped
        back, _ = _tap_core(D.transpose(1, 2), ly_p, lx_p, net, fy, fx, False)
        dist = (dist + back) / 2
    dist = dist.view(a, b)
    return (dist, T.view(a, b, Lx, Ly)) if return_alignment else dist
