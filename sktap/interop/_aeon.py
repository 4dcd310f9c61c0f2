"""sktap's learned distance as an aeon ``distance=`` callable.

What aeon (1.6) does with a callable ``distance``, which this adapter is
built around:

- It has no batched hook: every estimator calls ``distance(x, y)`` once per
  pair, each series a 2-D ``(n_channels, n_timepoints)`` array (univariate
  ones as ``(1, n_timepoints)``), through
  ``aeon.distances.pairwise_distance`` or its own loops.
- ``pairwise_distance(X, Y)`` calls ``distance(X[i], Y[j])`` row by row,
  for every pair. ``pairwise_distance(X)`` calls ``distance(X[i], X[j])``
  for ``i < j`` only, mirrors the value to ``(j, i)`` and leaves 0 on the
  diagonal.
- ``KNeighborsTimeSeriesClassifier.predict`` runs ``pairwise_distance`` on
  one query at a time against the training set: the query is the first
  argument. ``kneighbors()`` without ``X`` takes the one-set path above.
- ``TimeSeriesKMedoids`` calls ``distance(X[i], X[j])`` for whichever order
  of a pair it needs first, stores the value for both orders, and does call
  ``distance(X[i], X[i])`` for the diagonal.

One TAP pair at a time is about 30 times slower than a batched row, so the
callable batches behind aeon's back (values change by float32 rounding at
most): it keeps
each distinct series' encoding by content, and when a new source ``x``
asks for a target that the previous source also asked for, it expects the
same targets to follow in the same order (as in every pattern above) and
scores ``x`` against all of them in one tiled pass, serving the next calls
from that row.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict

import numpy as np

from .._config import config_context
from .._engine import (
    TAPKernel,
    check_form,
    check_working_memory,
    resolve_device,
    run_tiles,
    self_distances,
    to_divergence,
)
from .._validation import Sequences, check_sequences, pad_sequences
from ._common import check_fitted_learner

__all__ = ["AeonTAPDistance", "aeon_distance"]

# Encoded series one callable keeps. A k-NN predict revisits the training
# set once per query, so the budget should hold it; past it the least
# recently used series go.
_CACHE_BYTES = 256 * 2**20
# Bound on the padded targets of one prefetched row (the TAP work itself is
# bounded by scikit-learn's working_memory, as in every sktap tiling).
_ROW_BYTES = 64 * 2**20
# Targets remembered per source: a row longer than this is not replayed
# beyond it (each key is about 100 bytes).
_ROW_KEYS = 2**20


def _key(a):
    """A series' identity: its shape, dtype and a digest of its values.

    aeon hands over a new view of a series at every call, so identity by
    object is useless. A 256-bit digest keeps the keys small; two different
    series sharing one is as likely as a SHA-256 collision.
    """
    digest = hashlib.blake2b(np.ascontiguousarray(a).data, digest_size=32)
    return a.shape, a.dtype.str, digest.digest()


def _n_channels(a):
    return 1 if a.ndim == 1 else a.shape[0]


def _stack(encoded):
    """One zero-padded Sequences from a list of one-series ones."""
    series = [e.seqs.data[0, : e.seqs.lengths[0]] for e in encoded]  # (L_i, d)
    return Sequences(*pad_sequences(series))


class _Encoded:
    """One series ready for the kernel: encoded frames and, lazily, ``s(x, x)``."""

    __slots__ = ("self_distance", "seqs")

    def __init__(self, seqs):
        self.seqs = seqs  # Sequences holding one series, (1, L', d')
        self.self_distance = None  # in the kernel's result dtype


class _EncodingCache:
    """Least-recently-used store of encoded series, bounded in bytes.

    A lock guards it because aeon may call the distance from several
    threads (joblib's threading backend).
    """

    def __init__(self, max_bytes):
        self._items = OrderedDict()  # key -> _Encoded
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            encoded = self._items.get(key)
            if encoded is not None:
                self._items.move_to_end(key)
            return encoded

    def put(self, key, encoded):
        with self._lock:
            if key in self._items:
                return self._items[key]
            self._items[key] = encoded
            self._bytes += encoded.seqs.data.nbytes
            # the newest entry stays even alone over budget: it is in use
            while self._bytes > self._max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.seqs.data.nbytes
            return encoded


class _Rows:
    """Distances from the current source, and the targets of the previous one."""

    def __init__(self):
        self._lock = threading.Lock()
        self._source = None
        self._values = {}  # target key -> distance from the current source
        self._asked = []  # target keys asked of the current source, in order
        self._previous = []  # the same for the previous source
        self._position = {}  # key -> first position in _previous

    def lookup(self, ka, kb):
        """The stored distance from ``ka`` to ``kb``, or None; notes the request."""
        with self._lock:
            if ka != self._source:
                if self._asked:
                    self._previous = self._asked
                    self._position = {}
                    for i, k in enumerate(self._asked):
                        self._position.setdefault(k, i)
                self._source, self._values, self._asked = ka, {}, []
            if len(self._asked) < _ROW_KEYS:
                self._asked.append(kb)
            return self._values.get(kb)

    def expected_after(self, kb):
        """The targets that followed ``kb`` for the previous source."""
        with self._lock:
            pos = self._position.get(kb)
            return [] if pos is None else self._previous[pos + 1 :]

    def store(self, ka, values):
        with self._lock:
            if ka == self._source:  # else another thread moved on
                self._values.update(values)


class AeonTAPDistance:
    """``distance(x, y) -> float``: what aeon receives from :func:`aeon_distance`.

    Build it with :func:`aeon_distance`, which validates the arguments.
    Instances pickle (without their caches) and so travel to joblib workers.

    Parameters
    ----------
    metric_learner : fitted sktap metric learner or None
        A private copy of the learner (the caller's may be refitted freely).
    symmetric : bool or "divergence"
    device : str or torch.device
    """

    def __init__(self, metric_learner, symmetric, device):
        self.metric_learner = metric_learner
        self.symmetric = symmetric
        self.device = device
        self._reset()

    def _reset(self):
        self._cache = _EncodingCache(_CACHE_BYTES)
        self._rows = _Rows()
        self._kernel = None

    def __getstate__(self):
        # caches and the kernel (a copy of the network) are rebuilt on use
        return {
            "metric_learner": self.metric_learner,
            "symmetric": self.symmetric,
            "device": self.device,
        }

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset()

    def __repr__(self):
        return (
            f"{type(self).__name__}(metric_learner={self.metric_learner!r}, "
            f"symmetric={self.symmetric!r}, device={self.device!r})"
        )

    def _get_kernel(self):
        if self._kernel is None:
            scored = bool(self.symmetric)  # the divergence scores the average
            if self.metric_learner is None:
                device = resolve_device(self.device)
                self._kernel = TAPKernel(None, device, symmetric=scored)
            else:
                self._kernel = self.metric_learner.distance_kernel(symmetric=scored)
        return self._kernel

    def _as_series(self, x, name):
        """``x`` as a numeric (C, L) or (L,) array; a view, never modified."""
        a = np.asarray(x)
        if a.ndim not in (1, 2):
            raise ValueError(
                f"{name} must be one series of shape (n_channels, n_timepoints) "
                f"or (n_timepoints,), as aeon passes it; got an array of shape "
                f"{a.shape}"
            )
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers; got dtype {a.dtype}")
        learner = self.metric_learner
        if learner is not None and _n_channels(a) != learner.n_features_in_:
            raise ValueError(
                f"{name} has {_n_channels(a)} channels, but the metric learner "
                f"was fitted on {learner.n_features_in_}"
            )
        return a

    def _encoded(self, a, key, name):
        encoded = self._cache.get(key)
        if encoded is not None:
            return encoded
        # aeon's layout, whatever the caller's sktap setting
        with config_context(layout="channels_first"):
            if self.metric_learner is None:
                seqs = check_sequences([a], name=name)
            else:
                seqs = self.metric_learner.encode([a], name=name)
        return self._cache.put(key, _Encoded(seqs))

    def _prefetch(self, kb, zy):
        """``[(kb, zy)]`` and the expected targets after ``kb`` still cached."""
        targets, seen = [(kb, zy)], {kb}
        max_len, d = zy.seqs.data.shape[1:]
        for key in self._rows.expected_after(kb):
            encoded = None if key in seen else self._cache.get(key)
            if encoded is None:
                continue
            max_len = max(max_len, encoded.seqs.data.shape[1])
            if (len(targets) + 1) * max_len * d * 8 > _ROW_BYTES:
                break
            targets.append((key, encoded))
            seen.add(key)
        return targets

    def _self_distances(self, encoded, kernel, budget):
        """``s(z, z)`` (n,) of each encoded series, computed once per series."""
        missing = [e for e in encoded if e.self_distance is None]
        if missing:
            # paired passes, as sktap's own divergence scores them
            for e, s in zip(missing, self_distances(kernel, _stack(missing), budget)):
                e.self_distance = s
        return np.array([e.self_distance for e in encoded])

    def _row(self, zx, targets):
        """Distances ``{key: d}`` from ``zx`` to each target, in one tiled pass."""
        kernel, budget = self._get_kernel(), check_working_memory(None)
        encoded = [e for _, e in targets]
        out = run_tiles(kernel, zx.seqs, _stack(encoded), budget)  # (1, m)
        if self.symmetric == "divergence":
            # the same arithmetic, in the same dtype, as sktap's matrix form
            sx = self._self_distances([zx], kernel, budget)
            sy = self._self_distances(encoded, kernel, budget)
            to_divergence(out, sx, sy)
        return {key: float(d) for (key, _), d in zip(targets, out[0])}

    def __call__(self, x, y):
        a, b = self._as_series(x, "x"), self._as_series(y, "y")
        if _n_channels(a) != _n_channels(b):
            raise ValueError(
                f"x has {_n_channels(a)} channels and y has {_n_channels(b)}; "
                "both series must have the same number of channels"
            )
        ka, kb = _key(a), _key(b)
        stored = self._rows.lookup(ka, kb)
        # before the stored row: there s(x, x) comes from a padded batch,
        # a rounding away from the paired self-distance it cancels
        if self.symmetric == "divergence" and ka == kb:
            return 0.0
        if stored is not None:
            return stored
        zx, zy = self._encoded(a, ka, "x"), self._encoded(b, kb, "y")
        values = self._row(zx, self._prefetch(kb, zy))
        self._rows.store(ka, values)
        return values[kb]


def aeon_distance(metric_learner=None, *, symmetric=True, device="auto"):
    """A learned TAP distance to pass to aeon as ``distance=``.

    aeon's distance-based estimators (``KNeighborsTimeSeriesClassifier``,
    ``TimeSeriesKMedoids``, ``aeon.distances.pairwise_distance`` ...) take a
    callable ``distance(x, y) -> float`` on two series in aeon's layout.
    This returns one with the distance of a fitted sktap metric learner, or
    parameter-free TAP::

        from aeon.classification.distance_based import (
            KNeighborsTimeSeriesClassifier,
        )
        knn = KNeighborsTimeSeriesClassifier(
            distance=aeon_distance(learner, symmetric=False)
        )
        knn.fit(X_train, y_train).predict(X_test)

    Parameters
    ----------
    metric_learner : fitted sktap metric learner, FrozenEstimator or None, \
default=None
        Whose learned distance to use, for example a fitted
        :class:`~sktap.TAPMetricLearner`; None is parameter-free TAP. The
        callable keeps a private copy: refitting the learner later does not
        change it (build a new one).
    symmetric : bool or "divergence", default=True
        - False: ``tap(x, y)`` with ``x`` the source, the paper's distance.
          Right only where aeon computes every pair, as
          ``KNeighborsTimeSeriesClassifier.predict(X)`` does (the query is
          ``x``; its ranking then equals
          :class:`~sktap.TAPKNeighborsClassifier` with ``symmetric=False``).
          Wrong wherever aeon mirrors a one-set matrix (see Notes).
        - True: ``(tap(x, y) + tap(y, x)) / 2``. Mirroring is then exact,
          but TAP's self-distance ``tap(x, x)`` is not zero.
        - "divergence": ``max(0, s(x, y) - (s(x, x) + s(y, y)) / 2)`` of that
          average ``s``: symmetric, non-negative and exactly 0 between two
          equal series. The form for clustering (``TimeSeriesKMedoids``,
          ``TimeSeriesAgglomerative``) and anything else that takes
          ``d(x, x) = 0`` for granted.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where parameter-free TAP runs ("auto": CUDA when present). A fitted
        learner runs on its own ``device``.

    Returns
    -------
    AeonTAPDistance
        A picklable callable ``distance(x, y) -> float``. ``x`` and ``y``
        are 2-D arrays ``(n_channels, n_timepoints)`` or 1-D
        ``(n_timepoints,)``; their lengths may differ. It equals the entry
        of ``metric_learner.pairwise_distances([x.T], [y.T], symmetric=...)``
        (to float32 rounding) and never modifies its inputs.

    Notes
    -----
    aeon calls the distance once per pair; it has no hook for a callable
    that computes a whole matrix at once. The callable keeps the encoding
    of every series it has seen (by content, up to 256 MiB, least recently
    used first out), and when a source asks for a target that the previous
    source also asked for, it scores the source against the targets that
    followed then, in one tiled pass, and answers the next calls from that
    row (values are those of the pair alone, to float32 rounding). aeon's
    row-by-row loops (``pairwise_distance``, k-NN ``predict``,
    ``TimeSeriesKMedoids``) thus cost one batched row per source after the
    first. :meth:`~sktap.TAPMetricLearner.pairwise_distances` on the whole
    set is still faster; scikit-learn estimators with
    ``metric="precomputed"`` take its result.

    What aeon assumes of a distance, and what it means for TAP:

    - **Symmetry.** ``pairwise_distance(X)`` (one set) computes
      ``d(X[i], X[j])`` for ``i < j`` only and copies it to ``(j, i)``, and
      ``TimeSeriesKMedoids`` computes each pair in one order only. With
      ``symmetric=False`` the other order is silently wrong, so aeon's
      ``kneighbors()`` without ``X``, clustering and every one-set matrix
      need ``True`` or ``"divergence"``.
    - **Zero diagonal.** ``pairwise_distance(X)`` leaves 0 on the diagonal
      without calling the distance, while ``TimeSeriesKMedoids`` does call
      ``d(x, x)``. With ``symmetric=True`` the two disagree, since
      ``tap(x, x) > 0`` (each frame spreads its mass over several frames):
      a medoid's cost includes its own self-distance. With ``"divergence"``
      both are exactly 0, and aeon's one-set matrices equal
      ``metric_learner.pairwise_distances(X, symmetric="divergence")``.
    - **Parallelism.** With ``n_jobs > 1`` aeon stacks the series into one
      array first, which fails for unequal lengths (inside aeon, before any
      call), and sets numba's thread count to ``n_jobs``, which fails where
      ``NUMBA_NUM_THREADS`` is lower. For equal lengths the callable is
      pickled to joblib's worker processes, where its caches start empty:
      ``n_jobs=1`` with the row batching is usually as fast.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.interop import aeon_distance
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2, 30))  # aeon's layout: 2 channels, 30 steps
    >>> y = rng.normal(size=(2, 25))  # lengths may differ
    >>> dist = aeon_distance(device="cpu")  # parameter-free TAP, averaged
    >>> bool(np.isclose(dist(x, y), dist(y, x)))
    True
    >>> div = aeon_distance(symmetric="divergence", device="cpu")
    >>> div(x, x), div(x, y) > 0
    (0.0, True)
    """
    metric_learner = check_fitted_learner(metric_learner)
    symmetric = check_form(symmetric)
    resolve_device(device)  # a bad device fails here, not at aeon's first call
    learner = None if metric_learner is None else copy.deepcopy(metric_learner)
    return AeonTAPDistance(learner, symmetric, device)
