"""Trainable pieces around the core: the per-frame MLP and the learned distance."""

from __future__ import annotations

import torch
from torch import nn

from ._masks import frame_mask, mask_frames, sum_dtype
from ._tap import tap_pairwise

__all__ = [
    "ChannelScaler",
    "FrameMLP",
    "SequenceDistanceModel",
    "SequenceScaler",
    "TAPModel",
    "encode_frames",
]


def encode_frames(frame, x, lengths):
    """``(z, out_lengths)`` of a frame encoder, with padding reset to zero.

    ``frame`` is None (frames kept as they are), a module that maps
    ``(x, lengths)`` to ``(z, out_lengths)`` (it declares
    ``returns_lengths = True``; it may downsample time), or any per-frame
    module mapping (n, L, d) to (n, L, d_out).
    """
    if frame is None:
        return x, lengths
    if getattr(frame, "returns_lengths", False):
        return frame(x, lengths)
    return mask_frames(frame(x), lengths), lengths


class FrameMLP(nn.Module):
    """Per-frame MLP ``h``: d -> hidden... -> d_out, ReLU, L2-normalised output.

    Applied to every frame independently (paper section 3.2), so it maps
    ``(n, L, d)`` to ``(n, L, d_out)``.
    """

    def __init__(self, n_features, hidden_layer_sizes=(1024, 1024), n_components=None):
        super().__init__()
        sizes = (n_features, *hidden_layer_sizes, n_components)
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return nn.functional.normalize(self.layers(x), dim=-1)


class ChannelScaler(nn.Module):
    """Per-channel standardisation ``(x - mean) / scale`` with stored statistics.

    The statistics are buffers (saved with the model's weights); padding
    stays zero.
    """

    returns_lengths = True

    def __init__(self, n_features):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    @torch.no_grad()
    def fit(self, x, lengths):
        """Set mean and scale from the valid frames of ``x`` (n, L, d)."""
        frames = x[frame_mask(lengths, x.shape[1])].double()  # (n_frames, d)
        self.mean.copy_(frames.mean(dim=0))
        std = frames.std(dim=0, unbiased=False)
        self.scale.copy_(torch.where(std > 1e-12 * (1 + frames.abs().max()), std, 1.0))
        return self

    def forward(self, x, lengths):
        z = (x - self.mean.to(x.dtype)) / self.scale.to(x.dtype)
        return mask_frames(z, lengths), lengths


def _sequence_stats(x, lengths):
    """Per-sequence, per-channel mean and standard deviation over the valid
    frames of ``x`` (n, L, d), in float64 (float32 on MPS): two (n, d) tensors."""
    wide = sum_dtype(x.device)
    valid = frame_mask(lengths, x.shape[1])[:, :, None]
    x = torch.where(valid, x.to(wide), 0.0)
    count = lengths.to(wide)[:, None]
    mean = x.sum(dim=1) / count
    centred = torch.where(valid, x - mean[:, None], 0.0)
    std = (centred.square().sum(dim=1) / count).sqrt()
    return mean, std


