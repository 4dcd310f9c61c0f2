"""TAPNearestNeighbors: neighbour search under the (learned) TAP distance."""

from __future__ import annotations

from numbers import Real

import numpy as np
from scipy import sparse

from .._engine import register
from .._sklearn_compat import Interval
from ._base import NeighborsBase, check_mode

__all__ = ["TAPNearestNeighbors"]


@register
class TAPNearestNeighbors(NeighborsBase):
    """Nearest-neighbour search under the (learned) TAP distance.

    scikit-learn's :class:`~sklearn.neighbors.NearestNeighbors` for
    sequences: ``kneighbors``, ``radius_neighbors`` and their sparse graphs.
    The distance from a query (the source, as in the paper) to a reference
    is parameter-free TAP, or the learned distance of any sktap metric
    learner (:class:`~sktap.TAPMetricLearner`,
    :class:`~sktap.baselines.SoftDTWMetricLearner`), fitted here or frozen.

    Exact search is streamed: queries are encoded chunk by chunk and scored
    against every reference in tiles of bounded memory
    (``working_memory``), keeping a running top-k (or the hits within the
    radius), so the full query x reference matrix never exists. The model
    on the device, its kernel and the encoded references (float32, on the
    device) are prepared once per fit and reused by every search; searching
    mutates no fitted state, so it is safe from several threads.

    With ``n_candidates`` (``m``), ``kneighbors`` scores only ``m``
    candidates per query with the distance. The candidate index shortlists
    the ``10 * m`` references nearest in a ranking embedding trained in
    ``fit`` to order the references as the distance itself orders them
    (the means of the encoded frames over eight spans of time, mapped
    linearly), and the ``m`` of them with the lowest nearest-frame score
    are kept: the mean distance from each query frame to its nearest
    reference frame, plus a position gap weighted as chosen in ``fit``
    (with weight 0, a lower bound of TAP). See ``docs/scaling.md`` and
    ``docs/benchmarks.md`` for the measured recall. Approximate; the
    radius queries stay exact.

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours returned by ``kneighbors`` by default.
    radius : float, default=1.0
        Range of ``radius_neighbors`` by default.
    metric_learner : sktap metric learner, FrozenEstimator or None, default=None
        None: parameter-free TAP. A learner is cloned and fitted on ``X``
        (on ``(X, y)`` when ``y`` is given) in ``fit`` (``refit_metric=True``),
        or a copy of it is used as is (``refit_metric=False``; it must then
        be fitted). A fitted learner wrapped in
        :class:`sklearn.frozen.FrozenEstimator` is never refitted.
    refit_metric : bool, default=True
        Whether ``fit`` fits a clone of ``metric_learner``. With False the
        fitted learner is kept by :func:`~sklearn.base.clone` (hence by
        ``GridSearchCV``), as with a ``FrozenEstimator``.
    symmetric : bool, default=False
        Average ``tap(query, ref)`` and ``tap(ref, query)``.
    n_candidates : int or float, optional
        None: exact search. An int: references scored exactly per query (at
        least ``n_neighbors``); a float in (0, 1): that fraction of the
        references (rounded up).
    candidate_index : estimator, optional
        Retrieves the shortlist from the ranking vectors: any object with
        ``fit(X)`` and ``kneighbors(X, n_neighbors, return_distance=False)``.
        None: scikit-learn's exact brute-force ``NearestNeighbors``;
        :class:`~sktap.neighbors.FaissIndex` for faiss's HNSW graph.
    working_memory : float, optional
        MiB bound on one tile of TAP work and on one chunk of encoded
        queries; defaults to scikit-learn's ``working_memory`` setting.
    device : str or torch.device, default="auto"
        Where TAP runs ("auto": CUDA when present).
    n_jobs : int, optional
        Tiles run through :class:`joblib.Parallel` (on the CPU).
    random_state : int, RandomState instance or None, default=None
        Seeds the ranker's training pairs (``n_candidates``).
    verbose : int, default=0
        Positive: progress bars over query chunks and tiles.

    Attributes
    ----------
    n_features_in_ : int
        Channels per time step seen in ``fit`` (1 for a 2-D array).
    n_samples_fit_ : int
        Number of references.
    metric_learner_ : sktap metric learner or None
        The fitted learner whose distance is used.
    train_sequences_ : Sequences
        References after the learner's frame transform (as given for
        parameter-free TAP), zero-padded with lengths.
    ranker_ : DistilledRanker or None
        The ranking embedding (when ``n_candidates`` is set).
    candidate_index_ : estimator or None
        The fitted ``candidate_index`` over the references' ranking vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap import TAPNearestNeighbors
    >>> X = [np.zeros(5), np.zeros(4), np.ones(6), np.full(3, 1.2)]
    >>> nn = TAPNearestNeighbors(n_neighbors=2, device="cpu").fit(X)
    >>> nn.kneighbors([np.full(7, 0.9)], return_distance=False).tolist()
    [[2, 3]]
    """

    _parameter_constraints = {
        **NeighborsBase._parameter_constraints,
        "radius": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_neighbors=5,
        *,
        radius=1.0,
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
        self.radius = radius
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

    # -- within a radius ---------------------------------------------------
    def radius_neighbors(
        self, X=None, radius=None, return_distance=True, sort_results=False
    ):
        """The references within ``radius`` of each query (exact search).

        Parameters
        ----------
        X : array-like or list, optional
            Queries; None: each reference, leaving itself out.
        radius : float, optional
            Defaults to the ``radius`` parameter.
        return_distance : bool, default=True
        sort_results : bool, default=False
            Sort each query's hits by distance (then index).

        Returns
        -------
        dist : ndarray of shape (n_queries,), dtype=object
            Each query's distances; only if ``return_distance``.
        ind : ndarray of shape (n_queries,), dtype=object
            Each query's reference indices.
        """
        r = self.radius if radius is None else radius
        if (
            not isinstance(r, Real)
            or isinstance(r, bool)
            or not np.isfinite(r)
            or r < 0
        ):
            raise ValueError(f"radius must be a finite non-negative number; got {r!r}")
        if sort_results and not return_distance:
            raise ValueError("return_distance must be True if sort_results is True.")
        refs, budget, exclude_self, n, chunks = self._each_chunk(X)
        qs, ds, cs = [], [], []  # the hits of every tile, as flat arrays
        for q_idx, queries in chunks:
            for rows, cols, block in self._tiles(refs, queries, budget):
                block = block.astype(np.float64)
                if exclude_self:
                    block[q_idx[rows][:, None] == cols[None, :]] = np.inf
                a, b = np.nonzero(block <= r)
                qs.append(q_idx[rows[a]])
                ds.append(block[a, b])
                cs.append(cols[b])
        q = np.concatenate([*qs, np.empty(0, np.int64)]).astype(np.int64)
        d = np.concatenate([*ds, np.empty(0)])
        c = np.concatenate([*cs, np.empty(0, np.int64)]).astype(np.int64)
        # by query, then distance (sort_results) or reference index
        order = np.lexsort((c, d, q) if sort_results else (d, c, q))
        q, d, c = q[order], d[order], c[order]
        bounds = np.searchsorted(q, np.arange(n + 1))
        dist, ind = np.empty(n, dtype=object), np.empty(n, dtype=object)
        for i in range(n):
            dist[i] = d[bounds[i] : bounds[i + 1]]
            ind[i] = c[bounds[i] : bounds[i + 1]]
        return (dist, ind) if return_distance else ind

    def radius_neighbors_graph(
        self, X=None, radius=None, mode="connectivity", sort_results=False
    ):
        """Sparse graph (n_queries, n_samples_fit_) of the references within
        ``radius``, as scikit-learn's ``radius_neighbors_graph``."""
        check_mode(mode)
        dist, ind = self.radius_neighbors(X, radius, sort_results=sort_results)
        counts = np.array([len(i) for i in ind], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        flat_ind = np.concatenate([*ind, np.empty(0, np.int64)])
        flat_d = np.concatenate([*dist, np.empty(0)])
        data = np.ones(len(flat_ind)) if mode == "connectivity" else flat_d
        return sparse.csr_matrix(
            (data, flat_ind, indptr), shape=(len(ind), self.n_samples_fit_)
        )
