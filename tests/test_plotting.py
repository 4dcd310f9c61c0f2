import builtins
import re

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # before pyplot: never open a window
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from sktap import TAPMetricLearner, TAPNet  # noqa: E402
from sktap.baselines import SoftDTWMetricLearner  # noqa: E402
from sktap.metrics import tap_alignment  # noqa: E402
from sktap.plotting import (  # noqa: E402
    AlignmentAxes,
    plot_alignment,
    plot_alignment_comparison,
    plot_training_history,
)

from .conftest import TINY_LEARNER, TINY_SOFT_DTW  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    return rng.normal(size=(7, 2)), rng.normal(size=(5, 2))


# -- plot_alignment -----------------------------------------------------------


def test_plot_alignment_draws_T_and_both_sequences(pair):
    x, y = pair
    T = tap_alignment(x, y)
    axes = plot_alignment(x, y, T, title="pair")
    assert isinstance(axes, AlignmentAxes)
    np.testing.assert_array_equal(axes.heatmap.images[0].get_array(), T)
    assert axes.heatmap.get_xlabel() == "target frame j (y)"
    assert axes.source.get_ylabel() == "source frame i (x)"
    assert axes.target.get_ylabel() == "y"
    assert axes.target.get_title() == "pair"
    # one line per channel; x runs down its frames, y along its frames
    assert len(axes.source.get_lines()) == 2
    assert len(axes.target.get_lines()) == 2
    np.testing.assert_array_equal(axes.source.get_lines()[1].get_xdata(), x[:, 1])
    np.testing.assert_array_equal(axes.source.get_lines()[1].get_ydata(), np.arange(7))
    np.testing.assert_array_equal(axes.target.get_lines()[0].get_ydata(), y[:, 0])
    assert axes.colorbar is not None


def test_plot_alignment_in_given_axes_without_colorbar(pair):
    x, y = pair
    fig, ax = plt.subplots()
    axes = plot_alignment(x, y, np.full((7, 5), 1 / 35), ax, colorbar=False)
    assert axes.heatmap is ax
    assert axes.colorbar is None
    assert len(fig.axes) == 3


def test_plot_alignment_univariate_and_nan_padding():
    x = np.array([0.0, 1.0, 2.0, np.nan])  # trailing NaN: three frames
    axes = plot_alignment(x, [1.0, 2.0], np.full((3, 2), 1 / 6))
    assert axes.heatmap.images[0].get_array().shape == (3, 2)


@pytest.mark.parametrize("shape", [(5, 7), (7, 4), (7,), (7, 5, 1)])
def test_plot_alignment_rejects_mismatched_T(pair, shape):
    x, y = pair
    msg = f"T must have shape (Lx, Ly) = (7, 5) to match x and y; got shape {shape}"
    with pytest.raises(ValueError, match=re.escape(msg)):
        plot_alignment(x, y, np.zeros(shape))


def test_plot_alignment_with_stride_spans_the_input_steps():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 1)), rng.normal(size=(7, 1))
    T = np.full((4, 3), 1 / 12)  # ceil(10 / 3) x ceil(7 / 3) frames
    axes = plot_alignment(x, y, T, stride=3)
    image = axes.heatmap.images[0]
    np.testing.assert_array_equal(image.get_array(), T)
    # frame t is centred on input step 3t and covers the steps within 1.5
    assert tuple(image.get_extent()) == (-1.5, 7.5, 10.5, -1.5)
    assert axes.heatmap.get_ylim() == (10.5, -1.5)
    assert axes.heatmap.get_xlim() == (-1.5, 7.5)
    # the sequences at full resolution, one point per input step
    np.testing.assert_array_equal(axes.source.get_lines()[0].get_ydata(), np.arange(10))
    np.testing.assert_array_equal(axes.target.get_lines()[0].get_xdata(), np.arange(7))
    assert axes.heatmap.get_xlabel() == "target time step (y), frame j at step 3j"
    assert axes.source.get_ylabel() == "source time step (x), frame i at step 3i"


