"""What runs on the workers: the distance model and the tasks that use it.

Every function here is a dask task. The model (:class:`DistanceModel`) is
scattered once to every worker; the sequences it compares arrive as
:class:`~sktap.distributed._cluster.Packed` chunks, are encoded on the worker
(:func:`encode`) and stay there as :class:`Encoded` chunks. Tasks compare
one chunk of sources with one chunk of targets through the tiling executor,
so one task's extra memory stays under ``budget`` MiB, and reduce there:
a dense block, a top-k, or the pairs within a radius.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import torch

from .._engine import (
    InferenceContext,
    TAPKernel,
    iter_tiles,
    merge_topk,
    resolve_device,
    run_tiles,
    self_distances,
    sorted_topk,
    to_divergence,
)
from .._validation import Sequences

__all__ = [
    "DistanceModel",
    "Encoded",
    "dense_block",
    "encode",
    "merge_radius",
    "merge_topk_parts",
    "radius_part",
    "topk_part",
    "transpose",
]


class DistanceModel:
    """A fitted learner (or parameter-free TAP) made ready once per worker.

    Pickled to each worker once; there the learner's model goes to the
    device in one inference context and the kernels are built on first use,
    then shared by every task of that worker. Where the kernel cannot run
    tiles side by side (a GPU), the worker's tasks take turns, so a
    multi-threaded worker keeps one task's memory on its card.

    Parameters
    ----------
    learner : sktap metric learner or None
        A private, fitted copy (None: parameter-free TAP).
    device : str
        Resolved on the worker ("auto": its CUDA device when it has one).
    """

    def __init__(self, learner, device):
        self.learner = learner
        self.device = device
        self._setup()

    def _setup(self):
        self._lock = threading.Lock()  # builds the context and kernels once
        self._turns = threading.Lock()  # one task at a time on a GPU
        self._context = None
        self._kernels = {}

    def __getstate__(self):
        return {"learner": self.learner, "device": self.device}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._setup()

    def __sizeof__(self):
        model = getattr(self.learner, "model_", None)
        if not isinstance(model, torch.nn.Module):
            return 1024
        tensors = list(model.parameters()) + list(model.buffers())
        return 1024 + sum(t.numel() * t.element_size() for t in tensors)

    @property
    def n_features(self):
        return getattr(self.learner, "n_features_in_", None)

    def kernel(self, symmetric: bool):
        """The distance between encoded sequences, built once per worker."""
        with self._lock:
            if self._context is None:
                self._context = InferenceContext()
            if symmetric not in self._kernels:
                with self._context.active():
                    self._kernels[symmetric] = self._build_kernel(symmetric)
            return self._kernels[symmetric]

    def _build_kernel(self, symmetric):
        if self.learner is None:
            device = resolve_device(self.device)
            return TAPKernel(None, device, torch.float32, symmetric)
        return self.learner.distance_kernel(symmetric=symmetric)

    @contextlib.contextmanager
    def running(self, kernel):
        """The scope of one task: the model's context, and the GPU's turn."""
        turn = self._turns if not kernel.parallel else contextlib.nullcontext()
        with turn, self._context.active():
            yield

    def encode(self, seqs: Sequences) -> Sequences:
        if self.learner is None:
            return seqs
        return self.learner.encode(seqs)


class Encoded:
    """A chunk of encoded sequences kept on a worker.

    ``seqs`` are the encoded Sequences; ``self_d`` (n,) their
    self-distances under the symmetric kernel, for the "divergence" form
    (else None). The chunk keeps its upload to the kernel's device, so
    references on a GPU are copied there once.
    """

    __slots__ = ("_uploads", "self_d", "seqs")

    def __init__(self, seqs, self_d=None):
        self.seqs = seqs
        self.self_d = self_d
        self._uploads = {}

    def __len__(self):
        return len(self.seqs)

    def __reduce__(self):  # the uploads stay where they were made
        return (Encoded, (self.seqs, self.self_d))

    def __sizeof__(self):
        extra = 0 if self.self_d is None else self.self_d.nbytes
        return self.seqs.data.nbytes + self.seqs.lengths.nbytes + extra + 64

    def uploaded(self, kernel):
        key = id(kernel)
        if key not in self._uploads:
            self._uploads[key] = (kernel, kernel.upload(self.seqs))
        return self._uploads[key][1]


def encode(model, packed, form, budget):
    """Unpack and encode a chunk; with the self-distances for "divergence"."""
    kernel = model.kernel(bool(form))
    with model.running(kernel):
        z = model.encode(packed.unpack())
        self_d = None
        if form == "divergence":
            self_d = self_distances(kernel, z, budget, n_jobs=1)
    return Encoded(z, self_d)


def _tiles(model, kernel, zx, zy, form, budget):
    """Tiles ``(rows, cols, block)`` of ``zx`` x ``zy`` in the given form."""
    x, y = zx.uploaded(kernel), zy.uploaded(kernel)
    for rows, cols, block in iter_tiles(kernel, x, y, budget, n_jobs=1):
        if form == "divergence":
            to_divergence(block, zx.self_d[rows], zy.self_d[cols])
        yield rows, cols, block


def dense_block(model, zx, zy, form, budget, dtype, diagonal=False):
    """The distances (len(zx), len(zy)) in ``dtype``.

    ``diagonal``: ``zx`` is ``zy`` on the diagonal of a matrix of one set,
    whose divergence is exactly zero there.
    """
    kernel = model.kernel(bool(form))
    with model.running(kernel):
        x, y = zx.uploaded(kernel), zy.uploaded(kernel)
        out = run_tiles(kernel, x, y, budget, n_jobs=1)
    if form == "divergence":
        to_divergence(out, zx.self_d, zy.self_d)
        if diagonal:
            np.fill_diagonal(out, 0)
    return out.astype(dtype, copy=False)


def transpose(block):
    return np.ascontiguousarray(block.T)


def _without_self(block, rows, cols, q_offset, r_offset):
    """``block`` with the pairs of a sequence with itself at +inf."""
    if q_offset is None:
        return block
    same = (rows[:, None] + q_offset) == (cols[None, :] + r_offset)
    block[same] = np.inf
    return block


def topk_part(model, zq, zr, r_offset, k, form, budget, q_offset=None):
    """The ``min(k, len(zr))`` nearest references of ``zr`` to each query.

    Returns ``(dist, ind)``, both (len(zq), min(k, len(zr))), sorted by
    distance then reference index; ``ind`` counts from ``r_offset``.
    ``q_offset``: the queries are references too (from that index), and
    each one's own index is left out.
    """
    kernel = model.kernel(bool(form))
    k = min(k, len(zr))
    best_d = np.full((len(zq), k), np.inf)
    best_i = np.full((len(zq), k), -1, dtype=np.int64)
    with model.running(kernel):
        for rows, cols, block in _tiles(model, kernel, zq, zr, form, budget):
            block = _without_self(
                block.astype(np.float64), rows, cols, q_offset, r_offset
            )
            merge_topk(best_d, best_i, rows, cols + r_offset, block, k)
    return sorted_topk(best_d, best_i, k)


def merge_topk_parts(k, *parts):
    """The k nearest over every reference chunk's ``(dist, ind)``."""
    dist = np.concatenate([p[0] for p in parts], axis=1)
    ind = np.concatenate([p[1] for p in parts], axis=1)
    return sorted_topk(dist, ind, k)


def radius_part(model, zq, zr, r_offset, radius, form, budget, q_offset=None):
    """The pairs within ``radius``: ``(rows, cols, dist)``, unordered.

    ``rows`` index ``zq``; ``cols`` count from ``r_offset``; ``q_offset``
    as in :func:`topk_part`.
    """
    kernel = model.kernel(bool(form))
    found = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))]
    with model.running(kernel):
        for rows, cols, block in _tiles(model, kernel, zq, zr, form, budget):
            block = _without_self(
                block.astype(np.float64), rows, cols, q_offset, r_offset
            )
            r, c = np.nonzero(block <= radius)  # NaN is never within
            found.append((rows[r], cols[c] + r_offset, block[r, c]))
    return tuple(np.concatenate(a) for a in zip(*found))


def merge_radius(n_rows, *parts):
    """One query chunk's pairs within the radius as CSR parts.

    Returns ``(indptr (n_rows + 1,), indices, dist)`` with each row's
    references in increasing index order (as scikit-learn's brute search).
    """
    rows, cols, dist = (np.concatenate(a) for a in zip(*parts))
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols[order], dist[order]
