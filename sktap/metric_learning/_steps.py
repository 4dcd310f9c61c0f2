"""The training step of the TAP metric learner: one minibatch -> (loss, logs)."""

from __future__ import annotations

import numpy as np
import torch

from .. import _thresholds
from ..augment import augment_batch
from ..core import tap_pairs, tap_pairwise, tap_pairwise_bucketed
from ..core._bucketed import padded_length
from ..core._packed import (
    packing_pays,
    pairs_packing_pays,
    tap_pairs_packed,
    tap_pairwise_packed,
)
from ..losses import (
    LiftedStructureLoss,
    loss_from_pairs,
    mined_pairs,
    mining_fraction,
    self_supervised_loss,
)

# When mining pays (MINING_PAYS_BELOW, MINED_MIN_MACS): sktap/_thresholds.py

__all__ = ["make_train_step", "make_validation"]


class _Encoder:
    """``model.encode`` as the self-supervised loss's ``transform``."""

    returns_lengths = True

    def __init__(self, model):
        self.model = model

    def __call__(self, x, lengths):
        return self.model.encode(x, lengths)


def training_path(path, device):
    """The metric term's path for ``device``: ``"auto"`` is ``"mined"`` on
    the CPU and ``"all_pairs"`` elsewhere.

    On a GPU the one padded batch of all pairs is a few large launches with
    no host synchronisation, where the mined path's length buckets, mining
    and recomputed pairs are many small ones: on an H100 a default
    JapaneseVowels epoch took 0.16 s all-pairs against 2.6 s mined (see
    docs/benchmarks.md). Both compute the same loss and gradients.
    """
    if path == "auto":
        return "mined" if torch.device(device).type == "cpu" else "all_pairs"
    return path


def _padded_macs(align, lengths):
    """Multiply-adds of ``align`` over all pairs of a batch padded to its
    longest sequence; None for networks that do not say their cost per cell
    (``macs_per_cell``, e.g. :class:`~sktap.TAPNet`)."""
    per_cell = getattr(align, "macs_per_cell", None)
    if per_cell is None or not len(lengths):
        return None
    return len(lengths) ** 2 * int(lengths.max()) ** 2 * per_cell


def _all_pairs(z, lz, align):
    """All B x B distances of a batch's frames, packed or bucketed,
    whichever :func:`~sktap.core._packed.packing_pays` says is cheaper."""
    if packing_pays(lz, lz, align):
        return tap_pairwise_packed(z, lz, z, lz, align)
    return tap_pairwise_bucketed(z, lz, z, lz, align)


class _MiningForecast:
    """Whether a training batch will mine more than
    :data:`sktap._thresholds.MINING_PAYS_BELOW` of its pairs, told by the
    batch before it.

    Where it will, :func:`metric_term` computes all pairs with autograd at
    once and skips the no-grad pass that would only have sent it there. A
    wrong forecast costs time, never a different loss. The training loop
    calls :meth:`start_epoch` with the history before each epoch: the first
    batch of an epoch goes by the previous epoch's mean mined fraction, and
    that of a fit with no history by "most pairs" (a fresh network barely
    separates classes; on ``bench_fit_time.py``'s set the first five
    batches mined 63-93% of their pairs, later epochs 0.3-6%). The state is
    rebuilt from the history, which checkpoints keep, so a resumed fit
    takes the same paths as the uninterrupted one.
    """

    def __init__(self):
        self.previous = None  # the last training batch's mined fraction

    def start_epoch(self, history):
        self.previous = history[-1].get("mined_fraction") if history else 1.0

    def expects_most(self):
        return self.previous is not None and self.previous > (
            _thresholds.MINING_PAYS_BELOW
        )

    def update(self, fraction):
        self.previous = fraction


def metric_term(model, x, lx, labels, metric, path, forecast=None):
    """The metric loss of one batch and the fraction of pairs it mines.

    ``path="mined"`` (the estimators' choice on the CPU) computes exactly the
    all-pairs loss and gradients, faster: the frames are encoded once and
    the B x B distances are computed in length buckets (each block padded
    to its own longest sequences). For the hard-mined losses (triplet,
    binomial) the distances are first computed without autograd and the
    pairs that carry gradient are found; when they are few (as soon as
    classes separate) only those are recomputed with autograd (on the CPU
    packed into one image where
    :func:`~sktap.core._packed.pairs_packing_pays` says so), otherwise
    all pairs are. The choice depends on the batch alone, so a resumed fit
    repeats the uninterrupted one exactly. A batch with too little work for
    that to pay (``MINED_MIN_MACS`` in ``sktap/_thresholds.py``) takes the
    all-pairs computation on the encoded frames. ``path="all_pairs"`` is the plain
    computation (every pair padded to the batch's longest sequence, all
    with autograd): the estimators' choice on a GPU (:func:`training_path`).

    ``forecast`` (a :class:`_MiningForecast`, training only: it is neither
    read nor updated without autograd) lets a batch expected to mine most
    of its pairs go straight to all pairs with autograd; the mined fraction
    is then read from those distances.
    """
    if path == "all_pairs":
        dist = model(x, lx)  # (B, B), all pairs in one batched call
        return metric(dist, labels), None
    z, lz = model.encode(x, lx)
    macs = _padded_macs(model.align, lz)
    if macs is not None and macs < _thresholds.MINED_MIN_MACS:
        return metric(tap_pairwise(z, lz, z, lz, model.align), labels), None
    if isinstance(metric, LiftedStructureLoss):  # it reads every pair
        return metric(_all_pairs(z, lz, model.align), labels), None
    if not torch.is_grad_enabled():
        forecast = None
    if forecast is not None and forecast.expects_most():
        dist = _all_pairs(z, lz, model.align)
        rows, _ = mined_pairs(dist.detach(), labels, metric)
        fraction = mining_fraction(rows, len(labels))
        forecast.update(fraction)
        return metric(dist, labels), fraction
    with torch.no_grad():
        dist = _all_pairs(z, lz, model.align)
    rows, cols = mined_pairs(dist, labels, metric)
    fraction = mining_fraction(rows, len(labels))
    if forecast is not None:
        forecast.update(fraction)
    if fraction > _thresholds.MINING_PAYS_BELOW:
        loss = metric(_all_pairs(z, lz, model.align), labels)
        return loss, fraction
    if z.device.type == "cpu" and pairs_packing_pays(lz, rows, cols, model.align):
        pair_dist = tap_pairs_packed(z, lz, rows, cols, model.align)
    else:
        pair_dist = tap_pairs(z, lz, rows, cols, model.align)
    loss = loss_from_pairs(
        pair_dist, rows, cols, labels, len(labels), metric, dist=dist
    )
    # a non-finite distance mines nothing, yet must still stop training
    return loss + 0.0 * dist.sum(), fraction


