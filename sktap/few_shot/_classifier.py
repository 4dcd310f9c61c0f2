"""TAPFewShotClassifier: episodic N-way K-shot learning with TAP and SA-TAP."""

from __future__ import annotations

from .._engine import alignment_network, alignment_params, register
from ._model import FewShotTAP, FrameSelfAttention
from ._scoring import tap_scorer
from ._trained import TorchEpisodicClassifier

__all__ = ["TAPFewShotClassifier"]


@register
class TAPFewShotClassifier(TorchEpisodicClassifier):
    """Few-shot sequence classification with a learned TAP distance (and SA-TAP).

    ``fit`` trains a frame encoder ``h`` and the alignment network ``f``
    episodically: each episode draws ``n_way`` classes with ``k_shot``
    support and ``n_query`` query sequences each, scores every query ``q``
    against every class ``n`` by ``s_qn = sum_k -tap(q, s_nk) - tap(s_nk, q)``
    (paper Eq. 8, all query x support pairs in one batched call) and
    minimises the cross-entropy of ``softmax(s_q)`` (Eq. 9). With
    ``self_attention=True`` (SA-TAP, Eqs. 12-13) the frames of each sequence
    also pass a single-head self-attention layer (sinusoidal positions,
    residual, LayerNorm) before TAP; its positions are scaled to the norm of
    the frames (a departure from the paper: see
    :class:`~sktap.few_shot.FrameSelfAttention`).

    After ``fit`` the training data is the support set, so ``predict`` works
    on the training classes; ``set_support`` swaps in novel classes without
    retraining; ``evaluate_episodes`` runs the few-shot test protocol.

    The frame encoder is built by the same code, from parameters of the same
    names and meanings, as :class:`sktap.TAPMetricLearner`'s (``encoder``,
    ``hidden_layer_sizes``, ``n_components``, ``encoder_kernel_size``,
    ``downsample``, ``scale``, ``precision``).

    The defaults are sktap's, chosen by
    ``benchmarks/bench_few_shot_defaults.py`` (``docs/benchmarks.md``) so
    that a fit on 30 classes of 12 sequences (4 channels, lengths 20-108)
    takes under 3 minutes on 2 CPU cores (about 1 minute; the paper's
    setting: about 30 s per episode there) and beats, in 5-way 1-shot on
    novel classes, the accuracy the paper's setting reached after 300
    episodes on such data (0.89 with self-attention, 0.92 plain TAP,
    against 0.85); self-attention is on because it wins on real data (see
    ``self_attention``). They differ from the paper
    in the frame encoder (the metric learner's: 1-D convolutions over
    time, input scaling, downsampling of long series to at most 64 frames
    or stride 16, instead of a per-frame MLP of width 1024), a narrower alignment
    network (hidden channels 16, 16 instead of 64, 64), two queries per
    class and episode instead of 5, 500 episodes instead of 1,000 and
    learning rate 3e-3 instead of 1e-3. The paper's
    configuration (section 3.3) is one set of parameters away::

        PAPER_FEW_SHOT = {
            "encoder": "mlp",  # a per-frame MLP h, d -> 1024 -> d'
            "hidden_layer_sizes": (1024,),
            "n_components": None,
            "scale": False,
            "downsample": 1,
            "alignment_net": "tapnet",  # TAPNet (64, 64, 1), kernels 5, 5, 3
            "tap_channels": (64, 64),
            "tap_kernel_sizes": (5, 5, 3),
            "n_way": 5,
            "k_shot": 1,
            "n_query": 5,
            "n_episodes": 1000,
            "optimizer": "adam",
            "learning_rate": 1e-3,
            "weight_decay": 1e-4,
            "self_attention": False,  # TAP; True: the paper's SA-TAP
        }
        TAPFewShotClassifier(**PAPER_FEW_SHOT)

    Parameters
    ----------
    n_way : int, default=5
        Classes per training episode (>= 2). Training data with fewer classes
        trains on episodes of all of them (with a warning).
    k_shot : int, default=1
        Support sequences per class and episode.
    n_query : int, default=2
        Query sequences per class and episode (the paper: 5; a step costs
        about ``n_query`` times the pairs of one query). If the smallest
        training class has ``m < k_shot + n_query`` sequences, episodes use
        ``k_shot = min(k_shot, m - 1)`` and ``n_query = min(n_query, m -
        k_shot)`` (with a warning), so any data with at least 2 sequences per
        class can be fitted; a class of 1 sequence is an error.
    n_episodes : int, default=500
        Training episodes (the paper: 1,000), rounded up to a multiple of
        ``validation_interval`` (training runs in rounds of that many).
    backbone : callable or None, default=None
        Frame encoder ``h``. None: the encoder that ``encoder`` names.
        Otherwise ``backbone(d)`` must return a ``torch.nn.Module`` mapping
        (batch, L, d) to (batch, L, d'); it is trained as built (not
        re-initialised, so pretrained weights are kept; seed it yourself)
        and ``encoder``, ``hidden_layer_sizes``, ``n_components`` and
        ``encoder_kernel_size`` are ignored. Estimators with a custom
        backbone can be pickled (if the module can) but not saved with
        ``save``.
    encoder : {"conv", "conv_context", "mlp"}, default="conv"
        The frame encoder ``h``, as in :class:`sktap.TAPMetricLearner`:
        "conv": :class:`~sktap.core.ConvFrameEncoder`, 1-D convolutions over
        time (a frame sees its neighbours); "conv_context": the same plus a
        summary of the whole sequence added to every frame; "mlp":
        :class:`~sktap.core.FrameMLP`, the paper's per-frame MLP ``d ->
        hidden_layer_sizes -> n_components`` with ReLU. Both L2-normalise
        their output frames.
    hidden_layer_sizes : tuple of int, default=(64, 64, 64)
        Hidden widths (channels) of ``h`` (the paper: ``(1024,)``).
    n_components : int or None, default=32
        Output width ``d'`` of ``h``; None: ``max(d, 8)`` (a frame
        L2-normalised in few dimensions keeps little information).
    encoder_kernel_size : int, default=5
        Kernel of the convolutional encoder's hidden layers (odd).
    downsample : "auto", "per_sequence" or int, default="auto"
        Time resolution of the convolutional encoder, as in
        :class:`sktap.TAPMetricLearner`. "auto": the smallest stride that
        brings the longest training series to at most 64 frames, at most
        16 (1 for the MLP encoder and a custom ``backbone``, which cannot
        downsample); "per_sequence": every sequence longer than
        ``max(64, ceil(longest / 16))`` steps becomes that many frames
        (the first convolution's features, average-pooled).
    scale : bool, default=True
        Standardise each input channel with the mean and standard deviation
        of the training frames (fitted in ``fit``, saved with the model).
    precision : {"float32", "bfloat16"}, default="float32"
        "bfloat16": the encoder's and the alignment network's layers train
        under autocast in bfloat16 and the network predicts in bfloat16;
        frame distances, softmax and losses stay in float32.
    self_attention : bool, default=True
        SA-TAP: self-attention over each sequence's frames after ``h``;
        False gives plain TAP. The default because on the four real sets of
        ``bench_few_shot_real.py`` (novel classes, 5-way 1- and 5-shot) it
        beats plain TAP in all eight settings, by 5-16 points
        (``docs/benchmarks.md``, "Few-shot on real data"); on generated
        classes told apart by the order of shared motifs it trails plain
        TAP by 2-3 points ("SA-TAP and its position embedding").
    alignment_net : {"tapnet", "trans"} or callable, default="tapnet"
        The alignment network, as in :class:`sktap.TAPMetricLearner`:
        :class:`sktap.TAPNet`, :class:`sktap.TAPTransNet`, or
        ``factory(n_components) -> torch.nn.Module`` (then ``save`` refuses;
        pickle instead).
    tap_channels : tuple of int, default=(16, 16)
        Hidden channels of :class:`sktap.TAPNet` (the paper: ``(64, 64)``,
        about 14 times the arithmetic per cell of the distance matrix).
    tap_kernel_sizes : tuple of int or None, default=(5, 5, 3)
        Its kernels, one per layer (``len(tap_channels) + 1``); None: 5 for
        each hidden layer and 3 for the last, as in
        :class:`sktap.TAPMetricLearner`.
    optimizer : {"adam", "sgd"}, default="adam"
        SGD uses momentum 0.9.
    learning_rate : float, default=3e-3
        Adam's (or SGD's) step size (the paper: 1e-3).
    weight_decay : float, default=1e-4
    validation_fraction : float, default=0.0
        Fraction of the *classes* held out; every ``validation_interval``
        episodes the model is scored on ``n_validation_episodes`` fixed
        episodes of them and the most accurate weights are kept. At least 2
        classes must remain on each side.
    validation_interval : int, default=100
        Episodes per training round (validation, history, callback and
        checkpoint happen once per round); capped at ``n_episodes``.
    n_validation_episodes : int, default=100
    n_iter_no_change : int or None, default=None
        Stop after this many rounds without a better validation accuracy
        (or training loss without validation).
    device : str or torch.device, default="auto"
        "auto" picks CUDA when present; fitted weights are stored on the CPU.
    random_state : int, RandomState instance or None, default=None
        Weights, episodes and the class split.
    verbose : int, default=0
    callback : callable, optional
        ``callback(estimator, round, logs)``; returning True stops training.
    warm_start : bool, default=False
        Continue training from the current weights for ``n_episodes`` more
        episodes. After an interrupted fit (``KeyboardInterrupt``, a
        callback's stop, or a crash with ``checkpoint_path`` set, even in a
        new process), the next fit with ``warm_start=True`` instead finishes
        the interrupted run's remaining rounds and ends with the weights of
        an uninterrupted run with the same ``random_state`` (on the CPU).
    checkpoint_path : str, optional
        Weights, optimiser and RNG state written (atomically) after each
        round.

    Attributes
    ----------
    model_ : torch.nn.Module
        The learned encoder, attention and alignment network (on the CPU).
    classes_ : ndarray of shape (n_classes,)
        Classes of the current support set.
    support_ : Sequences
        The support set (the training data after ``fit``).
    support_labels_ : ndarray of shape (n_support,)
        Index into ``classes_`` of each support sequence.
    n_way_, k_shot_, n_query_ : int
        The episode shape actually trained with.
    stride_ : int
        Temporal stride of the encoder (1: no downsampling).
    n_features_in_ : int
        Features per time step.
    history_ : list of dict
        Per-round logs: mean loss and episode accuracy, ``val_accuracy``
        (accuracy on the validation episodes: the most accurate round is
        kept), seconds (training and validation) and ``val_seconds``
        (validation alone).

    Notes
    -----
    ``predict`` scores a query against a class by the *mean* of ``-tap(q,
    s) - tap(s, q)`` over that class's support sequences (so classes with
    more support examples are not favoured); ``predict_proba`` is the softmax
    of these means times ``k_shot_``, which equals the training logits of
    Eq. 8 when every class has ``k_shot_`` support sequences.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap import TAPFewShotClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = [rng.randn(rng.randint(4, 7), 2) + (i % 3) for i in range(12)]
    >>> y = [i % 3 for i in range(12)]
    >>> clf = TAPFewShotClassifier(
    ...     n_way=3,
    ...     n_query=1,
    ...     n_episodes=2,
    ...     hidden_layer_sizes=(8,),
    ...     tap_channels=(4,),
    ...     tap_kernel_sizes=(3, 3),
    ...     device="cpu",
    ...     random_state=0,
    ... ).fit(X, y)
    >>> clf.set_support(X[:6], ["a", "b", "c"] * 2).predict(X[6:9]).shape
    (3,)
    """

    _parameter_constraints = {
        **TorchEpisodicClassifier._parameter_constraints,
        "self_attention": ["boolean"],
        **alignment_params,
    }

    _code_params = ("alignment_net",)

    def __init__(
        self,
        n_way=5,
        *,
        k_shot=1,
        n_query=2,
        n_episodes=500,
        backbone=None,
        encoder="conv",
        hidden_layer_sizes=(64, 64, 64),
        n_components=32,
        encoder_kernel_size=5,
        downsample="auto",
        scale=True,
        precision="float32",
        self_attention=True,
        alignment_net="tapnet",
        tap_channels=(16, 16),
        tap_kernel_sizes=(5, 5, 3),
        optimizer="adam",
        learning_rate=3e-3,
        weight_decay=1e-4,
        validation_fraction=0.0,
        validation_interval=100,
        n_validation_episodes=100,
        n_iter_no_change=None,
        device="auto",
        random_state=None,
        verbose=0,
        callback=None,
        warm_start=False,
        checkpoint_path=None,
    ):
        self.n_way = n_way
        self.k_shot = k_shot
        self.n_query = n_query
        self.n_episodes = n_episodes
        self.backbone = backbone
        self.encoder = encoder
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.encoder_kernel_size = encoder_kernel_size
        self.downsample = downsample
        self.scale = scale
        self.precision = precision
        self.self_attention = self_attention
        self.alignment_net = alignment_net
        self.tap_channels = tap_channels
        self.tap_kernel_sizes = tap_kernel_sizes
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.validation_interval = validation_interval
        self.n_validation_episodes = n_validation_episodes
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback
        self.warm_start = warm_start
        self.checkpoint_path = checkpoint_path

    # -- model -----------------------------------------------------------
    def _build_head(self, n_features, width, seeded):
        attention = None
        if self.self_attention:
            attention = seeded(lambda: FrameSelfAttention(width))
        align = seeded(
            lambda: alignment_network(
                self.alignment_net, width, self.tap_channels, self.tap_kernel_sizes
            )
        )
        return attention, align

    def _new_network(self, backbone, attention, head, scaler):
        return FewShotTAP(backbone, attention, head, scaler)

    def _scorer(self, model, Z, device):
        return tap_scorer(model, Z, device, self._network_dtype())
