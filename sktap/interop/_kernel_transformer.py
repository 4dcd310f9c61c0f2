"""TAPKernelTransformer: a TAP similarity for kernel methods."""

from __future__ import annotations

from numbers import Real

import numpy as np

from .._sklearn_compat import Interval, StrOptions
from ._distance_transformer import ReferenceDistances

__all__ = ["TAPKernelTransformer"]


class TAPKernelTransformer(ReferenceDistances):
    """``exp(-D / sigma)`` of the TAP divergence to reference sequences.

    For ``SVC(kernel="precomputed")``, kernel ridge or spectral clustering
    with ``affinity="precomputed"``: ``fit`` stores the references (fitting
    a metric learner first, if given), and ``transform`` returns the
    ``(n_queries, n_references)`` similarities to them. ``D`` is the
    "divergence" form of TAP (see :func:`sktap.metrics.cdist_tap`):
    symmetric, non-negative and zero from a sequence to itself, so the
    kernel is symmetric with ones on the diagonal of ``fit_transform(X)``.

    The kernel is **not guaranteed positive semi-definite**: TAP is not a
    metric, and ``exp(-D / sigma)`` is PSD for every ``sigma`` only when
    ``D`` is conditionally negative definite. scikit-learn's SVC accepts an
    indefinite kernel and still trains, but the optimum it reaches is then
    not guaranteed; check ``np.linalg.eigvalsh`` of the training kernel if
    that matters to you.

    Parameters
    ----------
    metric_learner : sktap metric learner, FrozenEstimator or None, default=None
        As in :class:`TAPDistanceTransformer`.
    refit_metric : bool, default=True
        Whether ``fit`` fits a clone of ``metric_learner``.
    sigma : float or "median", default="median"
        Bandwidth. "median": the median divergence between distinct
        references, computed in ``fit`` (which then costs the
        ``n_references x n_references`` distances, the ones
        ``fit_transform`` returns anyway).
    working_memory : float, optional
        MiB bound on one tile of TAP work.
    device : str or torch.device, default="auto"
        Where parameter-free TAP runs.
    n_jobs : int, optional
        Tiles run through :class:`joblib.Parallel`.
    verbose : int, default=0

    Attributes
    ----------
    metric_learner_ : sktap metric learner or None
    n_features_in_ : int
    n_samples_fit_ : int
        Number of references.
    sigma_ : float
        The bandwidth used.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.svm import SVC
    >>> from sktap.datasets import make_warped_sequences
    >>> from sktap.interop import TAPKernelTransformer
    >>> X, y = make_warped_sequences(n_classes=2, n_per_class=6, random_state=0)
    >>> svc = make_pipeline(
    ...     TAPKernelTransformer(device="cpu"), SVC(kernel="precomputed")
    ... )
    >>> svc.fit(X[:8], y[:8]).predict(X[8:]).shape
    (4,)
    """

    _parameter_constraints = {
        **ReferenceDistances._parameter_constraints,
        "sigma": [Interval(Real, 0, None, closed="neither"), StrOptions({"median"})],
    }

    def __init__(
        self,
        metric_learner=None,
        *,
        refit_metric=True,
        sigma="median",
        working_memory=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.metric_learner = metric_learner
        self.refit_metric = refit_metric
        self.sigma = sigma
        self.working_memory = working_memory
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _form(self):
        return "divergence"

    def _fit(self, X, y):
        super()._fit(X, y)
        if self.sigma != "median":
            self.sigma_ = float(self.sigma)
            return None
        D = self._reference_matrix()  # (n_ts, n_ts), reused by fit_transform
        off_diagonal = D[~np.eye(len(D), dtype=bool)]
        median = float(np.median(off_diagonal)) if off_diagonal.size else 0.0
        # all references identical (or only one): any positive bandwidth does
        self.sigma_ = median if median > 0 else 1.0
        return D

    def _output(self, distances):
        return np.exp(-distances / self.sigma_)
