"""The episodic training step and validation of the trained few-shot classifiers."""

from __future__ import annotations

import numpy as np
import torch

from ._episodes import run_episodes
from ._sampler import EpisodeSampler

__all__ = ["make_episode_step", "make_validation"]


def make_episode_step(model, data, n_way, precision="float32"):
    """``step(episode) -> (loss, logs)``: cross-entropy of Eqs. 8-9 on one episode.

    ``data`` (TensorSequences) holds the training sequences on the device;
    ``model`` is a :class:`~sktap.few_shot._model.FewShotModel`.
    ``precision="bfloat16"`` runs the step under bfloat16 autocast (the
    distances themselves are computed in float32).
    """
    low = precision == "bfloat16"

    def step(ep):
        x, lengths = data.batch(np.concatenate([ep.support_idx, ep.query_idx]))
        with torch.autocast(x.device.type, torch.bfloat16, enabled=low):
            z, lengths = model.encode(x, lengths)  # support and query in one pass
            ns = len(ep.support_idx)
            scores = model.pair_scores(z[ns:], lengths[ns:], z[:ns], lengths[:ns])
        scores = scores.float()
        labels = torch.as_tensor(ep.support_labels, device=z.device)
        onehot = torch.nn.functional.one_hot(labels, n_way).to(scores.dtype)
        logits = scores @ onehot  # (n_q, n_way): Eq. 8 sums over the shots
        target = torch.as_tensor(ep.query_labels, device=z.device)
        loss = torch.nn.functional.cross_entropy(logits, target)
        # a tensor: the loop reads the logs once per round, not per episode
        accuracy = (logits.argmax(dim=1) == target).double().mean()
        return loss, {"episode_accuracy": accuracy.detach()}

    return step


def make_validation(encode, scorer, labels, shape, seed, n_episodes):
    """``validate() -> {"val_accuracy": a}`` on the same held-out episodes
    every round.

    ``encode()`` gives the held-out sequences encoded by the current model,
    ``scorer(Z)`` a scorer over them (see :mod:`sktap.few_shot._episodes`).
    The training loop keeps the most accurate round.
    """

    def validate():
        sampler = EpisodeSampler(labels, *shape, random_state=seed)
        accuracy, _ = run_episodes(scorer(encode()), sampler, n_episodes)
        return {"val_accuracy": accuracy}

    return validate
