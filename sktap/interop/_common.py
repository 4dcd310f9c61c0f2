"""What every adapter shares: the learned distance of a fitted learner, or
parameter-free TAP, on sequences in sktap's own (time-first) layout."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..metric_learning import SequenceMetricLearner
from ..metric_learning._lifecycle import unwrap_frozen
from ..metrics import cdist_tap

__all__ = ["check_fitted_learner", "learned_distances"]


def check_fitted_learner(metric_learner, name="metric_learner"):
    """The fitted sktap learner behind ``metric_learner`` (None stays None).

    A :class:`~sklearn.frozen.FrozenEstimator` is unwrapped; anything but an
    sktap metric learner raises ``TypeError``, an unfitted one
    ``NotFittedError``.
    """
    if metric_learner is None:
        return None
    metric_learner, _ = unwrap_frozen(metric_learner, name)
    if not isinstance(metric_learner, SequenceMetricLearner):
        raise TypeError(
            f"{name} must be None (parameter-free TAP) or a fitted sktap metric "
            f"learner such as sktap.TAPMetricLearner; got "
            f"{type(metric_learner).__name__}"
        )
    check_is_fitted(metric_learner, "model_")
    return metric_learner


def learned_distances(
    metric_learner,
    X,
    Y=None,
    *,
    symmetric=False,
    device="auto",
    working_memory=None,
    n_jobs=None,
    verbose=0,
):
    """Distances (n_x, n_y), float64, from each ``X[i]`` to each ``Y[j]``.

    ``metric_learner`` None is parameter-free TAP on ``device``; a fitted
    learner computes on its own device. ``symmetric`` is False, True or
    "divergence", as in :func:`sktap.metrics.cdist_tap`.
    """
    if metric_learner is None:
        out = cdist_tap(
            X,
            Y,
            symmetric=symmetric,
            device=device,
            working_memory=working_memory,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        return out.astype(np.float64)
    return metric_learner.pairwise_distances(
        X,
        Y,
        symmetric=symmetric,
        working_memory=working_memory,
        n_jobs=n_jobs,
        verbose=verbose,
    )
