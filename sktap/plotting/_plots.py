"""Alignment heatmaps (the paper's Fig. 2) and training curves."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .._validation import check_sequence

__all__ = [
    "AlignmentAxes",
    "plot_alignment",
    "plot_alignment_comparison",
    "plot_training_history",
]

_MISSING_MATPLOTLIB = "sktap.plotting needs matplotlib: pip install 'sktap[plot]'"
# Keys of an estimator's history_ that are bookkeeping, not losses.
_NOT_LOSSES = ("epoch", "seconds")


def _pyplot():
    """``matplotlib.pyplot``, imported only when a plot is drawn."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(_MISSING_MATPLOTLIB) from None
    return plt


class AlignmentAxes(NamedTuple):
    """The axes drawn by :func:`plot_alignment`.

    Attributes
    ----------
    heatmap : matplotlib.axes.Axes
        The alignment ``T``: rows are source frames, columns target frames.
    source : matplotlib.axes.Axes
        The source sequence ``x``, drawn top to bottom on the left.
    target : matplotlib.axes.Axes
        The target sequence ``y``, drawn left to right on top.
    colorbar : matplotlib.axes.Axes or None
        The colour scale (None with ``colorbar=False``).
    """

    heatmap: object
    source: object
    target: object
    colorbar: object


def _check_alignment(T, lx: int, ly: int) -> np.ndarray:
    try:
        T = np.asarray(T, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            "T must be an array of real numbers of shape (Lx, Ly)"
        ) from None
    if T.shape != (lx, ly):
        raise ValueError(
            f"T must have shape (Lx, Ly) = ({lx}, {ly}) to match x and y; got "
            f"shape {T.shape}"
        )
    if not np.isfinite(T).all():
        raise ValueError("T contains NaN or infinite values")
    return T


def plot_alignment(x, y, T, ax=None, *, cmap="viridis", title=None, colorbar=True):
    """Draw an alignment matrix with the two sequences along its sides.

    As in the paper's Fig. 2: a heatmap of ``T`` whose row ``i`` is source
    frame ``x_i`` and column ``j`` target frame ``y_j``, with ``x`` drawn
    down the left side (frame ``i`` level with row ``i``) and ``y`` along
    the top (frame ``j`` above column ``j``). Every channel of a
    multivariate sequence is one line.

    Parameters
    ----------
    x : array-like of shape (Lx, d) or (Lx,)
        Source sequence (trailing NaN time steps are dropped).
    y : array-like of shape (Ly, d) or (Ly,)
        Target sequence.
    T : array-like of shape (Lx, Ly)
        Alignment of ``x`` onto ``y``, such as
        :func:`sktap.metrics.tap_alignment` returns.
    ax : matplotlib.axes.Axes, optional
        Axes to draw the heatmap in; room for the sequences and the colour
        bar is taken from it. None: a new figure.
    cmap : str or matplotlib colormap, default="viridis"
    title : str, optional
        Shown above the target sequence.
    colorbar : bool, default=True
        Add a colour scale on the right.

    Returns
    -------
    AlignmentAxes
        Named tuple ``(heatmap, source, target, colorbar)`` of Axes.

    Raises
    ------
    ValueError
        If ``T`` is not of shape ``(Lx, Ly)`` or is not finite.
    ImportError
        If matplotlib is not installed.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sktap.metrics import tap_alignment
    >>> from sktap.plotting import plot_alignment
    >>> x, y = np.sin(np.linspace(0, 3, 12)), np.sin(np.linspace(0, 3, 9))
    >>> axes = plot_alignment(x, y, tap_alignment(x, y))
    >>> axes.heatmap.images[0].get_array().shape
    (12, 9)
    """
    plt = _pyplot()
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    xs = check_sequence(x, name="x")
    ys = check_sequence(y, name="y")
    T = _check_alignment(T, len(xs), len(ys))
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5.5))
        fig.subplots_adjust(right=0.86)  # room for the colour bar's label
    image = ax.imshow(T, cmap=cmap, aspect="auto", interpolation="nearest")
    divider = make_axes_locatable(ax)
    # Shared axes keep frame i of x level with row i of T, and frame j of y
    # above column j, whatever the zoom.
    src = divider.append_axes("left", size="22%", pad=0.08, sharey=ax)
    tgt = divider.append_axes("top", size="22%", pad=0.08, sharex=ax)
    cax = None
    if colorbar:
        cax = divider.append_axes("right", size="4%", pad=0.08)
        ax.figure.colorbar(image, cax=cax, label="T[i, j]")

    src.plot(xs, np.arange(len(xs)), linewidth=1.2)
    src.invert_xaxis()  # the series grows towards the heatmap it aligns
    src.set_ylabel("source frame i (x)")
    src.set_xlabel("x")
    src.set_ylim(len(xs) - 0.5, -0.5)  # row 0 at the top, like the image
    tgt.plot(np.arange(len(ys)), ys, linewidth=1.2)
    tgt.set_ylabel("y")
    tgt.tick_params(labelbottom=False)
    ax.tick_params(labelleft=False)
    ax.set_xlabel("target frame j (y)")
    if title is not None:
        tgt.set_title(title)
    return AlignmentAxes(ax, src, tgt, cax)


def _soft_dtw_plan(x, y, gamma):
    """Soft-DTW's expected alignment, rows summing to ``1 / Lx`` like TAP's ``T``."""
    from tslearn.metrics import soft_dtw_alignment

    A, _ = soft_dtw_alignment(x, y, gamma=gamma)  # (Lx, Ly), rows sum to >= 1
    return A / A.sum(axis=1, keepdims=True) / len(x)


