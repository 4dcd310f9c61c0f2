"""OTAMFewShotClassifier: the few-shot classifier's training, with OTAM's distance."""

from __future__ import annotations

from numbers import Real

from .._engine import check_working_memory, register, run_tiles
from .._sklearn_compat import Interval
from ..few_shot import TorchEpisodicClassifier
from ..few_shot._episodes import PairwiseScorer
from ..few_shot._model import FewShotModel
from ._otam import OTAMKernel, otam_pairwise

__all__ = ["OTAMFewShotClassifier"]


class OTAMModel(FewShotModel):
    """Scaler and frame encoder, then the OTAM distance (no alignment network).

    Parameters
    ----------
    backbone : torch.nn.Module
    scaler : ChannelScaler or None
    gamma : float
        Smoothing of OTAM's soft minimum.
    """

    def __init__(self, backbone, scaler, gamma):
        super().__init__(backbone, None, scaler)
        self.gamma = gamma

    def pair_scores(self, zq, lq, zs, ls):
        """``-otam(q, s) - otam(s, q)`` for every query and support (n_q, n_s)."""
        return -2 * otam_pairwise(zq, lq, zs, ls, self.gamma, symmetric=True)


def otam_scorer(Z, gamma, device) -> PairwiseScorer:
    """Class scores from ``-otam(q, s) - otam(s, q)`` over encoded sequences ``Z``."""
    both_ways = OTAMKernel(gamma, device, symmetric=True)
    one_way = OTAMKernel(gamma, device)
    refs = one_way.upload(Z)  # once, whatever the number of episodes

    def pair_scores(a, b):
        budget = check_working_memory(None)
        return -2.0 * run_tiles(both_ways, refs.take(a), refs.take(b), budget)

    def all_scores():
        # one direction for every ordered pair is the whole matrix
        d = run_tiles(one_way, refs, refs, check_working_memory(None))
        return -(d + d.T).astype(float)

    return PairwiseScorer(pair_scores, len(Z), "mean", all_scores)


@register
class OTAMFewShotClassifier(TorchEpisodicClassifier):
    """Few-shot classification with OTAM's ordered alignment, trained like TAP.

    The baseline of the TAP paper's few-shot comparison (its Table 5):
    everything as in :class:`sktap.TAPFewShotClassifier` (frame encoder and
    its defaults, scaling, downsampling, episodes, cross-entropy over the
    class scores, optimiser, loop, validation, ``predict``) except the
    distance, which is OTAM's (Cao et al., 2020) instead of TAP's. So TAP
    against OTAM is a same-protocol comparison, as
    :class:`sktap.baselines.SoftDTWMetricLearner` is for the metric learner.

    ``otam(x, y)`` is a soft-min dynamic program over the cosine distances
    ``1 - cos`` between the encoded frames: an ordered alignment path that
    matches every frame of ``x`` once and may enter and leave ``y``
    anywhere, made free at the ends by a zero column before and after the
    frames of ``x`` along which the path may slide (the recurrence is in
    :mod:`sktap.baselines._otam`). The path cost is divided by ``Lx`` (a
    mean frame distance: the paper's sequences all have 8 frames, sktap's
    vary). A query ``q`` and a support sequence ``s`` score ``-otam(q, s) -
    otam(s, q)``, both directions as TAP's few-shot score, and a class the
    sum (training) or mean (``predict``) of its support sequences' scores.
    The whole network is learned end to end through the soft minimum.
    There is no alignment network and no self-attention.

    Parameters
    ----------
    gamma : float, default=0.1
        Smoothing of the soft minimum, ``softmin(a) = -gamma *
        log(sum(exp(-a / gamma)))``, applied to path costs summed over
        frames as in the paper. 0.1 is the value the paper reports and
        later few-shot work reuses (written lambda in some of it); smaller
        values approach the hard minimum (plain ordered DTW with free ends)
        and give sparser gradients.

    Other Parameters
    ----------------
    n_way, k_shot, n_query, n_episodes, backbone, encoder, \
    hidden_layer_sizes, n_components, encoder_kernel_size, downsample, \
    scale, precision, optimizer, learning_rate, weight_decay, \
    validation_fraction, validation_interval, n_validation_episodes, \
    n_iter_no_change, device, random_state, verbose, callback, \
    warm_start, checkpoint_path
        As in :class:`sktap.TAPFewShotClassifier`, with the same defaults
        (``precision="bfloat16"`` concerns the frame encoder alone; OTAM's
        program runs in float32).

    Attributes
    ----------
    model_ : torch.nn.Module
        The learned scaler and frame encoder (on the CPU).
    classes_ : ndarray of shape (n_classes,)
    support_ : Sequences
    support_labels_ : ndarray of shape (n_support,)
    n_way_, k_shot_, n_query_ : int
    stride_ : int
    n_features_in_ : int
    history_ : list of dict
        As in :class:`sktap.TAPFewShotClassifier`.

    References
    ----------
    .. [1] K. Cao, J. Ji, Z. Cao, C.-Y. Chang and J. C. Niebles, "Few-Shot
       Video Classification via Temporal Alignment", CVPR 2020.
    .. [2] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, Table 5.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.baselines import OTAMFewShotClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = [rng.randn(rng.randint(4, 7), 2) + (i % 3) for i in range(12)]
    >>> y = [i % 3 for i in range(12)]
    >>> clf = OTAMFewShotClassifier(
    ...     n_way=3,
    ...     n_query=1,
    ...     n_episodes=2,
    ...     hidden_layer_sizes=(8,),
    ...     device="cpu",
    ...     random_state=0,
    ... ).fit(X, y)
    >>> clf.set_support(X[:6], ["a", "b", "c"] * 2).predict(X[6:9]).shape
    (3,)
    """

    _parameter_constraints = {
        **TorchEpisodicClassifier._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither")],
    }

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
        gamma=0.1,
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
        self.gamma = gamma
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

    def _build_head(self, n_features, width, seeded):
        return None, None  # OTAM learns the frame encoder alone

    def _new_network(self, backbone, attention, head, scaler):
        return OTAMModel(backbone, scaler, float(self.gamma))

    def _scorer(self, model, Z, device):
        return otam_scorer(Z, float(self.gamma), device)
