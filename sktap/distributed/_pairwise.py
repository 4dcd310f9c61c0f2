"""All-pairs TAP distances as a lazy dask array computed on the workers."""

from __future__ import annotations

import numbers
import uuid

import numpy as np

from .._engine import check_form, check_working_memory
from . import _worker
from ._cluster import (
    check_client,
    check_device,
    check_learner,
    chunk_workers,
    contiguous_chunks,
    import_distributed,
    owners,
    pack,
    scatter_models,
    scatter_to,
    validate,
)

__all__ = ["distance_array", "lazy_chunks", "pairwise_distances"]


def check_chunk_size(chunk_size, allow_none=False):
    if chunk_size is None and allow_none:
        return None
    if (
        not isinstance(chunk_size, numbers.Integral)
        or isinstance(chunk_size, bool)
        or chunk_size < 1
    ):
        also = " or None" if allow_none else ""
        raise ValueError(
            f"chunk_size must be a positive integer{also}; got {chunk_size!r}"
        )
    return int(chunk_size)


def result_dtype(learner):
    """float64 with a learner (as its ``pairwise_distances``), float32 without
    (as :func:`sktap.metrics.cdist_tap`)."""
    return np.dtype(np.float32 if learner is None else np.float64)


def encoded_chunks(models, parts, where, form, budget, label):
    """Lazy :class:`~sktap.distributed._worker.Encoded` chunks of scattered
    ``parts`` (futures of packed sequences, part ``i`` on ``where[i]``),
    each encoded by that worker's model."""
    dask, _ = import_distributed()
    encode = dask.delayed(_worker.encode, pure=False)
    return [
        encode(models[w], part, form, budget, dask_key_name=f"{label}-{i}")
        for i, (part, w) in enumerate(zip(parts, where))
    ]


def distance_array(models, rows, cols, form, budget, dtype, same=False):
    """A lazy dask array of distances from blocks computed on the workers.

    ``rows`` and ``cols`` are lists of ``(size, chunk, worker)`` where
    ``chunk`` is a future or a delayed
    :class:`~sktap.distributed._worker.Encoded` made on ``worker``; the
    block of column ``j`` uses the model of its worker, where it will most
    likely run. ``same``: ``cols`` is ``rows`` (one set against itself), so
    with a symmetric form the blocks below the diagonal are the transposes
    of those above, computed once.
    """
    dask, _ = import_distributed()
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    name = f"sktap-distances-{uuid.uuid4().hex}"
    mirror = same and form is not False
    block = dask.delayed(_worker.dense_block)
    transpose = dask.delayed(_worker.transpose)
    blocks = {}
    for i, (_, zx, _) in enumerate(rows):
        for j, (_, zy, w) in enumerate(cols):
            key = (name, i, j)
            if mirror and j < i:
                blocks[key] = transpose(blocks[(name, j, i)], dask_key_name=key)
            else:
                diagonal = same and i == j
                blocks[key] = block(
                    models[w], zx, zy, form, budget, dtype, diagonal, dask_key_name=key
                )
    graph = HighLevelGraph.merge(*(b.dask for b in blocks.values()))
    chunks = (tuple(r[0] for r in rows), tuple(c[0] for c in cols))
    return da.Array(graph, name, chunks, meta=np.empty((0, 0), dtype=dtype))


def lazy_chunks(client, models, seqs, chunks, form, budget, label):
    """``[(size, delayed encoded chunk, worker)]``: each chunk of ``seqs``
    scattered to a worker (round robin) and encoded there when computed."""
    where = owners({w: 1 for w in models}, len(chunks))
    parts = scatter_to(client, [pack(seqs, c) for c in chunks], where)
    zs = encoded_chunks(models, parts, where, form, budget, label)
    return [(len(c), z, w) for c, z, w in zip(chunks, zs, where)]


