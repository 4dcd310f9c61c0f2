"""Public TAP distances on numpy input: one pair, or all pairs in tiles."""

from __future__ import annotations

import copy
import math
import numbers
import warnings

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn import get_config

from .._device import resolve_device, resolve_dtype
from .._tap import tap_paired, tap_pairwise
from .._validation import Sequences, check_sequence, check_sequences

__all__ = ["cdist_tap", "tap_alignment", "tap_distance"]

_LOW_PRECISION = (torch.bfloat16, torch.float16)


def _check_net(net):
    if net is not None and not isinstance(net, torch.nn.Module):
        raise TypeError(
            "net must be None (parameter-free TAP) or a torch.nn.Module such as "
            f"sktap.TAPNet; got {type(net).__name__}"
        )
    return net


def _prepare_net(net, device, dtype):
    """A private eval-mode copy of ``net`` on ``device`` (the caller's is untouched)."""
    if net is None:
        return None
    return copy.deepcopy(net).to(device=device, dtype=dtype).eval()


def _net_width(net) -> int:
    if net is None:
        return 0
    channels = getattr(net, "channels", None)
    return max(channels) if channels else 64


def _check_working_memory(working_memory) -> float:
    if working_memory is None:
        return float(get_config()["working_memory"])
    if (
        not isinstance(working_memory, numbers.Real)
        or isinstance(working_memory, bool)
        or not math.isfinite(working_memory)
        or working_memory <= 0
    ):
        raise ValueError(
            f"working_memory must be a positive number of MiB; got {working_memory!r}"
        )
    return float(working_memory)


def _bytes_per_cell(net, net_dtype, dist_dtype) -> int:
    """Peak bytes a pair needs per cell of its Lx x Ly grid (activations + D, P, T)."""
    net_item = torch.empty((), dtype=net_dtype).element_size()
    dist_item = torch.empty((), dtype=dist_dtype).element_size()
    return net_item * (2 * _net_width(net) + 4) + dist_item * 12


def _chunks(order, lengths, row_budget):
    """Split sequences sorted by length so that count * max_len <= row_budget."""
    chunks, start = [], 0
    while start < len(order):
        stop = start + 1
        while (
            stop < len(order)
            and (stop + 1 - start) * lengths[order[stop]] <= row_budget
        ):
            stop += 1
        chunks.append(order[start:stop])
        start = stop
    return chunks


def _to_device(x, lx, y, ly, device, dtype):
    """One tile's padded arrays and lengths as tensors on ``device``."""
    return (
        torch.as_tensor(x, dtype=dtype).to(device),
        torch.as_tensor(lx).to(device),
        torch.as_tensor(y, dtype=dtype).to(device),
        torch.as_tensor(ly).to(device),
    )


def _tile(net, x, lx, y, ly, device, dist_dtype, symmetric):
    """Distances of one tile (a, b) as a numpy array; runs in a joblib worker."""
    with torch.inference_mode():
        xt, lxt, yt, lyt = _to_device(x, lx, y, ly, device, dist_dtype)
        out = tap_pairwise(xt, lxt, yt, lyt, net, symmetric=symmetric)
        return out.to("cpu", dist_dtype).numpy()


def _plan_tiles(net, X: Sequences, Y: Sequences, dtype, budget):
    """``(dist_dtype, x_chunks, y_chunks)``: one tile per pair of chunks."""
    dist_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    cells = budget * 2**20 / _bytes_per_cell(net, dtype, dist_dtype)
    row_budget = math.sqrt(cells)
    x_order = np.argsort(X.lengths, kind="stable")
    y_order = np.argsort(Y.lengths, kind="stable")
    x_chunks = _chunks(x_order, X.lengths, row_budget)
    # few short sources (a k-NN query chunk) leave room for wider tiles
    x_rows = max(len(c) * int(X.lengths[c[-1]]) for c in x_chunks)
    y_chunks = _chunks(y_order, Y.lengths, max(row_budget, cells / x_rows))
    return dist_dtype, x_chunks, y_chunks


def _tile_tasks(run_net, X, Y, x_chunks, y_chunks, device, dist_dtype, symmetric):
    """One delayed tile per (x chunk, y chunk), row-major, built lazily.

    Lazy, so that joblib's ``pre_dispatch`` bounds how many tiles' inputs
    exist at once.
    """
    for xi in x_chunks:
        xs = X.take(xi)
        for yi in y_chunks:
            ys = Y.take(yi)
            yield delayed(_tile)(
                run_net,
                xs.data,
                xs.lengths,
                ys.data,
                ys.lengths,
                device,
                dist_dtype,
                symmetric,
            )


