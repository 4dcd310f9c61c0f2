"""Saving and loading fitted estimators without executing code.

A file holds plain containers, strings, numbers and tensors, written with
``torch.save`` and read back with ``torch.load(weights_only=True)``, whose
unpickler refuses anything that would import or call code. Parameters are
stored as JSON text; a parameter that is itself an estimator (a k-NN
classifier's ``metric_learner``) is stored recursively by class name, and
only classes in the registry (filled by :func:`register`) are rebuilt.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import tempfile
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.frozen import FrozenEstimator

__all__ = [
    "SaveMixin",
    "atomic_save",
    "classes_from_state",
    "classes_state",
    "estimator_state",
    "load",
    "register",
    "restore_estimator",
]

_FORMAT = "sktap-estimator"
_VERSION = 2
_REGISTRY: dict[str, type] = {}


def register(cls):
    """Class decorator: let :func:`sktap.load` rebuild ``cls`` by its name."""
    _REGISTRY[cls.__name__] = cls
    return cls


def atomic_save(obj, path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it.

    A reader sees the old file or the new one, never half of one, and a
    failed write leaves nothing behind.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".sktap-", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _param_to_json(owner, name, value):
    if isinstance(value, FrozenEstimator):
        return {"__frozen__": _param_to_json(owner, name, value.estimator)}
    if isinstance(value, BaseEstimator) and type(value).__name__ in _REGISTRY:
        # parameters only: an owner that needs the nested estimator's fitted
        # state saves it with its own fitted state
        return {"__estimator__": type(value).__name__, "params": _params(value)}
    if isinstance(value, torch.device):
        value = str(value)
    if isinstance(value, tuple):  # JSON has lists only: mark it to restore it
        value = {"__tuple__": list(value)}
    try:
        json.dumps(value)
    except TypeError:
        warnings.warn(
            f"{type(owner).__name__}.{name}={value!r} cannot be saved; it "
            "is stored as None",
            UserWarning,
            stacklevel=4,
        )
        return None
    return value


def _params(estimator) -> dict:
    return {
        name: _param_to_json(estimator, name, value)
        for name, value in estimator.get_params(deep=False).items()
    }


def _registered(name, source):
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"{source} names unknown class {name!r}")
    return cls


def _nested(value, source):
    if "__tuple__" in value:
        return tuple(value["__tuple__"])
    if "__frozen__" in value:
        return FrozenEstimator(_nested(value["__frozen__"], source))
    if "__estimator__" in value:
        inner = _registered(value["__estimator__"], source)
        return _build(inner, value["params"], source)
    return value


def _build(cls, params, source):
    defaults = {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
    }
    kwargs = {}
    for name, value in params.items():
        if isinstance(value, dict):
            value = _nested(value, source)
        elif isinstance(defaults.get(name), tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def estimator_state(estimator) -> dict:
    """Class name, parameters (JSON) and fitted state of a fitted estimator."""
    return {
        "class": type(estimator).__name__,
        "params": json.dumps(_params(estimator)),
        "fitted": estimator._fitted_state(),
    }


def restore_estimator(state, source="the file"):
    """The fitted estimator described by :func:`estimator_state`'s output."""
    cls = _registered(state.get("class"), source)
    est = _build(cls, json.loads(state["params"]), source)
    est._set_fitted_state(state["fitted"])
    return est


def classes_state(classes) -> dict:
    """``classes_`` as plain data that keeps its dtype."""
    return {"values": np.asarray(classes).tolist(), "dtype": classes.dtype.str}


def classes_from_state(state) -> np.ndarray:
    return np.asarray(state["values"], dtype=np.dtype(state["dtype"]))


class SaveMixin:
    """Adds ``save(path)``, given ``_fitted_state`` and ``_set_fitted_state``."""

    def save(self, path):
        """Write the fitted estimator to ``path`` in sktap's safe format.

        Read it back with :func:`sktap.load`. Callables among the
        parameters (``callback``) are not saved. The file is written
        atomically: an interrupted save leaves the previous file intact.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        payload = {"format": _FORMAT, "version": _VERSION, **estimator_state(self)}
        atomic_save(payload, path)


def load(path):
    """Load an estimator written by ``save``, refusing files that would run code.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    estimator
        A fitted sktap estimator (weights on the CPU).

    Raises
    ------
    ValueError
        If the file is not an sktap estimator file, was written in another
        format version, or contains objects that would need code to be
        executed to load (such as an arbitrary pickle).
    """
    source = repr(os.fspath(path))
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as exc:
        raise ValueError(
            f"refusing to load {source}: it is not an sktap file or it "
            f"contains objects whose loading would execute code ({exc})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{source} is not an sktap estimator file")
    version = payload.get("version")
    if version != _VERSION:
        raise ValueError(
            f"{source} is in sktap file format version {version!r}; this sktap "
            f"reads version {_VERSION}. Load it with the sktap that wrote it and "
            "refit, or save it again from there."
        )
    return restore_estimator(payload, source)
