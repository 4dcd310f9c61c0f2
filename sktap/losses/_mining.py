"""Mine-then-recompute: differentiate a mined metric loss through its pairs only.

The hard-mined losses of :mod:`._metric` (batch-hard triplet, binomial
deviance) read the distance matrix only at the hard pairs of each anchor,
so only those ``d_ij`` receive a gradient. A training step can therefore
compute all ``B x B`` distances without autograd, mine the pairs with
:func:`mined_pairs`, recompute just those with autograd (e.g. with
:func:`sktap.core._bucketed.tap_pairs`) and evaluate the loss with
:func:`loss_from_pairs`: same value, same gradients, a fraction of the
backward work.

What is mined. For anchor ``i`` with positives ``P_i`` and negatives
``N_i`` and margin ``m`` (module docstring of :mod:`._metric`), the pairs
are the hard positives ``d_ip > min_{n in N_i} d_in - m`` and the hard
negatives ``d_in < max_{p in P_i} d_ip + m``, computed by the very function
the losses use. Not only the hardest positive and negative: every pair
within the margin. Both losses read their distance only there:

- triplet: every hard positive is in an active hinge with the hardest
  negative (``m + d_ip - min_n d_in > 0`` by definition) and every hard
  negative with the hardest positive, so each mined pair has a nonzero
  gradient (up to a hinge that rounds to exactly 0, which only makes the
  set a superset);
- binomial: every hard pair enters a softplus, whose slope is positive.

Ties: the inequalities are strict, so a pair exactly at the mining
boundary is neither mined nor read by the loss, and tied pairs are mined
or dropped together. With ``dist=`` the loss mines on the very same numbers
as :func:`mined_pairs` (see :func:`loss_from_pairs`), so ties cannot resolve
differently.
"""

from __future__ import annotations

import torch

from ._metric import (
    BatchHardTripletLoss,
    BinomialDevianceLoss,
    LiftedStructureLoss,
    _check_inputs,
    _hard_masks,
    _pair_masks,
    get_metric_loss,
)

__all__ = ["loss_from_pairs", "mined_pairs", "mining_fraction"]

_MINED = (BatchHardTripletLoss, BinomialDevianceLoss)


def _resolve(loss, loss_params):
    """The loss module of a name (with its parameters) or a module itself."""
    if isinstance(loss, str):
        loss = get_metric_loss(loss, **loss_params)
    elif loss_params:
        raise TypeError("loss parameters go with a loss name, not a loss module")
    if isinstance(loss, LiftedStructureLoss):
        raise ValueError(
            "the lifted structure loss needs all pairs: every positive and "
            "negative enters its log-sum-exp, so no pair can be left out"
        )
    if not isinstance(loss, _MINED):
        raise TypeError(
            "loss must be 'triplet', 'binomial' or their module; got "
            f"{type(loss).__name__}"
        )
    return loss


def mined_pairs(dist, labels, loss, **loss_params):
    """Pairs ``(i, j)`` whose distance gets a gradient from a hard-mined loss.

    Parameters
    ----------
    dist : Tensor of shape (B, B)
        All TAP distances, anchors as rows; detached (autograd is ignored).
    labels : Tensor or array-like of shape (B,)
    loss : {"triplet", "binomial"} or the loss module
        A name as for :func:`~sktap.losses.get_metric_loss`, or a
        :class:`~sktap.losses.BatchHardTripletLoss` /
        :class:`~sktap.losses.BinomialDevianceLoss`.
    **loss_params
        The loss's hyper-parameters (with a name); only ``margin`` matters.

    Returns
    -------
    rows : LongTensor of shape (n_pairs,)
    cols : LongTensor of shape (n_pairs,)
        Anchor (source) and partner (target) of each pair, row-major.

    Raises
    ------
    ValueError
        For ``"lifted"``, which reads every pair.

    Examples
    --------
    >>> import torch
    >>> dist = torch.tensor([[0.0, 0.3, 0.35], [0.3, 0.0, 0.9], [0.35, 0.9, 0.0]])
    >>> mined_pairs(dist, torch.tensor([0, 0, 1]), "triplet", margin=0.1)
    (tensor([0, 0]), tensor([1, 2]))
    """
    module = _resolve(loss, loss_params)
    dist = dist.detach()
    labels = _check_inputs(dist, labels)
    hard_pos, hard_neg = _hard_masks(dist, *_pair_masks(labels), module.margin)
    return torch.nonzero(hard_pos | hard_neg, as_tuple=True)


