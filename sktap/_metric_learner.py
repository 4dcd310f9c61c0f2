"""TAPMetricLearner: learn the frame transform and the alignment network."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._device import resolve_device
from ._estimator_utils import (
    check_labels,
    common_train_params,
    split_validation,
    training_config,
)
from ._modules import FrameMLP, LearnedTAP
from ._nets import TAPNet
from ._persistence import SaveMixin
from ._torch_data import TensorSequences, build_seeded, generator_from
from ._training import TrainingState, load_checkpoint, train
from ._validation import check_sequence, check_sequences, to_tslearn
from .augment import augment_batch
from .losses import get_metric_loss, self_supervised_loss
from .metrics import cdist_tap
from .metrics import tap_alignment as _tap_alignment

__all__ = ["TAPMetricLearner"]

_MIN_COMPONENTS = 8


class TAPMetricLearner(SaveMixin, TransformerMixin, BaseEstimator):
    """Learn a TAP distance: a per-frame MLP ``h`` and the alignment network ``f``.

    With labels, ``fit(X, y)`` minimises a metric loss on the B x B TAP
    distances of each batch (all pairs in one batched call) plus, when
    ``augment=True``, the self-supervised alignment loss of each sequence
    against a random blur or merge of itself (paper section 3.2, Eq. 10).
    Without labels, ``fit(X)`` learns ``f`` alone from the self-supervised
    loss, with ``h`` the identity (paper appendix A.1).

    Parameters
    ----------
    loss : {"triplet", "lifted", "binomial"}, default="triplet"
        Batch-hard triplet (Eq. 4), lifted structure (Eq. 5) or binomial
        deviance with hard mining (Eqs. 6-7).
    hidden_layer_sizes : tuple of int, default=(1024, 1024)
        Hidden widths of ``h``.
    n_components : int, optional
        Output dimension of ``h``. None: the input dimension ``d``, but at
        least 8, because frames are L2-normalised and a 1-D unit vector is
        only a sign (univariate series would lose all shape).
    tap_channels, tap_kernel_sizes : tuple of int, default=(30, 30), (5, 5, 3)
        Architecture of :class:`sktap.TAPNet`.
    augment : bool, default=True
        Add the self-supervised term (supervised fit); ``fit(X)`` needs it.
    self_supervised_weight : float, default=1.0
        Weight of the self-supervised term.
    margin : float, default=0.1
        Margin of the triplet loss and of hard mining (binomial).
    alpha, beta : float, default=40, 2
        Scales of the lifted and binomial losses.
    batch_size : int, default=64
        Sequences per batch (capped at the number of training sequences).
    max_epochs : int, default=50
    learning_rate, weight_decay : float, default=1e-4, 1e-4
        Adam's settings.
    validation_fraction : float, default=0.0
        Held out (stratified) to monitor a validation loss; the best epoch's
        weights are kept.
    n_iter_no_change : int or None, default=None
        Stop after this many epochs without improvement of the validation
        loss (or of the training loss without a validation set).
    device : str or torch.device, default="auto"
        Training and inference device; "auto" picks CUDA when present.
        Fitted weights are stored on the CPU.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
        Positive: a progress bar over each epoch's batches and a line of
        losses per epoch.
    callback : callable, optional
        ``callback(estimator, epoch, logs)``; returning True stops training.
    warm_start : bool, default=False
        Continue training from the current weights for ``max_epochs`` more
        epochs. After an interrupted fit (``KeyboardInterrupt``, or a crash
        with ``checkpoint_path`` set, even in a new process), the next fit
        with ``warm_start=True`` instead finishes the interrupted run's
        remaining epochs and ends with the same weights as an uninterrupted
        run with the same ``random_state`` (on the CPU).
    checkpoint_path : str, optional
        Write weights, optimiser and RNG state there after each epoch,
        atomically (a temporary file renamed over the old one).

    Attributes
    ----------
    model_ : torch.nn.Module
        The learned :class:`~sktap._modules.LearnedTAP` (on the CPU).
    n_features_in_ : int
        Features per time step seen in ``fit``.
    supervised_ : bool
        Whether the last fit had labels.
    history_ : list of dict
        Per-epoch logs (losses, validation loss, seconds).

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap import TAPMetricLearner
    >>> rng = np.random.RandomState(0)
    >>> X = [rng.randn(rng.randint(5, 9), 2) + (i % 2) for i in range(8)]
    >>> y = [i % 2 for i in range(8)]
    >>> learner = TAPMetricLearner(
    ...     hidden_layer_sizes=(8,),
    ...     tap_channels=(4,),
    ...     tap_kernel_sizes=(3, 3),
    ...     max_epochs=2,
    ...     device="cpu",
    ...     random_state=0,
    ... )
    >>> learner.fit(X, y).pairwise_distances(X).shape
    (8, 8)
    """

    _parameter_constraints = {
        "loss": [StrOptions({"triplet", "lifted", "binomial"})],
        "hidden_layer_sizes": [tuple, list],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "tap_channels": [tuple, list],
        "tap_kernel_sizes": [tuple, list],
        "augment": ["boolean"],
        "self_supervised_weight": [Interval(Real, 0, None, closed="left")],
        "margin": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "beta": [Interval(Real, 0, None, closed="neither")],
        **common_train_params,
    }

    def __init__(
        self,
        loss="triplet",
        *,
        hidden_layer_sizes=(1024, 1024),
        n_components=None,
        tap_channels=(30, 30),
        tap_kernel_sizes=(5, 5, 3),
        augment=True,
        self_supervised_weight=1.0,
        margin=0.1,
        alpha=40.0,
        beta=2.0,
        batch_size=64,
        max_epochs=50,
        learning_rate=1e-4,
        weight_decay=1e-4,
        validation_fraction=0.0,
        n_iter_no_change=None,
        device="auto",
        random_state=None,
        verbose=0,
        callback=None,
        warm_start=False,
        checkpoint_path=None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.tap_channels = tap_channels
        self.tap_kernel_sizes = tap_kernel_sizes
        self.augment = augment
        self.self_supervised_weight = self_supervised_weight
        self.margin = margin
        self.alpha = alpha
        self.beta = beta
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback
        self.warm_start = warm_start
        self.checkpoint_path = checkpoint_path

    # -- model -----------------------------------------------------------
    def _build_model(self, n_features, supervised):
        hidden = tuple(self.hidden_layer_sizes)
        if any(not isinstance(h, Integral) or h < 1 for h in hidden):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers; got {hidden}"
            )
        frame = None
        if supervised:
            frame = FrameMLP(n_features, hidden, self._n_components(n_features))
        align = TAPNet(self.tap_channels, self.tap_kernel_sizes)
        return LearnedTAP(frame, align)

    def _n_components(self, n_features):
        if self.n_components is not None:
            return self.n_components
        # L2-normalised frames of very few dimensions lose their scale (one
        # dimension leaves only a sign), so small inputs are widened.
        return max(n_features, _MIN_COMPONENTS)

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
        if not supervised and not self.augment:
            raise ValueError("fit(X) without labels needs augment=True")
        seqs = check_sequences(X)
        labels = check_labels(y, len(seqs)) if supervised else None
        rng = check_random_state(self.random_state)
        device = resolve_device(self.device)
        warm = self.warm_start and hasattr(self, "model_")
        if warm and (
            seqs.n_features != self.n_features_in_ or supervised != self.supervised_
        ):
            raise ValueError(
                "warm_start=True needs the same number of features and the same "
                "kind of fit (with or without labels) as the previous fit"
            )
        if not warm:
            model = build_seeded(
                lambda: self._build_model(seqs.n_features, supervised),
                generator_from(rng),
            )
            self._state = TrainingState()
            if (
                self.warm_start
                and self.checkpoint_path
                and os.path.exists(self.checkpoint_path)
            ):
                # a fit that crashed: its checkpoint is where to go on from
                self._state = load_checkpoint(self.checkpoint_path, model)
        else:
            model = self.model_
        self.n_features_in_ = seqs.n_features
        self.supervised_ = supervised
        model.to(device)
        self.model_ = model  # visible to callbacks during training
        train_idx, val_idx = split_validation(
            len(seqs), labels, self.validation_fraction, rng
        )
        data = TensorSequences(seqs, device)
        y_t = None if labels is None else torch.as_tensor(labels[1]).to(device)
        step = self._make_step(model, data, seqs, y_t, rng)
        validate = None
        if len(val_idx):
            val_rng = np.random.RandomState(rng.randint(2**31 - 1))
            validate = self._make_validation(step, val_idx, val_rng)
        try:
            self._state = train(
                self,
                model,
                lambda idx: step(train_idx[idx]),
                len(train_idx),
                training_config(self, len(train_idx)),
                rng,
                self._state,
                validate,
            )
        finally:
            self.model_ = model.to("cpu").eval()
            self.history_ = self._state.history
        return self

    def _make_step(self, model, data, seqs, y_t, rng):
        metric = self._metric_loss() if y_t is not None else None
        use_ssl = self.augment and (self.self_supervised_weight > 0 or y_t is None)
        ssw = self.self_supervised_weight if y_t is not None else 1.0

        def step(idx):
            x, lx = data.batch(idx)
            logs, total = {}, 0.0
            if metric is not None:
                dist = model(x, lx)  # (B, B), all pairs in one batched call
                m = metric(dist, y_t[torch.as_tensor(idx, device=x.device)])
                logs["metric_loss"] = float(m.detach())
                total = total + m
            if use_ssl:
                raw = seqs.data[idx, : x.shape[1]]
                aug, la, G = augment_batch(raw, seqs.lengths[idx], rng)
                s = self_supervised_loss(
                    model.align,
                    x,
                    lx,
                    aug,
                    la,
                    G,
                    transform=model.frame,
                )
                logs["self_supervised_loss"] = float(s.detach())
                total = total + ssw * s
            return total, logs

        return step

    def _make_validation(self, step, val_idx, val_rng):
        batch = max(2, min(self.batch_size, len(val_idx)))

        def validate():
            state = val_rng.get_state()
            losses = [
                float(step(val_idx[i : i + batch])[0])
                for i in range(0, len(val_idx), batch)
            ]
            val_rng.set_state(state)  # the same augmentations every epoch
            return float(np.mean(losses))

        return validate

    # -- use the learned distance ---------------------------------------
    def _transform_seqs(self, X, name="X"):
        check_is_fitted(self, "model_")
        seqs = check_sequences(X, name=name, n_features=self.n_features_in_)
        if self.model_.frame is None:
            return seqs
        device = resolve_device(self.device)
        self.model_.frame.to(device)
        out = []
        with torch.inference_mode():
            for start in range(0, len(seqs), 256):
                part = TensorSequences(
                    seqs.take(np.arange(start, min(start + 256, len(seqs)))), device
                )
                z = self.model_.transform(part.data, part.lengths)
                out.append(z.cpu().numpy().astype(np.float64))
        self.model_.to("cpu")
        width = max(o.shape[1] for o in out)
        data = np.concatenate(
            [np.pad(o, ((0, 0), (0, width - o.shape[1]), (0, 0))) for o in out]
        )
        return type(seqs)(data, seqs.lengths)

    def transform(self, X):
        """Frame-transformed sequences ``h(X)`` in tslearn format.

        Returns
        -------
        ndarray of shape (n_ts, max_len, n_components)
            NaN after each sequence's end. Unsupervised fits return ``X``.
        """
        return to_tslearn(self._transform_seqs(X))

    def pairwise_distances(
        self, X, Y=None, *, symmetric=False, working_memory=None, n_jobs=None
    ):
        """Learned TAP distances from each ``X[i]`` (source) to each ``Y[j]``.

        Returns
        -------
        ndarray of shape (n_x, n_y)
        """
        Zx = self._transform_seqs(X, "X")
        Zy = None if Y is None else self._transform_seqs(Y, "Y")
        return cdist_tap(
            Zx,
            Zy,
            net=self.model_.align,
            symmetric=symmetric,
            device=self.device,
            working_memory=working_memory,
            n_jobs=n_jobs,
        )

    def tap_alignment(self, x, y):
        """The learned alignment ``T`` (Lx, Ly) of ``x`` onto ``y``."""
        check_is_fitted(self, "model_")
        xs = check_sequence(x, name="x", n_features=self.n_features_in_)
        ys = check_sequence(y, name="y", n_features=self.n_features_in_)
        zx, zy = (self._transform_seqs([s]).data[0] for s in (xs, ys))
        return _tap_alignment(zx, zy, net=self.model_.align)

    def get_metric(self, *, symmetric=False):
        """A picklable callable ``metric(x, y) -> float`` with the learned distance.

        Usable as scikit-learn's ``metric=``: there each row of a 2-D array
        is one univariate sequence.
        """
        check_is_fitted(self, "model_")
        return LearnedTAPMetric(self, symmetric)

    def _fitted_state(self):
        return {
            "n_features_in_": int(self.n_features_in_),
            "supervised_": bool(self.supervised_),
            "model": self.model_.state_dict(),
            "history_": list(self.history_),
        }

    def _set_fitted_state(self, state):
        model = self._build_model(state["n_features_in_"], state["supervised_"])
        model.load_state_dict(state["model"])
        self.model_ = model.eval()
        self.n_features_in_ = state["n_features_in_"]
        self.supervised_ = state["supervised_"]
        self.history_ = state["history_"]
        self._state = TrainingState(epoch=len(self.history_), history=self.history_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # trailing NaN pads variable lengths
        tags.non_deterministic = False
        return tags


class LearnedTAPMetric:
    """``metric(x, y)`` with a fitted :class:`TAPMetricLearner`'s distance."""

    def __init__(self, learner, symmetric=False):
        self.learner = learner
        self.symmetric = symmetric

    def __call__(self, x, y):
        d = self.learner.pairwise_distances(
            [np.asarray(x)], [np.asarray(y)], symmetric=self.symmetric
        )
        return float(d[0, 0])