def test_plot_alignment_with_stride_rejects_mismatched_T(pair):
    x, y = pair
    msg = (
        "T must have shape (ceil(Lx / stride), ceil(Ly / stride)) = (4, 3) to "
        "match x and y at stride 2; got shape (7, 5)"
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        plot_alignment(x, y, np.zeros((7, 5)), stride=2)


@pytest.mark.parametrize("stride", [0, -2, 1.5, True, "2", None])
def test_plot_alignment_rejects_bad_stride(pair, stride):
    x, y = pair
    msg = f"stride must be a positive integer; got {stride!r}"
    with pytest.raises(ValueError, match=re.escape(msg)):
        plot_alignment(x, y, np.zeros((7, 5)), stride=stride)


def test_plot_alignment_rejects_nan_T(pair):
    x, y = pair
    T = np.zeros((7, 5))
    T[0, 0] = np.nan
    with pytest.raises(ValueError, match="T contains NaN or infinite values"):
        plot_alignment(x, y, T)


def test_plot_alignment_validates_sequences():
    with pytest.raises(ValueError, match="x: sequence 0 has NaN at time step 1"):
        plot_alignment([0.0, np.nan, 1.0], [1.0], np.zeros((3, 1)))


def test_missing_matplotlib_has_clear_message(monkeypatch, pair):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    msg = "sktap.plotting needs matplotlib: pip install 'sktap[plot]'"
    with pytest.raises(ImportError, match=re.escape(msg)):
        plot_alignment(*pair, np.zeros((7, 5)))
    with pytest.raises(ImportError, match=re.escape(msg)):
        plot_training_history([{"loss": 1.0}])


# -- plot_alignment_comparison -------------------------------------------------


def _heatmaps(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_xlabel().startswith("t")]


def test_comparison_parameter_free_and_soft_dtw(pair):
    from tslearn.metrics import soft_dtw_alignment

    x, y = pair
    fig = plot_alignment_comparison(x, y, gamma=0.5)
    tap_ax, sdtw_ax = _heatmaps(fig)
    np.testing.assert_allclose(tap_ax.images[0].get_array(), tap_alignment(x, y))
    A = soft_dtw_alignment(x, y, gamma=0.5)[0]
    expected = A / A.sum(axis=1, keepdims=True) / 7
    np.testing.assert_allclose(sdtw_ax.images[0].get_array(), expected)
    # comparable scales: both sum to 1, rows to 1 / Lx
    plan = np.asarray(sdtw_ax.images[0].get_array())
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 7)
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_title())
    assert titles == ["TAP", "soft-DTW"]


def test_comparison_with_net(pair):
    x, y = pair
    net = TAPNet((3,), (3, 3))
    fig = plot_alignment_comparison(x, y, net=net)
    tap_ax = _heatmaps(fig)[0]
    np.testing.assert_allclose(
        tap_ax.images[0].get_array(), tap_alignment(x, y, net=net), rtol=1e-6
    )


def test_comparison_with_learner():
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(5, 8), 2) + (i % 2) for i in range(6)]
    learner = TAPMetricLearner(**TINY_LEARNER).fit(X, [i % 2 for i in range(6)])
    fig = plot_alignment_comparison(X[0], X[1], learner=learner)
    tap_ax = _heatmaps(fig)[0]
    np.testing.assert_allclose(
        tap_ax.images[0].get_array(), learner.alignment(X[0], X[1]), rtol=1e-6
    )
    assert tap_ax.figure is fig
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_title())
    assert titles == ["TAP (learned)", "soft-DTW"]


def test_comparison_with_ground_truth_of_an_augmentation():
    from sktap.augment import random_merge

    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(8, 12), 2) for _ in range(4)]
    learner = TAPMetricLearner(**TINY_LEARNER).fit(X)  # self-supervised
    x = X[0]
    y, G = random_merge(x, rng=0)
    fig = plot_alignment_comparison(x, y, learner=learner, ground_truth=G)
    heatmaps = _heatmaps(fig)
    assert len(heatmaps) == 3
    truth = heatmaps[2].images[0].get_array()
    np.testing.assert_allclose(truth, G / G.sum(axis=1, keepdims=True) / len(x))
    np.testing.assert_allclose(
        heatmaps[0].images[0].get_array(), learner.alignment(x, y), rtol=1e-6
    )
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_title())
    assert titles == ["TAP (self-supervised)", "ground truth", "soft-DTW"]


def test_comparison_ground_truth_errors(pair):
    x, y = pair
    with pytest.raises(ValueError, match=r"ground_truth must have shape \(Lx, Ly\)"):
        plot_alignment_comparison(x, y, ground_truth=np.ones((2, 2)))
    with pytest.raises(ValueError, match="ground_truth must be non-negative"):
        plot_alignment_comparison(x, y, ground_truth=-np.ones((len(x), len(y))))


def test_comparison_with_soft_dtw_learner():
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(5, 8), 2) + (i % 2) for i in range(6)]
    learner = SoftDTWMetricLearner(**TINY_SOFT_DTW).fit(X, [i % 2 for i in range(6)])
    fig = plot_alignment_comparison(X[0], X[1], learner=learner)
    learned_ax, sdtw_ax = _heatmaps(fig)
    T = learner.alignment(X[0], X[1])
    np.testing.assert_allclose(learned_ax.images[0].get_array(), T, rtol=1e-6)
    np.testing.assert_allclose(T.sum(axis=1), 1 / len(X[0]))
    assert sdtw_ax.images[0].get_array().shape == T.shape
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_title())
    assert titles == ["soft-DTW", "soft-DTW (learned)"]


