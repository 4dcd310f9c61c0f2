"""Public TAP distances on numpy input: one pair, or all pairs in tiles."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .._validation import check_sequence, check_sequences
from ..core import tap_pairwise
from ..engine import (
    TAPKernel,
    check_n_jobs,
    check_net,
    check_working_memory,
    resolve_device,
    resolve_dtype,
    run_tiles,
)

__all__ = ["cdist_tap", "tap_alignment", "tap_distance"]

_LOW_PRECISION = (torch.bfloat16, torch.float16)


def _run(net, Xs, Ys, dev, dt, symmetric, budget, n_jobs, verbose):
    kernel = TAPKernel(net, dev, dt, symmetric)
    return run_tiles(kernel, Xs, Ys, budget, n_jobs, verbose)


def cdist_tap(
    X,
    Y=None,
    *,
    net=None,
    symmetric=False,
    device="auto",
    dtype=None,
    working_memory=None,
    n_jobs=None,
    verbose=0,
):
    """TAP distances between two sets of sequences.

    Same meaning as tslearn's ``cdist_soft_dtw``: entry ``(i, j)`` is the
    distance from ``X[i]`` (the source) to ``Y[j]``.

    Parameters
    ----------
    X : array-like of shape (n_x, sz, d) or (n_x, sz), or list of (L_i, d)
        Source sequences (tslearn format, trailing-NaN padding allowed).
    Y : same as X, optional
        Target sequences; ``None`` means ``Y = X``.
    net : torch.nn.Module or None, default=None
        Alignment network such as :class:`sktap.TAPNet`. ``None`` is the
        parameter-free soft nearest-frame distance (``g = 0``). The caller's
        module is never modified (a private copy runs).
    symmetric : bool, default=False
        Average ``tap(x, y)`` and ``tap(y, x)``.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where to compute; "auto" picks CUDA when present.
    dtype : {None, "float32", "float64", "bfloat16", "float16"}, default=None
        Precision of the network (None means float32). Frame distances and
        the softmax stay in float32 for the low-precision types, and the
        result is float32 (float64 when ``dtype="float64"``).
    working_memory : float, optional
        Bound in MiB on the extra memory of one tile; defaults to
        scikit-learn's ``working_memory`` setting (1024).
    n_jobs : int, optional
        Tiles run through :class:`joblib.Parallel`, so a
        ``joblib.parallel_config(backend="dask")`` block spreads them over a
        dask cluster. Ignored (tiles run in order) on a GPU.
    verbose : int, default=0
        Positive: a progress bar over the tiles.

    Returns
    -------
    ndarray of shape (n_x, n_y)

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.metrics import cdist_tap
    >>> X = [np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0])]
    >>> cdist_tap(X, device="cpu").shape
    (2, 2)
    """
    Xs = check_sequences(X, name="X")
    Ys = Xs if Y is None else check_sequences(Y, name="Y", n_features=Xs.n_features)
    net = check_net(net)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    budget = check_working_memory(working_memory)
    check_n_jobs(n_jobs)
    out = _run(net, Xs, Ys, dev, dt, symmetric, budget, n_jobs, verbose)
    if dt in _LOW_PRECISION and not np.isfinite(out).all():
        warnings.warn(
            f"{dt} overflowed in the TAP network; recomputing in float32",
            RuntimeWarning,
            stacklevel=2,
        )
        out = _run(net, Xs, Ys, dev, torch.float32, symmetric, budget, n_jobs, verbose)
    if not np.isfinite(out).all():
        used = torch.float32 if dt in _LOW_PRECISION else dt
        raise ValueError(
            f"TAP gave non-finite distances in {used}"
            "; the input values are too large for this precision: rescale the "
            "data (e.g. TimeSeriesScalerMeanVariance) or use dtype='float64'"
        )
    return out


def _one_pair(x, y, net, name_x="x", name_y="y"):
    xa = check_sequence(x, name=name_x)
    ya = check_sequence(y, name=name_y, n_features=xa.shape[1])
    net = check_net(net)
    dtype = torch.float32
    if net is not None:
        p = next(net.parameters(), None)
        if p is not None and p.dtype == torch.float64:
            dtype = torch.float64
    device = torch.device("cpu")
    if net is not None:
        p = next(net.parameters(), None)
        device = p.device if p is not None else device
    xt = torch.as_tensor(xa, dtype=dtype, device=device)[None]
    yt = torch.as_tensor(ya, dtype=dtype, device=device)[None]
    return xt, yt


def tap_alignment(x, y, *, net=None):
    """The predicted alignment ``T`` of source ``x`` onto target ``y``.

    Parameters
    ----------
    x : array-like of shape (Lx, d) or (Lx,)
    y : array-like of shape (Ly, d) or (Ly,)
    net : torch.nn.Module or None, default=None
        Alignment network (``None``: parameter-free TAP). Runs on the device
        of its parameters, in eval mode semantics (no gradient).

    Returns
    -------
    ndarray of shape (Lx, Ly)
        Non-negative; each row sums to ``1 / Lx`` (so ``T`` sums to 1).

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.metrics import tap_alignment
    >>> T = tap_alignment(np.arange(4.0), np.arange(3.0))
    >>> T.shape, round(float(T.sum()), 6)
    ((4, 3), 1.0)
    """
    xt, yt = _one_pair(x, y, net)
    with torch.no_grad():
        _, T = tap_pairwise(
            xt, [xt.shape[1]], yt, [yt.shape[1]], net, return_alignment=True
        )
    return T[0, 0].cpu().numpy().astype(np.float64)


def tap_distance(x, y, *, net=None, symmetric=False):
    """TAP distance from source ``x`` to target ``y``.

    Parameters
    ----------
    x : array-like of shape (Lx, d) or (Lx,)
    y : array-like of shape (Ly, d) or (Ly,)
    net : torch.nn.Module or None, default=None
    symmetric : bool, default=False
        Return ``(tap(x, y) + tap(y, x)) / 2``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.metrics import tap_distance
    >>> tap_distance(np.zeros(3), np.ones(5))
    1.0
    """
    xt, yt = _one_pair(x, y, net)
    with torch.no_grad():
        d = tap_pairwise(xt, [xt.shape[1]], yt, [yt.shape[1]], net, symmetric=symmetric)
    return float(d[0, 0])
