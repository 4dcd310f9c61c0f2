"""How an estimator that uses a metric learner gets a fitted one.

Shared by :class:`~sktap.TAPKNeighborsClassifier` and the distance
transformers of :mod:`sktap.interop`: the learner is cloned and fitted in
``fit`` (``refit_metric=True``), or a fitted one is used as it is
(``refit_metric=False``, or wrapped in :class:`sklearn.frozen.FrozenEstimator`).
"""

from __future__ import annotations

import copy

from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from ._base import SequenceMetricLearner

__all__ = ["fitted_learner", "keep_fitted_learner", "unwrap_frozen"]


def unwrap_frozen(learner, name="metric_learner"):
    """``(learner, frozen)``: the learner inside a FrozenEstimator, if any."""
    if not isinstance(learner, FrozenEstimator):
        return learner, False
    inner = learner.estimator
    if not isinstance(inner, SequenceMetricLearner):
        raise TypeError(
            f"{name} must wrap an sktap metric learner; got a "
            f"FrozenEstimator of {type(inner).__name__}"
        )
    return inner, True


def fitted_learner(learner, refit, X, y=None):
    """A private fitted copy of ``learner`` (None stays None).

    Parameters
    ----------
    learner : SequenceMetricLearner, FrozenEstimator or None
    refit : bool
        Fit a clone on ``(X, y)`` (``y`` None: unsupervised), unless the
        learner is frozen.
    X : Sequences
    y : ndarray of shape (n_ts,), optional
    """
    if learner is None:
        return None
    learner, frozen = unwrap_frozen(learner)
    if refit and not frozen:
        fresh = clone(learner)
        return fresh.fit(X) if y is None else fresh.fit(X, y)
    try:
        check_is_fitted(learner, "model_")
    except NotFittedError:
        raise NotFittedError(
            "metric_learner must be fitted when refit_metric=False; fit it "
            "first or set refit_metric=True"
        ) from None
    # a private copy: refitting the caller's learner later must not
    # desynchronise it from the sequences transformed with it
    return copy.deepcopy(learner)


def keep_fitted_learner(estimator, clone_):
    """Give ``clone_`` the fitted ``metric_learner`` of ``estimator`` back.

    With ``refit_metric=False`` the fitted learner is part of what the
    estimator means, so its clones (hence grid searches) keep it.
    """
    if not estimator.refit_metric and estimator.metric_learner is not None:
        clone_.metric_learner = estimator.metric_learner
    return clone_
