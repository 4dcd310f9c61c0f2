"""TAPDistanceTransformer: learned distances to reference sequences."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from .._engine import (
    InferenceCache,
    InferenceContext,
    TAPKernel,
    check_working_memory,
    resolve_device,
    run_form,
    run_tiles,
    self_distances,
    to_divergence,
)
from .._sklearn_compat import Interval, StrOptions, fit_context
from .._validation import SequenceTagsMixin, check_sequences
from ..metric_learning import SequenceMetricLearner
from ..metric_learning._lifecycle import fitted_learner, keep_fitted_learner

__all__ = ["ReferenceDistances", "TAPDistanceTransformer"]


class ReferenceDistances(
    SequenceTagsMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Fit on reference sequences; transform into distances to them.

    The common part of :class:`TAPDistanceTransformer` and
    :class:`TAPKernelTransformer`; subclasses say which form of the distance
    they use (``_form``) and may map the distances (``_output``).
    """

    _parameter_constraints = {
        "metric_learner": [SequenceMetricLearner, FrozenEstimator, None],
        "refit_metric": ["boolean"],
        "working_memory": [Interval(Real, 0, None, closed="neither"), None],
        "device": [str, torch.device],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def _form(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _output(self, distances):
        return distances

    def __sklearn_clone__(self):
        return keep_fitted_learner(self, super().__sklearn_clone__())

    # -- fit -------------------------------------------------------------
    def _fit(self, X, y):
        """Fit; return the references' own distance matrix if it was computed."""
        seqs = check_sequences(X)
        n_labels = None if y is None else len(np.asarray(y))
        if n_labels is not None and n_labels != len(seqs):
            raise ValueError(f"X has {len(seqs)} sequences but y has {n_labels} labels")
        resolve_device(self.device)  # fail here, not at the first transform
        self.metric_learner_ = fitted_learner(
            self.metric_learner, self.refit_metric, seqs, y
        )
        self.n_features_in_ = seqs.n_features
        self.n_samples_fit_ = len(seqs)
        self._n_features_out = len(seqs)
        context = InferenceContext()
        with context.active():
            self._references = self._encode(seqs)
        # what transform reuses, prepared once per fit with the model that
        # encoded the references
        self._inference = InferenceCache()
        _, kernel, references = self._prepared(context)
        self._reference_self = None
        if self._form() == "divergence":
            self._reference_self = self._self_distances(kernel, references)
        return None

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Store the reference sequences (fitting the learner first).

        Parameters
        ----------
        X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)
            The references: ``transform`` gives one column per sequence.
        y : array-like of shape (n_ts,), optional
            Labels for the metric learner; None fits it without labels
            (self-supervised) where the learner allows.

        Returns
        -------
        self
        """
        self._fit(X, y)
        return self

    @fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X, y=None):
        """Fit on ``X``, then its distances to itself, (n_ts, n_ts).

        The same as ``fit(X, y).transform(X)`` but computed once, and with
        the "divergence" form exactly zero on the diagonal.
        """
        D = self._fit(X, y)
        return self._output(self._reference_matrix() if D is None else D)

    # -- the distance ----------------------------------------------------
    def _encode(self, seqs):
        learner = self.metric_learner_
        return seqs if learner is None else learner.encode(seqs)

    def _prepared(self, context=None):
        """``(context, kernel, references)``: the model on the device, the
        distance and the encoded references uploaded for it, built once per
        fit (rebuilt when ``symmetric`` or ``device`` changes, and lazily
        after unpickling)."""

        def build():
            ctx = context or InferenceContext()
            with ctx.active():
                kernel = self._kernel()
            return ctx, kernel, kernel.upload(self._references)

        return self._inference.get(
            build,
            sources=(self._references, self.metric_learner_),
            settings=(self._form(), resolve_device(self.device)),
        )

    def _kernel(self):
        symmetric = bool(self._form())
        learner = self.metric_learner_
        if learner is None:
            return TAPKernel(None, resolve_device(self.device), symmetric=symmetric)
        return learner.distance_kernel(symmetric=symmetric)

    def _self_distances(self, kernel, Z):
        budget = check_working_memory(self.working_memory)
        return self_distances(kernel, Z, budget, self.n_jobs).astype(np.float64)

    def _reference_matrix(self):
        budget = check_working_memory(self.working_memory)
        _, kernel, references = self._prepared()
        out = run_form(
            kernel,
            references,
            None,
            self._form(),
            budget,
            self.n_jobs,
            self.verbose,
            x_self=self._reference_self,  # computed in fit: not twice
        )
        return out.astype(np.float64)

    def _distances(self, X):
        check_is_fitted(self)
        seqs = check_sequences(X, n_features=self.n_features_in_)
        budget = check_working_memory(self.working_memory)
        context, kernel, references = self._prepared()
        with context.active():  # queries encoded by the model the fit prepared
            Z = self._encode(seqs)
            out = run_tiles(kernel, Z, references, budget, self.n_jobs, self.verbose)
            out = out.astype(np.float64)
            if self._reference_self is not None:
                to_divergence(
                    out, self._self_distances(kernel, Z), self._reference_self
                )
        return out

    def transform(self, X):
        """Distances from each sequence of ``X`` (the source) to each reference.

        Parameters
        ----------
        X : array-like of shape (n_queries, sz, d) or (n_queries, sz), or list

        Returns
        -------
        ndarray of shape (n_queries, n_samples_fit_)
        """
        return self._output(self._distances(X))


class TAPDistanceTransformer(ReferenceDistances):
    """The learned TAP distances to reference sequences, as features.

    What :class:`sklearn.neighbors.KNeighborsTransformer` is to a vector
    metric: ``fit`` stores reference sequences (fitting a metric learner on
    them first, if given), and ``transform`` returns the ``(n_queries,
    n_references)`` matrix of distances to them. Put it in front of any
    scikit-learn estimator that takes ``metric="precomputed"``: the
    neighbours estimators, DBSCAN, agglomerative clustering, KMedoids,
    ``silhouette_score``, tslearn's precomputed kNN.

    Parameters
    ----------
    metric_learner : sktap metric learner, FrozenEstimator or None, default=None
        None: parameter-free TAP. A learner is cloned and fitted on
        ``(X, y)`` in ``fit`` (``refit_metric=True``), or a copy of it is
        used as it is (``refit_metric=False``; it must then be fitted, and
        clones keep it). A fitted learner wrapped in
        :class:`sklearn.frozen.FrozenEstimator` is never refitted.
    refit_metric : bool, default=True
        Whether ``fit`` fits a clone of ``metric_learner``.
    symmetric : bool or "divergence", default=False
        False: ``tap(query, reference)``, the paper's distance, with the
        query as the source (what :class:`~sktap.TAPKNeighborsClassifier`
        ranks by). True: the average of both directions. "divergence":
        ``max(0, s(x, y) - (s(x, x) + s(y, y)) / 2)`` of that average
        ``s``, symmetric, non-negative and zero from a sequence to itself:
        the form for clustering (see :func:`sktap.metrics.cdist_tap`).
    working_memory : float, optional
        MiB bound on one tile of TAP work; defaults to scikit-learn's
        ``working_memory`` setting (1024).
    device : str or torch.device, default="auto"
        Where parameter-free TAP runs (a learner runs on its own device).
    n_jobs : int, optional
        Tiles run through :class:`joblib.Parallel`.
    verbose : int, default=0
        Positive: a progress bar over the tiles.

    Attributes
    ----------
    metric_learner_ : sktap metric learner or None
        The fitted learner whose distance is used.
    n_features_in_ : int
        Channels per time step seen in ``fit`` (1 for a 2-D array).
    n_samples_fit_ : int
        Number of references: the number of columns ``transform`` returns.

    See Also
    --------
    TAPKernelTransformer : a similarity ``exp(-D / sigma)`` for kernel methods.
    sktap.TAPKNeighborsClassifier : k-NN that streams its search in tiles.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sktap.datasets import make_warped_sequences
    >>> from sktap.interop import TAPDistanceTransformer
    >>> X, y = make_warped_sequences(n_classes=2, n_per_class=6, random_state=0)
    >>> knn = make_pipeline(
    ...     TAPDistanceTransformer(device="cpu"),
    ...     KNeighborsClassifier(n_neighbors=1, metric="precomputed"),
    ... )
    >>> knn.fit(X[:8], y[:8]).predict(X[8:]).shape
    (4,)
    """

    _parameter_constraints = {
        **ReferenceDistances._parameter_constraints,
        "symmetric": ["boolean", StrOptions({"divergence"})],
    }

    def __init__(
        self,
        metric_learner=None,
        *,
        refit_metric=True,
        symmetric=False,
        working_memory=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.metric_learner = metric_learner
        self.refit_metric = refit_metric
        self.symmetric = symmetric
        self.working_memory = working_memory
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _form(self):
        return self.symmetric
