"""Alignment heatmaps (the paper's Fig. 2) and training curves."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .._config import config_context
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


def _check_stride(stride) -> int:
    is_int = isinstance(stride, numbers.Integral) and not isinstance(stride, bool)
    if not is_int or stride < 1:
        raise ValueError(f"stride must be a positive integer; got {stride!r}")
    return int(stride)


def _n_frames(length: int, stride: int) -> int:
    """``ceil(length / stride)``: the frames a strided encoder makes of a sequence."""
    return -(-length // stride)


def _check_alignment(T, lx: int, ly: int, stride: int = 1, name="T") -> np.ndarray:
    try:
        T = np.asarray(T, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be an array of real numbers of shape (Lx, Ly)"
        ) from None
    expected = (_n_frames(lx, stride), _n_frames(ly, stride))
    if T.shape != expected:
        if stride == 1:
            shape, at = "(Lx, Ly)", ""
        else:
            shape, at = "(ceil(Lx / stride), ceil(Ly / stride))", f" at stride {stride}"
        raise ValueError(
            f"{name} must have shape {shape} = {expected} to match x and y{at}; "
            f"got shape {T.shape}"
        )
    if not np.isfinite(T).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return T


def _frame_span(n_frames: int, stride: int) -> tuple[float, float]:
    """Input-step coordinates of the outer edges of ``n_frames`` strided frames.

    Frame ``t`` is centred on input step ``t * stride`` (see
    :class:`sktap.core.ConvFrameEncoder`), so its cell spans the steps nearer
    to that centre than to any other frame's: ``t * stride +- stride / 2``.
    At stride 1 these are imshow's default pixel edges.
    """
    return -stride / 2, n_frames * stride - stride / 2


def _axis_label(side: str, index: str, name: str, stride: int) -> str:
    if stride == 1:
        return f"{side} frame {index} ({name})"
    # the axis counts input steps; say where the frames of T sit on it
    return f"{side} time step ({name}), frame {index} at step {stride}{index}"


def plot_alignment(
    x, y, T, ax=None, *, stride=1, cmap="viridis", title=None, colorbar=True
):
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
    T : array-like of shape (ceil(Lx / stride), ceil(Ly / stride))
        Alignment of ``x`` onto ``y``, such as
        :func:`sktap.metrics.tap_alignment` returns (shape ``(Lx, Ly)`` at
        the default ``stride=1``) or a learner's ``alignment`` between
        downsampled frames.
    ax : matplotlib.axes.Axes, optional
        Axes to draw the heatmap in; room for the sequences and the colour
        bar is taken from it. None: a new figure.
    stride : int, default=1
        Temporal stride of the encoder that made the frames ``T`` aligns,
        such as a fitted learner's ``stride_``. Above 1 the axes count input
        time steps: frame ``t``, centred on step ``t * stride``, covers the
        steps within ``stride / 2`` of it, and ``x`` and ``y`` are drawn at
        full resolution level with the frames that summarise them.
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
        If ``stride`` is not a positive integer, or ``T`` is not of shape
        ``(ceil(Lx / stride), ceil(Ly / stride))`` or is not finite.
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

    An alignment between frames downsampled by 2 (6 and 5 frames), drawn
    over the 12 and 9 input steps:

    >>> axes = plot_alignment(x, y, np.full((6, 5), 1 / 30), stride=2)
    >>> [float(e) for e in axes.heatmap.images[0].get_extent()]
    [-1.0, 9.0, 11.0, -1.0]
    """
    plt = _pyplot()
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    stride = _check_stride(stride)
    xs = check_sequence(x, name="x")
    ys = check_sequence(y, name="y")
    T = _check_alignment(T, len(xs), len(ys), stride)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5.5))
        fig.subplots_adjust(right=0.86)  # room for the colour bar's label
    left, right = _frame_span(T.shape[1], stride)
    top, bottom = _frame_span(T.shape[0], stride)
    image = ax.imshow(
        T,
        cmap=cmap,
        aspect="auto",
        interpolation="nearest",
        extent=(left, right, bottom, top),  # in input steps, row 0 at the top
    )
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
    src.set_ylabel(_axis_label("source", "i", "x", stride))
    src.set_xlabel("x")
    src.set_ylim(bottom, top)  # row 0 at the top, like the image
    tgt.plot(np.arange(len(ys)), ys, linewidth=1.2)
    tgt.set_xlim(left, right)  # the lines' margins would widen the image's
    tgt.set_ylabel("y")
    tgt.tick_params(labelbottom=False)
    ax.tick_params(labelleft=False)
    ax.set_xlabel(_axis_label("target", "j", "y", stride))
    if title is not None:
        tgt.set_title(title)
    return AlignmentAxes(ax, src, tgt, cax)


def _learned_title(learner) -> str:
    """Name the left panel after the learner's distance."""
    from ..baselines import SoftDTWMetricLearner
    from ..metric_learning import TAPMetricLearner

    how = "learned" if getattr(learner, "supervised_", True) else "self-supervised"
    for cls, name in ((TAPMetricLearner, "TAP"), (SoftDTWMetricLearner, "soft-DTW")):
        if isinstance(learner, cls):
            return f"{name} ({how})"
    return f"{type(learner).__name__} (learned)"


