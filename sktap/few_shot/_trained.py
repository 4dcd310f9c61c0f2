"""TorchEpisodicClassifier: what the few-shot classifiers trained by episodes share."""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import torch
from scipy.special import softmax
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._engine import (
    Episodes,
    FrameEncoderMixin,
    InferenceCache,
    SaveMixin,
    TensorSequences,
    TrainableMixin,
    build_seeded,
    check_labels,
    classes_from_state,
    classes_state,
    common_train_params,
    frame_encoder_params,
    frame_width,
    refuse_code_params,
    resolve_device,
)
from .._sklearn_compat import Interval, StrOptions, fit_context
from .._validation import Sequences, check_sequences
from ._base import EpisodicClassifier
from ._model import build_backbone
from ._sampler import EpisodeSampler
from ._scoring import episode_shape
from ._steps import make_episode_step, make_validation

__all__ = ["TorchEpisodicClassifier"]


class TorchEpisodicClassifier(
    SaveMixin, FrameEncoderMixin, TrainableMixin, EpisodicClassifier
):
    """Base of the few-shot classifiers that sktap's loop trains on episodes.

    It provides ``fit`` (episodes drawn from the training classes, the
    cross-entropy of paper Eqs. 8-9, an optional split of held-out
    *classes* for validation, warm starts and checkpoints), the scaler and
    frame encoder built from the parameters it shares with the metric
    learners (``encoder``, ``hidden_layer_sizes``, ``n_components``,
    ``encoder_kernel_size``, ``downsample``, ``scale``, ``precision``: the
    same names, meanings and code as in :class:`sktap.TAPMetricLearner`) or
    a user's ``backbone``, ``predict_proba``, ``save`` and the test protocol
    of :class:`sktap.few_shot.EpisodicClassifier`.
    :class:`sktap.TAPFewShotClassifier` and
    :class:`sktap.baselines.OTAMFewShotClassifier` are its two subclasses:
    they differ only in the distance between encoded sequences.

    A subclass implements:

    - ``__init__`` with every parameter of ``_parameter_constraints`` (start
      from ``TorchEpisodicClassifier._parameter_constraints``; the
      parameters are documented in :class:`sktap.TAPFewShotClassifier`);
    - ``_build_head(n_features, width, seeded) -> (attention, head)``:
      the modules after the frame encoder of output ``width``, each built
      through ``seeded(factory)`` so that their weights come from the
      estimator's random state;
    - ``_new_network(backbone, attention, head, scaler) ->
      FewShotModel``: the model (see :mod:`sktap.few_shot._model`), whose
      ``pair_scores`` is the training score;
    - ``_scorer(model, Z, device)``: a scorer of encoded sequences ``Z``
      (see :class:`sktap.few_shot.EpisodicClassifier`) for ``predict`` and
      validation.

    and may extend ``_code_params`` (parameters that may hold code, which
    ``save`` refuses).
    """

    _parameter_constraints: dict = {
        "n_way": [Interval(Integral, 2, None, closed="left")],
        "k_shot": [Interval(Integral, 1, None, closed="left")],
        "n_query": [Interval(Integral, 1, None, closed="left")],
        "n_episodes": [Interval(Integral, 1, None, closed="left")],
        "backbone": [callable, None],
        # the frame encoder h, shared with the metric learners
        **frame_encoder_params,
        "optimizer": [StrOptions({"adam", "sgd"})],
        "validation_interval": [Interval(Integral, 1, None, closed="left")],
        "n_validation_episodes": [Interval(Integral, 1, None, closed="left")],
        **{
            k: v
            for k, v in common_train_params.items()
            if k not in ("batch_size", "max_epochs")
        },
    }

    _code_params: tuple = ()

    # -- model -----------------------------------------------------------
    def _monitor(self):
        # validation counts correct answers on held-out episodes
        return {"monitor": "val_accuracy", "higher_is_better": True}

    def _optimizer_name(self):
        return self.optimizer

    def _build_model(self, n_features, kind=None, generator=None):
        def seeded(factory):
            return factory() if generator is None else build_seeded(factory, generator)

        kind = {"stride": 1} if kind is None else kind  # files from before kinds
        if self.backbone is None:
            frames = kind.get("frames")
            backbone = seeded(
                lambda: self._build_frame(n_features, kind["stride"], frames)[0]
            )
            width = frame_width(self.n_components, self._encoder_inputs(n_features))
        else:  # trained as built: a pretrained backbone keeps its weights
            if isinstance(self.scale, str):
                raise ValueError(
                    "scale='per_sequence' widens the frames to 3 * d channels, "
                    "which a custom backbone was not built for; use scale=True"
                )
            backbone, width = build_backbone(self.backbone, n_features)
        attention, head = self._build_head(n_features, width, seeded)
        return self._new_network(backbone, attention, head, self._scaler(n_features))

    def _new_model(self, n_features, kind, generator):
        return self._build_model(n_features, kind, generator)

    def _episode_resolution(self, seqs):
        if self.backbone is None:
            return self._resolution(seqs)
        if self.downsample not in ("auto", 1):
            raise ValueError(
                "a custom backbone maps frames one by one and cannot downsample; "
                f"got downsample={self.downsample!r}"
            )
        return {"stride": 1}

    # -- fit -------------------------------------------------------------
    def _split_classes(self, n_classes, rng):
        """Class indices ``(train, validation)``."""
        if not self.validation_fraction:
            return np.arange(n_classes), np.arange(0)
        n_val = math.ceil(self.validation_fraction * n_classes)
        if n_val < 2 or n_classes - n_val < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} of {n_classes} "
                f"classes leaves {n_classes - n_val} to train and {n_val} to "
                "validate; each side needs at least 2 classes"
            )
        perm = rng.permutation(n_classes)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train episodically on ``(X, y)``; the data becomes the support set.

        Parameters
        ----------
        X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)
        y : array-like of shape (n_ts,)
            At least 2 classes of at least 2 sequences each.

        Returns
        -------
        self
        """
        seqs = check_sequences(X)
        self._require_y(y)
        classes, codes = check_labels(y, len(seqs))
        rng = check_random_state(self.random_state)
        device = resolve_device(self.device)
        train_cls, val_cls = self._split_classes(len(classes), rng)
        train_idx = np.flatnonzero(np.isin(codes, train_cls))
        shape = episode_shape(
            classes[codes[train_idx]], self.n_way, self.k_shot, self.n_query, "training"
        )
        kind = self._episode_resolution(seqs)
        model = self._start_model(seqs.n_features, kind, rng)
        if model.scaler is not None and self._state.epoch == 0:
            model.scaler.fit(torch.as_tensor(seqs.data), torch.as_tensor(seqs.lengths))
        # Episodes come from the loop's own RNG, whose state it records after
        # every round: a resumed fit then replays the episodes of the
        # uninterrupted run.
        sampler = EpisodeSampler(codes[train_idx], *shape, random_state=rng)
        step = make_episode_step(
            model,
            TensorSequences(seqs.take(train_idx), device),
            sampler.n_way,
            self.precision,
        )
        validate = None
        if len(val_cls):
            val_idx = np.flatnonzero(np.isin(codes, val_cls))
            validate = self._make_validation(
                model, seqs.take(val_idx), classes[codes[val_idx]], rng, device
            )
        # one loop "epoch" is a round of validation_interval episodes
        interval = min(self.validation_interval, self.n_episodes)
        self._train_model(
            model,
            kind,
            seqs.n_features,
            Episodes(sampler, interval),
            step,
            rng,
            max_epochs=math.ceil(self.n_episodes / interval),
            validate=validate,
            device=device,
        )
        self.n_way_, self.k_shot_, self.n_query_ = shape
        self.stride_ = kind["stride"]
        self._store_support(seqs, y)
        return self

    def _make_validation(self, model, seqs, labels, rng, device):
        shape = episode_shape(
            labels, self.n_way, self.k_shot, self.n_query, "validation"
        )
        seed = rng.randint(2**31 - 1)
        return make_validation(
            lambda: self._encode(seqs, model, device),
            lambda Z: self._scorer(model, Z, device),
            labels,
            shape,
            seed,
            self.n_validation_episodes,
        )

    # -- scoring (used by predict and evaluate_episodes) -----------------
    def _check_ready(self):
        check_is_fitted(self, "model_")

    def _expected_features(self):
        check_is_fitted(self, "model_")
        return self.n_features_in_

    def _embed(self, seqs):
        return self._encode(seqs)

    def _embedding_sources(self):
        return (self.model_,)

    def _make_scorer(self, Z):
        return self._scorer(self.model_, Z, resolve_device(self.device))

    def predict_proba(self, X):
        """Class probabilities: softmax of ``k_shot_`` times the mean class scores.

        Parameters
        ----------
        X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of (L_i, d)

        Returns
        -------
        ndarray of shape (n_ts, n_classes)
            Columns in ``classes_`` order.
        """
        scores = self._class_scores(X)
        return softmax(self.k_shot_ * scores, axis=1)

    # -- persistence -----------------------------------------------------
    def save(self, path):
        if self.backbone is not None:
            raise ValueError(
                "an estimator with a custom backbone cannot be saved in sktap's "
                "safe format (the backbone is code); pickle it instead, or save "
                "model_.state_dict() and rebuild"
            )
        refuse_code_params(self, *self._code_params)
        super().save(path)

    save.__doc__ = SaveMixin.save.__doc__

    def _extra_fitted_state(self):
        return {
            "episode_shape": [int(self.n_way_), int(self.k_shot_), int(self.n_query_)],
            "classes": classes_state(self.classes_),
            "support_data": torch.as_tensor(self.support_.data),
            "support_lengths": torch.as_tensor(self.support_.lengths),
            "support_labels": torch.as_tensor(self.support_labels_),
        }

    def _set_extra_fitted_state(self, state):
        self.n_way_, self.k_shot_, self.n_query_ = state["episode_shape"]
        self.stride_ = (state["model_kind"] or {"stride": 1})["stride"]
        self.classes_ = classes_from_state(state["classes"])
        self.support_ = Sequences(
            state["support_data"].numpy(), state["support_lengths"].numpy()
        )
        self.support_labels_ = state["support_labels"].numpy()
        self._support_cache = InferenceCache()
