"""What every neighbours estimator shares: the learner's lifecycle, the
references prepared once per fit, exact and candidate k-NN search, persistence."""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._engine import (
    InferenceCache,
    InferenceContext,
    SaveMixin,
    TAPKernel,
    check_working_memory,
    estimator_state,
    iter_pairs,
    iter_tiles,
    length_chunks,
    merge_topk,
    progress,
    resolve_device,
    restore_estimator,
    sorted_topk,
)
from .._sklearn_compat import Interval, fit_context
from .._validation import Sequences, SequenceTagsMixin, check_sequences
from ..metric_learning import SequenceMetricLearner
from ..metric_learning._lifecycle import fitted_learner, keep_fitted_learner
from ._frames import top_by_frames
from ._index import check_index
from ._ranker import SHORTLIST, DistilledRanker, as_tensors

__all__ = ["NeighborsBase", "check_mode"]


class NeighborsBase(SequenceTagsMixin, SaveMixin, BaseEstimator):
    """k-NN search under a (learned) TAP distance, without the estimator's
    parameter list: :class:`~sktap.TAPNearestNeighbors` and
    :class:`~sktap.TAPKNeighborsClassifier` are built on it.

    Reads the parameters ``n_neighbors``, ``metric_learner``,
    ``refit_metric``, ``symmetric``, ``n_candidates``, ``candidate_index``,
    ``working_memory``, ``device``, ``n_jobs``, ``random_state`` and
    ``verbose`` (documented on :class:`~sktap.TAPNearestNeighbors`).
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric_learner": [SequenceMetricLearner, FrozenEstimator, None],
        "refit_metric": ["boolean"],
        "symmetric": ["boolean"],
        "n_candidates": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
            None,
        ],
        "candidate_index": "no_validation",
        "working_memory": [Interval(Real, 0, None, closed="neither"), None],
        "device": [str, torch.device],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # -- fit -------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Store the (encoded) references; fit the learner, the ranker.

        Parameters
        ----------
        X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)
        y : array-like of shape (n_ts,), optional
            Labels for a supervised learner (None: ``fit(X)``, unsupervised).

        Returns
        -------
        self
        """
        seqs = check_sequences(X)
        self._fit_sequences(seqs, y)
        return self

    def _fit_sequences(self, seqs: Sequences, y):
        index = check_index(self.candidate_index)  # fail before training
        resolve_device(self.device)  # fail here, not at the first search
        learner = fitted_learner(self.metric_learner, self.refit_metric, seqs, y)
        self.n_features_in_ = seqs.n_features
        self.n_samples_fit_ = len(seqs)
        self.metric_learner_ = learner
        context = InferenceContext()
        with context.active():
            self._set_references(self._transform(seqs))
        refs = self._references(context)  # searches reuse the model that encoded X
        self.ranker_ = self.candidate_index_ = None
        if self.n_candidates is not None:
            rng = check_random_state(self.random_state)
            budget = check_working_memory(self.working_memory)
            with context.active():
                ranker = DistilledRanker().fit(
                    refs[1],
                    self.train_sequences_,
                    budget,
                    self.n_jobs,
                    rng,
                    symmetric=self.symmetric,
                    uploaded=refs[2],  # the references the searches use
                )
            self._set_ranker(ranker, index)

    def _set_references(self, train: Sequences):
        self.train_sequences_ = train
        # what the previous fit prepared for searching is gone with it
        self._inference = InferenceCache()

    def _set_ranker(self, ranker, index):
        self.ranker_ = ranker
        self.candidate_index_ = clone(index).fit(ranker.embedding_)

    def __sklearn_clone__(self):
        return keep_fitted_learner(self, super().__sklearn_clone__())

    # -- what searching reuses ---------------------------------------------
    def _kernel(self, device):
        learner = self.metric_learner_
        if learner is None:
            return TAPKernel(None, device, symmetric=self.symmetric)
        return learner.distance_kernel(symmetric=self.symmetric)

    def _references(self, context=None):
        """``(context, kernel, references)``, built once per fit (not saved).

        ``context`` holds the learner's model on the device, ``kernel`` the
        distance, ``references`` the encoded references uploaded for it;
        they are rebuilt lazily after loading or unpickling, and when
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

    # -- streaming over queries ------------------------------------------
    def _query_chunks(self, seqs: Sequences, budget):
        """Index chunks of the queries, each about ``budget`` MiB once encoded."""
        width = self.train_sequences_.n_features
        rows = max(1.0, budget * 2**20 / (8 * width))
        order = np.argsort(seqs.lengths, kind="stable")
        return length_chunks(order, seqs.lengths, rows)

    def _each_chunk(self, X):
        """``(refs, budget, exclude_self, [(q_idx, encoded queries)...])``
        over the queries ``X`` (None: the references, each excluding itself)."""
        check_is_fitted(self)
        exclude_self = X is None
        if X is not None:
            X = check_sequences(X, n_features=self.n_features_in_)
        seqs = self.train_sequences_ if exclude_self else X
        budget = check_working_memory(self.working_memory)
        refs = self._references()

        def chunks():
            with refs[0].active():  # queries encoded by the model the fit prepared
                for q_idx in progress(
                    self._query_chunks(seqs, budget), self.verbose, "queries"
                ):
                    queries = seqs.take(q_idx)
                    if not exclude_self:  # references are stored encoded
                        queries = self._transform(queries)
                    yield q_idx, queries

        return refs, budget, exclude_self, len(seqs), chunks()

    def _tiles(self, refs, queries, budget):
        _, kernel, train = refs
        return iter_tiles(
            kernel, queries, train, budget, self.n_jobs, verbose=self.verbose
        )

    # -- k nearest -----------------------------------------------------------
    def _exact_chunk(self, refs, queries, q_idx, k, exclude_self, budget):
        """Top-k of one query chunk against every reference, in tiles."""
        best_d = np.full((len(queries), k), np.inf)
        best_i = np.full((len(queries), k), -1, dtype=np.int64)
        for rows, cols, block in self._tiles(refs, queries, budget):
            block = block.astype(np.float64)
            if exclude_self:
                block[q_idx[rows][:, None] == cols[None, :]] = np.inf
            merge_topk(best_d, best_i, rows, cols, block, k)
        return sorted_topk(best_d, best_i, k)

    def _n_scored(self, k, exclude_self):
        m = self.n_candidates
        if isinstance(m, Real) and not isinstance(m, Integral):
            m = int(np.ceil(m * self.n_samples_fit_))
        return min(max(m, k) + exclude_self, self.n_samples_fit_)

    def _candidate_chunk(self, refs, queries, q_idx, k, exclude_self, budget):
        """Top-k of one query chunk among its candidates: the index's
        shortlist, re-ranked by the nearest-frame score, then exact TAP."""
        m = self._n_scored(k, exclude_self)
        n_refs = self.n_samples_fit_
        if m == n_refs:  # every reference is a candidate
            return self._exact_chunk(refs, queries, q_idx, k, exclude_self, budget)
        _, kernel, train = refs
        shortlist = min(SHORTLIST * m, n_refs)
        cand = self.candidate_index_.kneighbors(
            self.ranker_.embed(queries), n_neighbors=shortlist, return_distance=False
        )  # (n_chunk, shortlist); an approximate index may return -1 for "none"
        missing = cand < 0
        cand = np.where(missing, 0, cand).astype(np.int64)
        queries = kernel.upload(queries)  # once, for both stages
        cand, missing = top_by_frames(
            as_tensors(kernel, queries),
            as_tensors(kernel, train),
            cand,
            missing,
            m,
            self.ranker_.position_weight_,
            self.symmetric,
            budget,
        )
        rows = np.repeat(np.arange(len(queries)), m)
        dist = np.empty(rows.shape)
        pairs = iter_pairs(
            kernel, queries, train, rows, cand.ravel(), budget, self.n_jobs
        )
        for pos, d in pairs:
            dist[pos] = d
        dist = dist.reshape(cand.shape)
        dist[missing] = np.inf
        if exclude_self:
            dist[cand == q_idx[:, None]] = np.inf
        return sorted_topk(dist, cand, k)

    def _check_k(self, k, exclude_self):
        if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_neighbors must be a positive integer; got {k!r}")
        available = self.n_samples_fit_ - exclude_self
        if k > available:
            other = " other" if exclude_self else ""
            raise ValueError(
                f"n_neighbors={k} is larger than the number of{other} reference "
                f"sequences ({available})"
            )

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The nearest references of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, sz, d) or (n_queries, sz), or list, optional
            Queries (the sources). None: each reference, whose own index is
            left out of its neighbours.
        n_neighbors : int, optional
            Defaults to the ``n_neighbors`` parameter.
        return_distance : bool, default=True

        Returns
        -------
        dist : ndarray of shape (n_queries, n_neighbors)
            Distances, ascending (ties by reference index); only if
            ``return_distance``.
        ind : ndarray of shape (n_queries, n_neighbors)
            Indices into the references.
        """
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        check_is_fitted(self)
        self._check_k(k, X is None)
        refs, budget, exclude_self, n, chunks = self._each_chunk(X)
        if self.n_candidates is not None and self.ranker_ is None:
            raise ValueError(
                "n_candidates was set after fit; fit again to train the ranker"
            )
        step = self._exact_chunk if self.n_candidates is None else self._candidate_chunk
        dist = np.empty((n, k))
        ind = np.empty((n, k), dtype=np.int64)
        for q_idx, queries in chunks:
            dist[q_idx], ind[q_idx] = step(
                refs, queries, q_idx, k, exclude_self, budget
            )
        return (dist, ind) if return_distance else ind

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """Sparse graph (n_queries, n_samples_fit_) of the k nearest references.

        ``mode="connectivity"``: ones; ``"distance"``: the distances. As
        :meth:`sklearn.neighbors.NearestNeighbors.kneighbors_graph`.
        """
        check_mode(mode)
        dist, ind = self.kneighbors(X, n_neighbors)
        data = np.ones(ind.size) if mode == "connectivity" else dist.ravel()
        indptr = np.arange(0, ind.size + 1, ind.shape[1])
        shape = (len(ind), self.n_samples_fit_)
        return sparse.csr_matrix((data, ind.ravel(), indptr), shape=shape)

    # -- persistence -----------------------------------------------------
    def _fitted_state(self):
        learner = self.metric_learner_
        train = self.train_sequences_
        return {
            "n_features_in_": int(self.n_features_in_),
            "train_data": torch.as_tensor(train.data),
            "train_lengths": torch.as_tensor(train.lengths),
            "learner": None if learner is None else estimator_state(learner),
            "ranker": None if self.ranker_ is None else self.ranker_.state(),
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
        self.n_features_in_ = state["n_features_in_"]
        train = Sequences(state["train_data"].numpy(), state["train_lengths"].numpy())
        self.n_samples_fit_ = len(train)
        self._set_references(train)
        self.ranker_ = self.candidate_index_ = None
        if state.get("ranker") is not None:
            ranker = DistilledRanker.from_state(state["ranker"], train)
            self._set_ranker(ranker, check_index(self.candidate_index))


def check_mode(mode):
    if mode not in ("connectivity", "distance"):
        raise ValueError(
            f'Unsupported mode, must be one of "connectivity", or "distance" but got '
            f"{mode!r} instead"
        )
