"""TAP, learned or parameter-free, as an sktime pairwise panel transformer.

sktime hands ``_transform`` its panels channels first (``numpy3D``: n_cases,
n_channels, n_timepoints) or as a list of DataFrames (``df-list``: one
``(n_timepoints_i, n_channels)`` frame per case, unequal lengths allowed);
both become sktap's time-first sequences here, and the whole distance matrix
is then one tiled call of the learned distance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from sktime.dists_kernels.base import BasePairwiseTransformerPanel

from .._config import config_context
from .._engine import check_form, check_n_jobs, check_working_memory, resolve_device
from ..metric_learning import SequenceMetricLearner
from ._common import check_fitted_learner, learned_distances

__all__ = ["TAPPairwiseTransformerPanel"]


class TAPPairwiseTransformerPanel(BasePairwiseTransformerPanel):
    """TAP distance between time series, for sktime (kNN, clustering, kernels).

    Entry ``(i, j)`` of ``transform(X, X2)`` is the distance from ``X[i]``
    (the source) to ``X2[j]``: the learned distance of a fitted sktap metric
    learner, or parameter-free TAP (a soft nearest-frame distance with a
    relative-position channel). Series may be multivariate and of unequal
    length; the whole ``(n, m)`` matrix is computed in one call, in tiles
    bounded by ``working_memory``.

    Parameters
    ----------
    metric_learner : sktap metric learner, FrozenEstimator or None, default=None
        None: parameter-free TAP. Otherwise a fitted learner such as
        :class:`sktap.TAPMetricLearner`, used as it is (never refitted: this
        transformer has nothing to fit it on), or such a learner wrapped in
        :class:`sklearn.frozen.FrozenEstimator`. A plain learner is kept, not
        refitted or unfitted, by this transformer's ``clone``, by
        :func:`sklearn.base.clone` and by ``reset``; but when sktime clones
        an estimator that *contains* this transformer (its tuning and
        composition tools), it clones the learner by scikit-learn's rule,
        which unfits it, and ``transform`` then says so. A ``FrozenEstimator``
        survives every clone: use it whenever the transformer goes into
        another estimator.
    symmetric : bool or "divergence", default=False
        False: ``tap(x, y)``, with ``x`` from ``X`` the source (asymmetric).
        True: the average of both directions. "divergence":
        ``max(0, s(x, y) - (s(x, x) + s(y, y)) / 2)`` of that average ``s``,
        symmetric, non-negative and zero from a series to itself. The
        ``"symmetric"`` tag is True for the last two.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where parameter-free TAP runs ("auto": CUDA when present). A metric
        learner computes on its own device (its ``device`` parameter).
    working_memory : float, optional
        Bound in MiB on the extra memory of one tile; defaults to
        scikit-learn's ``working_memory`` setting.
    n_jobs : int, optional
        Tiles run through :class:`joblib.Parallel`.

    See Also
    --------
    sktap.metrics.cdist_tap : Parameter-free TAP on sktap's own layout.
    sktap.TAPKNeighborsClassifier : sktap's streamed kNN under the same distance.

    Notes
    -----
    Missing values are refused: sktime marks an unequal-length panel by its
    mtype (``df-list``, ``pd-multiindex``), not by NaN padding.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022.

    Examples
    --------
    Parameter-free TAP on sktime's ``numpy3D`` (n_cases, n_channels,
    n_timepoints):

    >>> import numpy as np
    >>> from sktap.interop import TAPPairwiseTransformerPanel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(4, 2, 12))
    >>> dist = TAPPairwiseTransformerPanel(symmetric="divergence", device="cpu")
    >>> D = dist.transform(X)
    >>> D.shape, bool(np.allclose(D, D.T)), D.diagonal().tolist()
    ((4, 4), True, [0.0, 0.0, 0.0, 0.0])

    A learned distance in sktime's kNN, on series of unequal length
    (``pd-multiindex``: one row per (case, time point)):

    >>> import pandas as pd
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sktime.classification.distance_based import (
    ...     KNeighborsTimeSeriesClassifier,
    ... )
    >>> from sktap import TAPMetricLearner
    >>> seqs = [
    ...     rng.normal(size=(n, 2)) + c for n, c in zip([9, 11, 8, 12], [0, 0, 3, 3])
    ... ]
    >>> y = np.array([0, 0, 1, 1])
    >>> learner = TAPMetricLearner(
    ...     hidden_layer_sizes=(8,), max_epochs=1, device="cpu", random_state=0
    ... ).fit(seqs, y)
    >>> X_mi = pd.concat(
    ...     [pd.DataFrame(s) for s in seqs], keys=range(4), names=["case", "time"]
    ... )
    >>> dist = TAPPairwiseTransformerPanel(metric_learner=FrozenEstimator(learner))
    >>> knn = KNeighborsTimeSeriesClassifier(distance=dist, n_neighbors=1)
    >>> knn.fit(X_mi, y).predict(X_mi).tolist()
    [0, 0, 1, 1]
    """

    _tags = {
        # packaging info
        "authors": ["sktap developers"],
        "maintainers": ["sktap developers"],
        "python_dependencies": ["torch"],
        # estimator type
        "pwtrafo_type": "distance",
        "symmetric": False,  # set from ``symmetric`` in __init__
        # numpy3D is taken as it comes (equal length, channels first); every
        # other Panel mtype is converted to df-list, which holds unequal lengths
        "X_inner_mtype": ["df-list", "numpy3D"],
        "capability:multivariate": True,
        "capability:unequal_length": True,
        "capability:missing_values": False,
    }

    def __init__(
        self,
        metric_learner=None,
        *,
        symmetric=False,
        device="auto",
        working_memory=None,
        n_jobs=None,
    ):
        self.metric_learner = metric_learner
        self.symmetric = symmetric
        self.device = device
        self.working_memory = working_memory
        self.n_jobs = n_jobs
        super().__init__()
        # sktime reads the tag before any transform; an invalid value leaves
        # it False and is reported by transform
        self.set_tags(symmetric=_is_symmetric_form(symmetric))

    def _transform(self, X, X2=None):
        """Distances (n, m) from each case of ``X`` to each case of ``X2``.

        Parameters
        ----------
        X : ndarray of shape (n, n_channels, n_timepoints), or list of DataFrame
            ``numpy3D`` or ``df-list`` (each frame (n_timepoints_i, n_channels)).
        X2 : same as X, with m cases
            The base class passes ``X`` itself when ``X2`` was not given.

        Returns
        -------
        ndarray of shape (n, m), float64
        """
        self._check_params()
        learner = _usable_learner(self.metric_learner)
        Xs = _time_first(X, "X")
        # X2 is X (the very object) when transform got no X2: let the
        # distance use its X-to-X path instead of converting twice
        Ys = None if X2 is X else _time_first(X2, "X2")
        _check_channels(Xs, Ys, learner)
        # the sequences are time first already: a global channels-first
        # setting must not transpose them again
        with config_context(layout="time_first"):
            return learned_distances(
                learner,
                Xs,
                Ys,
                symmetric=self.symmetric,
                device=self.device,
                working_memory=self.working_memory,
                n_jobs=self.n_jobs,
            )

    def _check_params(self):
        check_form(self.symmetric)
        # checked even where a learner makes it unused, so a typo never hides
        resolve_device(self.device)
        check_working_memory(self.working_memory)
        check_n_jobs(self.n_jobs)

    def clone(self):
        """A clone in post-init state that keeps a fitted ``metric_learner``.

        The learner is what this transformer's distance *is*, and nothing
        here could refit it, so the clone shares it (as a
        ``FrozenEstimator`` would) instead of getting scikit-learn's unfitted
        copy. ``transform`` never modifies the learner.

        Returns
        -------
        TAPPairwiseTransformerPanel
        """
        clone_ = super().clone()
        if _is_fitted_learner(self.metric_learner):
            clone_.metric_learner = self.metric_learner
        return clone_

    def __sklearn_clone__(self):
        # scikit-learn's clone (GridSearchCV, cross_val_score) asks here
        return self.clone()

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Parameter sets for sktime's estimator checks.

        Only parameter-free TAP: a fitted learner accepts only the number of
        channels it was fitted on, while sktime's shared scenarios for
        pairwise panel transformers mix panels of 2 and 5 channels. The
        learner path runs through the same checks in
        ``tests/test_interop_sktime.py``, restricted to one channel count.

        Parameters
        ----------
        parameter_set : str, default="default"
            No special sets are defined.

        Returns
        -------
        list of dict
        """
        return [
            {"device": "cpu"},
            {"symmetric": True, "working_memory": 64.0},
            {"symmetric": "divergence", "device": "cpu", "n_jobs": 1},
        ]


