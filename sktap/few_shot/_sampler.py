"""Episodes of N-way K-shot classification drawn from a labelled set."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from sklearn.utils import check_random_state

from .._engine import check_labels

__all__ = ["Episode", "EpisodeSampler", "label_repr"]


def label_repr(label) -> str:
    """``repr`` of a label as the user wrote it: ``'a'``, not ``np.str_('a')``."""
    return repr(label.item() if isinstance(label, np.generic) else label)


class Episode(NamedTuple):
    """One N-way K-shot episode; indices refer to the sampler's ``y``.

    Attributes
    ----------
    support_idx : ndarray of shape (N * K,)
        Class by class: the K support sequences of class 0, then of class 1...
    support_labels : ndarray of shape (N * K,)
        Episode-local labels ``0 .. N - 1``.
    query_idx : ndarray of shape (N * Q,)
        Class by class, as ``support_idx``; never overlaps it.
    query_labels : ndarray of shape (N * Q,)
    classes : ndarray of shape (N,)
        The original label of each episode-local class.
    """

    support_idx: np.ndarray
    support_labels: np.ndarray
    query_idx: np.ndarray
    query_labels: np.ndarray
    classes: np.ndarray


def _check_count(value, name, low):
    if (
        not isinstance(value, numbers.Integral)
        or isinstance(value, bool)
        or value < low
    ):
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


class EpisodeSampler:
    """Draw N-way K-shot episodes: N classes, then K + Q sequences of each.

    Parameters
    ----------
    y : array-like of shape (n_ts,)
        Class labels of the sequences to draw from.
    n_way : int
        Classes per episode (N >= 2).
    k_shot : int
        Support sequences per class (K >= 1).
    n_query : int
        Query sequences per class (Q >= 1), disjoint from the support.
    random_state : int, RandomState instance or None, default=None
        Source of all draws; a RandomState is used (and advanced) as is.
    n_episodes : int or None, default=None
        Length of the iteration; None iterates forever (use ``sample()`` or
        :func:`itertools.islice`).

    Raises
    ------
    ValueError
        If ``y`` has fewer than ``n_way`` classes, or a class has fewer than
        ``k_shot + n_query`` sequences (the message names the class).

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, section 3.3.

    Examples
    --------
    >>> from sktap.few_shot import EpisodeSampler
    >>> y = ["a", "a", "b", "b", "c", "c"]
    >>> sampler = EpisodeSampler(y, n_way=2, k_shot=1, n_query=1, random_state=0)
    >>> episode = sampler.sample()
    >>> episode.support_labels.tolist(), episode.query_labels.tolist()
    ([0, 1], [0, 1])
    >>> set(episode.support_idx) & set(episode.query_idx)
    set()
    """

    def __init__(
        self, y, n_way, k_shot, n_query, random_state=None, *, n_episodes=None
    ):
        y_arr = np.asarray(y)
        self.n_way = _check_count(n_way, "n_way", 2)
        self.k_shot = _check_count(k_shot, "k_shot", 1)
        self.n_query = _check_count(n_query, "n_query", 1)
        if n_episodes is not None:
            n_episodes = _check_count(n_episodes, "n_episodes", 1)
        self.n_episodes = n_episodes
        self.classes_, codes = check_labels(y_arr, len(y_arr), min_classes=1)
        self._members = [np.flatnonzero(codes == c) for c in range(len(self.classes_))]
        self._check_feasible()
        self._rng = check_random_state(random_state)

    def _check_feasible(self):
        n_classes = len(self.classes_)
        if n_classes < self.n_way:
            raise ValueError(
                f"n_way={self.n_way} classes per episode, but y has only "
                f"{n_classes} class{'es' if n_classes != 1 else ''}"
            )
        need = self.k_shot + self.n_query
        short = [
            (c, len(m)) for c, m in zip(self.classes_, self._members) if len(m) < need
        ]
        if short:
            listed = ", ".join(f"class {label_repr(c)} has {n}" for c, n in short[:5])
            more = f" (and {len(short) - 5} more)" if len(short) > 5 else ""
            raise ValueError(
                f"every class needs at least k_shot + n_query = {need} sequences; "
                f"{listed}{more}"
            )

    def sample(self) -> Episode:
        """Draw one episode (see :class:`Episode`)."""
        rng, k = self._rng, self.k_shot
        chosen = rng.choice(len(self.classes_), self.n_way, replace=False)
        picks = [
            rng.choice(self._members[c], k + self.n_query, replace=False)
            for c in chosen
        ]
        support = np.concatenate([p[:k] for p in picks])
        query = np.concatenate([p[k:] for p in picks])
        return Episode(
            support,
            np.repeat(np.arange(self.n_way), k),
            query,
            np.repeat(np.arange(self.n_way), self.n_query),
            self.classes_[chosen],
        )

    def __iter__(self):
        count = 0
        while self.n_episodes is None or count < self.n_episodes:
            yield self.sample()
            count += 1
