"""What the metric learners share: a metric loss on minibatches and the loop."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._config import get_config
from .._engine import (
    ClassBalancedBatches,
    EpochBatches,
    FrameEncoderMixin,
    SaveMixin,
    TensorSequences,
    TrainableMixin,
    auto_samples_per_class,
    check_labels,
    common_train_params,
    frame_encoder_params,
    resolve_device,
    split_validation,
)
from .._sklearn_compat import Interval, StrOptions, fit_context
from .._validation import check_sequences
from ..losses import get_metric_loss
from ._base import SequenceMetricLearner
from ._steps import make_train_step, make_validation, training_path

__all__ = ["TorchMetricLearner"]


class TorchMetricLearner(
    SaveMixin, FrameEncoderMixin, TrainableMixin, SequenceMetricLearner
):
    """Base of the metric learners that sktap's training loop trains.

    It meets the :class:`SequenceMetricLearner` contract for a torch model
    trained with a metric loss on the B x B distances of minibatches: it
    provides ``fit`` (validation, input scaling, downsampling, minibatches,
    optional validation split, warm starts and checkpoints), the frame
    encoder ``h`` built from the shared parameters, ``encode``, ``save``,
    and everything the contract derives from ``encode`` and
    ``distance_kernel``. :class:`sktap.TAPMetricLearner` and
    :class:`sktap.baselines.SoftDTWMetricLearner` are its two subclasses:
    they differ only in the model they build and the distance they expose.

    A subclass implements:

    - ``__init__`` with every parameter of ``_parameter_constraints``
      (start from ``TorchMetricLearner._parameter_constraints``: the loss,
      the frame encoder, minibatches and training; the parameters are
      documented in :class:`sktap.TAPMetricLearner`), storing each as it is;
    - ``_build_model(n_features, kind) -> SequenceDistanceModel``: a fresh
      model (:class:`sktap.core.SequenceDistanceModel`) whose ``frame`` is
      usually ``self._build_frame(n_features, kind["stride"])[0]`` and whose
      ``scaler`` is ``self._scaler(n_features)``; ``kind["supervised"]``
      says whether the fit has labels. It also rebuilds a saved model;
    - ``distance_kernel(symmetric=False)``: the distance between encoded
      sequences as a :class:`sktap.metrics.PairKernel`;
    - ``_pair_alignment(zx, zy)``: the soft alignment (Lx', Ly') of two
      encoded sequences, rows summing to ``1 / Lx'``.

    and may change:

    - ``_requires_labels`` (class attribute, default False): True refuses
      ``fit(X)`` without labels (an unsupervised fit trains the model's
      ``align`` network with the self-supervised term alone);
    - ``_self_supervised_settings()``: ``(augment, self_supervised_weight,
      alignment_weight)`` of a supervised fit; the default ``(False, 0.0,
      1.0)`` trains with the metric loss alone. A model trained with the
      self-supervised term needs an ``align`` network, as TAP's;
    - ``_metric_path(device)``: ``"all_pairs"`` (one padded ``model(x,
      lengths)`` call per minibatch) or ``"mined"`` (length buckets and
      hard-pair mining through the model's ``align`` network, TAP only);
      the default follows ``sktap.get_config()["training_path"]``.

    Estimators of a subclass can be pickled; ``sktap.load`` reads back only
    the files of sktap's own estimators.
    """

    _parameter_constraints: dict = {
        "loss": [StrOptions({"triplet", "lifted", "binomial"})],
        # the frame encoder h, shared with the few-shot classifier
        **frame_encoder_params,
        "margin": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "beta": [Interval(Real, 0, None, closed="neither")],
        # how minibatches are drawn (the loss needs positives)
        "samples_per_class": [
            Interval(Integral, 2, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        **common_train_params,
    }

    _requires_labels = False

    # -- what a subclass may change --------------------------------------
    def _self_supervised_settings(self):
        """``(augment, self_supervised_weight, alignment_weight)`` of a
        supervised fit; a learner without the self-supervised term (the
        default here) returns ``(False, 0.0, 1.0)``."""
        return False, 0.0, 1.0

    def _metric_path(self, device):
        """How a training step computes the metric term on ``device``:
        ``sktap.get_config()["training_path"]``, resolved for the device
        (see :func:`sktap.set_config`)."""
        return training_path(get_config()["training_path"], device)

    def _metric_loss(self):
        kwargs = {
            "triplet": {"margin": self.margin},
            "lifted": {"alpha": self.alpha, "beta": self.beta},
            "binomial": {"alpha": self.alpha, "beta": self.beta, "margin": self.margin},
        }[self.loss]
        return get_metric_loss(self.loss, **kwargs)

    # -- fit -------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the distance from sequences ``X`` and optional labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)
        y : array-like of shape (n_ts,), optional
            Class labels; without them the self-supervised objective alone
            trains the alignment network.

        Returns
        -------
        self
        """
        supervised = y is not None
        if not supervised and self._requires_labels:
            raise ValueError(f"{type(self).__name__}.fit needs labels y")
        seqs = check_sequences(X)
        labels = check_labels(y, len(seqs)) if supervised else None
        rng = check_random_state(self.random_state)
        device = resolve_device(self.device)
        augment, ssl_weight, alignment_weight = self._self_supervised_settings()
        uses_augment = not supervised or (augment and ssl_weight > 0)
        resolution = (
            self._resolution(seqs, uses_augment) if supervised else {"stride": 1}
        )
        stride = resolution["stride"]
        kind = {"supervised": supervised, **resolution}
        model = self._start_model(seqs.n_features, kind, rng)
        if model.scaler is not None and self._state.epoch == 0:
            model.scaler.fit(torch.as_tensor(seqs.data), torch.as_tensor(seqs.lengths))
        train_idx, val_idx = split_validation(
            len(seqs), labels, self.validation_fraction, rng
        )
        batches = self._batches(train_idx, labels)
        self.supervised_ = supervised
        self.stride_ = stride
        data = TensorSequences(seqs, device)
        y_t = None if labels is None else torch.as_tensor(labels[1]).to(device)
        step = make_train_step(
            model,
            data,
            seqs,
            y_t,
            rng,
            metric=self._metric_loss() if supervised else None,
            augment=augment,
            self_supervised_weight=ssl_weight,
            alignment_weight=alignment_weight,
            path=self._metric_path(device),
            precision=self.precision,
        )
        validate = None
        if len(val_idx):
            val_rng = np.random.RandomState(rng.randint(2**31 - 1))
            validate = make_validation(step, val_idx, self.batch_size, val_rng)
        return self._train_model(
            model,
            kind,
            seqs.n_features,
            batches,
            step,
            rng,
            max_epochs=self.max_epochs,
            validate=validate,
            device=device,
        )

    def _batches(self, train_idx, labels):
        """Uniform shuffled minibatches, or P classes x K sequences each
        (``samples_per_class``) when there are labels."""
        k = self.samples_per_class
        if labels is None or k is None:
            return EpochBatches(train_idx, self.batch_size)
        codes = labels[1][train_idx]
        if k == "auto":
            k = auto_samples_per_class(codes, self.batch_size)
            if k is None:  # one sequence per class: no positive pairs to balance
                return EpochBatches(train_idx, self.batch_size)
        return ClassBalancedBatches(train_idx, codes, self.batch_size, k)

    def _encode_sequences(self, seqs):
        if self.model_.frame is None and self.model_.scaler is None:
            return seqs
        return self._encode(seqs)

    def _set_extra_fitted_state(self, state):
        self.supervised_ = state["model_kind"]["supervised"]
        self.stride_ = state["model_kind"]["stride"]
