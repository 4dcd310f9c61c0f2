"""The tiling executor: pairwise work over two sets of sequences in bounded memory.

Any distance that can score a padded block of sources against a padded block
of targets plugs in through a :class:`PairKernel`. The executor sorts the
sequences by length, cuts both sets into chunks so that one tile's extra
memory stays under a budget (MiB), and runs the tiles through
:class:`joblib.Parallel` (so ``joblib.parallel_config(backend="dask")``
spreads them over a cluster). It never holds a ``query x train x Lx x Ly``
tensor, and with :func:`iter_tiles` not even the ``query x train`` matrix.

Both sets go to the kernel's device once per call (:meth:`PairKernel.upload`),
not once per tile; sets already there (a k-NN classifier's training set,
uploaded once per fit) are used as they are. On the device types of
``ROUNDED_TILE_DEVICES`` (``sktap/_thresholds.py``; none so far), tiles of
sets uploaded as :class:`TensorSequences` are padded to
:meth:`TensorSequences.padded_width`, a small grid of sizes, so that their
shapes repeat from tile to tile.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from joblib import Parallel, delayed
from sklearn import get_config

from .. import _thresholds
from ..core._bucketed import padded_lengths
from ._tensors import TensorSequences

__all__ = [
    "PairKernel",
    "check_form",
    "check_n_jobs",
    "check_working_memory",
    "iter_pairs",
    "iter_tiles",
    "length_chunks",
    "progress",
    "run_form",
    "run_tiles",
    "self_distances",
    "to_divergence",
]


class PairKernel:
    """A distance between padded sequences, scored a block at a time.

    Subclasses set ``bytes_per_cell`` (peak bytes one pair needs per cell of
    its ``Lx x Ly`` grid, which sizes the tiles), ``parallel`` (False when
    tiles must run one after another, e.g. on one GPU) and implement
    :meth:`block`, and :meth:`paired` when pairs are scored one to one.
    Blocks arrive as numpy arrays, or as tensors when :meth:`upload` puts
    the sets on a device. Instances are pickled to joblib workers.
    """

    bytes_per_cell = 64
    parallel = True
    result_dtype = np.float32

    def upload(self, seqs):
        """``seqs`` where :meth:`block` reads them best, once per call (here:
        as they are; a torch kernel returns :class:`TensorSequences`)."""
        return seqs

    def block(self, x, x_lengths, y, y_lengths):
        """Distances (a, b) from each ``x[i]`` (a, Lx, d) to each ``y[j]``."""
        raise NotImplementedError

    def paired(self, x, x_lengths, y, y_lengths):
        """Distances (n,) of the pairs ``(x[k], y[k])``.

        This fallback scores each pair as a 1 x 1 block; kernels with a
        batched paired form override it.
        """
        return np.array(
            [
                self.block(
                    x[k : k + 1, : x_lengths[k]],
                    x_lengths[k : k + 1],
                    y[k : k + 1, : y_lengths[k]],
                    y_lengths[k : k + 1],
                )[0, 0]
                for k in range(len(x))
            ],
            dtype=self.result_dtype,
        )


def check_working_memory(working_memory) -> float:
    """The tile budget in MiB; None reads scikit-learn's ``working_memory``."""
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


def check_n_jobs(n_jobs):
    if n_jobs is not None and (
        not isinstance(n_jobs, numbers.Integral)
        or isinstance(n_jobs, bool)
        or n_jobs == 0
    ):
        raise ValueError(f"n_jobs must be None or a non-zero integer; got {n_jobs!r}")
    return n_jobs


def progress(iterable, verbose, desc, total=None):
    """``iterable`` wrapped in a tqdm bar when ``verbose`` (off by default)."""
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def length_chunks(order, lengths, row_budget):
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


def _host_lengths(seqs) -> np.ndarray:
    if isinstance(seqs, TensorSequences):
        return seqs.host_lengths
    return seqs.lengths


def _padded_lengths(seqs) -> np.ndarray:
    """The length each sequence of ``seqs`` occupies in a tile whose longest
    it is: :meth:`TensorSequences.padded_width` on the device types of
    ``ROUNDED_TILE_DEVICES`` (read here, in the caller's thread, where
    ``sktap.config_context`` applies), else its length."""
    lengths = _host_lengths(seqs)
    if (
        not isinstance(seqs, TensorSequences)
        or seqs.data.device.type not in _thresholds.ROUNDED_TILE_DEVICES
    ):
        return lengths
    return padded_lengths(lengths, seqs.data.shape[1])


