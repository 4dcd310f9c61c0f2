"""Metric-learning losses on a batch's matrix of TAP distances.

Every loss takes ``dist`` of shape (B, B) with ``dist[i, j] = tap(x_i, x_j)``
(row i is anchor i as the source; the matrix need not be symmetric) and
``labels`` of shape (B,). The diagonal is never a pair. Each anchor ``i``
has positives ``P_i = {j != i : y_j = y_i}`` and negatives
``N_i = {j : y_j != y_i}``; an anchor lacking either contributes 0, and
the loss is the sum of the per-anchor terms divided by ``B``.

Hard mining (Eqs. 4 and 7) keeps, for anchor ``i`` and margin ``m``, the
positives with ``d_ip > min_{n in N_i} d_in - m`` and the negatives with
``d_in < max_{p in P_i} d_ip + m``. Either both kept sets are empty (the
anchor is already separated by the margin) or both contain an element.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BatchHardTripletLoss",
    "BinomialDevianceLoss",
    "LiftedStructureLoss",
    "batch_hard_triplet_loss",
    "binomial_deviance_loss",
    "get_metric_loss",
    "lifted_structure_loss",
]


def _check_positive(name: str, value, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a real number {bound}; got {value!r}")
    return float(value)


def _check_inputs(dist, labels):
    if not isinstance(dist, torch.Tensor):
        raise TypeError(f"dist must be a torch.Tensor; got {type(dist).__name__}")
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(
            f"dist must be a square (B, B) matrix; got shape {tuple(dist.shape)}"
        )
    labels = torch.as_tensor(labels, device=dist.device)
    if labels.shape != (dist.shape[0],):
        raise ValueError(
            f"labels must have shape ({dist.shape[0]},) to match dist; got "
            f"{tuple(labels.shape)}"
        )
    return labels


def _pair_masks(labels):
    """Boolean (B, B) masks of positive pairs (diagonal excluded) and negatives."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _hard_masks(dist, pos, neg, margin):
    # Mining is a discrete selection: no gradient flows through min / max.
    d = dist.detach()
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    min_neg = torch.where(neg, d, inf).amin(dim=1, keepdim=True)  # (B, 1)
    max_pos = torch.where(pos, d, -inf).amax(dim=1, keepdim=True)
    return pos & (d > min_neg - margin), neg & (d < max_pos + margin)


def _masked_mean(values, mask, dims):
    """Mean of ``values`` over ``mask`` along ``dims``; 0 where mask is empty."""
    total = torch.where(mask, values, torch.zeros_like(values)).sum(dims)
    return total / mask.sum(dims).clamp(min=1)


def _anchor_mean(per_anchor):
    return per_anchor.sum() / max(len(per_anchor), 1)


def _keep_non_finite(loss, dist):
    """``loss``, made NaN when an off-diagonal distance is NaN or infinite.

    Mining compares distances, and NaN compares False: without this, a
    batch whose distances are all NaN (a diverged network) would mine no
    pair and give a loss of exactly 0, and training would go on with broken
    weights. Adds 0 (and a zero gradient) otherwise; no host sync.
    """
    off = ~torch.eye(len(dist), dtype=torch.bool, device=dist.device)
    return loss + 0.0 * torch.where(off, dist, torch.zeros_like(dist)).sum()


def batch_hard_triplet_loss(dist, labels, *, margin=0.1):
    r"""Triplet loss over the hard positives and negatives of each anchor (Eq. 4).

    .. math::

        L = \frac{1}{B} \sum_i \frac{1}{|\hat P_i| |\hat N_i|}
            \sum_{p \in \hat P_i} \sum_{n \in \hat N_i}
            \max(0, m + d_{ip} - d_{in})

    with the hard sets ``\hat P_i``, ``\hat N_i`` of the module docstring
    (the term is 0 when they are empty).

    Parameters
    ----------
    dist : Tensor of shape (B, B)
        TAP distances, anchors as the source (rows).
    labels : Tensor or array-like of shape (B,)
        Class labels.
    margin : float, default=0.1
        The margin ``m``, used both for mining and in the hinge.

    Returns
    -------
    loss : Tensor of shape ()

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, section 3.2.

    Examples
    --------
    >>> import torch
    >>> dist = torch.tensor([[0.0, 0.3, 0.35], [0.3, 0.0, 0.9], [0.35, 0.9, 0.0]])
    >>> batch_hard_triplet_loss(dist, torch.tensor([0, 0, 1]))
    tensor(0.0167)
    """
    margin = _check_positive("margin", margin, allow_zero=True)
    labels = _check_inputs(dist, labels)
    hard_pos, hard_neg = _hard_masks(dist, *_pair_masks(labels), margin)
    hinge = torch.relu(margin + dist[:, :, None] - dist[:, None, :])  # (B, P, N)
    combos = hard_pos[:, :, None] & hard_neg[:, None, :]
    return _keep_non_finite(_anchor_mean(_masked_mean(hinge, combos, (1, 2))), dist)


