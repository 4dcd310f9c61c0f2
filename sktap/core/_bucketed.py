"""TAP on length buckets: pad each group of pairs only to its own maxima.

:func:`~sktap.core._tap.tap_pairwise` pads every pair of a batch to the
batch's longest sequences, so with lengths 7-30 most of the ``Lmax x Lmax``
cells the network convolves are padding. Here pairs are sorted by length and
cut into buckets, each padded to its own ``max Lx x max Ly``; the number of
cells computed then stays close to the true ``sum Lx * Ly``.

Buckets are padded to their longest sequence rounded up to a small grid of
sizes (:func:`padded_length`), so that the same few shapes repeat from call
to call: oneDNN and cuDNN then reuse their primitives, and sequences whose
lengths round to the same size share a bucket at no extra cost.

Padded batches give exactly the per-pair result (see :mod:`._tap`), so the
bucketed functions equal the unbucketed ones up to floating-point summation
order, with autograd through both the frames and the network.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import _thresholds
from .._config import get_config
from .._thresholds import MAX_PADDING, round_up_length
from ._tap import _as_lengths, tap_paired, tap_pairwise

__all__ = [
    "padded_length",
    "padded_lengths",
    "padding_ratio",
    "tap_pairs",
    "tap_pairwise_bucketed",
]

_MAX_PADDING = MAX_PADDING  # sktap/_thresholds.py
# Per side of a block: the block's ratio is the product of its two sides'.
_MAX_SIDE_PADDING = math.sqrt(_MAX_PADDING)


def _lengths_np(lengths, n=None):
    """Lengths on the host (int64 numpy), where buckets are planned."""
    return _as_lengths(lengths, n, "cpu").numpy()


def padded_length(n, width=None) -> int:
    """The length to which a batch whose longest sequence has ``n`` frames
    is padded.

    With ``sktap.get_config()["shape_rounding"]`` (the default) it is ``n``
    rounded up to the grid of :func:`sktap._thresholds.round_up_length`
    (multiples of 8 up to 64, then 8 sizes per octave), but never beyond
    ``width``, the length the frames are already stored at (so no copy is
    padded and data of one length keeps its shape); otherwise ``n``.

    Examples
    --------
    >>> padded_length(57), padded_length(57, width=60), padded_length(57, width=50)
    (64, 60, 57)
    """
    n = int(n)
    if not get_config()["shape_rounding"]:
        return n
    rounded = round_up_length(n)
    return rounded if width is None else max(n, min(rounded, int(width)))


def padded_lengths(lengths, width=None):
    """:func:`padded_length` of each of ``lengths`` (int64 numpy) in a
    tensor ``width`` frames long; None: trimmed to the longest of them."""
    if width is None:
        width = lengths.max(initial=0)
    values, inverse = np.unique(lengths, return_inverse=True)
    padded = np.array([padded_length(v, width) for v in values], dtype=np.int64)
    return padded[inverse].reshape(np.shape(lengths))


def _check_pairs(rows, cols, n_x, n_y):
    rows = torch.as_tensor(rows).long()
    cols = torch.as_tensor(cols).long()
    if rows.ndim != 1 or rows.shape != cols.shape:
        raise ValueError(
            "rows and cols must be 1-D of the same length; got shapes "
            f"{tuple(rows.shape)} and {tuple(cols.shape)}"
        )
    for name, idx, n in (("rows", rows, n_x), ("cols", cols, n_y)):
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise ValueError(f"{name} must index 0..{n - 1}")
    return rows, cols


def _plan_pairs(lx, ly, max_cells=None, max_padding=_MAX_PADDING, call_cells=0):
    """Sort pairs by length and cut them greedily into buckets.

    ``lx, ly`` (n_pairs,) are the pairs' padded lengths
    (:func:`padded_length`; padding is bounded relative to them). Returns
    ``order`` (n_pairs,), the pairs in bucket order, and ``buckets``, a
    list of ``(start, stop, max_lx, max_ly)`` slices of it, each within
    ``max_cells`` (unless a single pair) and ``max_padding`` times its true
    cells plus ``call_cells`` (see :func:`tap_pairs`).
    """
    if max_padding < 1:
        raise ValueError(f"max_padding must be >= 1; got {max_padding}")
    # Snake order: Ly ascending for even-ranked Lx, descending for odd ones,
    # so the last pairs of one Lx (long or short targets) sit next to pairs
    # of the next Lx with similar Ly and can share a bucket.
    rank = np.unique(lx, return_inverse=True)[1]
    order = np.lexsort((np.where(rank % 2 == 1, -ly, ly), lx))
    buckets, start, mx, my, true = [], 0, 0, 0, 0
    for k, (a, b) in enumerate(zip(lx[order].tolist(), ly[order].tolist())):
        nx, ny = max(mx, a), max(my, b)
        cells = (k - start + 1) * nx * ny
        too_big = max_cells is not None and cells > max_cells
        if k > start and (too_big or cells > max_padding * (true + a * b) + call_cells):
            buckets.append((start, k, mx, my))
            start, nx, ny, true = k, a, b, 0
        mx, my, true = nx, ny, true + a * b
    if len(order):
        buckets.append((start, len(order), mx, my))
    return order, buckets


def _plan_side(lengths, n_buckets=None, max_padding=_MAX_SIDE_PADDING):
    """Sort one side by length and cut it into chunks.

    ``lengths`` are padded lengths (:func:`padded_length`; padding is
    bounded relative to them). Returns ``order`` (n,) and a list of
    ``(start, stop, max_len)``: equal counts with ``n_buckets``, else greedy
    chunks whose padded length sum is at most ``max_padding`` times their
    length sum.
    """
    order = np.argsort(lengths, kind="stable")
    sorted_l = lengths[order]
    n = len(order)
    if n_buckets is not None:
        if not isinstance(n_buckets, int | np.integer) or n_buckets < 1:
            raise ValueError(f"n_buckets must be a positive int; got {n_buckets!r}")
        edges = np.linspace(0, n, min(n_buckets, n) + 1).round().astype(int)
        return order, [
            (s, e, int(sorted_l[e - 1])) for s, e in zip(edges[:-1], edges[1:])
        ]
    chunks, start, true = [], 0, 0
    for k, length in enumerate(sorted_l.tolist()):
        # sorted ascending, so the chunk's maximum is the newest length
        if k > start and (k - start + 1) * length > max_padding * (true + length):
            chunks.append((start, k, int(sorted_l[k - 1])))
            start, true = k, 0
        true += length
    if n:
        chunks.append((start, n, int(sorted_l[-1])))
    return order, chunks


def tap_pairs(
    x,
    x_lengths,
    rows,
    cols,
    net=None,
    *,
    y=None,
    y_lengths=None,
    max_cells=None,
    max_padding=_MAX_PADDING,
):
    """TAP distances of selected pairs, computed on length buckets.

    Pair ``k`` is ``tap(x[rows[k]], y[cols[k]])`` with ``x[rows[k]]`` as the
    source, exactly as :func:`~sktap.core._tap.tap_paired` of the gathered
    pairs would give, but each bucket of pairs with similar ``(Lx, Ly)`` is
    padded only to its own maxima.

    Parameters
    ----------
    x : Tensor of shape (a, Lx, d)
        Zero-padded source sequences.
    x_lengths : Tensor or array of shape (a,)
    rows : Tensor or array of shape (n_pairs,)
        Source index of each pair.
    cols : Tensor or array of shape (n_pairs,)
        Target index of each pair (into ``y``).
    net : torch.nn.Module or None
        Alignment network; ``None`` means ``g = 0``.
    y : Tensor of shape (b, Ly, d), default=None
        Targets; ``None`` uses ``x``.
    y_lengths : Tensor or array of shape (b,), default=None
        Required with ``y``.
    max_cells : int or None, default=None
        Bound on ``pairs * max Lx * max Ly`` of one network call. ``None``
        sets no bound: autograd keeps every bucket's activations until the
        backward anyway, so capping a call barely lowers the peak memory of
        training, and the total never exceeds that of the unbucketed call.
        Set it to bound the transient memory of inference on large inputs.
    max_padding : float, default=1.2
        Bound on cells computed over ``sum Lx * Ly`` of every bucket, hence
        of the call (see :func:`padding_ratio`), where the lengths are
        rounded up to the grid of :func:`padded_length`. Lower means more,
        smaller network calls. A bucket may pad a further
        ``PAIRS_CALL_CELLS`` cells (``sktap/_thresholds.py``, the fixed cost
        of one call), so that a few pairs of spread lengths share a call.

    Returns
    -------
    dist : Tensor of shape (n_pairs,)
        In the order of ``rows`` and ``cols``, on the device and dtype of
        ``x``, differentiable w.r.t. ``x``, ``y`` and ``net``.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(3, 6, 2)
    >>> tap_pairs(x, [6, 4, 2], [0, 2, 1], [1, 1, 0]).shape
    torch.Size([3])
    """
    if (y is None) != (y_lengths is None):
        raise ValueError("y and y_lengths must be given together")
    if y is None:
        y, y_lengths = x, x_lengths
    lx = _lengths_np(x_lengths, x.shape[0])
    ly = _lengths_np(y_lengths, y.shape[0])
    rows, cols = _check_pairs(rows, cols, x.shape[0], y.shape[0])
    r_np, c_np = rows.cpu().numpy(), cols.cpu().numpy()
    if not len(r_np):
        # Still a graph through the network: the parameters get zero
        # gradients, as in the all-pairs computation, not None.
        e = rows.to(x.device)
        return tap_paired(x[e, :1], e + 1, y[e, :1], e + 1, net)
    px = padded_lengths(lx[r_np], x.shape[1])
    py = padded_lengths(ly[c_np], y.shape[1])
    order, buckets = _plan_pairs(
        px, py, max_cells, max_padding, _thresholds.PAIRS_CALL_CELLS
    )
    parts = []
    for start, stop, mx, my in buckets:
        sel = order[start:stop]
        r = torch.as_tensor(r_np[sel], device=x.device)
        c = torch.as_tensor(c_np[sel], device=x.device)
        # index_select, not x[r]: the backward of advanced indexing with
        # repeated indices (index_put_ with accumulate) adds in a thread-
        # dependent order on the CPU, so training would not repeat exactly
        xb = x.index_select(0, r)[:, :mx]  # (n, mx, d)
        yb = y.index_select(0, c)[:, :my]  # (n, my, d)
        parts.append(tap_paired(xb, lx[r_np[sel]], yb, ly[c_np[sel]], net))
    inverse = torch.as_tensor(np.argsort(order), device=x.device)
    return torch.cat(parts)[inverse]


def tap_pairwise_bucketed(
    x, x_lengths, y, y_lengths, net=None, *, symmetric=False, n_buckets=None
):
    """All ``a x b`` TAP distances, block by block over length-sorted sides.

    Each side is sorted by length and cut into chunks; block ``(I, J)`` is
    :func:`~sktap.core._tap.tap_pairwise` of chunk ``I`` of ``x`` against
    chunk ``J`` of ``y``, padded to those chunks' own longest sequences
    rounded up to the grid of :func:`padded_length` (a tiled ``cdist``).
    The result equals ``tap_pairwise`` of the whole batch.

    Parameters
    ----------
    x : Tensor of shape (a, Lx, d)
    x_lengths : Tensor or array of shape (a,)
    y : Tensor of shape (b, Ly, d)
    y_lengths : Tensor or array of shape (b,)
    net : torch.nn.Module or None
        Alignment network; ``None`` means ``g = 0``.
    symmetric : bool, default=False
        Average ``tap(x, y)`` and ``tap(y, x)``.
    n_buckets : int or None, default=None
        Chunks per side, of equal counts. ``None`` cuts each side greedily
        so that its padded lengths sum to at most ``sqrt(1.2)`` times the
        lengths rounded to the grid, i.e. at most 1.2 times their cells per
        block.

    Returns
    -------
    dist : Tensor of shape (a, b)
        Differentiable w.r.t. ``x``, ``y`` and ``net``.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(3, 6, 2)
    >>> tap_pairwise_bucketed(x, [6, 4, 2], x[:2], [6, 5]).shape
    torch.Size([3, 2])
    """
    lx = _lengths_np(x_lengths, x.shape[0])
    ly = _lengths_np(y_lengths, y.shape[0])
    ox, chunks_x = _plan_side(padded_lengths(lx, x.shape[1]), n_buckets)
    oy, chunks_y = _plan_side(padded_lengths(ly, y.shape[1]), n_buckets)
    if not len(ox) or not len(oy):
        return tap_pairwise(x, x_lengths, y, y_lengths, net, symmetric=symmetric)
    block_rows = []
    for sx, ex, mx in chunks_x:
        ix = ox[sx:ex]
        xb = x[torch.as_tensor(ix, device=x.device), :mx]
        blocks = [
            tap_pairwise(
                xb,
                lx[ix],
                y[torch.as_tensor(oy[sy:ey], device=y.device), :my],
                ly[oy[sy:ey]],
                net,
                symmetric=symmetric,
            )
            for sy, ey, my in chunks_y
        ]
        block_rows.append(torch.cat(blocks, dim=1))
    sorted_dist = torch.cat(block_rows, dim=0)  # rows ox, columns oy
    inv_x = torch.as_tensor(np.argsort(ox), device=x.device)
    inv_y = torch.as_tensor(np.argsort(oy), device=x.device)
    return sorted_dist[inv_x][:, inv_y]


def padding_ratio(
    x_lengths,
    y_lengths=None,
    *,
    rows=None,
    cols=None,
    bucketed=True,
    n_buckets=None,
    max_cells=None,
    max_padding=_MAX_PADDING,
):
    """Cells the network computes over the true cells ``sum Lx * Ly``.

    The bucketed functions are taken to receive tensors trimmed to the
    longest of ``x_lengths`` and ``y_lengths``; their buckets are padded as
    :func:`padded_length` says.

    Parameters
    ----------
    x_lengths : Tensor or array of shape (a,)
    y_lengths : Tensor or array of shape (b,), default=None
        ``None`` uses ``x_lengths``.
    rows, cols : Tensor or array of shape (n_pairs,), default=None
        Selected pairs, as for :func:`tap_pairs`; ``None`` means all
        ``a x b`` pairs, as for :func:`tap_pairwise_bucketed`.
    bucketed : bool, default=True
        ``False`` gives the ratio of the unbucketed functions, which pad
        every pair to the longest ``Lx`` and ``Ly``.
    n_buckets, max_cells, max_padding
        As for :func:`tap_pairwise_bucketed` (all pairs) or :func:`tap_pairs`
        (selected pairs).

    Returns
    -------
    ratio : float
        At least 1; ``nan`` when there are no pairs.

    Examples
    --------
    >>> padding_ratio([7, 30], bucketed=False)
    2.6296...
    >>> padding_ratio([7, 30])  # 7 frames padded to 8, a size of the grid
    1.054...
    """
    lx = _lengths_np(x_lengths)
    ly = lx if y_lengths is None else _lengths_np(y_lengths)
    if (rows is None) != (cols is None):
        raise ValueError("rows and cols must be given together")
    if rows is None:
        # a block's cells are the product of its two sides' padded lengths
        sides = [
            _plan_side(padded_lengths(lens), n_buckets)[1]
            if bucketed
            else [(0, len(lens), lens.max())]
            for lens in (lx, ly)
        ]
        cells = math.prod(sum((e - s) * m for s, e, m in side) for side in sides)
        return float(cells / (lx.sum() * ly.sum()))
    rows, cols = _check_pairs(rows, cols, len(lx), len(ly))
    px, py = lx[rows.cpu().numpy()], ly[cols.cpu().numpy()]
    if not len(px):
        return math.nan
    if bucketed:
        # tensors trimmed to their longest sequence, as for the planning
        padded = (padded_lengths(p, all_.max()) for p, all_ in ((px, lx), (py, ly)))
        buckets = _plan_pairs(
            *padded, max_cells, max_padding, _thresholds.PAIRS_CALL_CELLS
        )[1]
    else:
        buckets = [(0, len(px), px.max(), py.max())]
    cells = sum((e - s) * mx * my for s, e, mx, my in buckets)
    return float(cells / (px * py).sum())
