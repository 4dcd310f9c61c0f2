"""The training step of the TAP metric learner: one minibatch -> (loss, logs)."""

from __future__ import annotations

import numpy as np
import torch

from ..augment import augment_batch
from ..losses import self_supervised_loss

__all__ = ["make_train_step", "make_validation"]


def make_train_step(
    model, data, seqs, y_t, rng, *, metric, augment, self_supervised_weight
):
    """``step(indices) -> (loss, logs)`` for the loop.

    Parameters
    ----------
    model : LearnedTAP
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
    """
    use_ssl = augment and (self_supervised_weight > 0 or y_t is None)
    ssw = self_supervised_weight if y_t is not None else 1.0

    def step(idx, aug_rng=None):
        x, lx = data.batch(idx)
        logs, total = {}, 0.0
        if metric is not None:
            dist = model(x, lx)  # (B, B), all pairs in one batched call
            m = metric(dist, y_t[torch.as_tensor(idx, device=x.device)])
            logs["metric_loss"] = float(m.detach())
            total = total + m
        if use_ssl:
            raw = seqs.data[idx, : x.shape[1]]
            aug, la, G = augment_batch(raw, seqs.lengths[idx], aug_rng or rng)
            s = self_supervised_loss(
                model.align, x, lx, aug, la, G, transform=model.frame
            )
            logs["self_supervised_loss"] = float(s.detach())
            total = total + ssw * s
        return total, logs

    return step


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