def plot_alignment_comparison(x, y, *, net=None, learner=None, gamma=1.0):
    """TAP's predicted alignment beside soft-DTW's, on one figure.

    The left panel is the TAP alignment of ``x`` onto ``y``: parameter-free
    (``net=None``), with an alignment network ``net``, or learned by a
    fitted ``learner``. The right panel is soft-DTW's expected alignment
    (tslearn's ``soft_dtw_alignment``) between the same frames the TAP panel
    compares (for a ``learner``, its transformed frames ``h(x)``, ``h(y)``),
    row-normalised and divided by ``Lx`` so that both matrices sum to 1 with
    rows summing to ``1 / Lx``.

    Parameters
    ----------
    x : array-like of shape (Lx, d) or (Lx,)
        Source sequence.
    y : array-like of shape (Ly, d) or (Ly,)
        Target sequence.
    net : torch.nn.Module or None, default=None
        Alignment network such as :class:`sktap.TAPNet`.
    learner : fitted estimator, optional
        An estimator with ``tap_alignment(x, y)`` and ``transform``, such as
        a fitted :class:`sktap.TAPMetricLearner`. Exclusive with ``net``.
    gamma : float, default=1.0
        Soft-DTW smoothing; larger spreads its alignment.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, each drawn by :func:`plot_alignment`.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sktap.plotting import plot_alignment_comparison
    >>> x, y = np.sin(np.linspace(0, 3, 12)), np.sin(np.linspace(0, 3, 9))
    >>> fig = plot_alignment_comparison(x, y, gamma=0.1)
    >>> len(fig.axes)  # two heatmaps, each with two sequences and a colour bar
    8
    """
    plt = _pyplot()
    if net is not None and learner is not None:
        raise ValueError("pass either net or learner, not both")
    if not isinstance(gamma, numbers.Real) or not gamma > 0:
        raise ValueError(f"gamma must be a positive number; got {gamma!r}")
    xs = check_sequence(x, name="x")
    ys = check_sequence(y, name="y", n_features=xs.shape[1])
    if learner is not None:
        T = learner.tap_alignment(xs, ys)
        zx, zy = (np.asarray(learner.transform([s]))[0] for s in (xs, ys))
        tap_title = "TAP (learned)"
    else:
        from ..metrics import tap_alignment

        T = tap_alignment(xs, ys, net=net)
        zx, zy = xs, ys
        tap_title = "TAP" if net is None else "TAP (network)"
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.5))
    # room between the panels for the left one's colour bar and the right
    # one's source sequence, which are carved out of the panels' own space
    fig.subplots_adjust(left=0.09, right=0.94, wspace=0.45)
    plot_alignment(xs, ys, T, left, title=tap_title)
    plot_alignment(xs, ys, _soft_dtw_plan(zx, zy, gamma), right, title="soft-DTW")
    return fig


def _history_of(history):
    if hasattr(history, "get_params"):  # an estimator rather than its log
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(history, "history_")
        history = history.history_
    if isinstance(history, dict) or not hasattr(history, "__len__"):
        raise TypeError(
            "history must be a list of per-epoch dicts or a fitted estimator "
            f"with history_; got {type(history).__name__}"
        )
    history = list(history)
    if not history:
        raise ValueError("history is empty: there is no epoch to plot")
    if not all(isinstance(h, dict) for h in history):
        raise TypeError("history must be a list of per-epoch dicts")
    return history


def _loss_keys(history, keys):
    available = []
    for logs in history:
        for k, v in logs.items():
            if k not in available and k not in _NOT_LOSSES and _is_number(v):
                available.append(k)
    if keys is None:
        if not available:
            raise ValueError("history has no numeric values to plot")
        return available
    keys = [keys] if isinstance(keys, str) else list(keys)
    for k in keys:
        if not any(k in logs for logs in history):
            raise ValueError(
                f"{k!r} is not in the history; available keys: {available}"
            )
    return keys


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def plot_training_history(history, ax=None, *, keys=None):
    """Plot each logged loss over the training epochs.

    Parameters
    ----------
    history : list of dict or fitted estimator
        Per-epoch logs such as an estimator's ``history_`` (each a dict
        like ``{"epoch": 1, "loss": 0.8, "val_loss": 0.9, ...}``), or the
        estimator itself.
    ax : matplotlib.axes.Axes, optional
        None: a new figure.
    keys : str or list of str, optional
        Which logged values to draw; None draws every numeric one except
        ``epoch`` and ``seconds``. An epoch that lacks a key leaves a gap.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If the history is empty or a key was never logged.
    sklearn.exceptions.NotFittedError
        If an estimator is passed before ``fit``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sktap.plotting import plot_training_history
    >>> history = [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.7}]
    >>> ax = plot_training_history(history)
    >>> ax.get_xlabel(), [line.get_label() for line in ax.get_lines()]
    ('epoch', ['loss'])
    """
    plt = _pyplot()
    history = _history_of(history)
    keys = _loss_keys(history, keys)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    epochs = [logs.get("epoch", i + 1) for i, logs in enumerate(history)]
    for k in keys:
        values = [float(logs[k]) if k in logs else np.nan for logs in history]
        ax.plot(epochs, values, marker="o" if len(history) <= 30 else None, label=k)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return ax
