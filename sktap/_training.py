"""The one training loop shared by every sktap estimator that trains.

An estimator supplies a model and two closures: ``train_step(indices)`` ->
``(loss tensor, logs dict)`` for a batch of training indices, and optionally
``validate()`` -> a validation loss (lower is better). The loop owns epochs,
shuffling, the optimiser, early stopping, progress, history, callbacks,
checkpoints and the guards against non-finite losses and interruptions.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["TrainingConfig", "TrainingState", "load_checkpoint", "train"]


@dataclass
class TrainingConfig:
    max_epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    optimizer: str = "adam"
    n_iter_no_change: int | None = None
    verbose: int = 0
    callback: object = None
    checkpoint_path: str | None = None


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


def save_checkpoint(path, payload) -> None:
    """Write ``payload`` atomically (a temporary file in the same folder, renamed)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".sktap-ckpt-", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _progress(iterable, verbose, desc):
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)


def _run_epoch(model, optimizer, train_step, order, batch_size, verbose, epoch):
    model.train()
    totals, n_batches = {}, 0
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for idx in _progress(batches, verbose, f"epoch {epoch}"):
        loss, logs = train_step(idx)
        if not torch.isfinite(loss.detach()):
            raise FloatingPointError(
                f"loss became {float(loss.detach())} in epoch {epoch}"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n_batches += 1
        for k, v in {"loss": float(loss.detach()), **logs}.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return {k: v / max(n_batches, 1) for k, v in totals.items()}


def _track_best(state, logs, config):
    """Update the best monitored loss; return ``(improved, stop)``."""
    monitored = logs.get("val_loss", logs["loss"])
    improved = monitored < state.best_loss - 1e-12
    if improved:
        state.best_loss = monitored
        state.bad_epochs = 0
    else:
        state.bad_epochs += 1
    patience = config.n_iter_no_change
    return improved, patience is not None and state.bad_epochs >= patience


def train(estimator, model, train_step, n_samples, config, rng, state, validate=None):
    """Train ``model`` in place; return the updated :class:`TrainingState`.

    Parameters
    ----------
    estimator : object
        Passed to ``config.callback(estimator, epoch, logs)``; a callback
        returning ``True`` stops training.
    model : torch.nn.Module
        On its training device.
    train_step : callable
        ``train_step(indices) -> (loss, logs)``.
    n_samples : int
    config : TrainingConfig
    rng : numpy.random.RandomState
        Shuffles the batches (and nothing global).
    state : TrainingState
        Fresh, or the one from a previous ``fit`` for warm starts.
    validate : callable, optional
        ``validate() -> float`` validation loss, used for early stopping and
        to keep the best weights.
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
    try:
        while state.epoch < stop_epoch:
            epoch = state.epoch + 1
            start = time.perf_counter()
            try:
                logs = _run_epoch(
                    model,
                    optimizer,
                    train_step,
                    rng.permutation(n_samples),
                    config.batch_size,
                    config.verbose,
                    epoch,
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
                with torch.no_grad():
                    logs["val_loss"] = float(validate())
            logs = {"epoch": epoch, **logs, "seconds": time.perf_counter() - start}
            state.epoch = epoch
            state.history.append(logs)
            improved, stop = _track_best(state, logs, config)
            if validate is not None and improved:
                state.best_state = _cpu_state(model)
            good = _cpu_state(model)
            state.optimizer_state = _optimizer_to_cpu(optimizer.state_dict())
            state.rng_state = rng.get_state()
            if config.verbose:
                print(_format_logs(logs), flush=True)
            if config.checkpoint_path:
                save_checkpoint(config.checkpoint_path, _checkpoint(good, state, rng))
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
    if validate is not None and state.best_state is not None:
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