def _take(seqs, indices, padded):
    """``seqs.take(indices)``, padded to the tile width of ``padded``."""
    if isinstance(seqs, TensorSequences):
        return seqs.take(indices, width=int(padded[indices].max(initial=0)))
    return seqs.take(indices)


def _upload_both(kernel, X, Y):
    """``X`` and ``Y`` uploaded, once each (``Y`` may be ``X``)."""
    Xu = kernel.upload(X)
    return Xu, (Xu if Y is X else kernel.upload(Y))


def _rows(seqs, indices, max_len):
    """``(data, lengths)`` of ``indices`` (repeats allowed), not re-trimmed."""
    if isinstance(seqs, TensorSequences):
        return seqs.rows(indices, max_len)
    return seqs.data[indices, :max_len], seqs.lengths[indices]


def _plan_tiles(kernel, X, Y, px, py, budget):
    """``(x_chunks, y_chunks)``: one tile per pair of chunks; ``px, py``
    are the padded lengths (:func:`_padded_lengths`) the budget counts."""
    cells = budget * 2**20 / kernel.bytes_per_cell
    row_budget = math.sqrt(cells)
    lx, ly = _host_lengths(X), _host_lengths(Y)
    x_chunks = length_chunks(np.argsort(lx, kind="stable"), px, row_budget)
    # few short sources (a k-NN query chunk) leave room for wider tiles
    x_rows = max(len(c) * int(px[c[-1]]) for c in x_chunks)
    y_order = np.argsort(ly, kind="stable")
    y_chunks = length_chunks(y_order, py, max(row_budget, cells / x_rows))
    return x_chunks, y_chunks


def _block(kernel, x, lx, y, ly):
    return kernel.block(x, lx, y, ly)


def _paired(kernel, x, lx, y, ly):
    return kernel.paired(x, lx, y, ly)


def _jobs(kernel, n_jobs):
    return n_jobs if kernel.parallel else 1


def iter_tiles(kernel, X, Y, budget, n_jobs=None, verbose=0):
    """Stream the distances ``X x Y`` tile by tile, never the whole matrix.

    ``X`` and ``Y`` are :class:`~sktap._validation.Sequences` or
    :class:`TensorSequences`.

    Yields
    ------
    rows : ndarray of shape (a,)
        Indices into ``X`` of the tile's rows.
    cols : ndarray of shape (b,)
        Indices into ``Y`` of its columns.
    block : ndarray of shape (a, b)
        Its pairs' extra memory is at most ``budget`` MiB (or one pair, if a
        single pair needs more).
    """
    X, Y = _upload_both(kernel, X, Y)
    px, py = _padded_lengths(X), _padded_lengths(Y)
    x_chunks, y_chunks = _plan_tiles(kernel, X, Y, px, py, budget)

    def tasks():
        # lazy, so that joblib's pre_dispatch bounds how many tiles' inputs
        # exist at once
        for xi in x_chunks:
            xs = _take(X, xi, px)
            for yi in y_chunks:
                ys = _take(Y, yi, py)
                yield delayed(_block)(kernel, xs.data, xs.lengths, ys.data, ys.lengths)

    # return_as="generator": finished tiles are handed over as they come
    blocks = Parallel(n_jobs=_jobs(kernel, n_jobs), return_as="generator")(tasks())
    index = [(xi, yi) for xi in x_chunks for yi in y_chunks]
    blocks = progress(blocks, verbose, "tiles", total=len(index))
    for (xi, yi), block in zip(index, blocks):
        yield xi, yi, block


def run_tiles(kernel, X, Y, budget, n_jobs=None, verbose=0):
    """The full distance matrix (n_x, n_y), computed tile by tile."""
    out = np.empty((len(X), len(Y)), dtype=kernel.result_dtype)
    for xi, yi, block in iter_tiles(kernel, X, Y, budget, n_jobs, verbose):
        out[np.ix_(xi, yi)] = block
    return out


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


