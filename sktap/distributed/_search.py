"""How :class:`DistributedReferences` places its chunks and runs its searches.

References are placed once: chunk ``j`` is scattered to its worker and
encoded there. A search scatters each chunk of queries to the workers
holding references, encodes it there, runs one task per (query chunk,
reference chunk) on the reference's worker and merges a query chunk's parts
on a worker; the client gathers only the merged results.
"""

from __future__ import annotations

import math
import numbers
import uuid

import numpy as np
from scipy.sparse import csr_matrix

from .._engine import length_chunks
from . import _worker
from ._cluster import import_distributed, pack, scatter_to

__all__ = [
    "check_k",
    "check_mode",
    "check_radius",
    "knn_graph",
    "place_references",
    "radius_graph",
    "search",
]


def place_references(client, models, seqs, chunks, where, settings):
    """Scatter each chunk to its worker, encode it there; wait for them all.

    Returns the futures of the encoded chunks; a worker's error (a device it
    lacks, say) is raised here.
    """
    _, distributed = import_distributed()
    form, budget, resources, _ = settings
    token = uuid.uuid4().hex
    raw = scatter_to(client, [pack(seqs, c) for c in chunks], where)
    references = [
        client.submit(
            _worker.encode,
            models[owner],
            part,
            form,
            budget,
            key=f"sktap-reference-{token}-{j}",
            workers=[owner],
            resources=resources,
            pure=False,
        )
        for j, (part, owner) in enumerate(zip(raw, where))
    ]
    del raw  # each raw chunk is released once encoded
    distributed.wait(references)
    for future in references:
        if future.status == "error":
            future.result()
    return references


def _query_chunks(index, seqs, token):
    """``(q_idx, {worker: encoded chunk}, q_offset)`` per chunk of queries.

    Each raw chunk (length-sorted, at most ``working_memory`` MiB of padded
    float32 frames) is scattered once to every worker holding references
    and encoded there. ``seqs`` None: the references themselves
    (``q_offset``: the chunk's first index; self-pairs are left out).
    """
    form, budget, resources, _ = index._settings
    holders = sorted(set(index.chunk_workers_))
    if seqs is None:
        sizes = index._chunk_sizes
        for ref, off, n in zip(index.references_, index.chunk_offsets_, sizes):
            yield np.arange(off, off + n), dict.fromkeys(holders, ref), int(off)
        return
    client = index.client_
    rows = budget * 2**20 / (4 * seqs.n_features)
    order = np.argsort(seqs.lengths, kind="stable")
    for i, q_idx in enumerate(length_chunks(order, seqs.lengths, rows)):
        packed = pack(seqs, q_idx)
        raw = scatter_to(client, [packed] * len(holders), holders)
        encoded = {
            w: client.submit(
                _worker.encode,
                index.models_[w],
                raw[k],
                form,
                budget,
                key=f"sktap-query-{token}-{i}-{k}",
                workers=[w],
                resources=resources,
                pure=False,
            )
            for k, w in enumerate(holders)
        }
        yield q_idx, encoded, None


def _parts(index, part, zq, value, q_offset, label):
    """One ``part`` task per reference chunk, on the chunk's worker."""
    form, budget, resources, _ = index._settings
    chunks = zip(index.references_, index.chunk_offsets_, index.chunk_workers_)
    return [
        index.client_.submit(
            part,
            index.models_[w],
            zq[w],
            ref,
            int(off),
            value,
            form,
            budget,
            q_offset,
            key=f"{label}-{j}",
            workers=[w],
            resources=resources,
            pure=False,
        )
        for j, (ref, off, w) in enumerate(chunks)
    ]


def search(index, seqs, part, merge, value):
    """``[(q_idx, merged)]`` over the chunks of queries ``seqs`` (None: the
    references), a few chunks in flight at a time.

    ``part(model, zq, zr, r_offset, value, form, budget, q_offset)`` runs per
    (query chunk, reference chunk); ``merge`` reduces a query chunk's parts
    on a worker (``merge(k, *parts)`` for the top-k, ``merge(n_rows,
    *parts)`` for radius pairs).
    """
    client, token = index.client_, uuid.uuid4().hex
    name = part.__name__.replace("_", "-")
    in_flight = 2 * len(set(index.chunk_workers_))
    chunks = _query_chunks(index, seqs, token)
    out = []
    while batch := [c for _, c in zip(range(in_flight), chunks)]:
        merged = []
        for q_idx, zq, q_offset in batch:
            i = len(out) + len(merged)
            label = f"sktap-{name}-{token}-{i}"
            parts = _parts(index, part, zq, value, q_offset, label)
            arg = value if merge is _worker.merge_topk_parts else len(q_idx)
            key = f"sktap-merge-{token}-{i}"
            merged.append(client.submit(merge, arg, *parts, key=key, pure=False))
        out.extend(zip((q for q, _, _ in batch), client.gather(merged)))
    return out


def check_k(k, n_refs, exclude_self):
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"n_neighbors must be a positive integer; got {k!r}")
    available = n_refs - exclude_self
    if k > available:
        other = " other" if exclude_self else ""
        raise ValueError(
            f"n_neighbors={k} is larger than the number of{other} "
            f"references ({available})"
        )
    return int(k)


def check_radius(radius):
    if (
        not isinstance(radius, numbers.Real)
        or isinstance(radius, bool)
        or not math.isfinite(radius)
        or radius <= 0
    ):
        raise ValueError(f"radius must be a positive number; got {radius!r}")
    return float(radius)


def check_mode(mode):
    if mode not in ("connectivity", "distance"):
        raise ValueError(f"mode must be 'connectivity' or 'distance'; got {mode!r}")


def knn_graph(dist, ind, n_refs, mode):
    """The csr graph (n, n_refs) of a top-k, as scikit-learn builds it."""
    n, k = ind.shape
    data = np.ones(n * k) if mode == "connectivity" else dist.ravel()
    indptr = np.arange(0, n * k + 1, k)
    return csr_matrix((data, ind.ravel(), indptr), shape=(n, n_refs))


def radius_graph(found, n, n_refs, mode):
    """The csr graph (n, n_refs) of the query chunks' merged radius parts.

    ``found`` is ``[(q_idx, (indptr, indices, dist))]``, each chunk's rows
    in the order of its ``q_idx``.
    """
    counts = np.zeros(n, dtype=np.int64)
    for q_idx, (local, _, _) in found:
        counts[q_idx] = np.diff(local)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.empty(indptr[-1], dtype=np.int64)
    data = np.empty(indptr[-1])
    for q_idx, (local, cols, dist) in found:
        # each local row's entries go to its query's row of the graph
        shift = np.repeat(indptr[q_idx] - local[:-1], np.diff(local))
        dest = shift + np.arange(len(cols))
        indices[dest], data[dest] = cols, dist
    if mode == "connectivity":
        data[:] = 1.0
    return csr_matrix((data, indices, indptr), shape=(n, n_refs))
