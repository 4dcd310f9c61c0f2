"""The self-supervised alignment loss (TAP paper, Eq. 10).

A sequence and its augmentation (random blur or merge, see
:mod:`sktap.augment`) should be close, and the predicted alignment between
them should match the one the augmentation is known to induce.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from ..core import cell_mask, encode_frames, tap_paired

__all__ = [
    "SelfSupervisedAlignmentLoss",
    "ground_truth_alignments",
    "self_supervised_loss",
]


def _row_normalise(G):
    """Rows scaled to sum to 1; all-zero rows stay zero (no 0 / 0)."""
    total = G.sum(dim=-1, keepdim=True)
    return G / total.clamp(min=torch.finfo(G.dtype).tiny)


def ground_truth_alignments(G, x_lengths, aug_lengths):
    """Target alignments of both directions from an augmentation matrix.

    Normalised like TAP's ``T``: each row of a valid ``Lx x Ly`` block sums
    to ``1 / Lx``. A row of ``G`` that is all zero (a frame the blur never
    used, or padding) gives an all-zero target row.

    Parameters
    ----------
    G : Tensor of shape (n, Lx, L_aug)
        Augmentation matrices, ``x_aug[k] = G[k].T @ x[k]``, zero-padded.
    x_lengths : Tensor of shape (n,)
    aug_lengths : Tensor of shape (n,)

    Returns
    -------
    forward : Tensor of shape (n, Lx, L_aug)
        Target of the alignment of ``x`` (source) onto ``x_aug``.
    backward : Tensor of shape (n, L_aug, Lx)
        Target of the alignment of ``x_aug`` (source) onto ``x``.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, Eq. 10.

    Examples
    --------
    >>> import torch
    >>> G = torch.tensor([[[0.5], [0.5], [0.0]]])  # 3 frames merged into 1
    >>> fwd, bwd = ground_truth_alignments(G, torch.tensor([3]), torch.tensor([1]))
    >>> fwd[0, :, 0], bwd[0, 0]
    (tensor([0.3333, 0.3333, 0.0000]), tensor([0.5000, 0.5000, 0.0000]))
    """
    lx = x_lengths.to(G.dtype)[:, None, None]
    la = aug_lengths.to(G.dtype)[:, None, None]
    return _row_normalise(G) / lx, _row_normalise(G.transpose(1, 2)) / la


def _alignment_error(T, target, lx, ly):
    """Per pair, shape (n,): the mean over source frames of the squared
    distance between predicted and true alignment rows, both scaled to sum
    to 1 (the paper's row softmax ``A = Lx T``), over valid cells only."""
    valid = cell_mask(lx, ly, T.shape[1], T.shape[2])
    scale = lx.to(T.dtype)[:, None, None]
    sq = torch.where(valid, (scale * (T - target)) ** 2, torch.zeros_like(T))
    return sq.sum(dim=(1, 2)) / lx.to(T.dtype)


def _embed(transform, x, lengths):
    """Embedded frames (n, L, d_out), zero-padded; the lengths must not change."""
    h, out_lengths = encode_frames(transform, x, lengths)
    # the augmentations' ground truth is frame to frame: an encoder that
    # returns lengths (temporal context) must keep them; a per-frame module
    # returns ``lengths`` itself, so no comparison (and no device sync)
    if out_lengths is not lengths and not torch.equal(out_lengths, lengths):
        raise ValueError(
            "the self-supervised loss needs a frame encoder that keeps the "
            "sequence lengths (no temporal downsampling)"
        )
    return h


def _as_inputs(x, x_lengths, x_aug, aug_lengths, G):
    x = torch.as_tensor(x)
    x_aug = torch.as_tensor(x_aug, dtype=x.dtype, device=x.device)
    G = torch.as_tensor(G, dtype=x.dtype, device=x.device)
    lx = torch.as_tensor(x_lengths, device=x.device).long()
    la = torch.as_tensor(aug_lengths, device=x.device).long()
    n, Lx, La = x.shape[0], x.shape[1], x_aug.shape[1]
    if x_aug.shape[0] != n or G.shape != (n, Lx, La):
        raise ValueError(
            f"expected x (n, Lx, d), x_aug (n, L_aug, d) and G (n, Lx, L_aug); got "
            f"{tuple(x.shape)}, {tuple(x_aug.shape)} and {tuple(G.shape)}"
        )
    return x, lx, x_aug, la, G


def self_supervised_loss(
    net,
    x,
    x_lengths,
    x_aug,
    aug_lengths,
    G,
    *,
    transform=None,
    alignment_weight=1.0,
    return_parts=False,
):
    r"""TAP between sequences and their augmentations, plus alignment error (Eq. 10).

    .. math::

        L = \frac{1}{n} \sum_k \big[\mathrm{tap}(x_k, x'_k)
            + \mathrm{tap}(x'_k, x_k)\big]
          + w \Big(\frac{1}{n} \sum_k e(A_k, A^*_k)
            + \frac{1}{n} \sum_k e(A'_k, A'^*_k)\Big),
        \qquad e(A, A^*) = \frac{1}{L_x} \sum_{i, j} (A_{ij} - A^*_{ij})^2

    where ``A = Lx T`` and ``A'`` are the predicted alignments of ``x``
    onto ``x'`` and of ``x'`` onto ``x`` with each source row summing to 1
    (the paper's row softmax), the targets come from
    :func:`ground_truth_alignments` scaled the same way, and ``e`` sums
    over the valid ``Lx x Ly`` cells of a pair only: the mean over source
    frames of a row's squared error.

    The paper calls its term a mean squared error on ``A``. This one is
    taken on ``A`` too, not on ``T`` (whose rows sum to ``1 / Lx``, which
    made the term about ``Lx**2`` times smaller), and it sums over target
    frames instead of averaging, so that it does not shrink as ``1 / Ly``
    against the TAP term: with raw frames the two then pull with comparable
    strength (``benchmarks/bench_alignment.py``, ``docs/benchmarks.md``).

    Parameters
    ----------
    net : torch.nn.Module or None
        Alignment network (``None``: parameter-free TAP).
    x : Tensor of shape (n, Lx, d)
        Zero-padded sequences.
    x_lengths : Tensor or array-like of shape (n,)
    x_aug : Tensor or array of shape (n, L_aug, d)
        Zero-padded augmentations, as returned by
        :func:`sktap.augment.augment_batch`.
    aug_lengths : Tensor or array-like of shape (n,)
    G : Tensor or array of shape (n, Lx, L_aug)
        Augmentation matrices.
    transform : callable, optional
        Per-frame embedding applied to ``x`` and ``x_aug`` first, mapping
        (n, L, d) to (n, L, d_out) (the paper's MLP ``h``).
    alignment_weight : float, default=1.0
        Weight ``w`` of the alignment terms (1 in Eq. 10).
    return_parts : bool, default=False
        Also return a dict with the tensors ``"tap"`` and
        ``"alignment_error"`` (unweighted), for logging.

    Returns
    -------
    loss : Tensor of shape ()
    parts : dict, only if ``return_parts``

    Notes
    -----
    The alignment error cannot reach zero for a blur that skips trailing frames: TAP
    spreads mass ``1 / Lx`` from every source frame, while their target rows
    are zero.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, Eq. 10.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 5, 3)
    >>> G = torch.eye(5).expand(2, 5, 5)
    >>> loss = self_supervised_loss(None, x, [5, 4], x, [5, 4], G)
    >>> bool(loss > 0)
    True
    """
    if not isinstance(alignment_weight, numbers.Real) or alignment_weight < 0:
        raise ValueError(f"alignment_weight must be >= 0; got {alignment_weight!r}")
    x, lx, x_aug, la, G = _as_inputs(x, x_lengths, x_aug, aug_lengths, G)
    if transform is not None:
        x, x_aug = _embed(transform, x, lx), _embed(transform, x_aug, la)
    d_fwd, T_fwd = tap_paired(x, lx, x_aug, la, net, return_alignment=True)
    d_bwd, T_bwd = tap_paired(x_aug, la, x, lx, net, return_alignment=True)
    target_fwd, target_bwd = ground_truth_alignments(G.to(T_fwd.dtype), lx, la)
    tap = (d_fwd + d_bwd).mean()
    error = (
        _alignment_error(T_fwd, target_fwd, lx, la).mean()
        + _alignment_error(T_bwd, target_bwd, la, lx).mean()
    )
    loss = tap + alignment_weight * error
    return (loss, {"tap": tap, "alignment_error": error}) if return_parts else loss


class SelfSupervisedAlignmentLoss(nn.Module):
    """Module form of :func:`self_supervised_loss` (TAP paper, Eq. 10).

    The alignment network is an argument of ``forward``, not a submodule,
    so the loss holds no parameters of its own.

    Parameters
    ----------
    alignment_weight : float, default=1.0

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, Eq. 10.

    Examples
    --------
    >>> import torch
    >>> loss = SelfSupervisedAlignmentLoss()
    >>> x = torch.rand(1, 4, 2)
    >>> float(loss(None, x, [4], x[:, :2], [2], torch.eye(4)[None, :, :2])) > 0
    True
    """

    def __init__(self, alignment_weight=1.0):
        super().__init__()
        self.alignment_weight = alignment_weight

    def extra_repr(self) -> str:
        return f"alignment_weight={self.alignment_weight}"

    def forward(
        self,
        net,
        x,
        x_lengths,
        x_aug,
        aug_lengths,
        G,
        transform=None,
        return_parts=False,
    ):
        """:func:`self_supervised_loss` with this ``alignment_weight``."""
        return self_supervised_loss(
            net,
            x,
            x_lengths,
            x_aug,
            aug_lengths,
            G,
            transform=transform,
            alignment_weight=self.alignment_weight,
            return_parts=return_parts,
        )
