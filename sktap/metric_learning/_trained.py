"""What the metric learners share: a metric loss on minibatches and the loop."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils import check_random_state

from .._validation import check_sequences
from ..engine import TensorSequences, check_labels, resolve_device, split_validation
from ..engine._persistence import SaveMixin
from ..engine._trainable import TrainableMixin
from ..engine._training import EpochBatches
from ..losses import get_metric_loss
from ._base import SequenceMetricLearner
from ._steps import make_train_step, make_validation

__all__ = ["TrainedMetricLearner"]


class TrainedMetricLearner(SaveMixin, TrainableMixin, SequenceMetricLearner):
    """A learner trained with a metric loss on the B x B distances of minibatches.

    The common parent of :class:`sktap.TAPMetricLearner` and
    :class:`sktap.baselines.SoftDTWMetricLearner`: they differ only in the
    model they build (``_build_model``) and the distance they expose
    (``distance_kernel``).
    """

    augment = False
    self_supervised_weight = 0.0
    _requires_labels = False

    def _metric_loss(self):
        kwargs = {
            "triplet": {"margin": self.margin},
            "lifted": {"alpha": self.alpha, "beta": self.beta},
            "binomial": {"alpha": self.alpha, "beta": self.beta, "margin": self.margin},
        }[self.loss]
        return get_metric_loss(self.loss, **kwargs)

    # -- fit -------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
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
        if not supervised and not self.augment:
            raise ValueError("fit(X) without labels needs augment=True")
        seqs = check_sequences(X)
        labels = check_labels(y, len(seqs)) if supervised else None
        rng = check_random_state(self.random_state)
        device = resolve_device(self.device)
        model = self._start_model(seqs.n_features, supervised, rng)
        self.supervised_ = supervised
        train_idx, val_idx = split_validation(
            len(seqs), labels, self.validation_fraction, rng
        )
        data = TensorSequences(seqs, device)
        y_t = None if labels is None else torch.as_tensor(labels[1]).to(device)
        step = make_train_step(
            model,
            data,
            seqs,
            y_t,
            rng,
            metric=self._metric_loss() if supervised else None,
            augment=self.augment,
            self_supervised_weight=self.self_supervised_weight,
        )
        validate = None
        if len(val_idx):
            val_rng = np.random.RandomState(rng.randint(2**31 - 1))
            validate = make_validation(step, val_idx, self.batch_size, val_rng)
        batches = EpochBatches(train_idx, self.batch_size)
        return self._train_model(
            model,
            supervised,
            seqs.n_features,
            batches,
            step,
            rng,
            max_epochs=self.max_epochs,
            validate=validate,
            device=device,
        )

    def _encode_sequences(self, seqs):
        if self.model_.frame is None:
            return seqs
        return self._encode(seqs)

    def _extra_fitted_state(self):
        return {"supervised_": bool(self.supervised_)}

    def _set_extra_fitted_state(self, state):
        self.supervised_ = state["supervised_"]