def _is_symmetric_form(symmetric) -> bool:
    """Whether ``symmetric`` names a symmetric form (True or "divergence")."""
    try:
        return bool(check_form(symmetric))
    except ValueError:  # reported by transform, which checks every parameter
        return False


def _is_fitted_learner(metric_learner) -> bool:
    if not isinstance(metric_learner, SequenceMetricLearner):
        return False
    try:
        check_is_fitted(metric_learner, "model_")
    except NotFittedError:
        return False
    return True


def _usable_learner(metric_learner):
    """The fitted sktap learner behind ``metric_learner`` (None stays None)."""
    try:
        return check_fitted_learner(metric_learner)
    except NotFittedError:
        raise NotFittedError(
            f"metric_learner ({type(metric_learner).__name__}) is not fitted: fit "
            "it before transform. If a fitted one was passed, this is a clone "
            "that unfitted it (sktime clones the learner inside composite "
            "estimators and tuners); pass metric_learner=FrozenEstimator(learner) "
            "from sklearn.frozen, which clones keep"
        ) from None


def _time_first(X, name):
    """sktime inner data -> sktap's time-first sequences.

    ``numpy3D`` (n, n_channels, n_timepoints) becomes (n, n_timepoints,
    n_channels); ``df-list`` becomes a list of (n_timepoints_i, n_channels)
    arrays.
    """
    if isinstance(X, np.ndarray):
        seqs, parts = X.transpose(0, 2, 1), [X]
    else:
        seqs = parts = [frame.to_numpy() for frame in X]
    # sktap would read trailing NaN as padding, i.e. silently shorten a
    # series that sktime says has missing values
    if any(pd.isna(part).any() for part in parts):
        raise ValueError(
            f"{name} has missing values (NaN), which TAPPairwiseTransformerPanel "
            "does not support; pass series of unequal length in an unequal-length "
            "mtype such as 'df-list' or 'pd-multiindex' rather than NaN-padded"
        )
    return seqs


def _n_channels(seqs) -> int:
    return seqs.shape[2] if isinstance(seqs, np.ndarray) else seqs[0].shape[1]


def _check_channels(Xs, Ys, learner):
    """Refuse channel mismatches in sktime's words (X2, channels)."""
    n_x = _n_channels(Xs)
    if Ys is not None and _n_channels(Ys) != n_x:
        raise ValueError(
            f"X and X2 must have the same channels; X has {n_x}, X2 has "
            f"{_n_channels(Ys)}"
        )
    if learner is not None and n_x != learner.n_features_in_:
        raise ValueError(
            f"X has {n_x} channels but metric_learner was fitted on "
            f"{learner.n_features_in_}"
        )
