"""EpisodicClassifier: what every few-shot classifier shares."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .._engine import InferenceCache, check_labels
from .._sklearn_compat import fit_context
from .._validation import (
    Sequences,
    SequenceTagsMixin,
    check_sequences,
    concat_sequences,
)
from ._episodes import run_episodes
from ._sampler import EpisodeSampler, label_repr

__all__ = ["EpisodicClassifier"]


class EpisodicClassifier(SequenceTagsMixin, ClassifierMixin, BaseEstimator):
    """Base of the few-shot classifiers: a support set, ``predict``, episodes.

    A few-shot classifier labels a query by its scores against the classes
    of a support set. This base holds the support set (``set_support``, or
    the training data after ``fit``), ``predict`` and the test protocol
    ``evaluate_episodes``; its ``fit`` stores ``(X, y)`` as the support set
    and learns nothing. :class:`sktap.TAPFewShotClassifier` (which trains)
    and the baselines of :mod:`sktap.baselines` subclass it.

    A subclass implements:

    - ``__init__`` and ``_parameter_constraints``, as scikit-learn's
      estimators (none by default);
    - ``_embed(seqs) -> Z``: the work done once per sequence (a learned
      frame transform, pooling, or nothing), for validated
      :class:`sktap.Sequences`; ``Z`` is :class:`sktap.Sequences` or an
      array with one row per sequence. The support set is embedded once per
      support set (and fitted model: see ``_embedding_sources``), then
      kept for every ``predict``;
    - ``_make_scorer(Z)``: an object over the embedded set ``Z`` with
      ``class_scores(query, support, support_labels, n_classes) -> ndarray
      (len(query), n_classes)`` (higher is closer; ``query`` and
      ``support`` index ``Z``, ``support_labels`` are class indices) and
      ``prepare(n_pairs)``, called once before an evaluation that will
      score about ``n_pairs`` query-support pairs (a chance to precompute;
      it may do nothing);

    and may override ``fit`` (a classifier that learns; it ends with
    ``self._store_support(seqs, y)``), ``_check_ready`` (raise unless
    what ``_embed`` needs is fitted) and ``_embedding_sources`` (the fitted
    objects ``_embed`` reads, such as a network: the kept support
    embedding is rebuilt when one of them is replaced).
    """

    _parameter_constraints: dict = {}

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Store ``(X, y)`` as the support set (there is nothing to learn).

        Parameters
        ----------
        X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)
        y : array-like of shape (n_ts,)
            At least 2 classes.

        Returns
        -------
        self
        """
        seqs = check_sequences(X)
        self._require_y(y)
        self._store_support(seqs, y)
        return self

    def _check_ready(self):
        """Raise unless the estimator can embed sequences (nothing to learn here)."""

    def _embedding_sources(self) -> tuple:
        """Fitted objects that ``_embed`` reads (none here: it learns nothing)."""
        return ()

    def _expected_features(self):
        return getattr(self, "n_features_in_", None)

    def _require_y(self, y):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target "
                "y is None"
            )

    def _store_support(self, seqs, y, *, name="y"):
        classes, codes = check_labels(y, len(seqs), min_classes=1)
        if len(classes) < 2:
            raise ValueError(
                f"the support set has 1 class ({label_repr(classes[0])}); at "
                f"least 2 are needed to classify ({name})"
            )
        self.support_ = seqs
        self.support_labels_ = codes
        self.classes_ = classes
        self.n_features_in_ = seqs.n_features
        self._support_cache = InferenceCache()

    def _embedded_support(self):
        """``_embed(support_)``, computed on the first call after the support
        set (or a fitted source) changes, then kept."""
        return self._support_cache.get(
            lambda: self._embed(self.support_),
            sources=(self.support_, *self._embedding_sources()),
        )

    def set_support(self, X_support, y_support):
        """Classify among the classes of a new support set, without retraining.

        Parameters
        ----------
        X_support : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)
        y_support : array-like of shape (n_ts,)
            Labels of any type (strings included), at least two classes.

        Returns
        -------
        self
            ``classes_`` becomes the support set's classes.
        """
        seqs = check_sequences(
            X_support, name="X_support", n_features=self._expected_features()
        )
        self._check_ready()
        self._store_support(seqs, y_support, name="y_support")
        return self

    def _class_scores(self, X):
        """Class scores (n_ts, n_classes) of ``X`` against the support set."""
        check_is_fitted(self, "support_")
        seqs = check_sequences(X, n_features=self.n_features_in_)
        self._check_ready()
        queries, support = self._embed(seqs), self._embedded_support()
        if isinstance(queries, Sequences):
            embedded = concat_sequences([queries, support])
        else:
            embedded = np.concatenate([queries, support])
        scorer = self._make_scorer(embedded)
        n = len(seqs)
        return scorer.class_scores(
            np.arange(n),
            n + np.arange(len(self.support_)),
            self.support_labels_,
            len(self.classes_),
        )

    def predict(self, X):
        """The class of each sequence: the best class score against the support.

        Parameters
        ----------
        X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)

        Returns
        -------
        ndarray of shape (n_ts,)
            Labels from ``classes_``.
        """
        best = self._class_scores(X).argmax(axis=1)
        return self.classes_[best]

    def evaluate_episodes(
        self, X, y, *, n_way=5, k_shot=1, n_query=1, n_episodes=10000, random_state=None
    ):
        """Mean accuracy over random N-way K-shot episodes drawn from ``(X, y)``.

        The test protocol of few-shot learning: ``(X, y)`` holds classes
        never seen in training; each episode draws ``n_way`` of them, then
        ``k_shot`` support and ``n_query`` query sequences per class, and
        classifies the queries against that support alone. The current
        support set (``set_support``) plays no part.

        Parameters
        ----------
        X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)
        y : array-like of shape (n_ts,)
        n_way, k_shot, n_query : int, default=5, 1, 1
        n_episodes : int, default=10000
        random_state : int, RandomState instance or None, default=None
            Draws the episodes.

        Returns
        -------
        mean : float
            Mean episode accuracy.
        half_width : float
            Half-width of the 95% confidence interval,
            ``1.96 * std / sqrt(n_episodes)``.
        """
        seqs = check_sequences(X, n_features=self._expected_features())
        self._check_ready()
        if (
            not isinstance(n_episodes, numbers.Integral)
            or isinstance(n_episodes, bool)
            or n_episodes < 1
        ):
            raise ValueError(f"n_episodes must be an integer >= 1; got {n_episodes!r}")
        check_labels(y, len(seqs), min_classes=1)
        sampler = EpisodeSampler(y, n_way, k_shot, n_query, random_state)
        return run_episodes(self._make_scorer(self._embed(seqs)), sampler, n_episodes)
