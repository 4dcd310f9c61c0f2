"""sktap's global configuration: how arrays of sequences are laid out,
which exact training step computes the metric term, and whether padded
shapes are rounded to a grid.

Modelled on scikit-learn's ``set_config`` / ``config_context``: the setting
is per thread, and ``config_context`` restores the previous value on exit.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

__all__ = ["LayoutWarning", "config_context", "get_config", "set_config"]

LAYOUTS = ("auto", "time_first", "channels_first")
TRAINING_PATHS = ("auto", "mined", "all_pairs")
_DEFAULTS = {"layout": "auto", "training_path": "auto", "shape_rounding": True}
_local = threading.local()


class LayoutWarning(UserWarning):
    """sktap read an array whose layout it could not tell from its shape.

    Raised when ``layout="auto"`` (the default) meets sequences with more
    channels than time steps: sktap reads them time first, as tslearn does,
    but they may be channels-first data from aeon or sktime. Say which
    layout the data has with :func:`sktap.config_context` or
    :func:`sktap.set_config` to silence it.
    """


def _config() -> dict:
    if not hasattr(_local, "config"):
        _local.config = dict(_DEFAULTS)
    return _local.config


def get_config() -> dict:
    """The current values of sktap's settings.

    Returns
    -------
    dict
        ``{"layout": ..., "training_path": ..., "shape_rounding": ...}``;
        see :func:`set_config`.

    Examples
    --------
    >>> import sktap
    >>> sktap.get_config()["layout"]
    'auto'
    """
    return dict(_config())


def _check_option(name, value, options) -> str:
    if value not in options:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}"
        )
    return value


def set_config(layout=None, training_path=None, shape_rounding=None):
    """Set sktap's settings for this thread.

    Parameters
    ----------
    layout : {"auto", "time_first", "channels_first"}, optional
        How a 3-D array of sequences, and each 2-D sequence in a list, is
        laid out; None leaves the setting as it is.

        - ``"time_first"``: ``(n_ts, sz, d)``, and ``(L_i, d)`` per series:
          tslearn's layout and sktap's own.
        - ``"channels_first"``: ``(n_cases, n_channels, n_timepoints)``, and
          ``(n_channels, L_i)`` per series: what aeon's and sktime's
          loaders return (sktime's ``numpy3D``). Sequences that sktap gives
          back (``transform``, the dataset readers and generators) come
          channels first too.
        - ``"auto"`` (the default): read as ``"time_first"``, with a
          :class:`~sktap.LayoutWarning` when the data has more channels
          than time steps, the shape channels-first data usually has.

        A 2-D array ``(n_ts, sz)`` is a set of univariate series in every
        layout.
    training_path : {"auto", "mined", "all_pairs"}, optional
        How a TAP metric learner computes the metric term of a training
        step; every path gives the same loss and gradients, so this is for
        tests and benchmarks that compare them. ``"all_pairs"``: every
        pair of the minibatch padded to its longest sequence, all with
        autograd. ``"mined"``: frames encoded once, distances in length
        buckets, and for the hard-mined losses only the pairs that carry
        gradient recomputed with autograd (small batches still take the
        all-pairs computation, see ``sktap/metric_learning/_steps.py``).
        ``"auto"`` (the default): ``"mined"`` on the CPU, ``"all_pairs"``
        on a GPU, as measured in ``docs/benchmarks.md``.
    shape_rounding : bool, optional
        Whether training batches and length buckets (and inference tiles
        on the device types of ``ROUNDED_TILE_DEVICES`` in
        ``sktap/_thresholds.py``: none so far) are padded beyond their
        longest sequence, up to the next size of a small grid (multiples
        of 8 up to 64, then 8 sizes per octave: less than 1/8 extra
        frames), but never beyond the width the sequences are already
        stored at. With data of many distinct lengths the same few shapes
        then repeat, so oneDNN and cuDNN reuse their primitives, and length
        buckets hold more pairs (``benchmarks/bench_shapes.py``). Padding
        is exact: each step's distances and gradients are the same either
        way up to float summation order (bit for bit where no shape
        changes, as on data of one length), though over a long fit hard
        mining can pick other pairs from the slightly different distances.
        Default True; False pads every batch to its longest sequence.

    Examples
    --------
    >>> import sktap
    >>> sktap.set_config(layout="channels_first")
    >>> sktap.get_config()["layout"]
    'channels_first'
    >>> sktap.set_config(layout="auto")
    """
    new = {"layout": layout, "training_path": training_path}
    # every value is checked before any is set: a bad one changes nothing
    for name, options in (("layout", LAYOUTS), ("training_path", TRAINING_PATHS)):
        if new[name] is not None:
            _check_option(name, new[name], options)
    if shape_rounding is not None:
        if not isinstance(shape_rounding, bool | np.bool_):
            raise ValueError(
                f"shape_rounding must be True or False; got {shape_rounding!r}"
            )
        new["shape_rounding"] = bool(shape_rounding)
    _config().update({k: v for k, v in new.items() if v is not None})


@contextmanager
def config_context(*, layout=None, training_path=None, shape_rounding=None):
    """Set sktap's settings inside a ``with`` block, restoring them on exit.

    Parameters
    ----------
    layout : {"auto", "time_first", "channels_first"}, optional
        See :func:`set_config`.
    training_path : {"auto", "mined", "all_pairs"}, optional
        See :func:`set_config`.
    shape_rounding : bool, optional
        See :func:`set_config`.

    Examples
    --------
    >>> import numpy as np
    >>> import sktap
    >>> from sktap.metrics import cdist_tap
    >>> X_aeon = np.zeros((4, 3, 50))  # 4 series, 3 channels, 50 steps
    >>> with sktap.config_context(layout="channels_first"):
    ...     cdist_tap(X_aeon, device="cpu").shape
    (4, 4)
    """
    old = get_config()
    set_config(
        layout=layout, training_path=training_path, shape_rounding=shape_rounding
    )
    try:
        yield
    finally:
        _config().update(old)