def test_comparison_with_downsampling_learner():
    from tslearn.metrics import soft_dtw_alignment

    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(66, 101), 1) + (i % 2) for i in range(6)]
    x, y = rng.randn(100, 1), rng.randn(81, 1)
    learner = TAPMetricLearner(**TINY_LEARNER, encoder="conv", downsample="auto")
    learner.fit(X, [i % 2 for i in range(6)])
    assert learner.stride_ == 2  # the longest series has 65 to 128 steps
    fig = plot_alignment_comparison(x, y, learner=learner, gamma=0.5)
    for ax in _heatmaps(fig):
        image = ax.images[0]
        assert image.get_array().shape == (50, 41)  # ceil(100 / 2), ceil(81 / 2)
        # frame t centred on step 2t: the cells span every input step
        assert tuple(image.get_extent()) == (-1.0, 81.0, 99.0, -1.0)
    tap_ax, sdtw_ax = _heatmaps(fig)
    np.testing.assert_allclose(
        tap_ax.images[0].get_array(), learner.alignment(x, y), rtol=1e-6
    )
    zx, zy = learner.transform([x])[0], learner.transform([y])[0]
    A = soft_dtw_alignment(zx, zy, gamma=0.5)[0]
    np.testing.assert_allclose(
        sdtw_ax.images[0].get_array(), A / A.sum(axis=1, keepdims=True) / 50
    )


def test_comparison_errors(pair):
    x, y = pair
    with pytest.raises(ValueError, match="pass either net or learner, not both"):
        plot_alignment_comparison(x, y, net=TAPNet(), learner=object())
    with pytest.raises(ValueError, match="gamma must be a positive number; got 0"):
        plot_alignment_comparison(x, y, gamma=0)
    with pytest.raises(ValueError, match="y has 1 features per time step, but 2"):
        plot_alignment_comparison(x, np.zeros(4))


# -- plot_training_history -----------------------------------------------------


def test_history_lines_per_loss():
    history = [
        {"epoch": 1, "loss": 1.0, "metric_loss": 0.4, "val_loss": 1.2, "seconds": 3},
        {"epoch": 2, "loss": 0.8, "metric_loss": 0.3, "val_loss": 1.1, "seconds": 3},
        {"epoch": 3, "loss": 0.7, "metric_loss": 0.2, "seconds": 3},
    ]
    ax = plot_training_history(history)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert sorted(lines) == ["loss", "metric_loss", "val_loss"]
    np.testing.assert_array_equal(lines["loss"].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines["metric_loss"].get_ydata(), [0.4, 0.3, 0.2])
    assert np.isnan(lines["val_loss"].get_ydata()[2])  # a gap, not a zero
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "loss"
    assert ax.get_legend() is not None


def test_history_selected_keys_and_given_axes():
    _, ax = plt.subplots()
    history = [{"loss": 2.0, "val_loss": 3.0}, {"loss": 1.0, "val_loss": 2.5}]
    out = plot_training_history(history, ax, keys="val_loss")
    assert out is ax
    (line,) = ax.get_lines()
    assert line.get_label() == "val_loss"
    np.testing.assert_array_equal(line.get_xdata(), [1, 2])  # no "epoch" key


def test_history_from_fitted_estimator():
    rng = np.random.RandomState(0)
    X = [rng.randn(6, 1) + (i % 2) for i in range(6)]
    learner = TAPMetricLearner(**dict(TINY_LEARNER, max_epochs=2, augment=True))
    with pytest.raises(NotFittedError):
        plot_training_history(learner)
    learner.fit(X, [i % 2 for i in range(6)])
    ax = plot_training_history(learner)
    labels = [line.get_label() for line in ax.get_lines()]
    # every logged number but the epoch and its seconds, in logging order
    assert labels == [k for k in learner.history_[0] if k not in ("epoch", "seconds")]
    assert labels[:2] == ["loss", "metric_loss"] and "self_supervised_loss" in labels
    assert len(ax.get_lines()[0].get_xdata()) == 2


def test_history_errors():
    with pytest.raises(ValueError, match="history is empty: there is no epoch to plot"):
        plot_training_history([])
    with pytest.raises(TypeError, match="history must be a list of per-epoch dicts"):
        plot_training_history([1.0, 2.0])
    with pytest.raises(TypeError, match="got dict"):
        plot_training_history({"loss": [1.0]})
    msg = "'acc' is not in the history; available keys: ['loss']"
    with pytest.raises(ValueError, match=re.escape(msg)):
        plot_training_history([{"epoch": 1, "loss": 1.0}], keys=["acc"])
    with pytest.raises(ValueError, match="history has no numeric values to plot"):
        plot_training_history([{"epoch": 1, "seconds": 2.0}])
