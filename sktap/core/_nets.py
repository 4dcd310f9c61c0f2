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

__all__ = ["TAPNet", "TAPTransNet"]


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

    def correction(self, D, P, mask):
        """The learned correction ``g`` of shape (n_pairs, Lx, Ly)."""
        dtype = self.convs[0].weight.dtype
        # (n_pairs, 2, Lx, Ly) stored channels-last (NHWC), the layout in
        # which oneDNN's direct convolution is fastest, built in one copy
        h = torch.stack((D, P), dim=-1).to(dtype).permute(0, 3, 1, 2)
        if mask is not None:
            mask = mask.to(dtype)
        # Without autograd the activations are updated in place: fresh
        # allocations of these large tensors cost more than the ReLU itself.
        inplace = not torch.is_grad_enabled()
        for conv in self.convs[:-1]:
            h = conv(h)
            h = h.relu_() if inplace else torch.relu(h)
            if mask is not None:
                h = h.mul_(mask) if inplace else h * mask
        return self.convs[-1](h)[:, 0]

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
