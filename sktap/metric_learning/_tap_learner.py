"""TAPMetricLearner: learn the frame transform and the alignment network."""

from __future__ import annotations

from numbers import Real

from .._engine import (
    SaveMixin,
    TAPKernel,
    alignment_network,
    alignment_params,
    refuse_code_params,
    register,
    resolve_device,
)
from .._sklearn_compat import Interval
from ..core import TAPModel
from ..metrics._pairwise import pair_alignment, pair_tensors
from ._trained import TorchMetricLearner

__all__ = ["TAPMetricLearner"]


@register
class TAPMetricLearner(TorchMetricLearner):
    """Learn a TAP distance: a frame encoder ``h`` and the alignment network ``f``.

    With labels, ``fit(X, y)`` minimises a metric loss on the B x B TAP
    distances of each minibatch plus, when ``augment=True``, the
    self-supervised alignment loss of each sequence against a random blur or
    merge of itself (paper section 3.2, Eq. 10). Without labels, ``fit(X)``
    learns ``f`` alone from the self-supervised loss, with ``h`` the
    identity (paper appendix A.1).

    The defaults are sktap's, chosen by ``benchmarks/bench_accuracy.py`` on
    seven real data sets (``docs/benchmarks.md``), not the paper's: they
    differ in the frame encoder (1-D convolutions over time instead of a
    per-frame MLP, so that a frame sees its neighbours), input scaling,
    temporal downsampling of long series, sizes, learning rate, batch size
    and epochs, and the self-supervised term is off. The paper's
    configuration is one set of parameters away::

        TAPMetricLearner(
            encoder="mlp",
            hidden_layer_sizes=(1024, 1024),
            n_components=None,
            scale=False,
            downsample=1,
            tap_channels=(30, 30),
            augment=True,
            batch_size=64,
            learning_rate=1e-4,
            max_epochs=100,
        )

    Training steps are exact and cheap: on the CPU, a minibatch with
    enough work has its frames encoded once, its B x B distances computed
    in length buckets, and for the hard-mined losses (triplet, binomial)
    only the pairs that carry gradient recomputed with autograd once
    classes separate; smaller minibatches, and all of them on a GPU, go
    through as one padded batch. Loss and gradients equal the all-pairs
    computation either way.

    Parameters
    ----------
    loss : {"triplet", "lifted", "binomial"}, default="triplet"
        Batch-hard triplet (Eq. 4), lifted structure (Eq. 5) or binomial
        deviance with hard mining (Eqs. 6-7).
    encoder : {"conv", "conv_context", "mlp"}, default="conv"
        The frame encoder ``h``. "conv": :class:`~sktap.core.ConvFrameEncoder`,
        1-D convolutions over time (kernel ``encoder_kernel_size``, one
        hidden layer per entry of ``hidden_layer_sizes``, receptive field
        13 steps by default, more after downsampling) then a pointwise
        layer; "conv_context": the same, plus a summary of the whole
        sequence (the mean of its last hidden layer, mapped linearly) added
        to every frame, so frames see the whole series (``context=True``);
        "mlp": the paper's per-frame MLP. All L2-normalise their output
        frames.
    hidden_layer_sizes : tuple of int, default=(64, 64, 64)
        Hidden widths (channels) of ``h``.
    n_components : int or None, default=32
        Output width of ``h``. None: the input width ``d``, but at least 8
        (a 1-D unit vector is only a sign).
    encoder_kernel_size : int, default=5
        Kernel of the convolutional encoder's hidden layers (odd).
    downsample : "auto", "per_sequence" or int, default="auto"
        Time resolution of the convolutional encoder. "auto": one stride
        for all, the smallest that brings the longest training series to at
        most 64 frames, but at most 16, so TAP's ``Lx x Ly`` grid stays
        bounded on long series (1 for the MLP encoder and whenever the
        self-supervised term is used, whose ground truth aligns frame to
        frame). "per_sequence": each sequence's own resolution: every
        sequence longer than ``F = max(64, ceil(longest / 16))`` steps
        (``longest``: of the training set) becomes ``F`` frames: the first
        convolution reads every step and its features are average-pooled
        (:func:`~sktap.core.pool_frames`); shorter ones keep every step
        (no pooling with the self-supervised term; an error with the MLP
        encoder). An int: that stride. The distance,
        :meth:`transform` and :meth:`alignment` are then between the
        downsampled or pooled frames.
    scale : bool or "per_sequence", default=True
        Standardise each input channel with the mean and standard deviation
        of the training frames (fitted in ``fit``, saved with the model), so
        raw features of any scale train without a separate scaler.
        "per_sequence": :class:`~sktap.core.SequenceScaler`, each sequence
        standardised by its own statistics, its level and log-scale kept as
        extra channels (the encoder reads ``3 d`` channels): for series whose
        amplitudes span orders of magnitude, where a global standardisation
        leaves the quiet ones nearly constant.
    precision : {"float32", "bfloat16"}, default="float32"
        "bfloat16": the encoder's and the alignment network's layers train
        under autocast in bfloat16 and the network predicts in bfloat16;
        frame distances, softmax and losses stay in float32. About twice
        the throughput on CPUs with bf16 dot products and on GPUs.
    alignment_net : {"tapnet", "trans"} or callable, default="tapnet"
        The alignment network ``f``. "tapnet": :class:`sktap.TAPNet` with
        ``tap_channels`` and ``tap_kernel_sizes``; "trans":
        :class:`sktap.TAPTransNet` (appendix A.7) over the encoded frames;
        a callable ``factory(n_components) -> torch.nn.Module`` builds your
        own network following the ``forward(x, y, D, P, mask) -> S``
        contract of :mod:`sktap.core` (set ``needs_frames = True`` on it to
        receive the frames ``x`` and ``y``). A learner with a callable
        cannot be written with ``save`` (pickle it instead).
    tap_channels : tuple of int, default=(8,)
        Hidden channels of :class:`sktap.TAPNet` (``alignment_net="tapnet"``).
    tap_kernel_sizes : tuple of int or None, default=None
        Its kernels, one per layer (``len(tap_channels) + 1``); None: 5 for
        each hidden layer and 3 for the last, i.e. ``(5, 3)`` by default.
    augment : bool, default=False
        Add the self-supervised term to a supervised fit (``fit(X)`` without
        labels always uses it).
    self_supervised_weight : float, default=1.0
        Weight of the self-supervised term.
    alignment_weight : float, default=10.0
        Weight of the alignment error within the self-supervised term,
        against its TAP term (Eq. 10 weighs them equally). The error is the
        mean over source frames of the squared distance between predicted
        and true alignment rows, each summing to 1
        (:func:`sktap.losses.self_supervised_loss`). 10 was chosen on the
        self-supervised fits of ``benchmarks/bench_alignment.py``: the TAP
        term alone sharpens each row onto its nearest frame, away from a
        blur's spread, and weights 1, 3 and 10 brought the alignment error
        to 0.56, 0.29 and 0.25 times soft-DTW's on generated warps
        (``docs/benchmarks.md``).
    margin : float, default=0.1
        Margin of the triplet loss and of hard mining (binomial).
    alpha, beta : float, default=40, 2
        Scales of the lifted and binomial losses.
    batch_size : int, default=16
        Sequences per batch (capped at the number of training sequences).
    samples_per_class : int, "auto" or None, default="auto"
        How a supervised fit draws its batches. "auto" (the default): class-
        balanced with ``K = max(2, batch_size // n_classes)`` (2 per class with
        many classes, enough to fill the batch with few), uniform when every
        class has a single training sequence; chosen by
        ``benchmarks/bench_accuracy.py`` (``docs/benchmarks.md``, "Hard
        regimes"): on 52 classes of 2 it lifted accuracy from 0.19 to 0.34, and
        the seven standard sets kept at least DTW's accuracy and MAP. None: the
        training sequences in a fresh random order each epoch, cut into batches.
        An int ``K >= 2``: class-balanced batches of ``P = batch_size // K``
        distinct classes (at least 1, at most the number of classes) with ``K``
        distinct sequences of each (all of a class's sequences when it has
        fewer), classes and sequences taken in rounds of a random order so each
        comes up equally often; an epoch still has ``ceil(n_train /
        batch_size)`` batches. Every batch then holds positive pairs, which
        uniform batches often lack when there are many classes with few
        sequences each. Take ``batch_size >= 2 * K`` so that a batch also holds
        negatives. Ignored by ``fit(X)`` without labels.
    max_epochs : int, default=40
    learning_rate, weight_decay : float, default=3e-3, 1e-4
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
        The learned :class:`~sktap.core.TAPModel` (on the CPU).
    n_features_in_ : int
        Features per time step seen in ``fit``.
    supervised_ : bool
        Whether the last fit had labels.
    stride_ : int
        Temporal stride of the encoder (1: no downsampling).
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
        **TorchMetricLearner._parameter_constraints,
        **alignment_params,
        "augment": ["boolean"],
        "self_supervised_weight": [Interval(Real, 0, None, closed="left")],
        "alignment_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        loss="triplet",
        *,
        encoder="conv",
        hidden_layer_sizes=(64, 64, 64),
        n_components=32,
        encoder_kernel_size=5,
        downsample="auto",
        scale=True,
        precision="float32",
        alignment_net="tapnet",
        tap_channels=(8,),
        tap_kernel_sizes=None,
        augment=False,
        self_supervised_weight=1.0,
        alignment_weight=10.0,
        margin=0.1,
        alpha=40.0,
        beta=2.0,
        batch_size=16,
        samples_per_class="auto",
        max_epochs=40,
        learning_rate=3e-3,
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
        self.encoder = encoder
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.encoder_kernel_size = encoder_kernel_size
        self.downsample = downsample
        self.scale = scale
        self.precision = precision
        self.alignment_net = alignment_net
        self.tap_channels = tap_channels
        self.tap_kernel_sizes = tap_kernel_sizes
        self.augment = augment
        self.self_supervised_weight = self_supervised_weight
        self.alignment_weight = alignment_weight
        self.margin = margin
        self.alpha = alpha
        self.beta = beta
        self.batch_size = batch_size
        self.samples_per_class = samples_per_class
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
    def _build_model(self, n_features, kind):
        frame, width = None, n_features
        if kind["supervised"]:
            frame, width = self._build_frame(
                n_features, kind["stride"], kind.get("frames")
            )
        align = self._build_alignment_net(width)
        return TAPModel(frame, align, self._scaler(n_features))

    def _build_alignment_net(self, width):
        return alignment_network(
            self.alignment_net, width, self.tap_channels, self.tap_kernel_sizes
        )

    def _self_supervised_settings(self):
        return self.augment, self.self_supervised_weight, self.alignment_weight

    # -- the learned distance (the contract) ----------------------------
    def distance_kernel(self, *, symmetric=False):
        """Learned TAP between encoded sequences, as a tile kernel."""
        return TAPKernel(
            self.model_.align,
            resolve_device(self.device),
            self._network_dtype(),
            symmetric,
        )

    def _pair_alignment(self, zx, zy):
        net = self.model_.align
        return pair_alignment(*pair_tensors(zx, zy, net), net)

    def save(self, path):
        refuse_code_params(self, "alignment_net")
        super().save(path)

    save.__doc__ = SaveMixin.save.__doc__
