"""The learned-distance contract every sktap metric learner satisfies.

In the spirit of metric-learn's ``BaseMetricLearner``: whatever a learner
learns (a frame transform, an alignment network, both), what it exposes is
the same, and :class:`~sktap.TAPKNeighborsClassifier` relies on nothing else.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._engine import (
    PairKernel,
    check_form,
    check_n_jobs,
    check_working_memory,
    inference_scope,
    run_form,
)
from .._validation import (
    Sequences,
    SequenceTagsMixin,
    check_sequence,
    check_sequences,
    to_output,
)

__all__ = ["MetricFunction", "SequenceMetricLearner"]


class SequenceMetricLearner(SequenceTagsMixin, TransformerMixin, BaseEstimator):
    """Base class of learned sequence distances (the contract).

    A learner maps sequences to frames (``encode``) and compares encoded
    sequences with a :class:`~sktap.metrics.PairKernel` (``distance_kernel``);
    everything else follows from those two:

    - ``transform(X)``: the encoded sequences in tslearn format;
    - ``pairwise_distances(X, Y)``: tiled and memory-bounded (``working_memory``),
      through joblib (``n_jobs``), with an optional progress bar;
    - ``alignment(x, y)``: the soft alignment of one pair, where the distance
      has one;
    - ``get_metric()``: a picklable ``metric(x, y) -> float`` for
      scikit-learn's ``metric=``.

    Subclasses implement ``fit``, ``_encode_sequences(seqs)`` (validated,
    with the fitted number of features), ``distance_kernel(symmetric=...)``
    and ``_pair_alignment(zx, zy)``, and set ``model_`` and
    ``n_features_in_`` when fitted. A learner that trains a torch model with
    a metric loss subclasses :class:`TorchMetricLearner` instead, which
    implements all of it but the model and the distance.

    Inference never mutates fitted state: each call builds one inference
    context (the model made ready on the device once, shared by encoding
    and the kernel), so ``transform``
    and ``pairwise_distances`` are safe from several threads.
    """

    def _encode_sequences(self, seqs: Sequences) -> Sequences:  # pragma: no cover
        raise NotImplementedError

    def distance_kernel(self, *, symmetric=False) -> PairKernel:  # pragma: no cover
        """The learned distance between *encoded* sequences, as a tile kernel."""
        raise NotImplementedError

    def _pair_alignment(self, zx, zy):  # pragma: no cover
        raise NotImplementedError

    def encode(self, X, *, name="X") -> Sequences:
        """Validate ``X`` and apply the learned frame transform.

        Parameters
        ----------
        X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)

        Returns
        -------
        Sequences
            Zero-padded encoded frames and their lengths (which differ from
            the input lengths when the encoder downsamples time).
        """
        check_is_fitted(self, "model_")
        seqs = check_sequences(X, name=name, n_features=self.n_features_in_)
        return self._encode_sequences(seqs)

    def transform(self, X):
        """Frame-transformed sequences ``h(X)`` in tslearn format.

        Returns
        -------
        ndarray of shape (n_ts, max_len, n_components)
            NaN after each sequence's end; ``(n_ts, n_components, max_len)``
            under ``sktap.config_context(layout="channels_first")``.
        """
        Z = self.encode(X)  # float32 frames; float64 out, as sklearn expects
        return to_output(Sequences(Z.data.astype(np.float64, copy=False), Z.lengths))

    def pairwise_distances(
        self, X, Y=None, *, symmetric=False, working_memory=None, n_jobs=None, verbose=0
    ):
        """Learned distances from each ``X[i]`` (source) to each ``Y[j]``.

        Computed in tiles whose extra memory stays under ``working_memory``
        MiB (scikit-learn's setting by default), through joblib.

        Parameters
        ----------
        X : array-like of shape (n_x, sz, d) or (n_x, sz), or list of (L_i, d)
            Sources.
        Y : same as X, optional
            Targets; None means ``Y = X``.
        symmetric : bool or "divergence", default=False
            False: the learned distance from ``X[i]`` to ``Y[j]``. True: the
            average of both directions. "divergence": the clustering-ready
            form ``max(0, s(x, y) - (s(x, x) + s(y, y)) / 2)`` of that
            average ``s``: symmetric, non-negative, zero from a sequence to
            itself (see :func:`sktap.metrics.cdist_tap`).
        working_memory : float, optional
        n_jobs : int, optional
        verbose : int, default=0

        Returns
        -------
        ndarray of shape (n_x, n_y)
        """
        budget = check_working_memory(working_memory)
        check_n_jobs(n_jobs)
        form = check_form(symmetric)
        with inference_scope():  # one device copy of the model for the call
            Zx = self.encode(X, name="X")
            Zy = None if Y is None else self.encode(Y, name="Y")
            kernel = self.distance_kernel(symmetric=bool(form))
            out = run_form(kernel, Zx, Zy, form, budget, n_jobs, verbose)
        return out.astype(np.float64)

    def alignment(self, x, y):
        """The soft alignment (Lx', Ly') of the encoded ``x`` onto the encoded ``y``.

        Rows sum to ``1 / Lx'``. ``Lx'`` and ``Ly'`` are the encoded lengths
        (the input lengths unless the encoder downsamples time).
        """
        check_is_fitted(self, "model_")
        xs = check_sequence(x, name="x", n_features=self.n_features_in_)
        ys = check_sequence(y, name="y", n_features=self.n_features_in_)
        zx, zy = (
            self._encode_sequences(Sequences(s[None], np.array([len(s)])))
            for s in (xs, ys)
        )
        return self._pair_alignment(
            zx.data[0, : zx.lengths[0]], zy.data[0, : zy.lengths[0]]
        )

    def get_metric(self, *, symmetric=False):
        """A picklable callable ``metric(x, y) -> float`` with the learned distance.

        Usable as scikit-learn's ``metric=``: there each row of a 2-D array
        is one univariate sequence of a fixed length, and each pair costs
        one Python call. Pass ``algorithm="brute"`` to scikit-learn's
        neighbours estimators: TAP is not a metric, so the trees that
        ``algorithm="auto"`` may pick return wrong neighbours. Variable
        lengths, channels and speed: :class:`sktap.interop.TAPDistanceTransformer`
        with ``metric="precomputed"``.

        Parameters
        ----------
        symmetric : bool or "divergence", default=False
            The form of the distance, as in :meth:`pairwise_distances`.
        """
        check_is_fitted(self, "model_")
        check_form(symmetric)
        return MetricFunction(self, symmetric)


class MetricFunction:
    """The picklable ``metric(x, y) -> float`` that ``get_metric`` returns.

    Parameters
    ----------
    learner : SequenceMetricLearner
        Fitted; its :meth:`~SequenceMetricLearner.pairwise_distances` of the
        one pair is the value.
    symmetric : bool or "divergence", default=False
        The form of the distance.
    """

    def __init__(self, learner, symmetric=False):
        self.learner = learner
        self.symmetric = symmetric

    def __call__(self, x, y):
        d = self.learner.pairwise_distances(
            [np.asarray(x)], [np.asarray(y)], symmetric=self.symmetric
        )
        return float(d[0, 0])
