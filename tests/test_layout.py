"""The layout setting: channels-first data by one explicit route, never silently."""

import threading
import warnings

import numpy as np
import pytest

import sktap
from sktap import LayoutWarning, TAPKNeighborsClassifier, TAPMetricLearner
from sktap.baselines import SoftDTWMetricLearner
from sktap.datasets import make_warped_sequences
from sktap.metrics import cdist_tap, tap_alignment

from .conftest import TINY_LEARNER, random_sequences


def _channels_first(seqs):
    return [s.T for s in seqs]


def test_default_is_auto_and_bad_layout_is_refused():
    assert sktap.get_config() == {
        "layout": "auto",
        "training_path": "auto",
        "shape_rounding": True,
    }
    with pytest.raises(ValueError, match="layout must be one of 'auto', 'time_first'"):
        sktap.set_config(layout="channels_last")
    with pytest.raises(ValueError, match="got 'tslearn'"):
        with sktap.config_context(layout="tslearn"):
            pass  # pragma: no cover
    assert sktap.get_config()["layout"] == "auto"


def test_training_path_setting():
    with pytest.raises(
        ValueError, match="training_path must be one of 'auto', 'mined'"
    ):
        sktap.set_config(training_path="fast")
    # a bad value changes nothing, not even the good value passed with it
    with pytest.raises(ValueError, match="got 'fast'"):
        sktap.set_config(layout="time_first", training_path="fast")
    assert sktap.get_config() == {
        "layout": "auto",
        "training_path": "auto",
        "shape_rounding": True,
    }
    with sktap.config_context(training_path="all_pairs"):
        assert sktap.get_config()["training_path"] == "all_pairs"
    assert sktap.get_config()["training_path"] == "auto"


def test_training_path_reaches_the_training_step(monkeypatch):
    from sktap.metric_learning import _trained

    seen = []

    def spy(*args, path, **kwargs):
        seen.append(path)
        return real(*args, path=path, **kwargs)

    real = _trained.make_train_step
    monkeypatch.setattr(_trained, "make_train_step", spy)
    rng = np.random.RandomState(0)
    X, y = [rng.randn(6, 2) for _ in range(4)], [0, 1, 0, 1]
    kw = dict(hidden_layer_sizes=(4,), tap_channels=(2,), max_epochs=1, device="cpu")
    sktap.TAPMetricLearner(**kw).fit(X, y)
    with sktap.config_context(training_path="all_pairs"):
        sktap.TAPMetricLearner(**kw).fit(X, y)
        SoftDTWMetricLearner(hidden_layer_sizes=(4,), max_epochs=1, device="cpu").fit(
            X, y
        )
    with sktap.config_context(training_path="mined"):
        # soft-DTW has no mined path, whatever the setting
        SoftDTWMetricLearner(hidden_layer_sizes=(4,), max_epochs=1, device="cpu").fit(
            X, y
        )
    assert seen == ["mined", "all_pairs", "all_pairs", "all_pairs"]


def test_context_restores_the_previous_layout_even_on_error():
    with sktap.config_context(layout="time_first"):
        with pytest.raises(RuntimeError):
            with sktap.config_context(layout="channels_first"):
                assert sktap.get_config()["layout"] == "channels_first"
                raise RuntimeError
        assert sktap.get_config()["layout"] == "time_first"
    assert sktap.get_config()["layout"] == "auto"


def test_layout_is_per_thread():
    seen = []
    with sktap.config_context(layout="channels_first"):
        thread = threading.Thread(
            target=lambda: seen.append(sktap.get_config()["layout"])
        )
        thread.start()
        thread.join()
    assert seen == ["auto"]


def test_channels_first_array_and_list_give_the_same_distances(rng):
    X = rng.normal(size=(5, 30, 3))  # time first
    expected = cdist_tap(X, device="cpu")
    with sktap.config_context(layout="channels_first"):
        np.testing.assert_array_equal(
            cdist_tap(X.transpose(0, 2, 1), device="cpu"), expected
        )
        np.testing.assert_array_equal(
            cdist_tap(list(X.transpose(0, 2, 1)), device="cpu"), expected
        )


