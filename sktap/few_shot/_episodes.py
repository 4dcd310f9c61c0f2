"""Class scores of queries against a support set, and the episodic test protocol.

Every few-shot classifier scores queries the same way: a *scorer* built over
one set of embedded sequences returns class scores (higher is closer) for
query and support indices into that set. Pairwise methods (TAP, DTW) wrap a
provider of pairwise scores in :class:`PairwiseScorer`; the prototype
baseline has its own. :func:`run_episodes` is the one implementation of the
evaluation protocol, and ``predict`` goes through the same scorers.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn import get_config

__all__ = ["PairwiseScorer", "PrototypeScorer", "class_scores", "run_episodes"]


def _one_hot(labels, n_classes):
    return (labels[:, None] == np.arange(n_classes)[None, :]).astype(np.float64)


def class_scores(pair_scores, support_labels, n_classes, rule):
    """Pool pair scores (n_q, n_s) into class scores (n_q, n_classes).

    ``rule="mean"`` averages over each class's support examples (robust to
    unequal counts); ``rule="max"`` keeps the closest one (1-NN).
    """
    onehot = _one_hot(support_labels, n_classes)  # (n_s, n_classes)
    if rule == "mean":
        return pair_scores @ onehot / onehot.sum(axis=0)
    out = np.empty((pair_scores.shape[0], n_classes))
    for c in range(n_classes):  # a few classes, never a loop over pairs
        out[:, c] = pair_scores[:, onehot[:, c] > 0].max(axis=1)
    return out


class PairwiseScorer:
    """Class scores from pairwise scores over one set of ``n`` sequences.

    Parameters
    ----------
    pair_scores : callable
        ``pair_scores(a, b) -> ndarray (len(a), len(b))``, higher is closer,
        for index arrays ``a`` and ``b`` into the set.
    n : int
        Size of the set.
    rule : {"mean", "max"}
        How pair scores become class scores (see :func:`class_scores`).
    all_scores : callable, optional
        ``all_scores() -> ndarray (n, n)``, a cheaper way to get every pair
        (for example half the work of a symmetric score).
    """

    def __init__(self, pair_scores, n, rule, all_scores=None):
        self.pair_scores = pair_scores
        self.n = n
        self.rule = rule
        self.all_scores = all_scores
        self._matrix = None

    def prepare(self, n_pairs):
        """Precompute the full matrix if that is cheaper than ``n_pairs`` pairs.

        The score of a pair does not depend on the episode it appears in, so
        when the episodes ask for more pairs than the set holds, computing
        every pair once is both exact and cheaper (if the matrix fits
        scikit-learn's ``working_memory``). The full matrix costs about half
        its cells in symmetric pair scores (one direction of each ordered
        pair for TAP, one triangle for DTW).
        """
        cells = self.n * self.n
        budget = get_config()["working_memory"] * 2**20 / 8
        if cells <= 2 * n_pairs and cells <= budget:
            full = self.all_scores or (
                lambda: self.pair_scores(np.arange(self.n), np.arange(self.n))
            )
            self._matrix = full()

    def class_scores(self, query, support, support_labels, n_classes):
        if self._matrix is not None:
            scores = self._matrix[np.ix_(query, support)]
        else:
            scores = self.pair_scores(query, support)
        return class_scores(scores, support_labels, n_classes, self.rule)


class PrototypeScorer:
    """Negative Euclidean distance to class prototypes (mean support vectors).

    Parameters
    ----------
    vectors : ndarray of shape (n, d)
        One vector per sequence of the set.
    """

    def __init__(self, vectors):
        self.vectors = vectors

    def prepare(self, n_pairs):
        pass  # prototypes depend on the episode's support: nothing to cache

    def class_scores(self, query, support, support_labels, n_classes):
        onehot = _one_hot(support_labels, n_classes)  # (n_s, n_classes)
        prototypes = onehot.T @ self.vectors[support] / onehot.sum(axis=0)[:, None]
        diff = self.vectors[query][:, None, :] - prototypes[None]  # (n_q, C, d)
        return -np.sqrt((diff**2).sum(axis=-1))


def run_episodes(scorer, sampler, n_episodes):
    """Mean episode accuracy and its 95% interval half-width.

    Parameters
    ----------
    scorer : PairwiseScorer or PrototypeScorer
        Built over the sequences the sampler's indices refer to.
    sampler : EpisodeSampler
    n_episodes : int

    Returns
    -------
    mean : float
    half_width : float
        ``1.96 * std / sqrt(n_episodes)`` (population std of the episode
        accuracies), the interval reported in the few-shot literature.
    """
    n, k, q = sampler.n_way, sampler.k_shot, sampler.n_query
    scorer.prepare(n_episodes * (n * q) * (n * k))
    accuracies = np.empty(n_episodes)
    for i in range(n_episodes):
        ep = sampler.sample()
        scores = scorer.class_scores(ep.query_idx, ep.support_idx, ep.support_labels, n)
        accuracies[i] = np.mean(scores.argmax(axis=1) == ep.query_labels)
    half_width = 1.96 * accuracies.std() / math.sqrt(n_episodes)
    return float(accuracies.mean()), float(half_width)
