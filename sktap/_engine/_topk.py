"""Running top-k bookkeeping of streamed neighbour searches."""

from __future__ import annotations

import numpy as np

from .._validation import Sequences

__all__ = ["mean_pool", "merge_topk", "sorted_topk"]


def mean_pool(seqs: Sequences) -> np.ndarray:
    """Mean frame of each sequence, (n_ts, d), in float64 whatever the frames'
    dtype; padding is zero so it drops out."""
    return seqs.data.sum(axis=1, dtype=np.float64) / seqs.lengths[:, None]


def _smallest(d, i, k):
    """Positions (r, k) of the k smallest ``(d, i)`` pairs of each row, unordered.

    Pairs are ordered by distance, then index, as a lexicographic sort would
    (NaN last): of the distances tied with a row's k-th smallest, those with
    the smallest indices are kept. Linear in the row width (partitions only);
    just k tied indices per row are sorted.
    """
    part = np.argpartition(d, k - 1, axis=1)
    kth = np.take_along_axis(d, part[:, k - 1 : k], axis=1)  # (r, 1)
    nan_d, nan_kth = np.isnan(d), np.isnan(kth)
    below = (d < kth) | (nan_kth & ~nan_d)  # fewer than k per row
    tied = (d == kth) | (nan_kth & nan_d)  # with below: at least k per row
    need = k - below.sum(axis=1, keepdims=True)  # in 1..k
    if (tied.sum(axis=1, keepdims=True) == need).all():
        return part[:, :k]  # no tie straddles the k-th place: one choice
    tied_i = np.where(tied, i, np.iinfo(i.dtype).max)
    first = np.sort(np.partition(tied_i, k - 1, axis=1)[:, :k], axis=1)
    last = np.take_along_axis(first, need - 1, axis=1)  # the need-th smallest
    chosen = tied & (i <= last)  # need per row, more only for equal pairs
    rank = np.where(below, 0, np.where(chosen, 1, 2)).astype(np.int8)
    return np.argpartition(rank, k - 1, axis=1)[:, :k]


def merge_topk(best_d, best_i, rows, cols, block, k):
    """Fold a block (r, c) of distances into the running k best of ``rows``.

    The k best are the smallest by distance, then training index, so ties
    across tiles resolve as in one sort of the whole row.
    """
    d = np.concatenate([best_d[rows], block], axis=1)  # (r, k + c)
    i = np.concatenate([best_i[rows], np.broadcast_to(cols, block.shape)], axis=1)
    if d.shape[1] > k:
        keep = _smallest(d, i, k)
        d = np.take_along_axis(d, keep, axis=1)
        i = np.take_along_axis(i, keep, axis=1)
    best_d[rows], best_i[rows] = d, i


def sorted_topk(dist, ind, k):
    """The k smallest of each row, sorted by distance, then index (for ties)."""
    if dist.shape[1] > k:
        keep = _smallest(dist, ind, k)
        dist = np.take_along_axis(dist, keep, axis=1)
        ind = np.take_along_axis(ind, keep, axis=1)
    order = np.lexsort((ind, dist), axis=1)
    return np.take_along_axis(dist, order, 1), np.take_along_axis(ind, order, 1)