def test_channels_first_unequal_lengths_and_caller_data_untouched(rng):
    seqs = random_sequences(rng, 6, 2, low=3, high=20)
    expected = cdist_tap(seqs, device="cpu")
    cf = _channels_first(seqs)
    before = [s.copy() for s in cf]
    with sktap.config_context(layout="channels_first"):
        got = cdist_tap(cf, device="cpu")
        T = tap_alignment(cf[0], cf[1])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert T.shape == (len(seqs[0]), len(seqs[1]))
    for a, b in zip(cf, before):
        np.testing.assert_array_equal(a, b)


def test_ambiguous_array_warns_and_explicit_layout_silences(rng):
    X = rng.normal(size=(8, 2, 100))  # aeon's shape: 8 cases, 2 channels
    with pytest.warns(LayoutWarning, match=r"shape \(8, 2, 100\) has 2 time steps"):
        cdist_tap(X, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with sktap.config_context(layout="time_first"):  # e.g. frame embeddings
            assert cdist_tap(X, device="cpu").shape == (8, 8)
        with sktap.config_context(layout="channels_first"):
            cdist_tap(X, device="cpu")
        cdist_tap(X.transpose(0, 2, 1), device="cpu")  # more steps: no warning


def test_ambiguous_list_warns(rng):
    with pytest.warns(LayoutWarning, match="every sequence has 1 time step"):
        cdist_tap([rng.normal(size=(1, 40)), rng.normal(size=(1, 40))], device="cpu")


def test_estimator_fit_on_aeon_shape_is_never_silent(rng):
    X = rng.normal(size=(8, 2, 100))
    y = np.repeat([0, 1], 4)
    with pytest.warns(LayoutWarning, match="channels_first"):
        clf = TAPKNeighborsClassifier(device="cpu").fit(X, y)
    assert clf.n_features_in_ == 100  # what "time first" means, said aloud
    with sktap.config_context(layout="channels_first"):
        clf = TAPKNeighborsClassifier(device="cpu").fit(X, y)
    assert clf.n_features_in_ == 2


def test_unequal_channels_first_list_without_the_setting_points_to_it(rng):
    cf = [rng.normal(size=(3, 40)), rng.normal(size=(3, 55))]
    with pytest.raises(ValueError, match=r"may be channels first .*layout='channels"):
        cdist_tap(cf, device="cpu")


def test_feature_mismatch_after_fit_points_to_the_layout(rng):
    X, y = rng.normal(size=(6, 40, 3)), np.repeat([0, 1], 3)
    clf = TAPKNeighborsClassifier(device="cpu").fit(X, y)
    queries = X[:2].transpose(0, 2, 1)  # (2, 3 channels, L steps)
    with pytest.raises(ValueError, match="it may be channels first"):
        with pytest.warns(LayoutWarning):
            clf.predict(queries)


def test_same_predictions_in_both_layouts():
    X, y = make_warped_sequences(n_classes=3, n_per_class=6, random_state=1)
    learner = TAPMetricLearner(**TINY_LEARNER)
    ref = TAPKNeighborsClassifier(metric_learner=learner, device="cpu").fit(X, y)
    expected = ref.predict(X)
    Xc = X.transpose(0, 2, 1)
    with sktap.config_context(layout="channels_first"):
        clf = TAPKNeighborsClassifier(metric_learner=learner, device="cpu")
        np.testing.assert_array_equal(clf.fit(Xc, y).predict(Xc), expected)


def test_outputs_follow_the_layout():
    X, y = make_warped_sequences(n_classes=2, n_per_class=3, random_state=0)
    learner = TAPMetricLearner(**TINY_LEARNER).fit(X, y)
    Z = learner.transform(X)  # (n, L', k)
    with sktap.config_context(layout="channels_first"):
        Xc, yc = make_warped_sequences(n_classes=2, n_per_class=3, random_state=0)
        Zc = learner.transform(Xc)
        # what sktap gives back reads back in the same layout
        np.testing.assert_array_equal(learner.transform(Xc), Zc)
    np.testing.assert_array_equal(Xc, X.transpose(0, 2, 1))
    np.testing.assert_array_equal(yc, y)
    np.testing.assert_array_equal(Zc, Z.transpose(0, 2, 1))


def test_augmentations_follow_the_layout(rng):
    from sktap.augment import random_blur, random_merge

    x = rng.normal(size=(30, 2))
    for augment in (random_blur, random_merge):
        x_aug, G = augment(x, rng=0)
        with sktap.config_context(layout="channels_first"):
            xc_aug, Gc = augment(x.T, rng=0)
        np.testing.assert_array_equal(Gc, G)
        np.testing.assert_array_equal(xc_aug, x_aug.T)