def _log1p_sum_exp(z, mask):
    """``log(1 + sum_k exp(z_k))`` over masked entries of each row, overflow-free."""
    z = z.masked_fill(~mask, float("-inf"))
    return torch.logsumexp(torch.cat((z.new_zeros(len(z), 1), z), dim=1), dim=1)


def lifted_structure_loss(dist, labels, *, alpha=40.0, beta=2.0, threshold=1.0):
    r"""Lifted-structure loss with a distance threshold (Eq. 5).

    .. math::

        L_i = \frac{1}{\beta} \log\Big(1 + \sum_{p \in P_i}
              e^{\beta (d_{ip} - \lambda)}\Big)
            + \frac{1}{\alpha} \log\Big(1 + \sum_{n \in N_i}
              e^{-\alpha (d_{in} - \lambda)}\Big),
        \qquad L = \frac{1}{B} \sum_i L_i

    over all (not mined) positives and negatives: positives are pulled
    below the threshold ``lambda``, negatives pushed above it, with the
    soft maximum sharpened by ``beta`` and ``alpha``. Computed with
    ``logsumexp``, so large ``alpha * d`` cannot overflow.

    Parameters
    ----------
    dist : Tensor of shape (B, B)
        TAP distances, anchors as the source (rows).
    labels : Tensor or array-like of shape (B,)
        Class labels.
    alpha : float, default=40.0
        Sharpness of the negative term.
    beta : float, default=2.0
        Sharpness of the positive term.
    threshold : float, default=1.0
        The threshold ``lambda``; 1.0 is the Euclidean distance between unit
        vectors of cosine similarity 0.5 (frames are L2-normalised).

    Returns
    -------
    loss : Tensor of shape ()

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, section 3.2.

    Examples
    --------
    >>> import torch
    >>> dist = torch.tensor([[0.0, 0.5, 1.5], [0.5, 0.0, 1.5], [1.5, 1.5, 0.0]])
    >>> lifted_structure_loss(dist, torch.tensor([0, 0, 1]))
    tensor(0.1044)
    """
    alpha = _check_positive("alpha", alpha)
    beta = _check_positive("beta", beta)
    labels = _check_inputs(dist, labels)
    pos, neg = _pair_masks(labels)
    shifted = dist - threshold
    per_anchor = (
        _log1p_sum_exp(beta * shifted, pos) / beta
        + _log1p_sum_exp(-alpha * shifted, neg) / alpha
    )
    valid = pos.any(dim=1) & neg.any(dim=1)
    loss = _anchor_mean(torch.where(valid, per_anchor, torch.zeros_like(per_anchor)))
    return _keep_non_finite(loss, dist)


def binomial_deviance_loss(
    dist, labels, *, alpha=40.0, beta=2.0, threshold=1.0, margin=0.1
):
    r"""Binomial deviance loss over hard-mined pairs (Eqs. 6-7).

    .. math::

        L_i = \frac{1}{|\hat P_i|} \sum_{p \in \hat P_i}
              \frac{1}{\beta} \log\big(1 + e^{\beta (d_{ip} - \lambda)}\big)
            + \frac{1}{|\hat N_i|} \sum_{n \in \hat N_i}
              \frac{1}{\alpha} \log\big(1 + e^{-\alpha (d_{in} - \lambda)}\big),
        \qquad L = \frac{1}{B} \sum_i L_i

    with the hard sets ``\hat P_i``, ``\hat N_i`` of the module docstring
    (mining margin ``m``); an anchor whose hard sets are empty contributes 0.
    Each log term is a numerically stable softplus.

    Parameters
    ----------
    dist : Tensor of shape (B, B)
        TAP distances, anchors as the source (rows).
    labels : Tensor or array-like of shape (B,)
        Class labels.
    alpha : float, default=40.0
        Sharpness of the negative term.
    beta : float, default=2.0
        Sharpness of the positive term.
    threshold : float, default=1.0
        The threshold ``lambda`` (see :func:`lifted_structure_loss`).
    margin : float, default=0.1
        Mining margin ``m``.

    Returns
    -------
    loss : Tensor of shape ()

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, section 3.2.

    Examples
    --------
    >>> import torch
    >>> dist = torch.tensor([[0.0, 0.5, 1.5], [0.5, 0.0, 1.5], [1.5, 1.5, 0.0]])
    >>> binomial_deviance_loss(dist, torch.tensor([0, 0, 1]))
    tensor(0.0000)
    """
    alpha = _check_positive("alpha", alpha)
    beta = _check_positive("beta", beta)
    margin = _check_positive("margin", margin, allow_zero=True)
    labels = _check_inputs(dist, labels)
    hard_pos, hard_neg = _hard_masks(dist, *_pair_masks(labels), margin)
    pos_term = F.softplus(dist - threshold, beta=beta)  # log(1 + e^{b x}) / b
    neg_term = F.softplus(threshold - dist, beta=alpha)
    per_anchor = _masked_mean(pos_term, hard_pos, 1) + _masked_mean(
        neg_term, hard_neg, 1
    )
    return _keep_non_finite(_anchor_mean(per_anchor), dist)


