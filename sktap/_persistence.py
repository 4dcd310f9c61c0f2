"""Saving and loading fitted estimators without executing code.

A file holds plain containers, strings, numbers and tensors, written with
``torch.save`` and read back with ``torch.load(weights_only=True)``, whose
unpickler refuses anything that would import or call code. Parameters are
stored as JSON text.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import warnings

import torch

__all__ = ["SaveMixin", "load"]

_FORMAT = "sktap-estimator"
_VERSION = 1


def _json_params(estimator):
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        if isinstance(value, torch.device):
            value = str(value)
        if isinstance(value, tuple):
            value = list(value)
        try:
            json.dumps(value)
        except TypeError:
            warnings.warn(
                f"{type(estimator).__name__}.{name}={value!r} cannot be saved; it "
                "is stored as None",
                UserWarning,
                stacklevel=3,
            )
            value = None
        params[name] = value
    return json.dumps(params)


def _restore_params(cls, params):
    defaults = {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
    }
    for name, value in params.items():
        if isinstance(defaults.get(name), tuple) and isinstance(value, list):
            params[name] = tuple(value)
    return params


class SaveMixin:
    """Adds ``save(path)``, given ``_fitted_state`` and ``_set_fitted_state``."""

    def save(self, path):
        """Write the fitted estimator to ``path`` in sktap's safe format.

        Read it back with :func:`sktap.load`. Callables among the
        parameters (``callback``, ``backbone``) are not saved.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        payload = {
            "format": _FORMAT,
            "version": _VERSION,
            "class": type(self).__name__,
            "params": _json_params(self),
            "fitted": self._fitted_state(),
        }
        tmp = f"{os.fspath(path)}.tmp"
        torch.save(payload, tmp)
        os.replace(tmp, path)


def _registry():
    from . import _estimators_registry

    return _estimators_registry()


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
        If the file is not an sktap estimator file, or contains objects that
        would need code to be executed to load (such as an arbitrary pickle).
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as exc:
        raise ValueError(
            f"refusing to load {os.fspath(path)!r}: it is not an sktap file or it "
            f"contains objects whose loading would execute code ({exc})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not an sktap estimator file")
    classes = _registry()
    cls = classes.get(payload.get("class"))
    if cls is None:
        raise ValueError(
            f"{os.fspath(path)!r} names unknown class {payload.get('class')!r}"
        )
    est = cls(**_restore_params(cls, json.loads(payload["params"])))
    est._set_fitted_state(payload["fitted"])
    return est
