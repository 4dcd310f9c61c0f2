"""Frame encoders with temporal context, and the stride that keeps TAP small.

A per-frame MLP sees one time step at a time; on univariate data that makes
TAP compare value histograms rather than shapes. :class:`ConvFrameEncoder`
gives every output frame a window of neighbouring steps and can downsample
time, so long series give a small ``Lx x Ly`` TAP grid. This is a departure
from the paper (section 3.2 uses the per-frame MLP), chosen by benchmark.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import nn

from ._masks import mask_frames, sum_dtype

__all__ = ["ConvFrameEncoder", "choose_stride", "pool_frames"]


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_positive_int(value, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def choose_stride(max_length, target_length=64) -> int:
    """Smallest stride that brings the longest series to ``target_length`` frames.

    The default temporal downsampling for long series: with this stride a
    :class:`ConvFrameEncoder` turns every sequence into at most
    ``target_length`` frames, so a TAP grid has at most ``target_length**2``
    cells; shorter data keeps stride 1.

    Parameters
    ----------
    max_length : int
        Length of the longest sequence, ``>= 1``.
    target_length : int, default=64
        Most frames wanted after downsampling, ``>= 1``.

    Returns
    -------
    stride : int
        ``max(1, ceil(max_length / target_length))``: the smallest ``s >= 1``
        with ``ceil(max_length / s) <= target_length``.

    Examples
    --------
    >>> from sktap.core._encoders import choose_stride
    >>> choose_stride(60), choose_stride(64), choose_stride(65), choose_stride(500)
    (1, 1, 2, 8)
    """
    max_length = _check_positive_int(max_length, "max_length")
    target_length = _check_positive_int(target_length, "target_length")
    # ceil(M / s) <= T  <=>  M / s <= T (T is an integer)  <=>  s >= M / T
    return max(1, -(-max_length // target_length))


def pool_frames(x, lengths, frames):
    """Average-pool every sequence longer than ``frames`` down to ``frames`` steps.

    The time resolution of each sequence then follows its own length: a
    sequence of ``L > frames`` steps becomes ``frames`` segment means, where
    segment ``t`` covers the steps ``floor(t * L / frames)`` to
    ``ceil((t + 1) * L / frames) - 1`` (neighbouring segments share a step
    when ``frames`` does not divide ``L``); shorter sequences are returned
    unchanged, bit for bit.

    Parameters
    ----------
    x : torch.Tensor, shape (n, L, d)
        A padded batch; frames beyond each length are ignored.
    lengths : torch.LongTensor, shape (n,)
        Valid steps of each sequence, ``1 <= lengths <= L``.
    frames : int
        Most steps kept per sequence, ``>= 1``.

    Returns
    -------
    pooled : torch.Tensor, shape (n, min(L, frames), d)
        Exactly zero beyond ``new_lengths``; the dtype of ``x``.
    new_lengths : torch.LongTensor, shape (n,)
        ``min(lengths, frames)``.

    Examples
    --------
    >>> import torch
    >>> from sktap.core import pool_frames
    >>> x = torch.arange(6.0).reshape(1, 6, 1)
    >>> pooled, n = pool_frames(x, torch.tensor([6]), 3)
    >>> pooled[0, :, 0].tolist(), n.tolist()
    ([0.5, 2.5, 4.5], [3])
    """
    frames = _check_positive_int(frames, "frames")
    lengths = torch.as_tensor(lengths, dtype=torch.long, device=x.device)
    x = mask_frames(x, lengths)
    new_lengths = lengths.clamp(max=frames)
    width = min(x.shape[1], frames)
    kept = x[:, :width]  # sequences of at most ``frames`` steps fit in it whole
    longer = lengths > frames
    if not bool(longer.any()):
        return kept, new_lengths
    # segment sums from a float64 running sum (float32 on MPS)
    t = torch.arange(width, device=x.device)
    full = lengths[:, None]
    start = torch.div(t * full, frames, rounding_mode="floor")
    end = -torch.div(-(t + 1) * full, frames, rounding_mode="floor")
    end = torch.minimum(end, full)  # rows of short sequences are discarded
    start = torch.minimum(start, end - 1)
    running = torch.cumsum(x.to(sum_dtype(x.device)), dim=1)
    running = nn.functional.pad(running, (0, 0, 1, 0))  # running[:, k]: sum of k steps

    def at(index):
        return running.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))

    means = (at(end) - at(start)) / (end - start)[:, :, None]
    pooled = torch.where(longer[:, None, None], means.to(x.dtype), kept)
    return mask_frames(pooled, new_lengths), new_lengths


class ConvFrameEncoder(nn.Module):
    """Frame transform ``h`` with temporal context: 1-D convolutions over time.

    For each width in ``channels`` a ``Conv1d`` of ``kernel_size`` with
    "same" zero padding (``kernel_size // 2``) and a ReLU, then a pointwise
    (kernel 1) ``Conv1d`` to ``n_components``; output frames are
    L2-normalised like the paper's per-frame MLP.

    Parameters
    ----------
    n_features : int
        Dimension ``d`` of the input frames.
    n_components : int
        Dimension of the output frames.
    channels : sequence of int, default=(64,)
        Widths of the hidden convolution layers; ``()`` leaves only the
        pointwise layer, i.e. a per-frame linear map.
    kernel_size : int, default=5
        Odd kernel size of every hidden layer.
    stride : int, default=1
        Temporal downsampling, applied by the first layer so that every later
        layer also runs on the shorter sequence. See :func:`choose_stride`.
    normalize : bool, default=True
        L2-normalise each output frame.
    context : bool, default=False
        Add a summary of the whole sequence to every frame: the mean of the
        last hidden layer's frames over the sequence's valid frames, mapped
        by a linear layer to ``n_components`` and added to each frame's
        pointwise output before normalisation. Every frame then sees the
        whole series, however long, and still keeps its own time position
        for TAP (needs at least one hidden layer).
    max_frames : int or None, default=None
        Per-sequence resolution: the first layer reads every step (at
        ``stride``), then the frames of every sequence longer than
        ``max_frames`` are average-pooled to ``max_frames``
        (:func:`pool_frames` of the first layer's ReLU features, so the
        pooled frames keep what the layer detects within each segment,
        such as the energy of an oscillation that a plain mean of the input
        would cancel). Short and long sequences then all keep enough frames.
        None: no pooling.

    Notes
    -----
    **Lengths.** The first layer pads ``p = kernel_size // 2`` zeros at both
    ends and moves by ``stride = s``, so output frame ``t`` reads the input
    steps ``[t*s - p, t*s + p]`` (centred on step ``t*s``) and a sequence of
    length ``L >= 1`` gives ``floor((L + 2p - (2p + 1)) / s) + 1 =
    floor((L - 1) / s) + 1 = ceil(L / s)`` frames, for every ``L``. Later
    layers have stride 1 and keep that length.

    **Padded batches.** After every layer the activations beyond each
    sequence's current length are zeroed (the input too, before the first
    layer), so the next convolution reads zeros there exactly as the "same"
    zero padding of the sequence alone would: a padded batch gives, frame for
    frame, the result of encoding each sequence alone, and the frames beyond
    :meth:`output_lengths` are exactly zero. For a valid output ``t <
    ceil(L / s)`` the window ends at ``t*s + p <= L - 1 + p``, so it never
    reads past the zero padding an unpadded sequence would have.

    With ``stride > kernel_size`` the first layer's windows leave gaps: some
    input steps are never read. Keep ``kernel_size >= stride``.

    The module keeps the device and dtype of its input provided its
    parameters match them (``encoder.to(x)``).

    Examples
    --------
    >>> import torch
    >>> from sktap.core._encoders import ConvFrameEncoder
    >>> enc = ConvFrameEncoder(1, 8, channels=(16,), kernel_size=5, stride=2)
    >>> x = torch.randn(3, 10, 1)
    >>> z, out_lengths = enc(x, torch.tensor([10, 7, 1]))
    >>> z.shape, out_lengths.tolist(), enc.receptive_field
    (torch.Size([3, 5, 8]), [5, 4, 1], 5)
    >>> bool((z[1, 4:] == 0).all())
    True
    """

    def __init__(
        self,
        n_features,
        n_components,
        *,
        channels=(64,),
        kernel_size=5,
        stride=1,
        normalize=True,
        context=False,
        max_frames=None,
    ):
        super().__init__()
        self.n_features = _check_positive_int(n_features, "n_features")
        self.n_components = _check_positive_int(n_components, "n_components")
        channels = tuple(channels)
        if not all(_is_int(c) and c >= 1 for c in channels):
            raise ValueError(f"channels must be positive integers; got {channels}")
        self.channels = tuple(int(c) for c in channels)
        if not _is_int(kernel_size) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                "kernel_size must be a positive odd integer (for 'same' padding); "
                f"got {kernel_size!r}"
            )
        self.kernel_size = int(kernel_size)
        self.stride = _check_positive_int(stride, "stride")
        self.normalize = bool(normalize)

        widths = (self.n_features, *self.channels)
        self.hidden = nn.ModuleList(
            nn.Conv1d(
                a,
                b,
                self.kernel_size,
                stride=self.stride if i == 0 else 1,
                padding=self.kernel_size // 2,
            )
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))
        )
        # with no hidden layer the pointwise layer is the first, so it strides
        self.out = nn.Conv1d(
            widths[-1], self.n_components, 1, stride=1 if self.channels else self.stride
        )
        self.context = bool(context)
        if max_frames is not None:
            max_frames = _check_positive_int(max_frames, "max_frames")
        self.max_frames = max_frames
        if self.context and not self.channels:
            raise ValueError("context=True needs at least one hidden layer (channels)")
        # the whole-sequence summary added to every frame (see ``context``)
        self.summary = None
        if self.context:
            self.summary = nn.Linear(widths[-1], self.n_components)

    returns_lengths = True  # forward maps (x, lengths) to (z, out_lengths)

    @property
    def receptive_field(self) -> int:
        """Input steps spanned by the window one output frame depends on.

        ``1 + (k - 1) * (1 + (n_hidden - 1) * s)`` with ``n_hidden =
        len(channels) >= 1`` (the first layer adds ``k - 1`` steps, each later
        one ``(k - 1) * s`` because its inputs are ``s`` steps apart); 1 with
        no hidden layer. Output frame ``t`` depends on input steps within
        ``(receptive_field - 1) // 2`` of step ``t * stride`` (with
        ``context``, and on the mean of the whole sequence's hidden frames).
        """
        field, jump = 1, 1
        for conv in self.hidden:
            field += (conv.kernel_size[0] - 1) * jump
            jump *= conv.stride[0]
        return field

    def output_lengths(self, lengths) -> torch.Tensor:
        """Number of output frames, ``min(ceil(L / stride), max_frames)``.

        Parameters
        ----------
        lengths : array-like of int, shape (n,)

        Returns
        -------
        out_lengths : torch.LongTensor, shape (n,)
            On the device of ``lengths`` when it is a tensor.
        """
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        out = torch.div(lengths + self.stride - 1, self.stride, rounding_mode="floor")
        return out if self.max_frames is None else out.clamp(max=self.max_frames)

    def _pool(self, h, lengths):
        """``pool_frames`` of channels-first frames ``h`` (with max_frames)."""
        if self.max_frames is None:
            return h, lengths
        pooled, lengths = pool_frames(h.transpose(1, 2), lengths, self.max_frames)
        return pooled.transpose(1, 2), lengths

    def forward(self, x, lengths):
        """Encode a zero-padded batch.

        Parameters
        ----------
        x : torch.Tensor, shape (n, L, n_features)
            Frames beyond each length are ignored.
        lengths : torch.LongTensor, shape (n,)
            Valid frames of each sequence, ``1 <= lengths <= L``.

        Returns
        -------
        z : torch.Tensor, shape (n, L_out, n_components)
            ``L_out = min(ceil(L / stride), max_frames)``; exactly zero
            beyond ``out_lengths``.
        out_lengths : torch.LongTensor, shape (n,)
            ``min(ceil(lengths / stride), max_frames)``.
        """
        lengths = torch.as_tensor(lengths, dtype=torch.long, device=x.device)
        # frames after the strided first layer; pooled after it with max_frames
        out_lengths = torch.div(
            lengths + self.stride - 1, self.stride, rounding_mode="floor"
        )
        h = mask_frames(x.transpose(1, 2), lengths, time_dim=-1)  # (n, d, L)
        for i, conv in enumerate(self.hidden):
            h = mask_frames(torch.relu(conv(h)), out_lengths, time_dim=-1)
            if i == 0:
                h, out_lengths = self._pool(h, out_lengths)
        z = self.out(h)  # (n, n_components, L_out)
        if not self.hidden:  # the pointwise layer is the first
            z, out_lengths = self._pool(z, out_lengths)
        if self.summary is not None:  # h is zero beyond out_lengths
            mean = h.sum(dim=-1) / out_lengths.to(h.dtype).unsqueeze(-1)
            z = z + self.summary(mean).unsqueeze(-1)
        if self.normalize:
            z = nn.functional.normalize(z, dim=1)
        return mask_frames(z, out_lengths, time_dim=-1).transpose(1, 2), out_lengths