def mining_fraction(rows, B):
    """Fraction ``n_pairs / B**2`` of the batch's pairs that were mined.

    Parameters
    ----------
    rows : Tensor of shape (n_pairs,)
    B : int
        Batch size.

    Returns
    -------
    fraction : float

    Examples
    --------
    >>> import torch
    >>> mining_fraction(torch.tensor([0, 0]), 3)
    0.2222...
    """
    return len(rows) / B**2 if B else 0.0


def _sentinel_matrix(values, rows, cols, labels, B, margin):
    """A (B, B) matrix of ``values`` at the mined pairs, unminable elsewhere.

    Non-mined positives of row ``i`` sit ``margin + 1`` below the row's
    smallest mined value and non-mined negatives ``margin + 1`` above its
    largest, so the row's hardest positive and negative (always mined when
    anything is) and hence its hard sets come from the mined values alone.
    """
    pos, neg = _pair_masks(labels)
    kw = {"dtype": values.dtype, "device": values.device}
    v = values.detach()
    lo = torch.full((B,), float("inf"), **kw).scatter_reduce(0, rows, v, "amin")
    hi = torch.full((B,), -float("inf"), **kw).scatter_reduce(0, rows, v, "amax")
    # rows without mined pairs: any finite value keeps them unmined
    lo, hi = lo.nan_to_num(0.0, 0.0, 0.0), hi.nan_to_num(0.0, 0.0, 0.0)
    full = torch.zeros(B, B, **kw)
    full = torch.where(pos, (lo - margin - 1)[:, None], full)
    full = torch.where(neg, (hi + margin + 1)[:, None], full)
    return full.index_put((rows, cols), values)


def loss_from_pairs(
    pair_dist, rows, cols, labels, B, loss, *, dist=None, **loss_params
):
    """A hard-mined loss from the recomputed distances of its mined pairs.

    Equals ``get_metric_loss(loss, **loss_params)(full_dist, labels)`` in
    value and in its gradients, when ``pair_dist`` are the mined entries
    ``full_dist[rows, cols]`` recomputed with autograd and ``rows, cols``
    come from :func:`mined_pairs`: the loss reads no other entry.

    Parameters
    ----------
    pair_dist : Tensor of shape (n_pairs,)
        Recomputed distances of the mined pairs, with autograd.
    rows, cols : LongTensor of shape (n_pairs,)
        The pairs, from :func:`mined_pairs`.
    labels : Tensor or array-like of shape (B,)
    B : int
        Batch size.
    loss : {"triplet", "binomial"} or the loss module
    dist : Tensor of shape (B, B), default=None
        The detached matrix the pairs were mined from (recommended). The
        loss then runs on exactly these numbers, with ``pair_dist`` attached
        to the mined entries by a straight-through sum
        ``dist[rows, cols] + (pair_dist - pair_dist.detach())``, so its
        internal mining is bit-for-bit the one of :func:`mined_pairs` even
        when the recomputation rounds differently. Without it, the other
        entries are filled with values that cannot be mined and the loss
        mines on ``pair_dist``, which can only drop (never add) pairs that
        sit within rounding of the margin.
    **loss_params
        The loss's hyper-parameters (with a name).

    Returns
    -------
    loss : Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> dist = torch.tensor([[0.0, 0.3, 0.35], [0.3, 0.0, 0.9], [0.35, 0.9, 0.0]])
    >>> labels = torch.tensor([0, 0, 1])
    >>> rows, cols = mined_pairs(dist, labels, "triplet")
    >>> loss_from_pairs(dist[rows, cols], rows, cols, labels, 3, "triplet")
    tensor(0.0167)
    """
    module = _resolve(loss, loss_params)
    rows = torch.as_tensor(rows, device=pair_dist.device).long()
    cols = torch.as_tensor(cols, device=pair_dist.device).long()
    if pair_dist.shape != rows.shape or rows.shape != cols.shape:
        raise ValueError(
            "pair_dist, rows and cols must have the same shape (n_pairs,); got "
            f"{tuple(pair_dist.shape)}, {tuple(rows.shape)}, {tuple(cols.shape)}"
        )
    if dist is None:
        shape_only = pair_dist.new_empty(B, B)
        labels = _check_inputs(shape_only, labels)
        full = _sentinel_matrix(pair_dist, rows, cols, labels, B, module.margin)
    else:
        if dist.shape != (B, B):
            raise ValueError(f"dist must have shape ({B}, {B}); got {dist.shape}")
        base = dist.detach()
        # exactly base[rows, cols] in value (x - x == 0), identity in gradient
        attached = base[rows, cols] + (pair_dist - pair_dist.detach())
        full = base.index_put((rows, cols), attached)
    return module(full, labels)
