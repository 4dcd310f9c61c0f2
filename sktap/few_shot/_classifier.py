"""TAPFewShotClassifier: episodic N-way K-shot learning with TAP and SA-TAP."""

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
    SaveMixin,
    TensorSequences,
    TrainableMixin,
    alignment_network,
    build_seeded,
    check_hidden_sizes,
    check_labels,
    classes_from_state,
    classes_state,
    common_train_params,
    frame_width,
    refuse_code_params,
    register,
    resolve_device,
)
from .._sklearn_compat import Interval, StrOptions, fit_context
from .._validation import Sequences, check_sequences
from ..core import FrameMLP
from ._base import EpisodicClassifier
from ._model import FewShotTAP, FrameSelfAttention, build_backbone
from ._sampler import EpisodeSampler
from ._scoring import episode_shape, tap_scorer
from ._steps import make_episode_step, make_validation

__all__ = ["TAPFewShotClassifier"]


@register
class TAPFewShotClassifier(SaveMixin, TrainableMixin, EpisodicClassifier):
    """Few-shot sequence classification with a learned TAP distance (and SA-TAP).

    ``fit`` trains a frame encoder ``h`` and the alignment network ``f``
    episodically: each episode draws ``n_way`` classes with ``k_shot``
    support and ``n_query`` query sequences each, scores every query ``q``
    against every class ``n`` by ``s_qn = sum_k -tap(q, s_nk) - tap(s_nk, q)``
    (paper Eq. 8, all query x support pairs in one batched call) and
    minimises the cross-entropy of ``softmax(s_q)`` (Eq. 9). With
    ``self_attention=True`` (SA-TAP, Eqs. 12-13) the frames of each sequence
    also pass a single-head self-attention layer (sinusoidal positions,
    residual, LayerNorm) before TAP.

    After ``fit`` the training data is the support set, so ``predict`` works
    on the training classes; ``set_support`` swaps in novel classes without
    retraining; ``evaluate_episodes`` runs the few-shot test protocol.

    Parameters
    ----------
    n_way : int, default=5
        Classes per training episode (>= 2). Training data with fewer classes
        trains on episodes of all of them (with a warning).
    k_shot : int, default=1
        Support sequences per class and episode.
    n_query : int, default=5
        Query sequences per class and episode. If the smallest training
        class has ``m < k_shot + n_query`` sequences, episodes use
        ``k_shot = min(k_shot, m - 1)`` and ``n_query = min(n_query, m -
        k_shot)`` (with a warning), so any data with at least 2 sequences per
        class can be fitted; a class of 1 sequence is an error.
    n_episodes : int, default=1000
        Training episodes, rounded up to a multiple of
        ``validation_interval`` (training runs in rounds of that many).
    backbone : callable or None, default=None
        Frame encoder ``h``. None: :class:`~sktap.core.FrameMLP`, a
        per-frame MLP ``d -> hidden_layer_sizes -> n_components`` with ReLU
        and L2-normalised output. Otherwise ``backbone(d)`` must return a
        ``torch.nn.Module`` mapping (batch, L, d) to (batch, L, d'); it is
        trained as built (not re-initialised, so pretrained weights are kept;
        seed it yourself). Estimators with a custom backbone can be pickled
        (if the module can) but not saved with ``save``.
    hidden_layer_sizes : tuple of int, default=(1024,)
        Hidden widths of the default backbone.
    n_components : int, optional
        Output width ``d'`` of the default backbone; None: ``max(d, 8)``
        (a frame L2-normalised in few dimensions keeps little information).
    self_attention : bool, default=False
        SA-TAP: self-attention over each sequence's frames after ``h``.
    alignment_net : {"tapnet", "trans"} or callable, default="tapnet"
        The alignment network, as in :class:`sktap.TAPMetricLearner`:
        :class:`sktap.TAPNet`, :class:`sktap.TAPTransNet`, or
        ``factory(n_components) -> torch.nn.Module`` (then ``save`` refuses;
        pickle instead).
    tap_channels : tuple of int, default=(64, 64)
        Hidden channels of :class:`sktap.TAPNet` (the paper's few-shot
        setting).
    tap_kernel_sizes : tuple of int or None, default=(5, 5, 3)
        Its kernels, one per layer (``len(tap_channels) + 1``); None: 5 for
        each hidden layer and 3 for the last, as in
        :class:`sktap.TAPMetricLearner`.
    optimizer : {"adam", "sgd"}, default="adam"
        SGD uses momentum 0.9.
    learning_rate : float, default=1e-3
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
    n_features_in_ : int
        Features per time step.
    history_ : list of dict
        Per-round logs: mean loss and episode accuracy, ``val_loss`` (1 -
        validation accuracy), seconds (training and validation) and
        ``val_seconds`` (validation alone).

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
        "n_way": [Interval(Integral, 2, None, closed="left")],
        "k_shot": [Interval(Integral, 1, None, closed="left")],
        "n_query": [Interval(Integral, 1, None, closed="left")],
        "n_episodes": [Interval(Integral, 1, None, closed="left")],
        "backbone": [callable, None],
        "hidden_layer_sizes": [tuple, list],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "self_attention": ["boolean"],
        "alignment_net": [StrOptions({"tapnet", "trans"}), callable],
        "tap_channels": [tuple, list],
        "tap_kernel_sizes": [tuple, list, None],
        "optimizer": [StrOptions({"adam", "sgd"})],
        "validation_interval": [Interval(Integral, 1, None, closed="left")],
        "n_validation_episodes": [Interval(Integral, 1, None, closed="left")],
        **{
            k: v
            for k, v in common_train_params.items()
            if k not in ("batch_size", "max_epochs")
        },
    }

    def __init__(
        self,
        n_way=5,
        *,
        k_shot=1,
        n_query=5,
        n_episodes=1000,
        backbone=None,
        hidden_layer_sizes=(1024,),
        n_components=None,
        self_attention=False,
        alignment_net="tapnet",
        tap_channels=(64, 64),
        tap_kernel_sizes=(5, 5, 3),
        optimizer="adam",
        learning_rate=1e-3,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
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
    def _optimizer_name(self):
        return self.optimizer

    def _build_model(self, n_features, kind=None, generator=None):
        def seeded(factory):
            return factory() if generator is None else build_seeded(factory, generator)

        if self.backbone is None:
            hidden = check_hidden_sizes(self.hidden_layer_sizes)
            width = frame_width(self.n_components, n_features)
            backbone = seeded(lambda: FrameMLP(n_features, hidden, width))
        else:  # trained as built: a pretrained backbone keeps its weights
            backbone, width = build_backbone(self.backbone, n_features)
        attention = None
        if self.self_attention:
            attention = seeded(lambda: FrameSelfAttention(width))
        align = seeded(
            lambda: alignment_network(
                self.alignment_net, width, self.tap_channels, self.tap_kernel_sizes
            )
        )
        return FewShotTAP(backbone, attention, align)

    def _new_model(self, n_features, kind, generator):
        return self._build_model(n_features, kind, generator)

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
        model = self._start_model(seqs.n_features, None, rng)
        # Episodes come from the loop's own RNG, whose state it records after
        # every round: a resumed fit then replays the episodes of the
        # uninterrupted run.
        sampler = EpisodeSampler(codes[train_idx], *shape, random_state=rng)
        step = make_episode_step(
            model, TensorSequences(seqs.take(train_idx), device), sampler.n_way
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
            None,
            seqs.n_features,
            Episodes(sampler, interval),
            step,
            rng,
            max_epochs=math.ceil(self.n_episodes / interval),
            validate=validate,
            device=device,
        )
        self.n_way_, self.k_shot_, self.n_query_ = shape
        self._store_support(seqs, y)
        return self

    def _make_validation(self, model, seqs, labels, rng, device):
        shape = episode_shape(
            labels, self.n_way, self.k_shot, self.n_query, "validation"
        )
        seed = rng.randint(2**31 - 1)
        return make_validation(
            lambda: self._encode(seqs, model, device),
            model,
            labels,
            shape,
            seed,
            self.n_validation_episodes,
            device,
        )

    # -- scoring (used by predict and evaluate_episodes) -----------------
    def _check_ready(self):
        check_is_fitted(self, "model_")

    def _expected_features(self):
        check_is_fitted(self, "model_")
        return self.n_features_in_

    def _embed(self, seqs):
        return self._encode(seqs)

    def _make_scorer(self, Z):
        return tap_scorer(self.model_, Z, resolve_device(self.device))

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
        refuse_code_params(self, "alignment_net")
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
        self.classes_ = classes_from_state(state["classes"])
        self.support_ = Sequences(
            state["support_data"].numpy(), state["support_lengths"].numpy()
        )
        self.support_labels_ = state["support_labels"].numpy()
