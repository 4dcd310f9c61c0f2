"""Running top-k bookkeeping of the streamed k-NN search."""

from __future__ import annotations

import numpy as np

from .._validation import Sequences

__all__ = ["mean_pool", "merge_topk", "sorted_topk"]


def mean_pool(seqs: Sequences) -> np.ndarray:
    """Mean frame of each sequence, (n_ts, d); padding is zero so it drops out."""
    return seqs.data.sum(axis=1) / seqs.lengths[:, None]


def merge_topk(best_d, best_i, rows, cols, block, k):
    """Fold a block (r, c) of distances into the running k best of ``rows``."""
    d = np.concatenate([best_d[rows], block], axis=1)  # (r, k + c)
    i = np.concatenate([best_i[rows], np.broadcast_to(cols, block.shape)], axis=1)
    if d.shape[1] > k:
        keep = np.argpartition(d, k - 1, axis=1)[:, :k]
        d = np.take_along_axis(d, keep, axis=1)
        i = np.take_along_axis(i, keep, axis=1)
    best_d[rows], best_i[rows] = d, i


def sorted_topk(dist, ind, k):
    """The k smallest of each row, sorted by distance, then index (for ties)."""
    if dist.shape[1] > k:
        keep = np.argpartition(dist, k - 1, axis=1)[:, :k]
        dist = np.take_along_axis(dist, keep, axis=1)
        ind = np.take_along_axis(ind, keep, axis=1)
    order = np.lexsort((ind, dist), axis=1)
    return np.take_along_axis(dist, order, 1), np.take_along_axis(ind, order, 1)
