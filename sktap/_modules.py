"""Trainable pieces around the core: the per-frame MLP and the learned distance."""

from __future__ import annotations

import torch
from torch import nn

from ._tap import tap_pairwise

__all__ = ["FrameMLP", "LearnedTAP", "mask_frames"]


def mask_frames(z, lengths):
    """Zero the frames of ``z`` (n, L, d) beyond each sequence's length."""
    valid = torch.arange(z.shape[1], device=z.device)[None, :] < lengths[:, None]
    return z * valid[:, :, None].to(z.dtype)


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


class LearnedTAP(nn.Module):
    """A frame transform ``h`` followed by TAP with alignment network ``f``.

    Parameters
    ----------
    frame : torch.nn.Module or None
        ``h``; ``None`` keeps the frames as they are.
    align : torch.nn.Module or None
        ``f`` (e.g. :class:`sktap.TAPNet`); ``None`` is the parameter-free TAP.
    """

    def __init__(self, frame=None, align=None):
        super().__init__()
        self.frame = frame
        self.align = align

    def transform(self, x, lengths):
        if self.frame is None:
            return x
        return mask_frames(self.frame(x), lengths)

    def forward(self, x, x_lengths, y=None, y_lengths=None, *, symmetric=False):
        """All pairwise distances (a, b); ``y=None`` compares ``x`` with itself."""
        zx = self.transform(x, x_lengths)
        if y is None:
            zy, y_lengths = zx, x_lengths
        else:
            zy = self.transform(y, y_lengths)
        return tap_pairwise(
            zx, x_lengths, zy, y_lengths, self.align, symmetric=symmetric
        )
