"""TAPKNeighborsClassifier: k-nearest-neighbour search under the TAP distance."""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted

from .._engine import (
    InferenceCache,
    InferenceContext,
    SaveMixin,
    TAPKernel,
    check_labels,
    check_working_memory,
    classes_from_state,
    classes_state,
    estimator_state,
    iter_pairs,
    iter_tiles,
    length_chunks,
    mean_pool,
    merge_topk,
    progress,
    register,
    resolve_device,
    restore_estimator,
    sorted_topk,
)
from .._sklearn_compat import Interval, StrOptions, fit_context
from .._validation import Sequences, check_sequences
from ..metric_learning import SequenceMetricLearner
from ..metric_learning._lifecycle import fitted_learner, keep_fitted_learner

__all__ = ["TAPKNeighborsClassifier"]


@register
class TAPKNeighborsClassifier(SaveMixin, ClassifierMixin, BaseEstimator):
    """k-nearest-neighbour classifier under the (learned) TAP distance.

    The distance from a query (the source, as in the paper) to a training
    sequence is parameter-free TAP, or the learned distance of any sktap
    metric learner (:class:`~sktap.TAPMetricLearner`,
    :class:`~sktap.baselines.SoftDTWMetricLearner`): the classifier relies
    only on their common contract (``encode`` and ``distance_kernel``), so
    it ranks by exactly the distance the learner's ``pairwise_distances``
    gives. Search is
    streamed: queries are transformed chunk by chunk and compared with the
    training set in tiles of bounded memory (``working_memory``), keeping a
    running top-k per query, so the full query x train matrix never exists.
    The learner's model on the device, its kernel and the encoded training
    set (float32, on the device) are prepared once per fit and reused by
    every search; searching mutates no fitted state, so ``predict`` is safe
    from several threads.

    Parameters
    ----------
    n_neighbors : int, default=1
        Neighbours that vote.
    weights : {"uniform", "distance"}, default="uniform"
        "distance" weighs each vote by the inverse distance (a query at
        distance 0 from some neighbours takes only their votes).
    metric_learner : sktap metric learner, FrozenEstimator or None, default=None
        None: parameter-free TAP. A learner is cloned and fitted on
        ``(X, y)`` in ``fit`` (``refit_metric=True``), or a copy of it is
        used as is (``refit_metric=False``; it must then be fitted). A
        fitted learner wrapped in :class:`sklearn.frozen.FrozenEstimator`
        is never refitted.
    refit_metric : bool, default=True
        Whether ``fit`` fits a clone of ``metric_learner``. With False the
        fitted learner is kept by :func:`~sklearn.base.clone` (hence by
        ``GridSearchCV`` and ``cross_val_score``), as with a
        ``FrozenEstimator``.
    symmetric : bool, default=False
        Average ``tap(query, train)`` and ``tap(train, query)``.
    n_candidates : int, optional
        If set, a prefilter keeps for each query the ``n_candidates``
        training sequences (at least ``n_neighbors``) nearest by Euclidean
        distance between mean-pooled (transformed) frames, and only those
        pairs are scored with TAP. Faster; approximate.
    working_memory : float, optional
        MiB bound on one tile of TAP work and on one chunk of transformed
        queries; defaults to scikit-learn's ``working_memory`` setting (1024).
        Peak memory is about the training set plus a few times this.
    device : str or torch.device, default="auto"
        Where TAP runs ("auto": CUDA when present).
    n_jobs : int, optional
        Tiles run through :class:`joblib.Parallel`; under
        ``joblib.parallel_config(backend="dask")`` they spread over a dask
        cluster.
    verbose : int, default=0
        Positive: progress bars over query chunks and tiles in ``predict``
        and ``kneighbors``.

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
    prefilter_ : NearestNeighbors or None
        Index over mean-pooled training frames (when ``n_candidates`` is set).

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
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "weights": [StrOptions({"uniform", "distance"})],
        "metric_learner": [SequenceMetricLearner, FrozenEstimator, None],
        "refit_metric": ["boolean"],
        "symmetric": ["boolean"],
        "n_candidates": [Interval(Integral, 1, None, closed="left"), None],
        "working_memory": [Interval(Real, 0, None, closed="neither"), None],
        "device": [str, torch.device],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
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
        working_memory=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.metric_learner = metric_learner
        self.refit_metric = refit_metric
        self.symmetric = symmetric
        self.n_candidates = n_candidates
        self.working_memory = working_memory
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- fit -------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Store the (transformed) training sequences and their labels.

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
        resolve_device(self.device)  # fail here, not at the first predict
        learner = fitted_learner(self.metric_learner, self.refit_metric, seqs, encoded)
        self.classes_, self._y = classes, encoded
        self.n_features_in_ = seqs.n_features
        self.n_samples_fit_ = len(seqs)
        self.metric_learner_ = learner
        context = InferenceContext()
        with context.active():
            self._set_train(self._transform(seqs))
        self._references(context)  # searches reuse the model that encoded X
        return self

    def _set_train(self, train: Sequences):
        self.train_sequences_ = train
        self.prefilter_ = None
        if self.n_candidates is not None:
            self.prefilter_ = NearestNeighbors(n_jobs=self.n_jobs).fit(mean_pool(train))
        # what the previous fit prepared for searching is gone with it
        self._inference = InferenceCache()

    # -- search ----------------------------------------------------------
    def __sklearn_clone__(self):
        return keep_fitted_learner(self, super().__sklearn_clone__())

    def _kernel(self, device):
        learner = self.metric_learner_
        if learner is None:
            return TAPKernel(None, device, symmetric=self.symmetric)
        return learner.distance_kernel(symmetric=self.symmetric)

    def _references(self, context=None):
        """``(context, kernel, train)``, built once per fit (not saved).

        ``context`` holds the learner's model on the device, ``kernel`` the
        distance, ``train`` the encoded training set uploaded for it; they
        are rebuilt lazily after loading or unpickling, and when
        ``symmetric`` or ``device`` changes.
        """
        device = resolve_device(self.device)

        def build():
            ctx = context or InferenceContext()
            with ctx.active():
                kernel = self._kernel(device)
            return ctx, kernel, kernel.upload(self.train_sequences_)

        return self._inference.get(
            build,
            sources=(self.train_sequences_, self.metric_learner_),
            settings=(self.symmetric, device),
        )

    def _transform(self, seqs: Sequences) -> Sequences:
        learner = self.metric_learner_
        return seqs if learner is None else learner.encode(seqs)

    def _query_chunks(self, seqs: Sequences, budget):
        """Index chunks of the queries, each about ``budget`` MiB once transformed."""
        width = self.train_sequences_.n_features
        rows = max(1.0, budget * 2**20 / (8 * width))
        order = np.argsort(seqs.lengths, kind="stable")
        return length_chunks(order, seqs.lengths, rows)

    def _exact_chunk(self, queries, q_idx, k, exclude_self, refs, budget):
        """Top-k of one query chunk against every training sequence, in tiles."""
        _, kernel, train = refs
        best_d = np.full((len(queries), k), np.inf)
        best_i = np.full((len(queries), k), -1, dtype=np.int64)
        tiles = iter_tiles(
            kernel, queries, train, budget, self.n_jobs, verbose=self.verbose
        )
        for rows, cols, block in tiles:  # block: (len(rows), len(cols))
            block = block.astype(np.float64)
            if exclude_self:
                block[q_idx[rows][:, None] == cols[None, :]] = np.inf
            merge_topk(best_d, best_i, rows, cols, block, k)
        return sorted_topk(best_d, best_i, k)

    def _candidate_chunk(self, queries, q_idx, k, exclude_self, refs, budget):
        """Top-k of one query chunk among its prefiltered candidates."""
        if self.prefilter_ is None:
            raise ValueError(
                "n_candidates was set after fit; fit again to build the prefilter"
            )
        m = min(max(self.n_candidates, k) + exclude_self, self.n_samples_fit_)
        cand = self.prefilter_.kneighbors(
            mean_pool(queries), n_neighbors=m, return_distance=False
        )  # (n_chunk, m)
        rows = np.repeat(np.arange(len(queries)), m)
        dist = np.empty(rows.shape)
        _, kernel, train = refs
        pairs = iter_pairs(
            kernel, queries, train, rows, cand.ravel(), budget, self.n_jobs
        )
        for pos, d in pairs:
            dist[pos] = d
        dist = dist.reshape(cand.shape)
        if exclude_self:
            dist[cand == q_idx[:, None]] = np.inf
        return sorted_topk(dist, cand, k)

    def _search(self, seqs, k, exclude_self):
        budget = check_working_memory(self.working_memory)
        refs = self._references()
        step = self._exact_chunk if self.n_candidates is None else self._candidate_chunk
        dist = np.empty((len(seqs), k))
        ind = np.empty((len(seqs), k), dtype=np.int64)
        chunks = self._query_chunks(seqs, budget)
        with refs[0].active():  # queries encoded by the model the fit prepared
            for q_idx in progress(chunks, self.verbose, "queries"):
                queries = seqs.take(q_idx)
                if not exclude_self:  # training sequences are stored transformed
                    queries = self._transform(queries)
                dist[q_idx], ind[q_idx] = step(
                    queries, q_idx, k, exclude_self, refs, budget
                )
        return dist, ind

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The nearest training sequences of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, sz, d) or (n_queries, sz), or list, optional
            Queries (the sources). None: each training sequence, whose own
            index is left out of its neighbours.
        n_neighbors : int, optional
            Defaults to the ``n_neighbors`` parameter.
        return_distance : bool, default=True

        Returns
        -------
        dist : ndarray of shape (n_queries, n_neighbors)
            TAP distances, ascending (ties by training index); only if
            ``return_distance``.
        ind : ndarray of shape (n_queries, n_neighbors)
            Indices into the training set.
        """
        check_is_fitted(self)
        if X is not None:
            X = check_sequences(X, n_features=self.n_features_in_)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        self._check_k(k, X is None)
        seqs = self.train_sequences_ if X is None else X
        dist, ind = self._search(seqs, k, exclude_self=X is None)
        return (dist, ind) if return_distance else ind

    def _check_k(self, k, exclude_self):
        if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_neighbors must be a positive integer; got {k!r}")
        available = self.n_samples_fit_ - exclude_self
        if k > available:
            other = " other" if exclude_self else ""
            raise ValueError(
                f"n_neighbors={k} is larger than the number of{other} training "
                f"sequences ({available})"
            )

    # -- classify --------------------------------------------------------
    def _vote_weights(self, dist):
        if self.weights == "uniform":
            return np.ones_like(dist)
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
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        dist, ind = self.kneighbors(X)
        w = self._vote_weights(dist)  # (n_queries, k)
        n, n_classes = len(dist), len(self.classes_)
        flat = (np.arange(n)[:, None] * n_classes + self._y[ind]).ravel()
        votes = np.bincount(flat, weights=w.ravel(), minlength=n * n_classes)
        votes = votes.reshape(n, n_classes)
        return votes / votes.sum(axis=1, keepdims=True)

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
        learner = self.metric_learner_
        train = self.train_sequences_
        return {
            "classes": classes_state(self.classes_),
            "y": torch.as_tensor(self._y),
            "n_features_in_": int(self.n_features_in_),
            "train_data": torch.as_tensor(train.data),
            "train_lengths": torch.as_tensor(train.lengths),
            "learner": None if learner is None else estimator_state(learner),
        }

    def _set_fitted_state(self, state):
        learner = state["learner"]
        self.metric_learner_ = None if learner is None else restore_estimator(learner)
        if learner is not None:
            # the parameter held the fitted learner itself (not refitted)
            if isinstance(self.metric_learner, FrozenEstimator):
                self.metric_learner = FrozenEstimator(
                    copy.deepcopy(self.metric_learner_)
                )
            elif not self.refit_metric:
                self.metric_learner = copy.deepcopy(self.metric_learner_)
        self.classes_ = classes_from_state(state["classes"])
        self._y = state["y"].numpy()
        self.n_features_in_ = state["n_features_in_"]
        self.n_samples_fit_ = len(self._y)
        train = Sequences(state["train_data"].numpy(), state["train_lengths"].numpy())
        self._set_train(train)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # trailing NaN pads variable lengths
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags
