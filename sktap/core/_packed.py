"""TAP on packed grids: the pairs' ``Lx x Ly`` grids side by side in a few images.

:func:`~sktap.core._bucketed.tap_pairwise_bucketed` pads blocks of pairs
to their own longest sequences: on a batch whose lengths spread widely it
makes dozens of small network calls (each a dozen operators with a fixed
cost) and still pads. Here every sequence of ``y`` is laid end to end along
the columns of one image and every sequence of ``x`` along its rows, each
followed by a gap of zero frames as wide as the network's largest kernel
radius, so that pair ``(i, j)`` is the block where the rows of ``x[i]``
meet the columns of ``y[j]``. The network runs on the whole image (rows
cut into a few bands that stay in cache), with the gap rows and columns
reset to zero after every hidden layer: each block then sees exactly the
zero padding of its own unpadded convolution, and the blocks never read
each other. The softmax over each pair's target frames is a softmax per
(row, block of columns), shifted by the block's own maximum, and its sums
run over each block's own cells in order (:func:`torch.segment_reduce`),
so a pair's distance does not depend on the other pairs packed with it.

The result equals :func:`~sktap.core._tap.tap_pairwise` up to
floating-point summation order, with autograd through the frames and the
network. Only networks that say how far their layers read
(:attr:`TAPNet.halo`) and the parameter-free distance (``net=None``) can be
packed: see :func:`can_pack`.
"""

from __future__ import annotations

import bisect

import numpy as np
import torch

from .. import _thresholds
from ._bucketed import (
    _check_pairs,
    _lengths_np,
    _plan_side,
    padded_length,
    padded_lengths,
)
from ._nets import TAPNet, _sum_dtype
from ._tap import _cdist

__all__ = [
    "can_pack",
    "packed_cells",
    "packing_beats_shapes",
    "packing_pays",
    "pairs_packing_pays",
    "tap_pairs_packed",
    "tap_pairwise_packed",
]


def can_pack(net) -> bool:
    """Whether :func:`tap_pairwise_packed` can compute ``net``'s distances:
    ``None`` or a :class:`TAPNet` itself (a subclass may compute otherwise)."""
    return net is None or type(net) is TAPNet


def _check_packable(net, caller):
    if not can_pack(net):
        raise TypeError(
            f"{type(net).__name__} cannot be packed: {caller} takes a TAPNet "
            "(not a subclass) or None"
        )


def _halo(net) -> int:
    return 0 if net is None else net.halo


def _counting(lengths):
    """``0, 1, ..., n - 1`` for each ``n`` of ``lengths``, end to end."""
    return np.arange(int(lengths.sum())) - np.repeat(
        np.cumsum(lengths) - lengths, lengths
    )


class _Layout:
    """Sequences laid end to end, each followed by ``gap`` zero slots.

    ``seq`` and ``pos`` (n_slots,) say which frame of which sequence each
    slot holds (0 at gaps and padding); ``valid`` (n_slots,) is False at
    gaps and at the padding that rounds the total up to ``size``.
    """

    def __init__(self, lengths, gap, size=None):
        span = lengths + gap
        total = int(span.sum())
        seq = np.repeat(np.arange(len(lengths)), span)
        pos = _counting(span)
        valid = pos < lengths[seq]
        size = total if size is None else int(size)
        pad = size - total
        self.size = size
        self.valid = np.concatenate([valid, np.zeros(pad, bool)])
        self.seq = np.concatenate([np.where(valid, seq, 0), np.zeros(pad, np.int64)])
        self.pos = np.concatenate([np.where(valid, pos, 0), np.zeros(pad, np.int64)])

    def tensors(self, device, lengths, dtype, width):
        """Flat frame index into a (n, width, d) batch, validity and positions."""
        valid = torch.as_tensor(self.valid, device=device)
        flat = torch.as_tensor(self.seq * width + self.pos, device=device)
        # (t + 1) / L at valid slots, 0 elsewhere, as in ``_tap._positions``
        L = torch.as_tensor(lengths[self.seq], device=device, dtype=dtype)
        pos = torch.as_tensor(self.pos + 1, device=device, dtype=dtype) / L
        return flat, valid, pos * valid

    def spans(self, lengths, gap, device):
        """Slots of each sequence with its gap (n,), the last also holding
        the padding: consecutive segments that cover all ``size`` slots."""
        spans = lengths.astype(np.int64) + gap
        spans[-1] += self.size - int(spans.sum())
        return torch.as_tensor(spans, device=device)


