"""The episodic training step and validation of TAPFewShotClassifier."""

from __future__ import annotations

import numpy as np
import torch

from ._episodes import run_episodes
from ._sampler import EpisodeSampler
from ._scoring import tap_scorer

__all__ = ["make_episode_step", "make_validation"]


def make_episode_step(model, data, n_way):
    """``step(episode) -> (loss, logs)``: cross-entropy of Eqs. 8-9 on one episode.

    ``data`` (TensorSequences) holds the training sequences on the device.
    """

    def step(ep):
        x, lengths = data.batch(np.concatenate([ep.support_idx, ep.query_idx]))
        z, lengths = model.encode(x, lengths)  # support and query in one pass
        ns = len(ep.support_idx)
        scores = model.pair_scores(z[ns:], lengths[ns:], z[:ns], lengths[:ns])
        labels = torch.as_tensor(ep.support_labels, device=z.device)
        onehot = torch.nn.functional.one_hot(labels, n_way).to(scores.dtype)
        logits = scores @ onehot  # (n_q, n_way): Eq. 8 sums over the shots
        target = torch.as_tensor(ep.query_labels, device=z.device)
        loss = torch.nn.functional.cross_entropy(logits, target)
        # a tensor: the loop reads the logs once per round, not per episode
        accuracy = (logits.argmax(dim=1) == target).double().mean()
        return loss, {"episode_accuracy": accuracy.detach()}

    return step


def make_validation(encode, model, labels, shape, seed, n_episodes, device):
    """``validate() -> 1 - accuracy`` on the same held-out episodes every round."""

    def validate():
        sampler = EpisodeSampler(labels, *shape, random_state=seed)
        scorer = tap_scorer(model, encode(), device)
        accuracy, _ = run_episodes(scorer, sampler, n_episodes)
        return 1.0 - accuracy

    return validate