class _MetricLoss(nn.Module):
    """Module form of a loss function: its hyper-parameters checked and stored.

    A subclass names the function (``_loss``) and passes its
    hyper-parameters, by keyword, to ``__init__``; ``forward(dist, labels)``
    calls the function with them.
    """

    def __init__(self, **params):
        super().__init__()
        checked = {}
        for name, value in params.items():
            if name == "threshold":
                value = float(value)
            else:  # alpha, beta > 0; a margin may be 0
                value = _check_positive(name, value, allow_zero=name == "margin")
            checked[name] = value
        self._params = checked
        self.__dict__.update(checked)  # readable as attributes, as documented

    def __setattr__(self, name, value):
        if name in self.__dict__.get("_params", ()):
            raise AttributeError(
                f"{type(self).__name__}.{name} is fixed at construction; build a "
                f"new loss with {name}={value!r}"
            )
        super().__setattr__(name, value)

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self._params.items())

    def forward(self, dist, labels):
        return type(self)._loss(dist, labels, **self._params)


class BatchHardTripletLoss(_MetricLoss):
    """Module form of :func:`batch_hard_triplet_loss` (TAP paper, Eq. 4).

    Parameters
    ----------
    margin : float, default=0.1

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, section 3.2.

    Examples
    --------
    >>> import torch
    >>> loss = BatchHardTripletLoss(margin=0.1)
    >>> loss(torch.zeros(4, 4, requires_grad=True), torch.tensor([0, 0, 1, 1]))
    tensor(0.1000, grad_fn=...)
    """

    _loss = staticmethod(batch_hard_triplet_loss)

    def __init__(self, margin=0.1):
        super().__init__(margin=margin)


class LiftedStructureLoss(_MetricLoss):
    """Module form of :func:`lifted_structure_loss` (TAP paper, Eq. 5).

    Parameters
    ----------
    alpha : float, default=40.0
    beta : float, default=2.0
    threshold : float, default=1.0

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, section 3.2.

    Examples
    --------
    >>> import torch
    >>> LiftedStructureLoss()(torch.ones(2, 2), torch.tensor([0, 0]))
    tensor(0.)
    """

    _loss = staticmethod(lifted_structure_loss)

    def __init__(self, alpha=40.0, beta=2.0, threshold=1.0):
        super().__init__(alpha=alpha, beta=beta, threshold=threshold)


class BinomialDevianceLoss(_MetricLoss):
    """Module form of :func:`binomial_deviance_loss` (TAP paper, Eqs. 6-7).

    Parameters
    ----------
    alpha : float, default=40.0
    beta : float, default=2.0
    threshold : float, default=1.0
    margin : float, default=0.1

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, section 3.2.

    Examples
    --------
    >>> import torch
    >>> BinomialDevianceLoss(margin=0.2)
    BinomialDevianceLoss(alpha=40.0, beta=2.0, threshold=1.0, margin=0.2)
    """

    _loss = staticmethod(binomial_deviance_loss)

    def __init__(self, alpha=40.0, beta=2.0, threshold=1.0, margin=0.1):
        super().__init__(alpha=alpha, beta=beta, threshold=threshold, margin=margin)


_LOSSES = {
    "triplet": BatchHardTripletLoss,
    "lifted": LiftedStructureLoss,
    "binomial": BinomialDevianceLoss,
}


def get_metric_loss(name, **kwargs):
    """Build a metric loss module by name.

    Parameters
    ----------
    name : {"triplet", "lifted", "binomial"}
        :class:`BatchHardTripletLoss`, :class:`LiftedStructureLoss` or
        :class:`BinomialDevianceLoss`.
    **kwargs
        Hyper-parameters passed to the class.

    Returns
    -------
    loss : torch.nn.Module
        Called as ``loss(dist, labels)``.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, section 3.2.

    Examples
    --------
    >>> get_metric_loss("triplet", margin=0.2)
    BatchHardTripletLoss(margin=0.2)
    """
    if not isinstance(name, str) or name not in _LOSSES:
        raise ValueError(
            f"unknown metric loss {name!r}; valid names are "
            f"{', '.join(repr(n) for n in _LOSSES)}"
        )
    return _LOSSES[name](**kwargs)
