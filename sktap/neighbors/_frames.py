"""The nearest-frame score: a cheap ranking that follows TAP closely.

Each row of a TAP alignment sums to ``1 / Lx``, so

    tap(x, y) = sum_ij T[i, j] D[i, j] >= mean_i min_j D[i, j],

the mean distance from each source frame to its nearest target frame. That
bound is far from tight (a learned alignment spreads its mass, and the
distance is about 2.5 times the bound on generated data), so it prunes
nothing on its own, but it *orders* references almost as TAP does: among 2%
of 10,000 references it keeps 99.4% of the exact ten nearest, against 89%
for the pooled ranking vectors (``docs/benchmarks.md``, "Search at scale").
TAP's network also sees each cell's relative-position gap ``P[i, j] =
|(i+1)/Lx - (j+1)/Ly|``; adding ``w * P`` before the minimum (``w``, the
position weight, chosen in ``fit`` from the distances the ranker was taught
with) makes the order closer still.

It costs ``O(Lx * Ly * d)`` per pair against TAP's ``O(Lx * Ly * 24,000)``
convolution work, so a shortlist many times the exact budget is re-ranked
by it for a fraction of the exact stage's time.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["POSITION_WEIGHTS", "frame_scores"]

# The position weights ``fit`` chooses from (0: the lower bound itself).
POSITION_WEIGHTS = (0.0, 0.25, 0.5, 1.0)
_BYTES_PER_CELL = 16  # float32 D, its position term and the mask, per cell


def _score_block(q, lq, refs, lr, weight, symmetric):
    """Scores ``(b,)`` of one query ``q (lq, d)`` against ``refs (b, L, d)``.

    The squared distances of all ``lq x b*L`` frame pairs come from one
    matrix product (the references' norms added in its epilogue), padded
    reference frames made infinite through their norms.
    """
    b, grid, d = refs.shape
    dtype = refs.dtype
    j = torch.arange(grid, device=refs.device)
    invalid = j[None, :] >= lr[:, None]  # (b, L): padded reference frames
    norms = (refs * refs).sum(-1).masked_fill_(invalid, float("inf"))
    flat = refs.reshape(b * grid, d)
    sq = torch.addmm(norms.reshape(1, -1), q, flat.T, alpha=-2)  # (lq, b * L)
    q_norms = (q * q).sum(-1)[:, None]
    if not weight and not symmetric:  # the root is monotone: take it last
        nearest = sq.view(lq, b, grid).amin(dim=2).add_(q_norms)
        return nearest.clamp_min_(0).sqrt_().mean(dim=0)
    dist = sq.add_(q_norms).clamp_min_(0).sqrt_()
    if weight:
        pos_r = (j[None, :] + 1).to(dtype) / lr[:, None].to(dtype)  # (b, L)
        pos_q = (torch.arange(lq, device=refs.device, dtype=dtype) + 1) / lq
        gap = (pos_r.reshape(1, -1) - pos_q[:, None]).abs_()
        dist = dist.add_(gap, alpha=weight)
    dist = dist.view(lq, b, grid)
    score = dist.amin(dim=2).mean(dim=0)  # each query frame to its nearest
    if symmetric:  # and each (valid) reference frame to its nearest query frame
        backward = dist.amin(dim=0).masked_fill_(invalid, 0.0).sum(dim=1)
        score = (score + backward / lr.to(dtype)) / 2
    return score


def frame_scores(queries, refs, cand, weight, symmetric, budget):
    """Nearest-frame scores of each query against its candidate references.

    Parameters
    ----------
    queries, refs : TensorSequences
        Encoded sequences on one device.
    cand : ndarray of shape (n_queries, c)
        Indices into ``refs`` (valid ones).
    weight : float
        Position weight ``w``.
    symmetric : bool
        Average the score from the query and from the reference side.
    budget : float
        MiB bound on the frame-distance block of one step.

    Returns
    -------
    ndarray of shape (n_queries, c), float64
    """
    out = np.empty(cand.shape)
    q_lengths = queries.host_lengths
    r_lengths = refs.host_lengths
    with torch.inference_mode():
        for i, row in enumerate(cand):
            lq = int(q_lengths[i])
            q = queries.data[i, :lq]
            grid = int(r_lengths[row].max())
            per_ref = max(1, grid * lq * _BYTES_PER_CELL)
            step = max(1, int(budget * 2**20 // per_ref))
            for start in range(0, len(row), step):
                block, lr = refs.rows(row[start : start + step], grid)
                score = _score_block(q, lq, block, lr, weight, symmetric)
                out[i, start : start + step] = score.double().cpu().numpy()
    return out


def top_by_frames(queries, refs, cand, missing, m, weight, symmetric, budget):
    """The ``m`` candidates of each row with the lowest frame score."""
    scores = frame_scores(queries, refs, cand, weight, symmetric, budget)
    scores[missing] = np.inf
    keep = np.argsort(scores, axis=1, kind="stable")[:, :m]
    return np.take_along_axis(cand, keep, 1), np.take_along_axis(missing, keep, 1)