def make_train_step(
    model,
    data,
    seqs,
    y_t,
    rng,
    *,
    metric,
    augment,
    self_supervised_weight,
    alignment_weight=1.0,
    path="mined",
    precision="float32",
):
    """``step(indices) -> (loss, logs)`` for the loop, with
    ``step.start_epoch(history)`` (:class:`_MiningForecast`) for it to call
    before each epoch.

    Parameters
    ----------
    model : TAPModel
    data : TensorSequences
        The training sequences on the training device.
    seqs : Sequences
        The same on the CPU (the augmentations are drawn from them).
    y_t : Tensor of shape (n_ts,) or None
        Encoded labels; None for the self-supervised fit.
    rng : numpy.random.RandomState
        Draws the augmentations.
    metric : callable or None
        ``metric(dist (B, B), labels (B,)) -> loss``.
    augment : bool
    self_supervised_weight : float
    alignment_weight : float, default=1.0
        Weight of the alignment error within the self-supervised term.
    path : {"mined", "all_pairs"}, default="mined"
        How the metric term is computed (see :func:`metric_term`).
    precision : {"float32", "bfloat16"}, default="float32"
        "bfloat16": the encoder's and the alignment network's layers run
        under autocast in bfloat16; frame distances, softmax and losses
        stay in float32.
    """
    # fit(X) without labels learns from the self-supervised term alone
    use_ssl = y_t is None or (augment and self_supervised_weight > 0)
    ssw = self_supervised_weight if y_t is not None else 1.0

    encoder = _Encoder(model)
    forecast = _MiningForecast()

    def step(idx, aug_rng=None):
        x, lx = data.batch(idx)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=low):
            return _terms(idx, x, lx, aug_rng)

    low = precision == "bfloat16"

    def _terms(idx, x, lx, aug_rng):
        logs, total = {}, 0.0
        if metric is not None:
            labels = y_t[torch.as_tensor(idx, device=x.device)]
            m, fraction = metric_term(model, x, lx, labels, metric, path, forecast)
            logs["metric_loss"] = m.detach()
            if fraction is not None:
                logs["mined_fraction"] = fraction
            total = total + m
        if use_ssl:
            raw = seqs.data[idx, : x.shape[1]]
            aug, la, G = _padded(*augment_batch(raw, seqs.lengths[idx], aug_rng or rng))
            s = self_supervised_loss(
                model.align,
                x,
                lx,
                aug,
                la,
                G,
                transform=encoder,
                alignment_weight=alignment_weight,
            )
            logs["self_supervised_loss"] = s.detach()
            total = total + ssw * s
        return total, logs

    step.start_epoch = forecast.start_epoch
    return step


def _padded(aug, aug_lengths, G):
    """Augmentations (B, L_aug, d) and their alignments G (B, Lx, L_aug)
    zero-padded to :func:`~sktap.core._bucketed.padded_length` frames, so
    that their shapes repeat as the batches' do (padding is exact)."""
    extra = padded_length(aug.shape[1]) - aug.shape[1]
    if extra <= 0:
        return aug, aug_lengths, G
    aug = np.pad(aug, ((0, 0), (0, extra), (0, 0)))
    return aug, aug_lengths, np.pad(G, ((0, 0), (0, 0), (0, extra)))


def make_validation(step, val_idx, batch_size, val_rng):
    """``validate() -> float``: the mean loss of the held-out sequences.

    The augmentations come from ``val_rng``, reset after each call, so every
    epoch sees the same ones (epochs compare fairly) and validation draws
    nothing from the training stream.
    """
    batch = max(2, min(batch_size, len(val_idx)))

    def validate():
        state = val_rng.get_state()
        losses = [
            float(step(val_idx[i : i + batch], val_rng)[0])
            for i in range(0, len(val_idx), batch)
        ]
        val_rng.set_state(state)
        return float(np.mean(losses))

    return validate
