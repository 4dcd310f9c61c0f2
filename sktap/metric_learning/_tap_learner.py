"""TAPMetricLearner: learn the frame transform and the alignment network."""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..core import FrameMLP, LearnedTAP, TAPNet, TAPTransNet
from ..engine import TAPKernel, common_train_params, resolve_device
from ..engine._persistence import SaveMixin, register
from ..engine._trainable import check_hidden_sizes, frame_width
from ..metrics import tap_alignment as _tap_alignment
from ._base import LearnedMetric
from ._trained import TrainedMetricLearner

__all__ = ["LearnedTAPMetric", "TAPMetricLearner"]

LearnedTAPMetric = LearnedMetric  # the name sktap 0.1 used


@register
class TAPMetricLearner(TrainedMetricLearner):
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
    alignment_net : {"tapnet", "trans"} or callable, default="tapnet"
        The alignment network ``f``. "tapnet": :class:`sktap.TAPNet` with
        ``tap_channels`` and ``tap_kernel_sizes``; "trans":
        :class:`sktap.TAPTransNet` (appendix A.7) over the encoded frames;
        a callable ``factory(n_components) -> torch.nn.Module`` builds your
        own network following the ``forward(x, y, D, P, mask) -> S``
        contract of :mod:`sktap.core` (set ``needs_frames = True`` on it to
        receive the frames ``x`` and ``y``). A learner with a callable
        cannot be written with ``save`` (pickle it instead).
    tap_channels, tap_kernel_sizes : tuple of int, default=(30, 30), (5, 5, 3)
        Architecture of :class:`sktap.TAPNet` (``alignment_net="tapnet"``).
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
        "alignment_net": [StrOptions({"tapnet", "trans"}), callable],
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
        alignment_net="tapnet",
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
        self.alignment_net = alignment_net
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
        frame, width = None, n_features
        if supervised:
            width = frame_width(self.n_components, n_features)
            frame = FrameMLP(
                n_features, check_hidden_sizes(self.hidden_layer_sizes), width
            )
        return LearnedTAP(frame, self._build_alignment_net(width))

    def _build_alignment_net(self, width):
        if self.alignment_net == "tapnet":
            return TAPNet(self.tap_channels, self.tap_kernel_sizes)
        if self.alignment_net == "trans":
            return TAPTransNet(width)
        net = self.alignment_net(width)
        if not isinstance(net, torch.nn.Module):
            raise TypeError(
                "alignment_net(n_components) must return a torch.nn.Module; got "
                f"{type(net).__name__}"
            )
        return net

    # -- the learned distance (the contract) ----------------------------
    def distance_kernel(self, *, symmetric=False):
        """Learned TAP between encoded sequences, as a tile kernel."""
        return TAPKernel(
            self.model_.align, resolve_device(self.device), symmetric=symmetric
        )

    def _pair_alignment(self, zx, zy):
        return _tap_alignment(zx, zy, net=self.model_.align)

    def tap_alignment(self, x, y):
        """The learned alignment ``T`` (Lx, Ly) of ``x`` onto ``y`` (``alignment``)."""
        return self.alignment(x, y)

    def save(self, path):
        if callable(self.alignment_net):
            raise ValueError(
                "a learner whose alignment_net is a callable cannot be saved in "
                "sktap's safe format (the factory is code); pickle it instead"
            )
        super().save(path)

    save.__doc__ = SaveMixin.save.__doc__
