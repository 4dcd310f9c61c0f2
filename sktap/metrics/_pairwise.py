"""Public TAP distances on numpy input: one pair, or all pairs in tiles."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .._engine import (
    TAPKernel,
    check_form,
    check_n_jobs,
    check_net,
    check_working_memory,
    resolve_device,
    resolve_dtype,
    run_form,
)
from .._validation import check_sequence, check_sequences
from ..core import tap_pairwise

__all__ = ["cdist_tap", "tap_alignment", "tap_distance"]

_LOW_PRECISION = (torch.bfloat16, torch.float16)


def _run(net, Xs, Ys, dev, dt, form, budget, n_jobs, verbose):
    kernel = TAPKernel(net, dev, dt, bool(form))
    return run_form(kernel, Xs, Ys, form, budget, n_jobs, verbose)


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
    symmetric : bool or "divergence", default=False
        False: ``tap(x, y)``, the paper's distance, with ``x`` the source.
        True: the average of ``tap(x, y)`` and ``tap(y, x)``. "divergence":
        the clustering-ready form ``max(0, s(x, y) - (s(x, x) + s(y, y)) / 2)``
        of that average ``s``, which is symmetric, non-negative and zero from
        a sequence to itself (the way the soft-DTW divergence of Blondel et
        al., 2021, removes soft-DTW's self-distance); use it with
        ``metric="precomputed"`` in KMedoids, DBSCAN or agglomerative
        clustering. TAP's own self-distance ``tap(x, x)`` is not zero.
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
    .. [2] M. Blondel, A. Mensch and J.-P. Vert, "Differentiable Divergences
       Between Time Series", AISTATS 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.metrics import cdist_tap
    >>> X = [np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0])]
    >>> cdist_tap(X, device="cpu").shape
    (2, 2)
    >>> D = cdist_tap(X, symmetric="divergence", device="cpu")
    >>> bool((D == D.T).all()), D.diagonal().tolist()
    (True, [0.0, 0.0])
    """
    Xs = check_sequences(X, name="X")
    Ys = None if Y is None else check_sequences(Y, name="Y", n_features=Xs.n_features)
    form = check_form(symmetric)
    net = check_net(net)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    budget = check_working_memory(working_memory)
    check_n_jobs(n_jobs)
    out = _run(net, Xs, Ys, dev, dt, form, budget, n_jobs, verbose)
    if dt in _LOW_PRECISION and not np.isfinite(out).all():
        warnings.warn(
            f"{dt} overflowed in the TAP network; recomputing in float32",
            RuntimeWarning,
            stacklevel=2,
        )
        out = _run(net, Xs, Ys, dev, torch.float32, form, budget, n_jobs, verbose)
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
    return pair_tensors(xa, ya, check_net(net))


def pair_tensors(xa, ya, net):
    """``(1, Lx, d)`` and ``(1, Ly, d)`` tensors on the device of ``net``."""
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
    return pair_alignment(*_one_pair(x, y, net), net)


def pair_alignment(xt, yt, net):
    """``T`` (Lx, Ly) of two time-first ``(1, L, d)`` tensors, as float64."""
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
    symmetric : bool or "divergence", default=False
        True: ``(tap(x, y) + tap(y, x)) / 2``. "divergence": that average
        less the mean of the two self-distances, at least 0 (see
        :func:`cdist_tap`).

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
    form = check_form(symmetric)
    xt, yt = _one_pair(x, y, net)
    with torch.no_grad():
        if form != "divergence":
            d = tap_pairwise(xt, [xt.shape[1]], yt, [yt.shape[1]], net, symmetric=form)
            return float(d[0, 0])
        d, sx, sy = (
            float(tap_pairwise(a, [a.shape[1]], b, [b.shape[1]], net, symmetric=True))
            for a, b in ((xt, yt), (xt, xt), (yt, yt))
        )
    return max(0.0, d - (sx + sy) / 2)