def pairwise_distances(
    X,
    Y=None,
    *,
    metric_learner=None,
    symmetric=False,
    chunk_size=256,
    working_memory=None,
    device="auto",
    client=None,
):
    """TAP distances between two sets of sequences, as a lazy dask array.

    The sets are validated on the client, cut into chunks of ``chunk_size``
    sequences and scattered (without their padding) to the cluster, with
    the learner's weights sent once to every worker. Each chunk is encoded
    on a worker, and each block of the result is computed on a worker
    through the tiling executor, its extra memory bounded by
    ``working_memory``. Nothing runs before the array is computed; the
    client holds no distances until then, and only what it asks for after.

    Parameters
    ----------
    X : array-like of shape (n_x, sz, d) or (n_x, sz), or list of (L_i, d)
        Sources (tslearn format, trailing-NaN padding allowed).
    Y : same as X, optional
        Targets; None means ``Y = X``.
    metric_learner : fitted sktap metric learner or None, default=None
        None: parameter-free TAP (as :func:`sktap.metrics.cdist_tap`).
        Otherwise the learner's distance (as its ``pairwise_distances``):
        anything with ``encode`` and ``distance_kernel``, such as a fitted
        :class:`~sktap.TAPMetricLearner`; a copy travels to the workers.
    symmetric : bool or "divergence", default=False
        False: ``tap(x, y)`` with ``x`` the source. True: the average of both
        directions. "divergence": ``max(0, s(x, y) - (s(x, x) + s(y, y)) /
        2)`` of that average ``s``, zero on the diagonal when ``Y`` is None.
        With ``Y`` None and a symmetric form, each block below the diagonal
        is the transpose of the one above it, computed once.
    chunk_size : int, default=256
        Sequences per chunk along each axis: one block of the array is
        ``chunk_size x chunk_size`` distances, computed by one task.
    working_memory : float, optional
        MiB bound on one tile of TAP work inside a task; defaults to
        scikit-learn's ``working_memory`` setting (read on the client).
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where the workers compute, resolved on each worker ("auto": its
        CUDA device when it has one). It replaces the learner's own
        ``device`` on the workers' copy.
    client : distributed.Client, optional
        The cluster to use; None means the default client. Compute the
        array with this client (``client.compute(D)``, or ``D.compute()``
        when it is the default one).

    Returns
    -------
    dask.array.Array of shape (n_x, n_y)
        float32 for parameter-free TAP (as :func:`~sktap.metrics.cdist_tap`),
        float64 with a learner (as its ``pairwise_distances``).

    Notes
    -----
    Tasks of a lazy array take resources at compute time: on workers
    started with ``--resources GPU=1``, use ``D.compute(resources={"GPU":
    1})`` (dask's graph optimisation drops annotations made while building
    the array). Whatever the placement, the tasks of one worker take turns
    on its GPU.

    Examples
    --------
    >>> import numpy as np
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from sktap.distributed import pairwise_distances
    >>> client = Client(LocalCluster(n_workers=2))  # doctest: +SKIP
    >>> X = [np.random.randn(n, 2) for n in range(5, 50)]  # doctest: +SKIP
    >>> D = pairwise_distances(
    ...     X, symmetric="divergence", chunk_size=16
    ... )  # doctest: +SKIP
    >>> D.compute().shape  # doctest: +SKIP
    (45, 45)
    """
    client = check_client(client)
    form = check_form(symmetric)
    chunk_size = check_chunk_size(chunk_size)
    budget = check_working_memory(working_memory)
    device = check_device(device)
    learner = check_learner(metric_learner, device)
    n_features = None if learner is None else learner.n_features_in_
    Xs = validate(X, "X", n_features)
    Ys = None if Y is None else validate(Y, "Y", Xs.n_features)
    # the weights, once to every worker
    workers = chunk_workers(client, None)
    models = scatter_models(client, _worker.DistanceModel(learner, device), workers)
    token = uuid.uuid4().hex

    def side(seqs, label):
        chunks = contiguous_chunks(seqs.lengths, chunk_size)
        label = f"sktap-encode-{label}-{token}"
        return lazy_chunks(client, models, seqs, chunks, form, budget, label)

    rows = side(Xs, "x")
    cols = rows if Ys is None else side(Ys, "y")
    dtype = result_dtype(learner)
    return distance_array(models, rows, cols, form, budget, dtype, same=Ys is None)
