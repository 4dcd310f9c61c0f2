"""Vector indexes that retrieve candidates from the ranking embedding.

Any object with scikit-learn's ``fit(X)`` and ``kneighbors(X, n_neighbors,
return_distance=False)`` serves as ``candidate_index``; the default is
scikit-learn's exact brute-force :class:`~sklearn.neighbors.NearestNeighbors`.
:class:`FaissIndex` wraps faiss (``pip install "sktap[faiss]"``), whose
HNSW graph answers in time sublinear in the references, at some recall.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_array, check_is_fitted

from .._sklearn_compat import Interval, StrOptions, fit_context

__all__ = ["FaissIndex", "check_index", "default_index"]


def default_index():
    """scikit-learn's exact brute-force search (BLAS on all cores)."""
    return NearestNeighbors(algorithm="brute")


def check_index(index):
    """``index`` if it has the interface a candidate index needs."""
    if index is None:
        return default_index()
    missing = [
        m for m in ("fit", "kneighbors") if not callable(getattr(index, m, None))
    ]
    if missing:
        raise TypeError(
            "candidate_index must have fit(X) and kneighbors(X, n_neighbors, "
            f"return_distance=False), as sklearn.neighbors.NearestNeighbors; "
            f"{type(index).__name__} lacks {', '.join(missing)}"
        )
    return index


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError(
            'FaissIndex needs faiss: pip install "sktap[faiss]" (or faiss-cpu)'
        ) from None
    return faiss


def _vectors(X):
    """``X`` as a C-contiguous float32 matrix of finite numbers."""
    return np.ascontiguousarray(check_array(X, dtype=np.float32))


class FaissIndex(BaseEstimator):
    """A faiss index with scikit-learn's ``fit`` / ``kneighbors``.

    Parameters
    ----------
    kind : {"hnsw", "flat"}, default="hnsw"
        "hnsw": a navigable small-world graph (approximate, sublinear);
        "flat": exact brute force in faiss.
    hnsw_m : int, default=32
        Graph degree of "hnsw".
    ef_search : int, default=128
        Breadth of an "hnsw" query (raised to ``n_neighbors`` when smaller);
        larger is slower and finds more of the true neighbours.
    ef_construction : int, default=80
        Breadth of the graph's construction.
    n_threads : int, optional
        faiss's OpenMP threads (None: faiss's default).

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.neighbors import FaissIndex
    >>> index = FaissIndex(kind="flat").fit(np.eye(4))  # doctest: +SKIP
    >>> index.kneighbors(np.eye(4)[:1], 2, return_distance=False)  # doctest: +SKIP
    array([[0, 1]])
    """

    _parameter_constraints = {
        "kind": [StrOptions({"hnsw", "flat"})],
        "hnsw_m": [Interval(Integral, 2, None, closed="left")],
        "ef_search": [Interval(Integral, 1, None, closed="left")],
        "ef_construction": [Interval(Integral, 1, None, closed="left")],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        kind="hnsw",
        *,
        hnsw_m=32,
        ef_search=128,
        ef_construction=80,
        n_threads=None,
    ):
        self.kind = kind
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.ef_construction = ef_construction
        self.n_threads = n_threads

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        faiss = _faiss()
        if self.n_threads is not None:
            faiss.omp_set_num_threads(self.n_threads)
        X = _vectors(X)
        if self.kind == "flat":
            index = faiss.IndexFlatL2(X.shape[1])
        else:
            index = faiss.IndexHNSWFlat(X.shape[1], self.hnsw_m)
            index.hnsw.efConstruction = self.ef_construction
        index.add(X)
        self.index_ = index
        self.n_samples_fit_ = len(X)
        self.n_features_in_ = X.shape[1]
        return self

    def kneighbors(self, X, n_neighbors, return_distance=True):
        """The ``n_neighbors`` nearest fitted vectors of each row of ``X``
        (indices; with their Euclidean distances if ``return_distance``).
        Leaves the fitted index untouched (safe from several threads)."""
        check_is_fitted(self, "index_")
        X = _vectors(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but FaissIndex was fitted with "
                f"{self.n_features_in_}"
            )
        if (
            not isinstance(n_neighbors, Integral)
            or isinstance(n_neighbors, bool)
            or not 1 <= n_neighbors <= self.n_samples_fit_
        ):
            raise ValueError(
                f"n_neighbors must be an integer in [1, {self.n_samples_fit_}]; "
                f"got {n_neighbors!r}"
            )
        faiss = _faiss()
        params = None
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(
                efSearch=max(self.ef_search, n_neighbors)
            )
        dist, ind = self.index_.search(X, n_neighbors, params=params)
        ind = ind.astype(np.int64)
        return (np.sqrt(np.maximum(dist, 0)), ind) if return_distance else ind

    def __getstate__(self):
        state = self.__dict__.copy()
        if "index_" in state:
            state["index_"] = _faiss().serialize_index(state["index_"])
        return state

    def __setstate__(self, state):
        if "index_" in state:
            state["index_"] = _faiss().deserialize_index(state["index_"])
        self.__dict__.update(state)