class SequenceScaler(nn.Module):
    """Standardise each sequence by its own statistics, and keep them as channels.

    For a sequence with channel means ``m`` and standard deviations ``s``
    over its valid frames, the output has ``3 * d`` channels: the shape
    ``(x - m) / (s + eps)``, then the sequence's level ``m`` and its
    log-scale ``log(s + eps)``, each standardised with their mean and
    spread over the training sequences and repeated on every frame. Series
    whose amplitudes span orders of magnitude (appliance currents, say)
    then keep both their shape, which a global standardisation would crush
    to nearly nothing for the quiet ones, and their amplitude, which a plain
    per-series z-normalisation would drop. ``eps`` is ``1e-3`` times the
    global standard deviation of the training frames.

    The statistics are buffers (saved with the model's weights); padding
    stays zero, and a padded batch gives each sequence's result alone.
    """

    returns_lengths = True

    def __init__(self, n_features):
        super().__init__()
        self.n_features = int(n_features)
        for name in ("eps", "level_mean", "log_scale_mean"):
            self.register_buffer(name, torch.zeros(n_features))
        for name in ("level_scale", "log_scale_scale"):
            self.register_buffer(name, torch.ones(n_features))

    @property
    def n_outputs(self) -> int:
        """Channels of the output: ``3 * n_features``."""
        return 3 * self.n_features

    @torch.no_grad()
    def fit(self, x, lengths):
        """Set the statistics from the training sequences ``x`` (n, L, d)."""
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        frames = x[frame_mask(lengths, x.shape[1])].double()
        spread = frames.std(dim=0, unbiased=False)
        self.eps.copy_(torch.where(spread > 0, 1e-3 * spread, 1e-3))
        mean, std = _sequence_stats(x, lengths)
        for stat, name in ((mean, "level"), (torch.log(std + self.eps), "log_scale")):
            centre, scale = stat.mean(dim=0), stat.std(dim=0, unbiased=False)
            getattr(self, f"{name}_mean").copy_(centre)
            getattr(self, f"{name}_scale").copy_(torch.where(scale > 1e-12, scale, 1.0))
        return self

    def forward(self, x, lengths):
        lengths = torch.as_tensor(lengths, dtype=torch.long, device=x.device)
        mean, std = _sequence_stats(x, lengths)
        wide = mean.dtype
        eps = self.eps.to(wide)
        shape = (x.to(wide) - mean[:, None]) / (std + eps)[:, None]
        level = (mean - self.level_mean.to(wide)) / self.level_scale.to(wide)
        log_scale = torch.log(std + eps) - self.log_scale_mean.to(wide)
        log_scale = log_scale / self.log_scale_scale.to(wide)
        summary = torch.cat([level, log_scale], dim=1)[:, None].expand(
            -1, x.shape[1], -1
        )
        z = torch.cat([shape, summary], dim=2).to(x.dtype)
        return mask_frames(z, lengths), lengths


class SequenceDistanceModel(nn.Module):
    """A learned sequence distance: scaler, frame encoder, then a distance.

    The fitted ``model_`` of a :class:`~sktap.metric_learning.TorchMetricLearner`:
    sequences are standardised (``scaler``), encoded frame by frame
    (``frame``), and the encoded sequences compared by :meth:`pairwise`,
    which a subclass implements (:class:`TAPModel`: TAP with an alignment
    network).

    Parameters
    ----------
    frame : torch.nn.Module or None
        The frame encoder ``h`` (see :func:`encode_frames`); ``None`` keeps
        the frames as they are.
    scaler : ChannelScaler or None
        Input standardisation applied before ``frame``.
    """

    def __init__(self, frame=None, scaler=None):
        super().__init__()
        self.scaler = scaler
        self.frame = frame

    def encode(self, x, lengths):
        """``(z, out_lengths)``: the frames the distance compares."""
        x, lengths = encode_frames(self.scaler, x, lengths)
        return encode_frames(self.frame, x, lengths)

    def pairwise(self, zx, x_lengths, zy, y_lengths, *, symmetric=False):
        """Distances (a, b) between every encoded ``zx[i]`` and ``zy[j]``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def forward(self, x, x_lengths, y=None, y_lengths=None, *, symmetric=False):
        """All pairwise distances (a, b); ``y=None`` compares ``x`` with itself."""
        zx, lx = self.encode(x, x_lengths)
        zy, ly = (zx, lx) if y is None else self.encode(y, y_lengths)
        return self.pairwise(zx, lx, zy, ly, symmetric=symmetric)


class TAPModel(SequenceDistanceModel):
    """A frame transform ``h`` followed by TAP with alignment network ``f``.

    The fitted ``model_`` of :class:`~sktap.TAPMetricLearner`.

    Parameters
    ----------
    frame : torch.nn.Module or None
        ``h``; ``None`` keeps the frames as they are.
    align : torch.nn.Module or None
        ``f`` (e.g. :class:`sktap.TAPNet`); ``None`` is the parameter-free TAP.
    scaler : ChannelScaler or None
        Input standardisation applied before ``frame``.
    """

    def __init__(self, frame=None, align=None, scaler=None):
        super().__init__(frame, scaler)
        self.align = align

    def pairwise(self, zx, x_lengths, zy, y_lengths, *, symmetric=False):
        """TAP distances (a, b) of the encoded frames, ``zx[i]`` the source."""
        return tap_pairwise(
            zx, x_lengths, zy, y_lengths, self.align, symmetric=symmetric
        )