def plot_alignment_comparison(
    x, y, *, net=None, learner=None, gamma=1.0, ground_truth=None
):
    """A predicted or learned alignment beside soft-DTW's, on one figure.

    The left panel is the TAP alignment of ``x`` onto ``y``, parameter-free
    (``net=None``) or with an alignment network ``net``, or the alignment
    of a fitted ``learner`` (``learner.alignment``: TAP's for a
    :class:`sktap.TAPMetricLearner`, soft-DTW's for a
    :class:`sktap.baselines.SoftDTWMetricLearner`), titled after it. The
    right panel is soft-DTW's expected alignment (tslearn's
    ``soft_dtw_alignment``) between the same frames the left panel compares
    (for a ``learner``, its transformed frames ``h(x)``, ``h(y)``),
    row-normalised and divided by the number of source frames so that, like
    a TAP alignment, it sums to 1 with equal row sums.

    A learner whose encoder downsamples time (``stride_ > 1``) aligns
    ``ceil(L / stride_)`` frames; both panels are then drawn over the input
    time steps (see ``stride`` in :func:`plot_alignment`).

    When ``y`` is an augmentation of ``x`` whose alignment is known (such
    as :func:`sktap.augment.random_merge` returns), pass it as
    ``ground_truth``: a third panel draws it, so each method can be read
    against the answer.

    Parameters
    ----------
    x : array-like of shape (Lx, d) or (Lx,)
        Source sequence.
    y : array-like of shape (Ly, d) or (Ly,)
        Target sequence.
    net : torch.nn.Module or None, default=None
        Alignment network such as :class:`sktap.TAPNet`.
    learner : fitted estimator, optional
        A learned sequence distance with ``alignment(x, y)`` and
        ``transform``, such as a fitted :class:`sktap.TAPMetricLearner` or
        :class:`sktap.baselines.SoftDTWMetricLearner`; its ``stride_``
        (1 if absent) places the frames. Exclusive with ``net``.
    gamma : float, default=1.0
        Soft-DTW smoothing of the right panel; larger spreads its alignment.
    ground_truth : array-like of shape (Lx, Ly), optional
        The true alignment of ``x`` onto ``y``, for example the matrix ``G``
        of an augmentation (``y = G.T @ x``); each row is drawn normalised
        to sum ``1 / Lx``, as TAP's are (an all-zero row stays zero). Only
        for alignments between time steps (no downsampling learner).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (three with ``ground_truth``), each drawn by
        :func:`plot_alignment`.

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
    from ..baselines._soft_dtw_learner import soft_dtw_plan

    plt = _pyplot()
    if net is not None and learner is not None:
        raise ValueError("pass either net or learner, not both")
    if not isinstance(gamma, numbers.Real) or not gamma > 0:
        raise ValueError(f"gamma must be a positive number; got {gamma!r}")
    xs = check_sequence(x, name="x")
    ys = check_sequence(y, name="y", n_features=xs.shape[1])
    truth = None
    if ground_truth is not None:
        truth = _row_normalised(
            _check_alignment(ground_truth, len(xs), len(ys), name="ground_truth")
        )
    # xs and ys are time first from here on, whatever layout the caller uses
    with config_context(layout="time_first"):
        if learner is not None:
            T = learner.alignment(xs, ys)  # (Lx', Ly'), encoded frames
            zx, zy = (np.asarray(learner.transform([s]))[0] for s in (xs, ys))
            stride = getattr(learner, "stride_", 1)
            left_title = _learned_title(learner)
        else:
            from ..metrics import tap_alignment

            T = tap_alignment(xs, ys, net=net)
            zx, zy = xs, ys
            stride = 1
            left_title = "TAP" if net is None else "TAP (network)"
        if truth is not None and stride != 1:
            raise ValueError(
                "ground_truth aligns time steps, but the learner aligns frames "
                f"downsampled by stride_={stride}; fit it with downsample=1"
            )
        n_panels = 2 if truth is None else 3
        fig, axes = plt.subplots(1, n_panels, figsize=(6 * n_panels, 5.5))
        # room between the panels for the left one's colour bar and the right
        # one's source sequence, which are carved out of the panels' own space
        fig.subplots_adjust(left=0.09 / n_panels * 2, right=0.94, wspace=0.45)
        plot_alignment(xs, ys, T, axes[0], stride=stride, title=left_title)
        plan = soft_dtw_plan(zx, zy, gamma)  # (Lx', Ly'): h downsamples too
        plot_alignment(xs, ys, plan, axes[1], stride=stride, title="soft-DTW")
        if truth is not None:
            plot_alignment(xs, ys, truth, axes[2], title="ground truth")
    return fig


def _row_normalised(G):
    """Rows scaled to sum ``1 / Lx`` (all-zero rows stay zero), like TAP's ``T``."""
    if (G < 0).any():
        raise ValueError("ground_truth must be non-negative")
    total = G.sum(axis=1, keepdims=True)
    return np.divide(G, total * len(G), out=np.zeros_like(G), where=total > 0)


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