def _iter_tiles(
    net, X: Sequences, Y: Sequences, device, dtype, symmetric, budget, n_jobs
):
    """Stream the TAP distances ``X x Y`` tile by tile, never the whole matrix.

    Yields
    ------
    rows : ndarray of shape (a,)
        Indices into ``X`` of the tile's rows.
    cols : ndarray of shape (b,)
        Indices into ``Y`` of its columns.
    block : ndarray of shape (a, b)
        ``tap(X[rows[i]], Y[cols[j]])``; its pairs' extra memory is at most
        ``budget`` MiB (or one pair, if a single pair needs more).
    """
    dist_dtype, x_chunks, y_chunks = _plan_tiles(net, X, Y, dtype, budget)
    run_net = _prepare_net(net, device, dtype)
    n_jobs = 1 if device.type != "cpu" else n_jobs
    tasks = _tile_tasks(
        run_net, X, Y, x_chunks, y_chunks, device, dist_dtype, symmetric
    )
    # return_as="generator": finished tiles are handed over as they come, so at
    # most joblib's pre_dispatch tiles are held at once.
    blocks = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    index = ((xi, yi) for xi in x_chunks for yi in y_chunks)
    for (xi, yi), block in zip(index, blocks):
        yield xi, yi, block


def _run_tiles(
    net, X: Sequences, Y: Sequences, device, dtype, symmetric, budget, n_jobs
):
    dist_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    out = np.empty(
        (len(X), len(Y)),
        dtype=np.float64 if dist_dtype == torch.float64 else np.float32,
    )
    for xi, yi, block in _iter_tiles(
        net, X, Y, device, dtype, symmetric, budget, n_jobs
    ):
        out[np.ix_(xi, yi)] = block
    return out


def _paired_tile(net, x, lx, y, ly, device, symmetric):
    """Distances of the pairs ``(x[k], y[k])`` of one batch; runs in a worker."""
    with torch.inference_mode():
        xt, lxt, yt, lyt = _to_device(x, lx, y, ly, device, torch.float32)
        out = tap_paired(xt, lxt, yt, lyt, net)
        if symmetric:
            out = (out + tap_paired(yt, lyt, xt, lxt, net)) / 2
        return out.float().cpu().numpy()


def _pair_batches(lx, ly, cells):
    """Split pairs (sorted by lx, then ly) so that count * max lx * max ly <= cells."""
    batches, start, n = [], 0, len(lx)
    while start < n:
        width = min(n - start, 64)
        while True:  # double the window: work stays linear in the batch size
            lx_max = np.maximum.accumulate(lx[start : start + width])
            ly_max = np.maximum.accumulate(ly[start : start + width])
            fits = np.arange(1, width + 1) * lx_max * ly_max <= cells
            if not fits.all() or width == n - start:
                break
            width = min(n - start, 2 * width)
        size = width if fits.all() else max(1, int(np.argmin(fits)))
        batches.append((start, start + size))
        start += size
    return batches


def _iter_pairs(
    net, X: Sequences, Y: Sequences, rows, cols, device, symmetric, budget, n_jobs
):
    """Stream the TAP distances of the pairs ``(X[rows[p]], Y[cols[p]])``.

    Pairs are sorted by length and batched for :func:`sktap.functional.tap_paired`
    under the memory bound ``budget`` (MiB), in float32.

    Yields
    ------
    positions : ndarray of shape (n_batch,)
        Indices ``p`` into ``rows`` and ``cols``.
    dist : ndarray of shape (n_batch,)
    """
    rows, cols = np.asarray(rows), np.asarray(cols)
    lx, ly = X.lengths[rows], Y.lengths[cols]
    order = np.lexsort((ly, lx))  # similar sizes together: little padding
    cells = budget * 2**20 / _bytes_per_cell(net, torch.float32, torch.float32)
    batches = _pair_batches(lx[order], ly[order], cells)
    run_net = _prepare_net(net, device, torch.float32)
    n_jobs = 1 if device.type != "cpu" else n_jobs

    def tasks():
        for start, stop in batches:
            pos = order[start:stop]
            r, c = rows[pos], cols[pos]
            mx, my = int(lx[pos].max()), int(ly[pos].max())
            yield delayed(_paired_tile)(
                run_net,
                X.data[r, :mx],
                X.lengths[r],
                Y.data[c, :my],
                Y.lengths[c],
                device,
                symmetric,
            )

    dists = Parallel(n_jobs=n_jobs, return_as="generator")(tasks())
    for (start, stop), dist in zip(batches, dists):
        yield order[start:stop], dist