def _segment_sums(values, spans, dim):
    """Sums (H, n) or (n, W) of the consecutive segments ``spans`` (n,) of
    ``values`` (H, W) along ``dim``. Each segment is summed in order on its
    own, so a sum does not depend on the rows or segments around it (a
    matrix product with an indicator matrix picks its blocking, hence its
    rounding, from the whole shape)."""
    if dim == 0:
        return torch.segment_reduce(values, "sum", lengths=spans, axis=0)
    lengths = spans.expand(values.shape[0], len(spans)).contiguous()
    return torch.segment_reduce(values, "sum", lengths=lengths, axis=1)


def _bands(lx, gap, cols, width, itemsize, device):
    """Consecutive sequences of ``x`` per band: ``[(start, stop), ...]``.

    On the CPU a band's widest activation stays under
    :data:`sktap._thresholds.CPU_BATCH_BYTES` (in cache), unless it holds a
    single sequence; elsewhere all rows are one band.
    """
    if device.type != "cpu":
        return [(0, len(lx))]
    max_rows = max(1, _thresholds.CPU_BATCH_BYTES // (cols * width * itemsize))
    bands, start, rows = [], 0, 0
    for i, length in enumerate((lx + gap).tolist()):
        if i > start and rows + length > max_rows:
            bands.append((start, i))
            start, rows = i, 0
        rows += length
    bands.append((start, len(lx)))
    return bands


def _groups(b):
    """Column groups ``[(start, stop), ...]`` of at most
    :data:`sktap._thresholds.PACKED_MAX_TARGETS` target sequences each."""
    step = max(1, _thresholds.PACKED_MAX_TARGETS)
    return [(s, min(s + step, b)) for s in range(0, b, step)]


def _plan(lx, ly, net, itemsize=4, device=None):
    """``(gap, n_columns, bands)`` of a packed image: the gap after every
    sequence, the (rounded) image width, and the bands of :func:`_bands`."""
    gap = _halo(net)
    cols = padded_length(int((ly + gap).sum()))
    width = 1 if net is None else max((2, *net.channels))  # widest activation
    device = torch.device("cpu") if device is None else device
    return gap, cols, _bands(lx, gap, cols, width, itemsize, device)


def _packed_cost(lx, ly, net):
    """``(cells, calls)`` of :func:`tap_pairwise_packed` on the CPU in
    float32: cells summed over column groups and bands, and the bands."""
    cells = calls = 0
    for s, e in _groups(len(ly)):
        gap, cols, bands = _plan(lx, ly[s:e], net)
        cells += sum(padded_length(int((lx[a:b] + gap).sum())) * cols for a, b in bands)
        calls += len(bands)
    return cells, calls


def packed_cells(x_lengths, y_lengths, net=None):
    """Cells (rows x columns, summed over column groups and bands) that
    :func:`tap_pairwise_packed` computes on the CPU in float32, for choosing
    it by cost."""
    return _packed_cost(_lengths_np(x_lengths), _lengths_np(y_lengths), net)[0]


def packing_pays(x_lengths, y_lengths, net=None) -> bool:
    """Whether :func:`tap_pairwise_packed` should beat
    :func:`~sktap.core._bucketed.tap_pairwise_bucketed` on these lengths.

    Each is costed as the cells it computes plus
    :data:`sktap._thresholds.PACKED_CALL_CELLS` per network call (a band
    here, a block there); False for a network that cannot be packed.
    """
    if not can_pack(net):
        return False
    lx, ly = _lengths_np(x_lengths), _lengths_np(y_lengths)
    if not len(lx) or not len(ly):
        return False
    per_call = _thresholds.PACKED_CALL_CELLS
    sides = [_plan_side(padded_lengths(lens))[1] for lens in (lx, ly)]
    bucketed = np.prod([sum((e - s) * m for s, e, m in side) for side in sides])
    bucketed += per_call * len(sides[0]) * len(sides[1])
    cells, calls = _packed_cost(lx, ly, net)
    return cells + per_call * calls < bucketed


def packing_beats_shapes(x_lengths, y_lengths, net=None) -> bool:
    """Whether :func:`tap_pairwise_packed` should beat
    :func:`~sktap.core._tap.tap_pairwise` on a block of these lengths on the
    CPU, without autograd (an inference tile).

    ``tap_pairwise`` computes the frame distances and the softmax of every
    pair on the block's padded grid and runs the network once per distinct
    ``(Lx, Ly)`` on the pairs' exact cells; packing computes each frame
    distance once, as one matrix product, but adds gaps between grids.
    Measured (``benchmarks/bench_packed.py --part tiles``): ``net=None``
    is always packed; a network of at most
    :data:`sktap._thresholds.PACKED_TILE_NARROW_MACS` multiply-adds per
    cell (the default learner's) is packed unless both sides have a single
    length; a wider one only where its cells plus
    :data:`sktap._thresholds.PACKED_CALL_CELLS` per band cost less than the
    exact cells plus as much per distinct shape (widely spread lengths).
    False for a network that cannot be packed.
    """
    if not can_pack(net):
        return False
    lx, ly = _lengths_np(x_lengths), _lengths_np(y_lengths)
    if not len(lx) or not len(ly):
        return False
    if net is None:
        return True
    shapes = len(np.unique(lx)) * len(np.unique(ly))
    if shapes == 1:
        return False
    if net.macs_per_cell <= _thresholds.PACKED_TILE_NARROW_MACS:
        return True
    per_call = _thresholds.PACKED_CALL_CELLS
    exact = float(lx.sum()) * float(ly.sum()) + per_call * shapes
    cells, calls = _packed_cost(lx, ly, net)
    return cells + per_call * calls < exact


def _frame_distances(X, Y):
    """Euclidean distances (H, W) between the rows of X (H, d) and Y (W, d).

    With autograd: the core's ``_tap._cdist`` (on the CPU the float64
    expansion below with a backward of two matrix products, elsewhere
    direct differences; 0 gradient at 0 distance, as torch defines it).
    Without: one matrix product in float64, whose ``|x|^2 + |y|^2 - 2 x.y``
    is exact to about 1e-8 times the frames' norms even for near-equal
    float32 frames (float32 on MPS).
    """
    if torch.is_grad_enabled() and (X.requires_grad or Y.requires_grad):
        return _cdist(X[None], Y[None])[0]
    wide = torch.float32 if X.device.type == "mps" else torch.float64
    x, y = X.to(wide), Y.to(wide)
    with torch.autocast(X.device.type, enabled=False):
        sq = torch.addmm((x * x).sum(1)[:, None], x, y.T, alpha=-2.0)
    sq.add_((y * y).sum(1)[None, :]).clamp_(min=0.0)
    return sq.sqrt_().to(X.dtype)


def tap_pairwise_packed(x, x_lengths, y, y_lengths, net=None):
    """All ``a x b`` TAP distances, every pair's grid packed into a few images.

    Equals :func:`~sktap.core._tap.tap_pairwise` up to summation order, with
    autograd; fastest where lengths spread widely (see the module
    docstring and ``PACKED_CALL_CELLS`` in ``sktap/_thresholds.py``).

    Parameters
    ----------
    x : Tensor of shape (a, Lx, d)
        Zero-padded source sequences.
    x_lengths : Tensor or array of shape (a,)
    y : Tensor of shape (b, Ly, d)
    y_lengths : Tensor or array of shape (b,)
    net : TAPNet or None
        Alignment network; ``None`` means ``g = 0``. Other networks cannot
        be packed (:func:`can_pack`).

    Returns
    -------
    dist : Tensor of shape (a, b)
        On the device of ``x``; float32 for half-precision frames (as
        :func:`~sktap.core._tap.tap_pairwise` gives), else the dtype of ``x``.

    Notes
    -----
    The targets are packed in groups of at most
    :data:`sktap._thresholds.PACKED_MAX_TARGETS` sequences (one image
    each). A pair's distance does not depend on the other pairs packed with
    it (its softmax is shifted by its own maximum and its sums run over its
    own cells), so a subset of ``x`` or of ``y`` gives the same distances
    bit for bit. Memory grows with
    ``a`` and ``b``; for large sets, :func:`sktap.metrics.cdist_tap` tiles
    the work under a memory bound and packs its tiles on the CPU where that
    costs less.

    A non-finite frame (NaN or infinity) makes its own pairs' distances
    non-finite and may do the same to other pairs packed in its image (the
    convolutions' arithmetic can carry a NaN past the gaps), where
    :func:`tap_pairwise` keeps it to its own pairs. Training stops on
    either; ``cdist_tap`` and the estimators refuse non-finite input.

    Examples
    --------
    >>> import torch
    >>> from sktap.core import TAPNet, tap_pairwise, tap_pairwise_packed
    >>> x, net = torch.rand(3, 6, 2), TAPNet((8,), (5, 3))
    >>> packed = tap_pairwise_packed(x, [6, 4, 2], x[:2], [6, 5], net)
    >>> torch.allclose(packed, tap_pairwise(x, [6, 4, 2], x[:2], [6, 5], net))
    True
    """
    _check_packable(net, "tap_pairwise_packed")
    lx = _checked_lengths(x_lengths, x, "x")
    ly = _checked_lengths(y_lengths, y, "y")
    a, b = len(lx), len(ly)
    if not a or not b:
        return x.new_zeros(a, b)
    groups = _groups(b)
    if len(groups) == 1:
        return _packed_group(x, lx, y, ly, net)
    return torch.cat([_packed_group(x, lx, y[s:e], ly[s:e], net) for s, e in groups], 1)


def _packed_group(x, lx, y, ly, net):
    """:func:`tap_pairwise_packed` with all targets in one image."""
    b = len(ly)
    # frames from a mixed-precision encoder are compared in float32, as in _tap
    device, dtype = x.device, _sum_dtype(x.dtype)
    itemsize = dtype.itemsize if net is None else net.convs[0].weight.element_size()
    gap, n_cols, bands = _plan(lx, ly, net, itemsize, device)
    cols = _Layout(ly, gap, n_cols)
    y_flat, col_valid, col_pos = cols.tensors(device, ly, dtype, y.shape[1])
    Y = y.reshape(-1, y.shape[2]).index_select(0, y_flat) * col_valid[:, None]
    Y = Y.to(dtype)
    col_spans = cols.spans(ly, gap, device)
    # the target block of each column; gaps and padding form block b
    block = torch.as_tensor(np.where(cols.valid, cols.seq, b), device=device)
    x2 = x.reshape(-1, x.shape[2])
    if x2.dtype != dtype:
        x2 = x2.to(dtype)
    parts = []
    for s, e in bands:
        rows = _Layout(lx[s:e], gap, padded_length(int((lx[s:e] + gap).sum())))
        x_flat, row_valid, row_pos = rows.tensors(device, lx[s:e], dtype, x.shape[1])
        X = x2.index_select(0, x_flat + s * x.shape[1]) * row_valid[:, None]
        row_cost = _band_row_costs(
            X,
            row_valid,
            row_pos,
            Y,
            col_valid,
            col_pos,
            col_spans,
            block,
            net,
        )
        lengths = torch.as_tensor(lx[s:e], device=device, dtype=row_cost.dtype)
        total = _segment_sums(row_cost, rows.spans(lx[s:e], gap, device), 0)
        parts.append(total / lengths[:, None])
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _checked_lengths(lengths, seqs, name):
    """Host lengths of ``seqs`` (n, L, d), each checked to lie in 1..L: the
    packed layout reads frames by index, so a length beyond L would read
    the next sequence's frames."""
    if seqs.ndim != 3:
        raise ValueError(
            f"{name} must be a (n, L, d) batch; got shape {tuple(seqs.shape)}"
        )
    lengths = _lengths_np(lengths, seqs.shape[0])
    if len(lengths) and (lengths.min() < 1 or lengths.max() > seqs.shape[1]):
        raise ValueError(
            f"{name} lengths must lie between 1 and {seqs.shape[1]} (the padded "
            f"length); got {lengths.min()}-{lengths.max()}"
        )
    return lengths


def _band_row_costs(
    X, row_valid, row_pos, Y, col_valid, col_pos, col_spans, block, net
):
    """``sum_j A_rj D_rj`` of each row r of a band and each target (H, b)."""
    D = _frame_distances(X, Y)
    gaps = torch.nonzero(~row_valid)[:, 0], torch.nonzero(~col_valid)[:, 0]
    if D.requires_grad:
        D = D * (row_valid[:, None] & col_valid[None, :])
    else:  # in place, touching only the gaps
        D = D.index_fill_(0, gaps[0], 0).index_fill_(1, gaps[1], 0)
    if net is None:
        S = -D
    else:
        # P is constant (no autograd): zeroed in place at the gaps
        P = (row_pos[:, None] - col_pos[None, :]).abs()
        P = P.index_fill_(0, gaps[0], 0).index_fill_(1, gaps[1], 0)
        S = -(D + net.packed_correction(D, P, row_valid, col_valid).to(D.dtype))
    with torch.autocast(D.device.type, enabled=False):
        S = S.float() if S.dtype in (torch.bfloat16, torch.float16) else S
        S = S.masked_fill(~col_valid[None, :], float("-inf"))
        # softmax per (row, target block), each shifted by its own maximum
        b = len(col_spans)
        top = torch.full((S.shape[0], b + 1), float("-inf"), device=S.device)
        top = top.to(S.dtype).scatter_reduce(
            1, block[None, :].expand_as(S), S.detach(), "amax"
        )
        top = top.masked_fill(~torch.isfinite(top), 0.0)  # the gap block
        E = torch.exp(S - top[:, block])
        Z = _segment_sums(E, col_spans, 1)
        return _segment_sums(E * D.to(S.dtype), col_spans, 1) / Z


def _bands_of_pairs(rows):
    """The bands of pairs sorted by source: ``anchors`` (each band's
    source) and the ``starts`` and ``ends`` of its pairs."""
    anchors, starts = np.unique(rows, return_index=True)
    return anchors, starts, np.append(starts[1:], len(rows))


def _next_fit(cum, width):
    """Index of the first block of each shelf when blocks of cumulative
    widths ``cum`` (a list, ``cum[0] = 0``) fill shelves of ``width`` in
    order (plain Python: a few microseconds for dozens of shelves)."""
    firsts, n = [0], len(cum) - 1
    while True:
        # the blocks that fit after the shelf's first: cum[e] - cum[s] <= width
        nxt = bisect.bisect_right(cum, cum[firsts[-1]] + width) - 1
        if nxt >= n:
            return firsts
        firsts.append(nxt)


def _block_shelves(lx, ly, rows, cols, gap):
    """Corners ``(top, left)`` (n_pairs,) of each pair's block in one image,
    and the image's ``(H, W)``, both rounded by :func:`padded_length`.

    A pair's block is its source's frames (rows) against its target's
    (columns), each followed by ``gap`` zero cells. The blocks are taken
    band by band (a source's pairs, tallest source first) and laid in that
    order on shelves as wide as the image: a shelf is full when the next
    block does not fit, so a band may continue on the next shelf and a
    shelf wastes at most one block's width, and the next shelf starts
    below the shelf's first (tallest) block. Of the widths that
    :func:`padded_length` gives between the widest block and the whole
    strip, the one with the fewest image cells is taken. On the mined pairs
    of ``bench_fit_time.py``'s first epoch the image held 1.23x the pairs'
    cells, against 1.39x when each band stayed whole on first-fit shelves.
    """
    heights = lx[rows] + gap
    order = np.lexsort((np.arange(len(rows)), -heights))  # tallest, stable
    h, w = heights[order], ly[cols][order] + gap
    cum = np.concatenate([[0], np.cumsum(w)])
    cum_list, h_list, total = cum.tolist(), h.tolist(), int(cum[-1])
    best = None
    shelf = _thresholds.round_up_length(int(w.max()))  # the grid, whatever the config
    while True:
        firsts = _next_fit(cum_list, shelf)
        ends = [*firsts[1:], len(h_list)]
        fill = max(cum_list[e] - cum_list[f] for f, e in zip(firsts, ends))
        width = padded_length(fill)
        height = padded_length(sum(h_list[f] for f in firsts))
        if best is None or height * width < best[0]:
            best = height * width, width, height, np.asarray(firsts)
        if shelf >= total:
            break
        shelf = _thresholds.round_up_length(shelf + 1)
    _, width, height, firsts = best
    on = np.searchsorted(firsts, np.arange(len(h)), side="right") - 1  # shelf
    tops = np.concatenate([[0], np.cumsum(h[firsts])[:-1]])
    top, left = np.empty_like(h), np.empty_like(h)
    top[order] = tops[on]
    left[order] = cum[:-1] - cum[firsts][on]
    return top, left, (height, width)


def pairs_packing_pays(x_lengths, rows, cols, net=None) -> bool:
    """Whether :func:`tap_pairs_packed` should beat
    :func:`~sktap.core._bucketed.tap_pairs` on these pairs (on the CPU).

    Costed as in :func:`packing_beats_shapes`: the packed image's cells plus
    :data:`sktap._thresholds.PACKED_CALL_CELLS`, against the pairs' exact
    cells plus as much per distinct block shape (the CPU runs the network
    once per shape). False for a network that cannot be packed or no pairs.
    """
    if not can_pack(net) or not len(rows):
        return False
    lx = _lengths_np(x_lengths)
    rows, cols = (np.asarray(a, dtype=np.int64) for a in (rows, cols))
    order = np.argsort(rows, kind="stable")
    r, c = rows[order], cols[order]
    per_call = _thresholds.PACKED_CALL_CELLS
    shapes = len(np.unique(lx[r] * (lx.max() + 1) + lx[c]))
    exact = float((lx[r] * lx[c]).sum()) + per_call * shapes
    height, width = _block_shelves(lx, lx, r, c, _halo(net))[2]
    return height * width + per_call < exact


def _distance_groups(rows, cols):
    """Bands grouped for their frame distances: ``[(bands, R, C), ...]``.

    A group's distances are one batched product of its bands padded to
    ``R`` rows and ``C`` columns (its largest). The bands are taken
    tallest first, then widest; each joins the open group unless the
    padding it adds there costs more than a group of its own (its cells
    plus :data:`sktap._thresholds.DISTANCE_CALL_CELLS`).
    """
    order = np.lexsort((-cols, -rows)).tolist()
    groups, members, R, C = [], [], 0, 0
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if members:  # R >= r: the bands come tallest first
            grown = (len(members) + 1) * R * max(C, c) - len(members) * R * C
            if grown <= r * c + _thresholds.DISTANCE_CALL_CELLS:
                members.append(k)
                C = max(C, c)
                continue
            groups.append((members, R, C))
        members, R, C = [k], r, c
    groups.append((members, R, C))
    return groups


class _PairsLayout:
    """Where :func:`tap_pairs_packed` puts each pair, planned on the host.

    Each pair gets a block, its source's frames as rows against its
    target's frames as columns, followed by ``gap`` zero rows and columns,
    so that a block never reads another's cells. The blocks sit on the
    shelves of :func:`_block_shelves`, a source's pairs (its band) one
    after the other.

    The frame distances are computed band by band without the gaps, in
    groups of bands of similar size (:func:`_distance_groups`), into one
    vector. Attributes: ``groups`` ``[(n_bands, R, C), ...]`` in that
    vector's order, and the source sequence and frame of each of the
    groups' rows (``x_seq``, ``x_frame``) and columns (``y_seq``,
    ``y_frame``; sequence 0 on padding), numpy; the image's ``shape``; per
    cell of the blocks, pair by pair and row by row (CPU tensors),
    ``cells`` its index in the image, ``sources`` its index in that vector
    and ``positions`` its relative-position term; ``row_lengths`` (one per
    source frame of each pair) and ``pair_lengths`` (one per pair) cut
    the cells into the softmax's rows and the pairs' sums.

    The per-pair and per-row plan is numpy; the per-cell values (about
    170,000 for 35% of the pairs of 16 sequences of 7-94 frames) are
    cumulative sums and gathers of it in torch: 2.8-3.4 ms there, where a
    loop of slice assignments per pair into whole-image arrays took
    4.8-9.4 ms.
    """

    def __init__(self, lx, ly, rows, cols, gap):
        anchors, starts, ends = _bands_of_pairs(rows)
        top, left, (height, width) = _block_shelves(lx, ly, rows, cols, gap)
        n_rows = lx[anchors]
        m = ly[cols]  # each pair's target frames
        n_cols = np.add.reduceat(m, starts)  # each band's
        groups = _distance_groups(n_rows, n_cols)
        # the bands in the distance vector's order, each with its group's R, C
        order = np.concatenate([np.asarray(k, dtype=np.int64) for k, _, _ in groups])
        sizes = np.array([(len(k), R, C) for k, R, C in groups], dtype=np.int64)
        R, C = (np.repeat(sizes[:, i], sizes[:, 0]) for i in (1, 2))
        base = np.empty(len(anchors), dtype=np.int64)  # each band's offset
        base[order] = np.cumsum(R * C) - R * C
        stride = np.empty(len(anchors), dtype=np.int64)  # its rows' length
        stride[order] = C
        y_base = np.empty(len(anchors), dtype=np.int64)  # its columns' offset
        y_base[order] = np.cumsum(C) - C
        self.groups = [tuple(g) for g in sizes.tolist()]
        self.x_seq, self.x_frame = np.repeat(anchors[order], R), _counting(R)
        band = np.repeat(np.arange(len(anchors)), ends - starts)  # of each pair
        column = (np.cumsum(m) - m) - (np.cumsum(m) - m)[starts][band]
        at = np.repeat(y_base[band] + column, m) + _counting(m)
        self.y_seq = np.zeros(int(C.sum()), dtype=np.int64)
        self.y_frame = np.zeros(int(C.sum()), dtype=np.int64)
        self.y_seq[at], self.y_frame[at] = np.repeat(cols, m), _counting(m)
        # per row: a pair's source frame t against its m target frames
        n = n_rows[band]
        pair = np.repeat(np.arange(len(m)), n)
        t = _counting(n)
        lengths = m[pair]
        first = np.cumsum(lengths) - lengths  # each row's first cell
        # (u + 1) / Ly of each target frame u, one table per target length
        ms, at_m = np.unique(m, return_inverse=True)
        table = np.concatenate([np.arange(1, k + 1) / k for k in ms.tolist()])
        table_start = (np.cumsum(ms) - ms)[at_m][pair]
        T = torch.as_tensor
        self.row_lengths = T(lengths)
        n_cells = int(lengths.sum())

        def per_cell(row_values):  # a row's value, + 1 at each next cell
            step = row_values.copy()  # a cumulative sum of 1s and row starts
            step[1:] -= row_values[:-1] + lengths[:-1] - 1
            ones = torch.ones(n_cells, dtype=torch.int64)
            return ones.index_copy_(0, T(first), T(step)).cumsum_(0)

        self.cells = per_cell((top[pair] + t) * width + left[pair])
        self.sources = per_cell((base[band] + column)[pair] + t * stride[band][pair])
        # |(t + 1) / Lx - (u + 1) / Ly|, as in _tap
        self.positions = torch.repeat_interleave(
            T((t + 1) / n[pair]), self.row_lengths, output_size=n_cells
        )
        self.positions.sub_(T(table)[per_cell(table_start)]).abs_()
        self.shape = (height, width)
        self.pair_lengths = lx[rows]


def tap_pairs_packed(x, x_lengths, rows, cols, net=None):
    """TAP distances of selected pairs ``(x[rows[k]], x[cols[k]])``, their
    grids packed into one image.

    Equals :func:`~sktap.core._bucketed.tap_pairs` up to summation order,
    with autograd. Where ``tap_pairs`` runs the network once per bucket of
    similar shapes (on the CPU once per exact block shape: each new shape
    costs oneDNN new primitives, about 1 ms each), this runs it once, on
    an image whose size is rounded by :func:`padded_length` so that it
    repeats. Each pair's softmax is shifted by the maximum of its own row
    and its sums run over its own cells (:func:`torch.segment_reduce`), so
    a pair's distance does not depend on the pairs packed with it.

    Parameters
    ----------
    x : Tensor of shape (n, L, d)
        Zero-padded sequences.
    x_lengths : Tensor or array of shape (n,)
    rows, cols : Tensor or array of shape (n_pairs,)
        Source and target index of each pair (into ``x``); at least one.
    net : TAPNet or None
        See :func:`can_pack`.

    Returns
    -------
    dist : Tensor of shape (n_pairs,)
        In the order of ``rows`` and ``cols``.

    Examples
    --------
    >>> import torch
    >>> from sktap.core import TAPNet, tap_pairs, tap_pairs_packed
    >>> x, net = torch.rand(3, 6, 2), TAPNet((8,), (5, 3))
    >>> packed = tap_pairs_packed(x, [6, 4, 2], [0, 2, 2], [1, 0, 2], net)
    >>> torch.allclose(packed, tap_pairs(x, [6, 4, 2], [0, 2, 2], [1, 0, 2], net))
    True
    """
    _check_packable(net, "tap_pairs_packed")
    lengths = _checked_lengths(x_lengths, x, "x")
    r, c = (
        t.cpu().numpy() for t in _check_pairs(rows, cols, len(lengths), len(lengths))
    )
    if not len(r):
        raise ValueError("rows and cols must not be empty")
    order = np.argsort(r, kind="stable")
    layout = _PairsLayout(lengths, lengths, r[order], c[order], _halo(net))
    dist = _packed_pairs(x, lengths, layout, net)
    if np.array_equal(order, np.arange(len(order))):
        return dist
    inverse = torch.as_tensor(np.argsort(order), device=x.device)
    return dist.index_select(0, inverse)


def _packed_pairs(x, lengths, layout, net):
    """The distances of :func:`tap_pairs_packed` in the layout's pair order."""
    device, dtype = x.device, _sum_dtype(x.dtype)
    _, L, d = x.shape

    def tensor(a):
        return torch.as_tensor(a, device=device)

    flat = x.reshape(-1, d).to(dtype)
    # each group of bands: its sources' frames against its targets' frames,
    # gathered by index_select (a repeatable backward) and split in one call
    X = flat.index_select(0, tensor(layout.x_seq * L + layout.x_frame))
    Y = flat.index_select(0, tensor(layout.y_seq * L + layout.y_frame))
    parts = zip(
        X.split([m * R for m, R, _ in layout.groups]),
        Y.split([m * C for m, _, C in layout.groups]),
        layout.groups,
    )
    D = [
        _cdist(a.view(m, R, d), b.view(m, C, d)).flatten() for a, b, (m, R, C) in parts
    ]
    D = D[0] if len(D) == 1 else torch.cat(D)  # (sum of m * R * C,)
    cells = tensor(layout.cells)
    D_cells = D.index_select(0, tensor(layout.sources))
    if net is None:
        S = -D_cells
    else:
        n_cells = layout.shape[0] * layout.shape[1]
        valid = torch.zeros(n_cells, dtype=torch.bool, device=device)
        valid.index_fill_(0, cells, True)
        # the blocks' cells written into zeros: the backward gathers the
        # image's gradient at those cells alone (a gather of the whole
        # image would add back every cell's gradient, outside blocks too)
        D_image = D.new_zeros(n_cells).index_copy(0, cells, D_cells)
        P_cells = tensor(layout.positions).to(D.dtype)
        P_image = D.new_zeros(n_cells).index_copy(0, cells, P_cells)
        g = net._correction_padded(
            D_image.view(1, *layout.shape),
            P_image.view(1, *layout.shape),
            valid.view(1, 1, *layout.shape),
        )
        S = -(D_cells + g.reshape(-1).index_select(0, cells).to(D.dtype))
    with torch.autocast(device.type, enabled=False):
        S = S.float() if S.dtype in (torch.bfloat16, torch.float16) else S
        row_lengths = tensor(layout.row_lengths)
        top = torch.segment_reduce(S.detach(), "max", lengths=row_lengths)
        top = torch.repeat_interleave(top, row_lengths, output_size=len(S))
        E = torch.exp(S - top)
        Z = torch.segment_reduce(E, "sum", lengths=row_lengths)
        cost = torch.segment_reduce(E * D_cells.to(S.dtype), "sum", lengths=row_lengths)
        pair_lengths = tensor(layout.pair_lengths)
        total = torch.segment_reduce(cost / Z, "sum", lengths=pair_lengths)
        return total / pair_lengths.to(total.dtype)