def iter_pairs(kernel, X, Y, rows, cols, budget, n_jobs=None):
    """Stream the distances of the pairs ``(X[rows[p]], Y[cols[p]])``.

    Pairs are sorted by length and batched under the memory bound ``budget``
    (MiB).

    Yields
    ------
    positions : ndarray of shape (n_batch,)
        Indices ``p`` into ``rows`` and ``cols``.
    dist : ndarray of shape (n_batch,)
    """
    X, Y = _upload_both(kernel, X, Y)
    rows, cols = np.asarray(rows), np.asarray(cols)
    lx, ly = _padded_lengths(X)[rows], _padded_lengths(Y)[cols]
    order = np.lexsort((ly, lx))  # similar sizes together: little padding
    cells = budget * 2**20 / kernel.bytes_per_cell
    batches = _pair_batches(lx[order], ly[order], cells)

    def tasks():
        for start, stop in batches:
            pos = order[start:stop]
            r, c = rows[pos], cols[pos]
            mx, my = int(lx[pos].max()), int(ly[pos].max())
            yield delayed(_paired)(kernel, *_rows(X, r, mx), *_rows(Y, c, my))

    dists = Parallel(n_jobs=_jobs(kernel, n_jobs), return_as="generator")(tasks())
    for (start, stop), dist in zip(batches, dists):
        yield order[start:stop], dist


def check_form(symmetric):
    """Validate ``symmetric`` (False, True or "divergence"); return it."""
    if isinstance(symmetric, (bool, np.bool_)):
        return bool(symmetric)
    if isinstance(symmetric, str) and symmetric == "divergence":
        return symmetric
    raise ValueError(
        f"symmetric must be False, True or 'divergence'; got {symmetric!r}"
    )


def self_distances(kernel, X, budget, n_jobs=None):
    """The distance (n,) of each sequence of ``X`` to itself."""
    idx = np.arange(len(X))
    out = np.empty(len(X), dtype=kernel.result_dtype)
    for pos, dist in iter_pairs(kernel, X, X, idx, idx, budget, n_jobs):
        out[pos] = dist
    return out


def run_form(kernel, X, Y, form, budget, n_jobs=None, verbose=0, x_self=None):
    """Distances (n_x, n_y) in the form ``symmetric`` asks for.

    ``kernel`` scores the symmetric distance whenever ``form`` is not False.
    ``Y`` None means ``Y = X``. The "divergence" form is
    ``max(0, d(x, y) - (d(x, x) + d(y, y)) / 2)`` of the symmetric ``d``:
    symmetric, non-negative and zero from a sequence to itself (exactly zero
    on the diagonal when ``Y`` is None). ``x_self``, if given, are the
    self-distances of ``X`` (n_x,), already computed with ``kernel``.
    """
    X = kernel.upload(X)  # once for the matrix and the self-distances
    Y = None if Y is None else kernel.upload(Y)
    out = run_tiles(kernel, X, X if Y is None else Y, budget, n_jobs, verbose)
    if form != "divergence":
        return out
    sx = self_distances(kernel, X, budget, n_jobs) if x_self is None else x_self
    sy = sx if Y is None else self_distances(kernel, Y, budget, n_jobs)
    to_divergence(out, sx, sy)
    if Y is None:
        np.fill_diagonal(out, 0)
    return out


_DIVERGENCE_ULPS = 4


def to_divergence(out, sx, sy):
    """``out`` (n_x, n_y) of symmetric distances made a divergence, in place.

    ``sx`` (n_x,) and ``sy`` (n_y,) are the self-distances; the result is
    ``max(0, out - (sx[i] + sy[j]) / 2)``, and 0 where it is within the
    float32 rounding of its terms (``_DIVERGENCE_ULPS`` units in the last
    place of ``|out| + (sx[i] + sy[j]) / 2``): the three distances come
    from different tiles, whose float32 sums differ in their last bits, so
    a sequence's divergence from an identical one would otherwise read
    1e-8 to 1e-7 or 0 depending on how the calls were batched.
    """
    half = ((sx[:, None] + sy[None, :]) / 2).astype(out.dtype)
    noise = np.abs(out)
    noise += half
    noise *= _DIVERGENCE_ULPS * np.finfo(np.float32).eps
    out -= half
    out[out <= noise] = 0
    return out
