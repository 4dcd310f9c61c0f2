"""The one trainable base of the metric learner and the few-shot classifier.

It owns what every estimator that trains a torch model shares: building the
model from the estimator's own random state, warm starts and checkpoint
resume, the training call and its ``finally``, chunked encoding of sequences
(with the model made ready for inference, never moved), and the fitted state
that ``save`` writes.

A subclass implements ``_build_model(n_features, kind)`` (``kind``: what
distinguishes two fits that cannot continue each other, e.g. with or without
labels) whose modules have ``encode(x, lengths) -> (z, out_lengths)``, and
``_extra_fitted_state`` / ``_set_extra_fitted_state`` for its own fitted
attributes.

It also holds what the metric learners and the few-shot classifier share
about the network they train, so that a parameter of the same name means
the same thing in both: :class:`FrameEncoderMixin` (the frame encoder
``h``, input scaling, downsampling, precision) with its constraints
``frame_encoder_params``, and the alignment network with
``alignment_params``.
"""

from __future__ import annotations

import os
from numbers import Integral

import numpy as np
import torch

from .. import _thresholds
from .._sklearn_compat import Interval, StrOptions
from .._validation import Sequences, concat_sequences
from ..core import (
    ChannelScaler,
    ConvFrameEncoder,
    FrameMLP,
    SequenceScaler,
    TAPNet,
    TAPTransNet,
    choose_stride,
)
from ._device import inference_net, resolve_device
from ._tensors import TensorSequences, build_seeded, generator_from
from ._training import TrainingConfig, TrainingState, load_checkpoint, train

__all__ = [
    "FrameEncoderMixin",
    "TrainableMixin",
    "alignment_network",
    "alignment_params",
    "check_hidden_sizes",
    "frame_encoder_params",
    "frame_width",
]

_MIN_COMPONENTS = 8
_ENCODE_BATCH = 256

#: Constraints of the frame-encoder parameters (:class:`FrameEncoderMixin`).
frame_encoder_params = {
    "encoder": [StrOptions({"conv", "conv_context", "mlp"})],
    "hidden_layer_sizes": [tuple, list],
    "n_components": [Interval(Integral, 1, None, closed="left"), None],
    "encoder_kernel_size": [Interval(Integral, 1, None, closed="left")],
    "downsample": [
        StrOptions({"auto", "per_sequence"}),
        Interval(Integral, 1, None, closed="left"),
    ],
    "scale": ["boolean", StrOptions({"per_sequence"})],
    "precision": [StrOptions({"float32", "bfloat16"})],
}

#: Constraints of the alignment-network parameters (:func:`alignment_network`).
alignment_params = {
    "alignment_net": [StrOptions({"tapnet", "trans"}), callable],
    "tap_channels": [tuple, list],
    "tap_kernel_sizes": [tuple, list, None],
}


def frame_width(n_components, n_features) -> int:
    """Output width of a frame encoder: ``n_components``, or ``max(d, 8)``.

    L2-normalised frames of very few dimensions lose their scale (one
    dimension leaves only a sign), so small inputs are widened.
    """
    return (
        n_components if n_components is not None else max(n_features, _MIN_COMPONENTS)
    )


def check_hidden_sizes(hidden_layer_sizes) -> tuple[int, ...]:
    hidden = tuple(hidden_layer_sizes)
    if any(not isinstance(h, Integral) or isinstance(h, bool) or h < 1 for h in hidden):
        raise ValueError(f"hidden_layer_sizes must be positive integers; got {hidden}")
    return hidden


def alignment_network(alignment_net, width, tap_channels, tap_kernel_sizes):
    """The alignment network an estimator's ``alignment_net`` parameter names.

    "tapnet": :class:`~sktap.TAPNet` (``tap_channels``, ``tap_kernel_sizes``;
    None: kernel 5 for each hidden layer and 3 for the last);
    "trans": :class:`~sktap.TAPTransNet` over frames of ``width``; a callable:
    ``alignment_net(width)``, which must return a module.
    """
    if alignment_net == "tapnet":
        if tap_kernel_sizes is None:  # 5 x 5 hidden layers, a 3 x 3 last one
            tap_kernel_sizes = (5,) * len(tuple(tap_channels)) + (3,)
        return TAPNet(tap_channels, tap_kernel_sizes)
    if alignment_net == "trans":
        return TAPTransNet(width)
    net = alignment_net(width)
    if not isinstance(net, torch.nn.Module):
        raise TypeError(
            "alignment_net(n_components) must return a torch.nn.Module; got "
            f"{type(net).__name__}"
        )
    return net