def cdist_tap(
    X,
    Y=None,
    *,
    net=None,
    symmetric=False,
    device="auto",
    dtype=None,
    working_memory=None,
    n_jobs=None,
):
    """TAP distances between two sets of sequences.

    Same meaning as tslearn's ``cdist_soft_dtw``: entry ``(i, j)`` is the
    distance from ``X[i]`` (the source) to ``Y[j]``.

    Parameters
    ----------
    X : array-like of shape (n_x, sz, d) or (n_x, sz), or list of (L_i, d)
        Source sequences (tslearn format, trailing-NaN padding allowed).
    Y : same as X, optional
        Target sequences; ``None`` means ``Y = X``.
    net : torch.nn.Module or None, default=None
        Alignment network such as :class:`sktap.TAPNet`. ``None`` is the
        parameter-free soft nearest-frame distance (``g = 0``). The caller's
        module is never modified (a private copy runs).
    symmetric : bool, default=False
        Average ``tap(x, y)`` and ``tap(y, x)``.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where to compute; "auto" picks CUDA when present.
    dtype : {None, "float32", "float64", "bfloat16", "float16"}, default=None
        Precision of the network (None means float32). Frame distances and
        the softmax stay in float32 for the low-precision types, and the
        result is float32 (float64 when ``dtype="float64"``).
    working_memory : float, optional
        Bound in MiB on the extra memory of one tile; defaults to
        scikit-learn's ``working_memory`` setting (1024).
    n_jobs : int, optional
        Tiles run through :class:`joblib.Parallel`, so a
        ``joblib.parallel_config(backend="dask")`` block spreads them over a
        dask cluster. Ignored (tiles run in order) on a GPU.

    Returns
    -------
    ndarray of shape (n_x, n_y)

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.metrics import cdist_tap
    >>> X = [np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0])]
    >>> cdist_tap(X, device="cpu").shape
    (2, 2)
    """
    Xs = check_sequences(X, name="X")
    Ys = Xs if Y is None else check_sequences(Y, name="Y", n_features=Xs.n_features)
    net = _check_net(net)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    budget = _check_working_memory(working_memory)
    if n_jobs is not None and (not isinstance(n_jobs, numbers.Integral) or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer; got {n_jobs!r}")
    out = _run_tiles(net, Xs, Ys, dev, dt, symmetric, budget, n_jobs)
    if dt in _LOW_PRECISION and not np.isfinite(out).all():
        warnings.warn(
            f"{dt} overflowed in the TAP network; recomputing in float32",
            RuntimeWarning,
            stacklevel=2,
        )
        out = _run_tiles(net, Xs, Ys, dev, torch.float32, symmetric, budget, n_jobs)
    if not np.isfinite(out).all():
        used = torch.float32 if dt in _LOW_PRECISION else dt
        raise ValueError(
            f"TAP gave non-finite distances in {used}"
            "; the input values are too large for this precision: rescale the "
            "data (e.g. TimeSeriesScalerMeanVariance) or use dtype='float64'"
        )
    return out


def _one_pair(x, y, net, name_x="x", name_y="y"):
    xa = check_sequence(x, name=name_x)
    ya = check_sequence(y, name=name_y, n_features=xa.shape[1])
    net = _check_net(net)
    dtype = torch.float32
    if net is not None:
        p = next(net.parameters(), None)
        if p is not None and p.dtype == torch.float64:
            dtype = torch.float64
    device = torch.device("cpu")
    if net is not None:
        p = next(net.parameters(), None)
        device = p.device if p is not None else device
    xt = torch.as_tensor(xa, dtype=dtype, device=device)[None]
    yt = torch.as_tensor(ya, dtype=dtype, device=device)[None]
    return xt, yt


def tap_alignment(x, y, *, net=None):
    """The predicted alignment ``T`` of source ``x`` onto target ``y``.

    Parameters
    ----------
    x : array-like of shape (Lx, d) or (Lx,)
    y : array-like of shape (Ly, d) or (Ly,)
    net : torch.nn.Module or None, default=None
        Alignment network (``None``: parameter-free TAP). Runs on the device
        of its parameters, in eval mode semantics (no gradient).

    Returns
    -------
    ndarray of shape (Lx, Ly)
        Non-negative; each row sums to ``1 / Lx`` (so ``T`` sums to 1).

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.metrics import tap_alignment
    >>> T = tap_alignment(np.arange(4.0), np.arange(3.0))
    >>> T.shape, round(float(T.sum()), 6)
    ((4, 3), 1.0)
    """
    xt, yt = _one_pair(x, y, net)
    with torch.no_grad():
        _, T = tap_pairwise(
            xt, [xt.shape[1]], yt, [yt.shape[1]], net, return_alignment=True
        )
    return T[0, 0].cpu().numpy().astype(np.float64)


def tap_distance(x, y, *, net=None, symmetric=False):
    """TAP distance from source ``x`` to target ``y``.

    Parameters
    ----------
    x : array-like of shape (Lx, d) or (Lx,)
    y : array-like of shape (Ly, d) or (Ly,)
    net : torch.nn.Module or None, default=None
    symmetric : bool, default=False
        Return ``(tap(x, y) + tap(y, x)) / 2``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.metrics import tap_distance
    >>> tap_distance(np.zeros(3), np.ones(5))
    1.0
    """
    xt, yt = _one_pair(x, y, net)
    with torch.no_grad():
        d = tap_pairwise(xt, [xt.shape[1]], yt, [yt.shape[1]], net, symmetric=symmetric)
    return float(d[0, 0])
