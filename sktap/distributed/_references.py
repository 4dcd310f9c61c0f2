"""DistributedReferences: a reference set held on a dask cluster between queries."""

from __future__ import annotations

import uuid

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._engine import check_form, check_working_memory
from . import _worker
from ._cluster import (
    check_client,
    check_device,
    check_learner,
    check_resources,
    chunk_workers,
    contiguous_chunks,
    owners,
    scatter_models,
    validate,
)
from ._pairwise import check_chunk_size, distance_array, lazy_chunks, result_dtype
from ._search import (
    check_k,
    check_mode,
    check_radius,
    knn_graph,
    place_references,
    radius_graph,
    search,
)

__all__ = ["DistributedReferences"]

_FITTED = ("references_", "models_")
_FITTED_ALL = (
    *_FITTED,
    "client_",
    "chunk_workers_",
    "chunk_offsets_",
    "n_samples_fit_",
    "n_features_in_",
    "_chunk_sizes",
    "_settings",
)


class DistributedReferences(BaseEstimator):
    """Reference sequences kept on a dask cluster, searched by TAP distance.

    ``fit`` sends the distance's weights to every worker once, cuts the
    references into chunks, places each chunk on one worker and encodes it
    there; the encoded chunks stay on the workers (as futures) until
    :meth:`close`. A query then ships only the query sequences: each chunk
    of queries goes to the workers that hold reference chunks (so the bytes
    grow with queries x workers, not with the number of tiles), is encoded
    there, and every (query chunk, reference chunk) task reduces on its
    worker, within a ``working_memory`` budget, to a top-k or to the pairs
    within a radius; the parts are merged on a worker. The client receives
    the ``n_queries x k`` results (or the sparse pairs found), never a dense
    ``n_queries x n_references`` matrix.

    Parameters
    ----------
    n_neighbors : int, default=5
        Default number of neighbours of :meth:`kneighbors`.
    radius : float, default=1.0
        Default radius of :meth:`radius_neighbors_graph`.
    metric_learner : fitted sktap metric learner or None, default=None
        None: parameter-free TAP (as :func:`sktap.metrics.cdist_tap`).
        Otherwise the learner's distance (as its ``pairwise_distances``):
        anything with ``encode`` and ``distance_kernel``, such as a fitted
        :class:`~sktap.TAPMetricLearner`. A copy travels to the workers.
    symmetric : bool or "divergence", default=False
        The form of the distance, from query (source) to reference, as in
        :func:`sktap.metrics.cdist_tap`.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where the workers compute, resolved on each worker ("auto": its CUDA
        device when it has one); it replaces the learner's own ``device``
        on the workers' copy. With one GPU per worker (``dask worker
        --resources GPU=1`` with ``CUDA_VISIBLE_DEVICES`` set), "cuda" is
        that worker's card; a worker's tasks take turns on it.
    resources : dict or None, default=None
        Passed to ``client.submit`` for the encoding and distance tasks,
        e.g. ``{"GPU": 1}``: only workers that declare these resources hold
        references, and each task holds the resources while it runs.
    chunk_size : int or None, default=None
        References per chunk. None: one chunk per worker thread (of the
        workers that offer ``resources``) at fit time.
    working_memory : float, optional
        MiB bound on one tile of TAP work inside a task, and on a chunk of
        queries (padded float32 frames); defaults to scikit-learn's
        ``working_memory`` setting (read on the client).
    client : distributed.Client, optional
        The cluster; None means the default client at fit time.

    Attributes
    ----------
    n_samples_fit_ : int
        Number of references.
    n_features_in_ : int
        Channels per time step of the references.
    models_ : dict of str to distributed.Future
        The distance (learner copy or parameter-free TAP): one copy on each
        worker, by address.
    references_ : list of distributed.Future
        The encoded reference chunks, in order, each on one worker.
    chunk_offsets_ : ndarray of shape (n_chunks,)
        Index of each chunk's first reference.
    chunk_workers_ : list of str
        Address of the worker that holds each chunk.

    Examples
    --------
    >>> import numpy as np
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from sktap.distributed import DistributedReferences
    >>> rng = np.random.default_rng(0)
    >>> refs = [rng.normal(size=(rng.integers(5, 30), 2)) for _ in range(100)]
    >>> queries = [rng.normal(size=(10, 2)) for _ in range(7)]
    >>> with Client(LocalCluster(n_workers=2)) as client:  # doctest: +SKIP
    ...     with DistributedReferences(3, device="cpu").fit(refs) as index:
    ...         dist, ind = index.kneighbors(queries)
    ...         graph = index.kneighbors_graph(queries, mode="distance")
    >>> ind.shape, graph.shape  # doctest: +SKIP
    ((7, 3), (7, 100))
    """

    def __init__(
        self,
        n_neighbors=5,
        *,
        radius=1.0,
        metric_learner=None,
        symmetric=False,
        device="auto",
        resources=None,
        chunk_size=None,
        working_memory=None,
        client=None,
    ):
        self.n_neighbors = n_neighbors
        self.radius = radius
        self.metric_learner = metric_learner
        self.symmetric = symmetric
        self.device = device
        self.resources = resources
        self.chunk_size = chunk_size
        self.working_memory = working_memory
        self.client = client

    # -- fit -------------------------------------------------------------
    def fit(self, X, y=None):
        """Place the references on the cluster, encoded, one chunk per worker slot.

        Parameters
        ----------
        X : array-like of shape (n_refs, sz, d) or (n_refs, sz), or list of (L_i, d)
            The references.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        client = check_client(self.client)
        form = check_form(self.symmetric)
        budget = check_working_memory(self.working_memory)
        resources = check_resources(self.resources)
        chunk_size = check_chunk_size(self.chunk_size, allow_none=True)
        device = check_device(self.device)
        learner = check_learner(self.metric_learner, device)
        n_features = None if learner is None else learner.n_features_in_
        seqs = validate(X, "X", n_features)
        workers = chunk_workers(client, resources)
        self.close()  # a previous fit's chunks are released
        if chunk_size is None:
            n_chunks = min(len(seqs), sum(workers.values()))
            chunks = np.array_split(np.arange(len(seqs)), n_chunks)
        else:
            chunks = contiguous_chunks(seqs.lengths, chunk_size)
        where = owners(workers, len(chunks))
        settings = (form, budget, resources, result_dtype(learner))
        model = _worker.DistanceModel(learner, device)
        models = scatter_models(client, model, workers)
        references = place_references(client, models, seqs, chunks, where, settings)
        self.client_, self.models_, self.references_ = client, models, references
        self.chunk_workers_ = where
        self.chunk_offsets_ = np.array([c[0] for c in chunks], dtype=np.int64)
        self._chunk_sizes = np.array([len(c) for c in chunks], dtype=np.int64)
        self._settings = settings
        self.n_samples_fit_ = len(seqs)
        self.n_features_in_ = seqs.n_features
        return self

    def close(self):
        """Release the references and weights held on the cluster.

        The instance is then unfitted. Arrays returned by
        :meth:`pairwise_distances` keep what they use until they are gone.
        """
        for name in _FITTED_ALL:
            self.__dict__.pop(name, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- queries ---------------------------------------------------------
    def _check_ready(self):
        check_is_fitted(self, _FITTED)
        status = self.client_.status
        if status in ("closing", "closed"):
            raise ValueError(
                f"the client of this {type(self).__name__} is {status}; the "
                "references are gone with it: fit again with a running client"
            )

    def _queries(self, X):
        return validate(X, "X", self.n_features_in_)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The nearest references of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, sz, d) or (n_queries, sz), or list, optional
            Queries (the sources). None: each reference, whose own index is
            left out of its neighbours (as scikit-learn's ``kneighbors()``).
        n_neighbors : int, optional
            Defaults to the ``n_neighbors`` parameter.
        return_distance : bool, default=True

        Returns
        -------
        dist : ndarray of shape (n_queries, n_neighbors)
            Distances (float64), ascending, ties by reference index; only if
            ``return_distance``.
        ind : ndarray of shape (n_queries, n_neighbors)
            Indices into the references.
        """
        self._check_ready()
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        seqs = None if X is None else self._queries(X)
        k = check_k(k, self.n_samples_fit_, exclude_self=seqs is None)
        n = self.n_samples_fit_ if seqs is None else len(seqs)
        dist = np.empty((n, k))
        ind = np.empty((n, k), dtype=np.int64)
        found = search(self, seqs, _worker.topk_part, _worker.merge_topk_parts, k)
        for q_idx, (d, i) in found:
            dist[q_idx], ind[q_idx] = d, i
        return (dist, ind) if return_distance else ind

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """The k-neighbours graph, as scikit-learn's ``kneighbors_graph``.

        Parameters
        ----------
        X : array-like or None
            Queries, as in :meth:`kneighbors`.
        n_neighbors : int, optional
            Defaults to the ``n_neighbors`` parameter.
        mode : {"connectivity", "distance"}, default="connectivity"
            Entries 1.0, or the distances.

        Returns
        -------
        scipy.sparse.csr_matrix of shape (n_queries, n_refs)
            Row ``i`` holds the ``n_neighbors`` nearest references of query
            ``i`` (in order of distance).
        """
        check_mode(mode)
        dist, ind = self.kneighbors(X, n_neighbors)
        return knn_graph(dist, ind, self.n_samples_fit_, mode)

    def radius_neighbors_graph(self, X=None, radius=None, mode="connectivity"):
        """The references within ``radius`` of each query, as a sparse graph.

        As scikit-learn's ``radius_neighbors_graph``: a reference is a
        neighbour when its distance is at most ``radius``.

        Parameters
        ----------
        X : array-like or None
            Queries, as in :meth:`kneighbors`.
        radius : float, optional
            Positive; defaults to the ``radius`` parameter.
        mode : {"connectivity", "distance"}, default="connectivity"

        Returns
        -------
        scipy.sparse.csr_matrix of shape (n_queries, n_refs)
            Each row's references in increasing index order; in "distance"
            mode, a distance of 0 is an explicitly stored entry.
        """
        check_mode(mode)
        self._check_ready()
        r = check_radius(self.radius if radius is None else radius)
        seqs = None if X is None else self._queries(X)
        n = self.n_samples_fit_ if seqs is None else len(seqs)
        found = search(self, seqs, _worker.radius_part, _worker.merge_radius, r)
        return radius_graph(found, n, self.n_samples_fit_, mode)

    def pairwise_distances(self, X=None):
        """Distances from queries to the references, as a lazy dask array.

        Blocks are computed on the workers, one per (query chunk, reference
        chunk); the client holds nothing until the array is computed.

        Parameters
        ----------
        X : array-like or None
            Queries; None: the references against themselves.

        Returns
        -------
        dask.array.Array of shape (n_queries, n_refs)
            float32 for parameter-free TAP, float64 with a learner. Take
            resources at compute time (``D.compute(resources={"GPU": 1})``).
        """
        self._check_ready()
        form, budget, _, dtype = self._settings
        sizes = self._chunk_sizes.tolist()
        cols = list(zip(sizes, self.references_, self.chunk_workers_))
        models = self.models_
        if X is None:
            return distance_array(models, cols, cols, form, budget, dtype, True)
        seqs = self._queries(X)
        rows = budget * 2**20 / (4 * seqs.n_features)
        width = int(seqs.lengths.max())
        chunks = contiguous_chunks(seqs.lengths, max(1, int(rows // width)))
        label = f"sktap-encode-q-{uuid.uuid4().hex}"
        rows = lazy_chunks(self.client_, models, seqs, chunks, form, budget, label)
        return distance_array(models, rows, cols, form, budget, dtype)
