"""The one training loop shared by every sktap estimator that trains.

An estimator supplies a model, a batch source (:class:`EpochBatches`:
shuffled minibatches of training indices; :class:`ClassBalancedBatches`:
minibatches of P classes x K sequences each; :class:`Episodes`: few-shot
episodes drawn from a sampler), ``train_step(batch)`` -> ``(loss tensor,
logs dict)`` and optionally ``validate()`` -> a validation loss (lower is
better). The loop owns epochs, the optimiser, keeping the best weights,
early stopping, progress, history, callbacks, checkpoints and the guards
against non-finite losses and interruptions.
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ._persistence import atomic_save
from ._tiling import progress

__all__ = [
    "ClassBalancedBatches",
    "Episodes",
    "EpochBatches",
    "TrainingConfig",
    "TrainingState",
    "auto_samples_per_class",
    "load_checkpoint",
    "train",
]


@dataclass
class TrainingConfig:
    max_epochs: int
    learning_rate: float
    weight_decay: float
    optimizer: str = "adam"
    n_iter_no_change: int | None = None
    keep_best: bool = True
    # the validation log that decides the best epoch, and its direction
    monitor: str = "val_loss"
    higher_is_better: bool = False
    verbose: int = 0
    callback: object = None
    checkpoint_path: str | None = None


class EpochBatches:
    """One epoch: ``indices`` in a fresh random order, cut into minibatches."""

    def __init__(self, indices, batch_size):
        self.indices = np.asarray(indices)
        self.batch_size = max(1, min(int(batch_size), len(self.indices)))

    def __len__(self):
        return math.ceil(len(self.indices) / self.batch_size)

    def __call__(self, rng):
        order = self.indices[rng.permutation(len(self.indices))]
        return [
            order[i : i + self.batch_size]
            for i in range(0, len(order), self.batch_size)
        ]


class _Rounds:
    """Draws distinct items from ``items`` in rounds of fresh random orders.

    Every round holds each item once. ``take(k)`` (``k <= len(items)``)
    gives the next ``k`` items of the current round; when the round runs
    out, the draw is completed from the next round with items not already
    in it, which keep their place in that round otherwise. So no draw
    repeats an item and, over a run of draws, each item is drawn as often
    as any other, give or take one.
    """

    def __init__(self, items, rng):
        self.items = np.asarray(items)
        self.rng = rng
        self.queue = self.items[:0]

    def take(self, k):
        head, self.queue = self.queue[:k], self.queue[k:]
        if len(head) < k:
            fresh = self.items[self.rng.permutation(len(self.items))]
            extra = fresh[~np.isin(fresh, head)][: k - len(head)]
            self.queue = fresh[~np.isin(fresh, extra)]
            head = np.concatenate([head, extra])
        return head


class ClassBalancedBatches:
    """One epoch of class-balanced minibatches: P classes x K sequences each.

    Each batch holds ``K = samples_per_class`` distinct sequences of each of
    ``P = max(1, batch_size // K)`` distinct classes (at most the number of
    classes); a class with fewer than ``K`` sequences gives all it has.
    Classes are drawn in rounds of a random order, so within an epoch every
    class comes up as often as any other (give or take one batch), and so
    are each class's sequences. An epoch has as many batches as
    :class:`EpochBatches` for the same ``indices`` and ``batch_size``.
    All randomness comes from the ``rng`` given to each call, so a resumed
    fit replays the same batches.

    Parameters
    ----------
    indices : array-like of int
        Training indices.
    labels : array-like
        The class of each of ``indices`` (same length).
    batch_size : int
    samples_per_class : int
        ``K``, at least 2.
    """

    def __init__(self, indices, labels, batch_size, samples_per_class):
        self.indices = np.asarray(indices)
        labels = np.asarray(labels)
        if labels.shape != self.indices.shape:
            raise ValueError(
                f"labels must give the class of each index; got {labels.shape[0]} "
                f"labels for {self.indices.shape[0]} indices"
            )
        self.samples_per_class = int(samples_per_class)
        if self.samples_per_class < 2:
            raise ValueError(
                "samples_per_class must be at least 2 (one sequence of a class "
                f"gives no positive pair); got {samples_per_class}"
            )
        self.batch_size = max(1, min(int(batch_size), len(self.indices)))
        classes, encoded = np.unique(labels, return_inverse=True)
        order = np.argsort(encoded, kind="stable")
        bounds = np.cumsum(np.bincount(encoded, minlength=len(classes)))[:-1]
        self.groups = np.split(self.indices[order], bounds)
        if all(len(g) < 2 for g in self.groups):
            raise ValueError(
                "samples_per_class needs classes with at least 2 training "
                f"sequences, but each of the {len(classes)} classes has only one "
                "(after the validation split); use samples_per_class=None"
            )
        self.n_classes_per_batch = min(
            len(self.groups), max(1, self.batch_size // self.samples_per_class)
        )

    def __len__(self):
        return math.ceil(len(self.indices) / self.batch_size)

    def __call__(self, rng):
        classes = _Rounds(np.arange(len(self.groups)), rng)
        members = {}
        batches = []
        for _ in range(len(self)):
            batch = []
            for c in classes.take(self.n_classes_per_batch):
                if c not in members:
                    members[c] = _Rounds(self.groups[c], rng)
                k = min(self.samples_per_class, len(self.groups[c]))
                batch.append(members[c].take(k))
            batches.append(np.concatenate(batch))
        return batches


def auto_samples_per_class(labels, batch_size):
    """``K`` of ``samples_per_class="auto"``: ``max(2, batch_size //
    n_classes)``, so that ``P = batch_size // K`` classes of ``K`` sequences
    fill a batch (2 per class with many classes, more with few); None (draw
    uniform batches) when no class has 2 sequences.

    >>> auto_samples_per_class([0, 0, 1, 1], 16), auto_samples_per_class(range(40), 16)
    (8, None)
    """
    classes, counts = np.unique(np.asarray(labels), return_counts=True)
    if counts.max(initial=0) < 2:
        return None
    return max(2, int(batch_size) // len(classes))


class Episodes:
    """One round: ``n_episodes`` episodes, drawn lazily from ``sampler``.

    The sampler must draw from the loop's RNG (it is given the same
    ``RandomState``), so a resumed fit replays the episodes of the
    uninterrupted run.
    """

    def __init__(self, sampler, n_episodes):
        self.sampler = sampler
        self.n_episodes = int(n_episodes)

    def __len__(self):
        return self.n_episodes

    def __call__(self, rng):
        return (self.sampler.sample() for _ in range(self.n_episodes))


@dataclass
class TrainingState:
    """What survives between ``fit`` calls (warm start) and in checkpoints."""

    epoch: int = 0
    history: list = field(default_factory=list)
    optimizer_state: dict | None = None
    best_loss: float = math.inf
    best_state: dict | None = None
    bad_epochs: int = 0
    target_epoch: int = 0  # the epoch a fit planned to reach (resume target)
    rng_state: tuple | None = None  # shuffling RNG after the last epoch


def make_optimizer(name, params, learning_rate, weight_decay):
    if name == "adam":
        return torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=learning_rate, momentum=0.9, weight_decay=weight_decay
        )
    raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {name!r}")


def _cpu_state(model):
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _optimizer_to_cpu(state):
    return copy.deepcopy(
        {
            "state": {
                k: {n: t.cpu() if torch.is_tensor(t) else t for n, t in s.items()}
                for k, s in state["state"].items()
            },
            "param_groups": state["param_groups"],
        }
    )


def _run_epoch(model, optimizer, train_step, source, rng, verbose, epoch):
    """One epoch; returns the mean of each logged value over its batches.

    Losses and logs stay on the device until the epoch ends: reading a CUDA
    value per batch would synchronise the device each time. A non-finite
    loss is therefore detected at the end of the epoch (the caller restores
    the last completed epoch's weights either way).
    """
    model.train()
    totals, n_batches = {}, 0
    batches = progress(source(rng), verbose, f"epoch {epoch}", total=len(source))
    for batch in batches:
        loss, logs = train_step(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n_batches += 1
        for k, v in {"loss": loss.detach(), **logs}.items():
            totals[k] = totals.get(k, 0.0) + v
    means = {k: float(v) / max(n_batches, 1) for k, v in totals.items()}
    if not math.isfinite(means.get("loss", 0.0)):
        raise FloatingPointError(f"loss became {means['loss']} in epoch {epoch}")
    return means


def _track_best(state, logs, config):
    """Update the best monitored value; return ``(improved, stop)``.

    The monitored value is the validation log ``config.monitor`` when there
    is one (negated when higher is better, so that lower is always better
    in ``state.best_loss``), else the training loss. Keeping the best
    weights (``keep_best``, with a validation set) and stopping early
    (``n_iter_no_change``) are separate decisions made from the same
    bookkeeping.
    """
    if config.monitor in logs:
        sign = -1.0 if config.higher_is_better else 1.0
        monitored = sign * logs[config.monitor]
    else:
        monitored = logs["loss"]
    improved = monitored < state.best_loss - 1e-12
    if improved:
        state.best_loss = monitored
        state.bad_epochs = 0
    else:
        state.bad_epochs += 1
    patience = config.n_iter_no_change
    return improved, patience is not None and state.bad_epochs >= patience


def train(estimator, model, train_step, batches, config, rng, state, validate=None):
    """Train ``model`` in place; return the updated :class:`TrainingState`.

    Parameters
    ----------
    estimator : object
        Passed to ``config.callback(estimator, epoch, logs)``; a callback
        returning ``True`` stops training.
    model : torch.nn.Module
        On its training device.
    train_step : callable
        ``train_step(batch) -> (loss, logs)``. If it has a ``start_epoch``
        attribute, ``train_step.start_epoch(history)`` is called before each
        epoch with the history so far (which checkpoints keep), so that any
        state the step carries between batches restarts the same way in a
        resumed fit.
    batches : EpochBatches, ClassBalancedBatches or Episodes
        ``batches(rng)`` gives one epoch's batches (with ``len``).
    config : TrainingConfig
    rng : numpy.random.RandomState
        Shuffles the batches (and nothing global).
    state : TrainingState
        Fresh, or the one from a previous ``fit`` for warm starts.
    validate : callable, optional
        ``validate() -> float`` validation loss, used for early stopping and
        to keep the best weights; its time is logged as ``val_seconds``.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(
        config.optimizer, params, config.learning_rate, config.weight_decay
    )
    if state.optimizer_state is not None:
        optimizer.load_state_dict(state.optimizer_state)
    good = _cpu_state(model)
    if state.rng_state is not None and state.epoch < state.target_epoch:
        # an interrupted fit: finish the planned epochs exactly as if it
        # had never stopped (same shuffles and augmentations)
        rng.set_state(state.rng_state)
    else:
        state.target_epoch = state.epoch + config.max_epochs
    stop_epoch = state.target_epoch
    start_epoch = getattr(train_step, "start_epoch", None)
    try:
        while state.epoch < stop_epoch:
            epoch = state.epoch + 1
            start = time.perf_counter()
            if start_epoch is not None:
                start_epoch(state.history)
            try:
                logs = _run_epoch(
                    model, optimizer, train_step, batches, rng, config.verbose, epoch
                )
            except FloatingPointError as exc:
                model.load_state_dict(good)
                raise FloatingPointError(
                    f"Training stopped: {exc}. The weights of the last completed "
                    f"epoch ({state.epoch}) were kept; try a lower learning_rate "
                    "or scaling the input."
                ) from None
            if validate is not None:
                model.eval()
                val_start = time.perf_counter()
                with torch.no_grad():
                    result = validate()  # a float (val_loss) or a dict of logs
                if isinstance(result, dict):
                    logs.update({k: float(v) for k, v in result.items()})
                else:
                    logs["val_loss"] = float(result)
                logs["val_seconds"] = time.perf_counter() - val_start
            logs = {"epoch": epoch, **logs, "seconds": time.perf_counter() - start}
            state.epoch = epoch
            state.history.append(logs)
            improved, stop = _track_best(state, logs, config)
            if config.keep_best and validate is not None and improved:
                state.best_state = _cpu_state(model)
            good = _cpu_state(model)
            state.optimizer_state = _optimizer_to_cpu(optimizer.state_dict())
            state.rng_state = rng.get_state()
            if config.verbose:
                print(_format_logs(logs), flush=True)
            if config.checkpoint_path:
                atomic_save(_checkpoint(good, state, rng), config.checkpoint_path)
            if config.callback is not None and config.callback(estimator, epoch, logs):
                break
            if stop:
                break
    except KeyboardInterrupt:
        model.load_state_dict(good)
        warnings.warn(
            f"Training interrupted; keeping the weights of the last completed "
            f"epoch ({state.epoch}).",
            RuntimeWarning,
            stacklevel=3,
        )
        return state
    if config.keep_best and validate is not None and state.best_state is not None:
        model.load_state_dict(state.best_state)
    return state


def _format_logs(logs):
    parts = [f"epoch {logs['epoch']}"]
    parts += [f"{k} {v:.4g}" for k, v in logs.items() if k not in ("epoch",)]
    return ", ".join(parts)


def _checkpoint(model_state, state, rng):
    _, keys, pos, has_gauss, gauss = rng.get_state()
    return {
        "model": model_state,
        "optimizer": state.optimizer_state,
        "epoch": state.epoch,
        "target_epoch": state.target_epoch,
        "history": state.history,
        "best_loss": state.best_loss,
        "bad_epochs": state.bad_epochs,
        "best_state": state.best_state,
        "rng_keys": torch.as_tensor(np.asarray(keys, dtype=np.int64)),
        "rng_pos": int(pos),
        "rng_has_gauss": int(has_gauss),
        "rng_gauss": float(gauss),
    }


def load_checkpoint(path, model) -> TrainingState:
    """Restore ``model`` and the loop's state from a checkpoint file.

    Read with ``weights_only=True``: a checkpoint never executes code.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} does not match this estimator and "
            f"data ({str(exc).splitlines()[0]})"
        ) from None
    keys = ckpt["rng_keys"].numpy().astype(np.uint32)
    rng_state = (
        "MT19937",
        keys,
        ckpt["rng_pos"],
        ckpt["rng_has_gauss"],
        ckpt["rng_gauss"],
    )
    return TrainingState(
        epoch=ckpt["epoch"],
        history=list(ckpt["history"]),
        optimizer_state=ckpt["optimizer"],
        best_loss=ckpt["best_loss"],
        best_state=ckpt["best_state"],
        bad_epochs=ckpt["bad_epochs"],
        target_epoch=ckpt["target_epoch"],
        rng_state=rng_state,
    )