def refuse_code_params(estimator, *names):
    """Raise a clear error when a parameter holding code would be saved."""
    for name in names:
        value = getattr(estimator, name)
        if callable(value) and not isinstance(value, str):
            raise ValueError(
                f"an estimator whose {name} is a callable cannot be saved in "
                "sktap's safe format (the callable is code); pickle it instead"
            )


class FrameEncoderMixin:
    """The frame encoder ``h`` and what comes with it, from the estimator's
    parameters ``encoder``, ``hidden_layer_sizes``, ``n_components``,
    ``encoder_kernel_size``, ``downsample``, ``scale`` and ``precision``
    (constraints: ``frame_encoder_params``; documented in
    :class:`sktap.TAPMetricLearner`).
    """

    def _build_frame(self, n_features, stride, frames=None):
        """``(h, width)``: the frame encoder and its output width.

        ``frames``: per-sequence resolution (``ConvFrameEncoder(max_frames=)``).
        """
        hidden = check_hidden_sizes(self.hidden_layer_sizes)
        n_features = self._encoder_inputs(n_features)
        width = frame_width(self.n_components, n_features)
        if self.encoder == "mlp":
            if stride != 1 or frames is not None:
                raise ValueError(
                    "encoder='mlp' compares frames one by one and cannot "
                    f"downsample; got downsample={self.downsample!r}"
                )
            return FrameMLP(n_features, hidden, width), width
        # a first-layer window at least as wide as the stride reads every step
        kernel = max(self.encoder_kernel_size, 2 * (stride // 2) + 1)
        frame = ConvFrameEncoder(
            n_features,
            width,
            channels=hidden,
            kernel_size=kernel,
            stride=stride,
            context=self.encoder == "conv_context",
            max_frames=frames,
        )
        return frame, width

    def _stride(self, seqs, uses_augment=False):
        """The encoder's temporal stride for training sequences ``seqs``.

        ``uses_augment``: the fit uses the self-supervised term, whose
        ground-truth alignments are frame to frame ("auto" is then 1).
        """
        if self.downsample not in ("auto", "per_sequence"):
            return int(self.downsample)
        if self.downsample == "per_sequence" or uses_augment or self.encoder == "mlp":
            return 1
        stride = choose_stride(int(seqs.lengths.max()), _thresholds.AUTO_TARGET_LENGTH)
        cap = _thresholds.AUTO_MAX_STRIDE
        return stride if cap is None else min(stride, cap)

    def _resolution(self, seqs, uses_augment=False):
        """The encoder's resolution as model-kind entries: ``{"stride": s}``,
        plus ``"frames": F`` for ``downsample="per_sequence"``.

        ``F = max(AUTO_TARGET_LENGTH, ceil(longest / AUTO_MAX_STRIDE))``:
        64 frames, or more for series so long that 64 frames would pool more
        than ``AUTO_MAX_STRIDE`` steps into one. Sequences of at most ``F``
        steps keep every step. None of this with the self-supervised term,
        whose ground truth aligns step to step.
        """
        kind = {"stride": self._stride(seqs, uses_augment)}
        if self.downsample == "per_sequence" and not uses_augment:
            if self.encoder == "mlp":
                raise ValueError(
                    "encoder='mlp' compares frames one by one and cannot "
                    "downsample; got downsample='per_sequence'"
                )
            longest = int(seqs.lengths.max())
            kind["frames"] = max(
                _thresholds.AUTO_TARGET_LENGTH,
                -(-longest // _thresholds.AUTO_MAX_STRIDE),
            )
        return kind

    def _scaler(self, n_features):
        """The input scaler (unfitted): a :class:`~sktap.core.ChannelScaler`
        if ``scale`` is True, a :class:`~sktap.core.SequenceScaler` for
        "per_sequence", else None."""
        if isinstance(self.scale, str):
            return SequenceScaler(n_features)
        return ChannelScaler(n_features) if self.scale else None

    def _encoder_inputs(self, n_features) -> int:
        """Channels the frame encoder reads: what the scaler outputs."""
        scaler = self._scaler(n_features)
        return getattr(scaler, "n_outputs", n_features)

    def _low_precision(self) -> bool:
        """Whether layers train under bfloat16 autocast and predict in bfloat16."""
        return self.precision == "bfloat16"

    def _network_dtype(self):
        """The dtype in which the alignment network predicts."""
        return torch.bfloat16 if self._low_precision() else torch.float32


class TrainableMixin:
    """Model lifecycle shared by sktap's trainable estimators (see module doc)."""

    def _build_model(self, n_features, kind):  # pragma: no cover - abstract
        raise NotImplementedError

    def _new_model(self, n_features, kind, generator):
        """A fresh model whose weights are drawn from ``generator`` alone."""
        return build_seeded(lambda: self._build_model(n_features, kind), generator)

    def _start_model(self, n_features, kind, rng):
        """The model a fit trains: the current one (warm start), or a new one.

        A new model's weights come from ``rng`` alone. With ``warm_start``
        and an existing ``checkpoint_path`` (a fit that crashed), the new
        model and the loop's state are restored from the checkpoint.
        """
        if self.warm_start and hasattr(self, "model_"):
            if n_features != self.n_features_in_ or kind != self._model_kind:
                raise ValueError(
                    "warm_start=True needs the same number of features and the "
                    "same kind of fit as the previous fit (features: "
                    f"{self.n_features_in_}, got {n_features})"
                )
            return self.model_
        model = self._new_model(n_features, kind, generator_from(rng))
        self._state = TrainingState()
        path = self.checkpoint_path
        if self.warm_start and path and os.path.exists(path):
            self._state = load_checkpoint(path, model)
        return model

    def _optimizer_name(self) -> str:
        """The optimiser to train with: Adam, unless a subclass offers a choice."""
        return "adam"

    def _monitor(self) -> dict:
        """Which validation log picks the best epoch: the lowest ``val_loss``,
        unless a subclass validates by another measure."""
        return {"monitor": "val_loss", "higher_is_better": False}

    def _training_config(self, max_epochs) -> TrainingConfig:
        return TrainingConfig(
            **self._monitor(),
            max_epochs=max_epochs,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            optimizer=self._optimizer_name(),
            n_iter_no_change=self.n_iter_no_change,
            verbose=self.verbose,
            callback=self.callback,
            checkpoint_path=self.checkpoint_path,
        )

    def _train_model(
        self,
        model,
        kind,
        n_features,
        batches,
        step,
        rng,
        *,
        max_epochs,
        validate=None,
        device=None,
    ):
        """Run the loop; the model ends on the CPU in eval mode, whatever happens."""
        self.n_features_in_ = n_features
        self._model_kind = kind
        self.model_ = model.to(device)  # visible to callbacks during training
        try:
            self._state = train(
                self,
                model,
                step,
                batches,
                self._training_config(max_epochs),
                rng,
                self._state,
                validate,
            )
        finally:
            self.model_ = model.to("cpu").eval()
            self.history_ = self._state.history
        return self

    def _encode(self, seqs: Sequences, model=None, device=None) -> Sequences:
        """``model.encode`` of validated sequences, chunk by chunk, as float32 numpy.

        Without ``model``, the fitted ``model_`` runs on the estimator's
        device as :func:`~sktap._engine.inference_net` gives it (from the
        current inference context): never moved nor switched, so encoding
        mutates no fitted state and is safe from several threads.
        """
        if model is None:
            device = resolve_device(self.device)
            model = inference_net(self.model_, device)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(seqs), _ENCODE_BATCH):
                idx = np.arange(start, min(start + _ENCODE_BATCH, len(seqs)))
                part = TensorSequences(seqs.take(idx), device)
                z, lz = model.encode(part.data, part.lengths)
                parts.append(Sequences(z.float().cpu().numpy(), lz.cpu().numpy()))
        # chunks are padded to their own longest sequence
        return concat_sequences(parts)

    def _fitted_state(self):
        return {
            "n_features_in_": int(self.n_features_in_),
            "model_kind": self._model_kind,
            "model": self.model_.state_dict(),
            "history_": list(self.history_),
            **self._extra_fitted_state(),
        }

    def _set_fitted_state(self, state):
        kind = state["model_kind"]
        model = self._build_model(state["n_features_in_"], kind)
        model.load_state_dict(state["model"])
        self.model_ = model.eval()
        self.n_features_in_ = state["n_features_in_"]
        self._model_kind = kind
        self.history_ = state["history_"]
        self._state = TrainingState(epoch=len(self.history_), history=self.history_)
        self._set_extra_fitted_state(state)

    def _extra_fitted_state(self):
        return {}

    def _set_extra_fitted_state(self, state):
        pass
