"""Helpers of the trained few-shot classifiers: episode shapes, TAP scores."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .._engine import TAPKernel, check_working_memory, inference_scope, run_tiles
from .._validation import Sequences
from ._episodes import PairwiseScorer
from ._sampler import label_repr

__all__ = ["episode_shape", "tap_scorer"]


def episode_shape(labels, n_way, k_shot, n_query, what):
    """``(n_way, k_shot, n_query)`` that the classes in ``labels`` can supply.

    Fewer classes than ``n_way`` give episodes of all of them; a smallest
    class of ``m < k_shot + n_query`` sequences gives ``k_shot = min(k_shot,
    m - 1)`` and ``n_query = min(n_query, m - k_shot)``; both with a warning.
    """
    classes, counts = np.unique(labels, return_counts=True)
    smallest = label_repr(classes[counts.argmin()])
    if counts.min() < 2:
        raise ValueError(
            f"class {smallest} has 1 sequence; few-shot training needs at "
            "least 2 per class (one support, one query)"
        )
    n = min(n_way, len(classes))
    if n < n_way:
        warnings.warn(
            f"the {what} data has {len(classes)} classes, fewer than "
            f"n_way={n_way}; {what} episodes are {n}-way",
            UserWarning,
            stacklevel=3,
        )
    m = int(counts.min())
    k = min(k_shot, m - 1)
    q = min(n_query, m - k)
    if (k, q) != (k_shot, n_query):
        warnings.warn(
            f"the smallest {what} class ({smallest}) "
            f"has {m} sequences, fewer than k_shot + n_query = "
            f"{k_shot + n_query}; {what} episodes use k_shot={k}, n_query={q}",
            UserWarning,
            stacklevel=3,
        )
    return n, k, q


def _finite(d):
    if not np.isfinite(d).all():
        raise ValueError(
            "TAP gave non-finite distances in float32; the input values are too "
            "large for this precision: rescale the data (e.g. "
            "TimeSeriesScalerMeanVariance)"
        )
    return d.astype(np.float64)


def tap_scorer(model, Z: Sequences, device, dtype=torch.float32) -> PairwiseScorer:
    """Class scores from ``-tap(q, s) - tap(s, q)`` over embedded sequences ``Z``.

    One inference context for the scorer: ``model.align`` made ready on
    ``device`` in ``dtype`` once (never moved itself) and ``Z`` uploaded
    once, whatever the number of episodes scored.
    """
    with inference_scope():  # both kernels share one copy of the network
        both_ways = TAPKernel(model.align, device, dtype, symmetric=True)
        one_way = TAPKernel(model.align, device, dtype)
    refs = one_way.upload(Z)

    def pair_scores(a, b):
        budget = check_working_memory(None)
        d = run_tiles(both_ways, refs.take(a), refs.take(b), budget)
        return -2.0 * _finite(d)

    def all_scores():
        # One direction for every ordered pair is the whole matrix: half the
        # work of asking for the symmetric score of every pair.
        d = _finite(run_tiles(one_way, refs, refs, check_working_memory(None)))
        return -(d + d.T)

    return PairwiseScorer(pair_scores, len(Z), "mean", all_scores)
