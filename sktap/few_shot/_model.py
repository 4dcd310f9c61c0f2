"""The few-shot models: scaler, frame encoder, optional self-attention (SA-TAP),
and a distance (TAP with its alignment network here; OTAM in the baselines)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core import encode_frames, frame_mask, mask_frames, tap_pairwise

__all__ = [
    "FewShotModel",
    "FewShotTAP",
    "FrameSelfAttention",
    "build_backbone",
    "sinusoidal_positions",
]


def sinusoidal_positions(length, dim, *, device=None, dtype=torch.float32):
    """Transformer position embedding of shape (length, dim).

    Entry ``(t, 2i)`` is ``sin(t / 10000^(2i/dim))`` and ``(t, 2i + 1)`` the
    matching cosine; an odd ``dim`` drops the last cosine.
    """
    t = torch.arange(length, device=device, dtype=torch.float64)[:, None]
    freq = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float64)
        * (-math.log(10000.0) / dim)
    )
    pe = torch.zeros(length, dim + dim % 2, device=device, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(t * freq)
    pe[:, 1::2] = torch.cos(t * freq)
    return pe[:, :dim].to(dtype)


class FrameSelfAttention(nn.Module):
    """Single-head self-attention over the frames of each sequence (SA-TAP).

    ``z = x + PE * sqrt(2 / d)``; ``out = LayerNorm(z + softmax(q k^T /
    sqrt(d)) v)`` with
    ``q, k, v`` three bias-free ``d x d`` projections of ``z`` (paper
    Eqs. 12-13). Padded frames are masked out of the keys and reset to zero
    in the output, so a sequence's output does not depend on its padding.

    The sinusoidal positions are scaled by ``sqrt(2 / d)`` to norm 1, the
    norm of the L2-normalised frames they are added to; the paper adds them
    unscaled (norm ``sqrt(d / 2)``: 4 for 32-dim frames), which swamps the
    frames. Measured with the few-shot defaults (``docs/benchmarks.md``,
    "Few-shot defaults"), 5-way 1-shot on novel classes: 0.584 unscaled,
    0.894 scaled (plain TAP: 0.917).

    Parameters
    ----------
    n_features : int
        Frame dimension ``d``.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, section 3.3.
    """

    def __init__(self, n_features):
        super().__init__()
        self.n_features = n_features
        self.query = nn.Linear(n_features, n_features, bias=False)
        self.key = nn.Linear(n_features, n_features, bias=False)
        self.value = nn.Linear(n_features, n_features, bias=False)
        self.norm = nn.LayerNorm(n_features)

    def forward(self, x, lengths):
        """Map ``x`` (n, L, d) with ``lengths`` (n,) to (n, L, d)."""
        _, L, d = x.shape
        positions = sinusoidal_positions(L, d, device=x.device, dtype=x.dtype)
        z = x + positions[None] * math.sqrt(2.0 / d)  # norm 1, as the frames
        logits = self.query(z) @ self.key(z).transpose(1, 2) / math.sqrt(d)  # (n, L, L)
        valid = frame_mask(lengths, L)  # (n, L)
        logits = logits.masked_fill(~valid[:, None, :], float("-inf"))
        out = self.norm(z + torch.softmax(logits, dim=-1) @ self.value(z))
        return mask_frames(out, lengths)


class FewShotModel(nn.Module):
    """Scaler, frame encoder and optional self-attention; a subclass scores pairs.

    Parameters
    ----------
    backbone : torch.nn.Module
        The frame encoder (see :func:`~sktap.core.encode_frames`): maps
        frames (n, L, d) to (n, L, d'), or ``(x, lengths)`` to ``(z,
        out_lengths)`` when it declares ``returns_lengths = True``.
    attention : FrameSelfAttention or None
    scaler : ChannelScaler or None
        Input standardisation applied before ``backbone``.
    """

    def __init__(self, backbone, attention=None, scaler=None):
        super().__init__()
        self.backbone = backbone
        self.attention = attention
        self.scaler = scaler

    def encode(self, x, lengths):
        """``(z, lengths)``: frame embeddings (n, L', d'), zero beyond each length."""
        x, lengths = encode_frames(self.scaler, x, lengths)
        z, lengths = encode_frames(self.backbone, x, lengths)
        if self.attention is not None:
            z = self.attention(z, lengths)
        return z, lengths

    def pair_scores(self, zq, lq, zs, ls):
        """Scores (n_q, n_s) of every query against every support, higher is
        closer: ``-d(q, s) - d(s, q)`` for the model's distance ``d``."""
        raise NotImplementedError  # pragma: no cover - abstract


class FewShotTAP(FewShotModel):
    """Frame encoder, optional self-attention, and the TAP alignment network.

    Parameters
    ----------
    backbone : torch.nn.Module
        Maps frames (n, L, d) to (n, L, d') (see :class:`FewShotModel`).
    attention : FrameSelfAttention or None
    align : torch.nn.Module
        Alignment network such as :class:`sktap.TAPNet`.
    scaler : ChannelScaler or None
    """

    def __init__(self, backbone, attention, align, scaler=None):
        super().__init__(backbone, attention, scaler)
        self.align = align

    def pair_scores(self, zq, lq, zs, ls):
        """``-tap(q, s) - tap(s, q)`` for every query and support (n_q, n_s).

        Both directions share one batched call (and one frame-distance
        tensor); the symmetric TAP is their mean, hence the factor 2.
        """
        return -2 * tap_pairwise(zq, lq, zs, ls, self.align, symmetric=True)


def build_backbone(backbone, n_features):
    """``(module, width)`` of a user's ``backbone(n_features)``, checked."""
    module = backbone(n_features)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            "backbone(n_features) must return a torch.nn.Module; got "
            f"{type(module).__name__}"
        )
    p = next(module.parameters(), None)
    probe = torch.zeros(1, 1, n_features, device=p.device if p is not None else None)
    with torch.no_grad():
        out = module(probe)
    if out.ndim != 3 or tuple(out.shape[:2]) != (1, 1):
        raise ValueError(
            "backbone must map (batch, L, d) to (batch, L, d'); it mapped "
            f"(1, 1, {n_features}) to {tuple(out.shape)}"
        )
    return module, int(out.shape[-1])
