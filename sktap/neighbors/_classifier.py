"""TAPKNeighborsClassifier: votes of the nearest references under the TAP distance."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .._engine import check_labels, classes_from_state, classes_state, register
from .._sklearn_compat import StrOptions, fit_context
from .._validation import check_sequences
from ._base import NeighborsBase

__all__ = ["TAPKNeighborsClassifier"]


@register
class TAPKNeighborsClassifier(ClassifierMixin, NeighborsBase):
    """k-nearest-neighbour classifier under the (learned) TAP distance.

    The votes of :class:`~sktap.TAPNearestNeighbors`' neighbours: the
    search (exact and streamed, or over trained candidates with
    ``n_candidates``), the learner's lifecycle and persistence are that
    estimator's; this class adds the labels and the vote. The distance from
    a query (the source, as in the paper) to a training sequence is
    parameter-free TAP, or the learned distance of any sktap metric learner
    (:class:`~sktap.TAPMetricLearner`,
    :class:`~sktap.baselines.SoftDTWMetricLearner`), fitted on ``(X, y)``
    here or frozen.

    Parameters
    ----------
    n_neighbors : int, default=1
        Neighbours that vote.
    weights : {"uniform", "distance"} or callable, default="uniform"
        "distance" weighs each vote by the inverse distance (a query at
        distance 0 from some neighbours takes only their votes). A callable
        takes the distances (n_queries, n_neighbors) and returns weights of
        the same shape, as in scikit-learn.
    metric_learner : sktap metric learner, FrozenEstimator or None, default=None
        See :class:`~sktap.TAPNearestNeighbors`; a learner is fitted on
        ``(X, y)``.
    refit_metric : bool, default=True
    symmetric : bool, default=False
    n_candidates : int or float, optional
        See :class:`~sktap.TAPNearestNeighbors`: None searches exactly.
    candidate_index : estimator, optional
    working_memory : float, optional
    device : str or torch.device, default="auto"
    n_jobs : int, optional
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    n_features_in_ : int
        Channels per time step seen in ``fit``. A 2-D array is a set of
        univariate series, so it then counts 1 (its columns are time steps,
        and queries may have another length).
    n_samples_fit_ : int
        Number of training sequences.
    metric_learner_ : sktap metric learner or None
        The fitted learner whose distance is used.
    train_sequences_ : Sequences
        Training sequences after the learner's frame transform (as given
        for parameter-free TAP), zero-padded with lengths.
    ranker_, candidate_index_
        As in :class:`~sktap.TAPNearestNeighbors` (None without
        ``n_candidates``).

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap import TAPKNeighborsClassifier
    >>> X = [np.zeros(5), np.zeros(4), np.ones(6), np.ones(3)]
    >>> clf = TAPKNeighborsClassifier(device="cpu").fit(X, [0, 0, 1, 1])
    >>> clf.predict([np.full(7, 0.9)]).tolist()
    [1]
    """

    _parameter_constraints = {
        **NeighborsBase._parameter_constraints,
        "weights": [StrOptions({"uniform", "distance"}), callable],
    }

    def __init__(
        self,
        n_neighbors=1,
        *,
        weights="uniform",
        metric_learner=None,
        refit_metric=True,
        symmetric=False,
        n_candidates=None,
        candidate_index=None,
        working_memory=None,
        device="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.metric_learner = metric_learner
        self.refit_metric = refit_metric
        self.symmetric = symmetric
        self.n_candidates = n_candidates
        self.candidate_index = candidate_index
        self.working_memory = working_memory
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Store the (encoded) training sequences and their labels.

        Parameters
        ----------
        X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)
        y : array-like of shape (n_ts,)

        Returns
        -------
        self
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target "
                "y is None"
            )
        seqs = check_sequences(X)
        classes, encoded = check_labels(y, len(seqs), min_classes=1)
        if self.n_neighbors > len(seqs):
            raise ValueError(
                f"n_neighbors={self.n_neighbors} is larger than the number of "
                f"training sequences ({len(seqs)})"
            )
        self._fit_sequences(seqs, encoded)
        self.classes_, self._y = classes, encoded
        return self

    # -- classify --------------------------------------------------------
    def _vote_weights(self, dist):
        if self.weights == "uniform":
            return np.ones_like(dist)
        if callable(self.weights):
            w = np.asarray(self.weights(dist), dtype=np.float64)
            if w.shape != dist.shape or not np.isfinite(w).all() or (w < 0).any():
                raise ValueError(
                    "weights (a callable) must return finite non-negative "
                    f"weights of shape {dist.shape}; got shape {w.shape}"
                )
            return w
        with np.errstate(divide="ignore"):
            w = 1.0 / dist
        exact = np.isinf(w)
        zero_rows = exact.any(axis=1)
        w[zero_rows] = exact[zero_rows]  # only the exact matches vote
        return w

    def predict_proba(self, X):
        """Class probabilities from the neighbours' (weighted) votes.

        Parameters
        ----------
        X : array-like of shape (n_queries, sz, d) or (n_queries, sz), or list

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
            Columns in the order of ``classes_``. A query whose neighbours'
            weights all vanish gets uniform probabilities.
        """
        check_is_fitted(self)
        dist, ind = self.kneighbors(X)
        w = self._vote_weights(dist)  # (n_queries, k)
        n, n_classes = len(dist), len(self.classes_)
        flat = (np.arange(n)[:, None] * n_classes + self._y[ind]).ravel()
        votes = np.bincount(flat, weights=w.ravel(), minlength=n * n_classes)
        votes = votes.reshape(n, n_classes)
        total = votes.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, votes / total, 1.0 / n_classes)

    def predict(self, X):
        """Most voted class of each query (ties: the first in ``classes_``).

        Parameters
        ----------
        X : array-like of shape (n_queries, sz, d) or (n_queries, sz), or list

        Returns
        -------
        ndarray of shape (n_queries,)
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # -- persistence -----------------------------------------------------
    def _fitted_state(self):
        return {
            **super()._fitted_state(),
            "classes": classes_state(self.classes_),
            "y": torch.as_tensor(self._y),
        }

    def _set_fitted_state(self, state):
        super()._set_fitted_state(state)
        self.classes_ = classes_from_state(state["classes"])
        self._y = state["y"].numpy()
