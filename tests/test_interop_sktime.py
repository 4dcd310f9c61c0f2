"""TAPPairwiseTransformerPanel: sktap's distance as an sktime panel transformer."""

import traceback

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

pytest.importorskip("sktime")

from sktime.classification.distance_based import (
    KNeighborsTimeSeriesClassifier,
)
from sktime.utils.estimator_checks import check_estimator

import sktap
from sktap import TAPKNeighborsClassifier, TAPMetricLearner
from sktap.interop import (
    TAPPairwiseTransformerPanel,
    _sktime,
)
from sktap.interop._common import learned_distances

from .conftest import TINY_LEARNER, random_sequences, requires_cuda

FORMS = [False, True, "divergence"]
N_CHANNELS = 3


# -- data in sktime's mtypes ------------------------------------------------
def as_df_list(seqs):
    """df-list: one (L_i, n_channels) DataFrame per series."""
    return [pd.DataFrame(s) for s in seqs]


def as_multiindex(seqs):
    """pd-multiindex: one row per (series, time point)."""
    return pd.concat(
        as_df_list(seqs), keys=range(len(seqs)), names=["instance", "time"]
    )


def as_numpy3d(seqs):
    """numpy3D: (n, n_channels, n_timepoints), channels first."""
    return np.stack([s.T for s in seqs])


MTYPES = {"df-list": as_df_list, "pd-multiindex": as_multiindex}


@pytest.fixture(scope="module")
def panels():
    """Multivariate series of unequal length: train (with labels) and queries."""
    rng = np.random.default_rng(0)
    train = random_sequences(rng, 12, N_CHANNELS, low=8, high=30)
    queries = random_sequences(rng, 8, N_CHANNELS, low=8, high=30)
    return train, np.arange(12) % 3, queries


@pytest.fixture(scope="module")
def equal_panels():
    """Equal-length series, as numpy3D holds them; 12 time steps, 3 channels,
    so reading channels first data as time first cannot go unseen."""
    rng = np.random.default_rng(1)
    return [rng.normal(size=(12, N_CHANNELS)) for _ in range(7)], [
        rng.normal(size=(12, N_CHANNELS)) for _ in range(5)
    ]


@pytest.fixture(scope="module")
def learner(panels):
    train, y, _ = panels
    return TAPMetricLearner(**TINY_LEARNER).fit(train, y)


def model_state(learner):
    return {k: v.clone() for k, v in learner.model_.state_dict().items()}


def assert_same_state(learner, state):
    now = learner.model_.state_dict()
    assert now.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(now[key], value), key


# -- sktime's estimator checks ----------------------------------------------
@pytest.mark.slow
def test_check_estimator():
    # about 12 s: sktime's whole suite on the three parameter-free sets
    check_estimator(TAPPairwiseTransformerPanel, raise_exceptions=True)


# sktime's shared scenarios hold 2-channel panels (these two) and 5-channel
# ones; a fitted learner accepts only its own channel count
TWO_CHANNEL_SCENARIOS = ("PanelTransformSymm", "PanelTransformAsymm")


@pytest.mark.slow
def test_check_estimator_with_fitted_learner():
    # a plain fitted learner: the suite clones every instance it checks, so
    # this also shows that clone keeps the learner fitted
    rng = np.random.default_rng(2)
    seqs = random_sequences(rng, 9, 5, low=3, high=8)
    fitted = TAPMetricLearner(**TINY_LEARNER).fit(seqs, np.arange(9) % 3)
    results = check_estimator(
        TAPPairwiseTransformerPanel(metric_learner=fitted, symmetric=True),
        raise_exceptions=False,
        # joblib.hash of a torch tensor includes its memory address, so a
        # learner never hashes equal to its deepcopy, mutated or not
        tests_to_exclude=["test_fit_does_not_overwrite_hyper_params"],
        verbose=False,
    )
    on_learner = [k for k in results if "Listdf" in k or "PanelTransformNumpy" in k]
    assert len(on_learner) > 10
    assert all(results[k] == "PASSED" for k in on_learner)
    for key, outcome in results.items():
        if outcome == "PASSED":
            continue
        assert any(s in key for s in TWO_CHANNEL_SCENARIOS), (key, outcome)
        assert str(outcome) == "X has 2 channels but metric_learner was fitted on 5"


# -- the contract: the learned distance, in one batched call ------------------
@pytest.mark.parametrize("symmetric", FORMS)
@pytest.mark.parametrize("mtype", list(MTYPES))
@pytest.mark.parametrize("use_learner", [True, False], ids=["learner", "tap"])
def test_transform_equals_learned_distances_unequal_length(
    panels, learner, mtype, symmetric, use_learner
):
    train, _, queries = panels
    metric_learner = learner if use_learner else None
    dist = TAPPairwiseTransformerPanel(
        metric_learner=metric_learner, symmetric=symmetric, device="cpu"
    )
    X, X2 = MTYPES[mtype](queries), MTYPES[mtype](train)
    got = dist.transform(X, X2)
    want = learned_distances(
        metric_learner, queries, train, symmetric=symmetric, device="cpu"
    )
    assert got.shape == (8, 12) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("symmetric", FORMS)
def test_transform_without_x2_is_x_to_x(panels, learner, symmetric):
    _, _, queries = panels
    dist = TAPPairwiseTransformerPanel(metric_learner=learner, symmetric=symmetric)
    want = learner.pairwise_distances(queries, symmetric=symmetric)
    got = dist.transform(as_multiindex(queries))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("symmetric", FORMS)
def test_transform_equals_pairwise_distances_numpy3d(equal_panels, learner, symmetric):
    X, X2 = equal_panels
    dist = TAPPairwiseTransformerPanel(metric_learner=learner, symmetric=symmetric)
    got = dist.transform(as_numpy3d(X), as_numpy3d(X2))
    want = learner.pairwise_distances(X, X2, symmetric=symmetric)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)


def test_numpy3d_and_df_list_agree_whatever_sktaps_layout(equal_panels):
    # the conversion is explicit: sktap's global layout setting changes nothing
    X, X2 = equal_panels
    dist = TAPPairwiseTransformerPanel(device="cpu")
    want = learned_distances(None, X, X2, device="cpu")
    for layout in ("channels_first", "time_first", "auto"):
        with sktap.config_context(layout=layout):
            np.testing.assert_allclose(
                dist.transform(as_numpy3d(X), as_numpy3d(X2)), want, rtol=1e-5
            )
            np.testing.assert_allclose(
                dist.transform(as_df_list(X), as_df_list(X2)), want, rtol=1e-5
            )


def test_whole_matrix_is_one_call(panels, learner, monkeypatch):
    train, _, queries = panels
    calls = []

    def counting(*args, **kwargs):
        calls.append(args)
        return learned_distances(*args, **kwargs)

    monkeypatch.setattr(_sktime, "learned_distances", counting)
    dist = TAPPairwiseTransformerPanel(metric_learner=learner)
    assert dist.transform(as_multiindex(queries), as_multiindex(train)).shape == (
        8,
        12,
    )
    assert len(calls) == 1
    _, Xs, Ys = calls[0]
    assert len(Xs) == 8 and len(Ys) == 12


# -- inside sktime's kNN ---------------------------------------------------
@pytest.mark.parametrize("symmetric", [False, True])
def test_sktime_knn_predicts_as_tap_knn(panels, learner, symmetric):
    train, y, queries = panels
    state = model_state(learner)
    dist = TAPPairwiseTransformerPanel(metric_learner=learner, symmetric=symmetric)
    knn = KNeighborsTimeSeriesClassifier(distance=dist, n_neighbors=1)
    got = knn.fit(as_multiindex(train), y).predict(as_multiindex(queries))
    want = (
        TAPKNeighborsClassifier(
            n_neighbors=1,
            metric_learner=learner,
            refit_metric=False,
            symmetric=symmetric,
        )
        .fit(train, y)
        .predict(queries)
    )
    assert len(set(want)) > 1  # not a constant answer that anything would match
    np.testing.assert_array_equal(got, want)
    # the learner was used as given: not cloned, refitted or modified
    assert knn.distance.metric_learner is learner
    assert_same_state(learner, state)


def test_sktime_clone_of_knn_needs_frozen_learner(panels, learner):
    train, y, queries = panels
    X, Xq = as_multiindex(train), as_multiindex(queries)

    def knn(metric_learner):
        dist = TAPPairwiseTransformerPanel(metric_learner=metric_learner)
        return KNeighborsTimeSeriesClassifier(distance=dist, n_neighbors=1)

    want = knn(learner).fit(X, y).predict(Xq)
    # sktime clones the learner inside by scikit-learn's rule: unfitted, and
    # transform says so instead of computing anything
    with pytest.raises(NotFittedError, match=r"FrozenEstimator\(learner\)"):
        knn(learner).clone().fit(X, y).predict(Xq)
    # scikit-learn's clone of the kNN asks the transformer, which keeps it
    np.testing.assert_array_equal(clone(knn(learner)).fit(X, y).predict(Xq), want)
    frozen = knn(FrozenEstimator(learner))
    for cloned in (frozen.clone(), clone(frozen)):
        np.testing.assert_array_equal(cloned.fit(X, y).predict(Xq), want)


# -- clone, reset, tags ---------------------------------------------------
@pytest.mark.parametrize("how", ["sktime", "sklearn"])
def test_clone_keeps_fitted_learner(equal_panels, learner, how):
    X, _ = equal_panels
    for metric_learner in (learner, FrozenEstimator(learner)):
        dist = TAPPairwiseTransformerPanel(metric_learner=metric_learner)
        cloned = dist.clone() if how == "sktime" else clone(dist)
        assert cloned is not dist
        assert cloned.metric_learner is metric_learner
        np.testing.assert_array_equal(
            cloned.transform(as_numpy3d(X)), dist.transform(as_numpy3d(X))
        )


def test_clone_of_unfitted_learner_follows_sklearn():
    unfitted = TAPMetricLearner(**TINY_LEARNER)
    cloned = TAPPairwiseTransformerPanel(metric_learner=unfitted).clone()
    assert cloned.metric_learner is not unfitted
    assert cloned.metric_learner.get_params() == unfitted.get_params()


def test_reset_and_set_params_keep_learner_and_update_tag(learner):
    dist = TAPPairwiseTransformerPanel(metric_learner=learner)
    assert dist.reset().metric_learner is learner
    dist.set_params(symmetric="divergence")
    assert dist.metric_learner is learner
    assert dist.get_tag("symmetric") is True


@pytest.mark.parametrize(
    "symmetric, tag", [(False, False), (True, True), ("divergence", True)]
)
def test_tags(symmetric, tag):
    dist = TAPPairwiseTransformerPanel(symmetric=symmetric)
    assert dist.get_tag("symmetric") is tag
    assert dist.get_tag("pwtrafo_type") == "distance"
    assert dist.get_tag("X_inner_mtype") == ["df-list", "numpy3D"]
    assert dist.get_tag("capability:multivariate") is True
    assert dist.get_tag("capability:unequal_length") is True
    assert dist.get_tag("capability:missing_values") is False


# -- errors ---------------------------------------------------------------
def _no_torch_frames(excinfo):
    return all(
        "torch" not in frame.filename for frame in traceback.extract_tb(excinfo.tb)
    )


@pytest.mark.parametrize(
    "params, error, message",
    [
        (
            {"symmetric": "yes"},
            ValueError,
            "symmetric must be False, True or 'divergence'; got 'yes'",
        ),
        (
            {"symmetric": 1},
            ValueError,
            "symmetric must be False, True or 'divergence'; got 1",
        ),
        (
            {"metric_learner": "tap"},
            TypeError,
            "metric_learner must be None (parameter-free TAP) or a fitted sktap "
            "metric learner such as sktap.TAPMetricLearner; got str",
        ),
        (
            {"metric_learner": FrozenEstimator(LogisticRegression())},
            TypeError,
            "metric_learner must wrap an sktap metric learner; got a "
            "FrozenEstimator of LogisticRegression",
        ),
        (
            {"metric_learner": TAPMetricLearner()},
            NotFittedError,
            "metric_learner (TAPMetricLearner) is not fitted: fit it before "
            "transform. If a fitted one was passed, this is a clone that unfitted "
            "it (sktime clones the learner inside composite estimators and "
            "tuners); pass metric_learner=FrozenEstimator(learner) from "
            "sklearn.frozen, which clones keep",
        ),
        (
            {"device": "tpu"},
            ValueError,
            "device='tpu' is not a valid torch device; use 'auto', 'cpu' or 'cuda'",
        ),
        (
            {"device": 3},
            TypeError,
            "device must be 'auto', a string such as 'cpu' or 'cuda:0', or a "
            "torch.device; got int",
        ),
        (
            {"working_memory": 0},
            ValueError,
            "working_memory must be a positive number of MiB; got 0",
        ),
        (
            {"n_jobs": 0},
            ValueError,
            "n_jobs must be None or a non-zero integer; got 0",
        ),
    ],
)
def test_bad_parameters(equal_panels, params, error, message):
    X = as_numpy3d(equal_panels[0])
    dist = TAPPairwiseTransformerPanel(**params)  # __init__ only stores them
    with pytest.raises(error) as excinfo:
        dist.transform(X)
    assert str(excinfo.value) == message
    assert _no_torch_frames(excinfo)


def test_bad_device_is_refused_with_a_learner_too(equal_panels, learner):
    # the learner computes on its own device, but a typo must not pass
    dist = TAPPairwiseTransformerPanel(metric_learner=learner, device="tpu")
    with pytest.raises(ValueError) as excinfo:
        dist.transform(as_numpy3d(equal_panels[0]))
    assert str(excinfo.value) == (
        "device='tpu' is not a valid torch device; use 'auto', 'cpu' or 'cuda'"
    )


def test_bad_data(equal_panels, learner):
    X, X2 = equal_panels
    nan_padded = as_df_list(X)
    nan_padded[1].iloc[-1] = np.nan
    nan_numpy = as_numpy3d(X)
    nan_numpy[0, 0, 3] = np.nan
    cases = [
        (
            lambda: TAPPairwiseTransformerPanel().transform(
                as_numpy3d(X), as_numpy3d(X2)[:, :2]
            ),
            "X and X2 must have the same channels; X has 3, X2 has 2",
        ),
        (
            lambda: TAPPairwiseTransformerPanel(metric_learner=learner).transform(
                as_df_list([s[:, :2] for s in X])
            ),
            "X has 2 channels but metric_learner was fitted on 3",
        ),
    ]
    nan_message = (
        "{} has missing values (NaN), which TAPPairwiseTransformerPanel does not "
        "support; pass series of unequal length in an unequal-length mtype such "
        "as 'df-list' or 'pd-multiindex' rather than NaN-padded"
    )
    cases += [
        (
            lambda: TAPPairwiseTransformerPanel().transform(nan_padded),
            nan_message.format("X"),
        ),
        (
            lambda: TAPPairwiseTransformerPanel().transform(as_numpy3d(X), nan_numpy),
            nan_message.format("X2"),
        ),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as excinfo:
            call()
        assert str(excinfo.value) == message
        assert _no_torch_frames(excinfo)


# -- GPU ------------------------------------------------------------------
@requires_cuda
@pytest.mark.parametrize("symmetric", FORMS)
def test_cuda_matches_cpu(panels, symmetric):
    train, _, queries = panels
    X, X2 = as_df_list(queries), as_df_list(train)
    on_cpu = TAPPairwiseTransformerPanel(symmetric=symmetric, device="cpu")
    on_gpu = TAPPairwiseTransformerPanel(symmetric=symmetric, device="cuda")
    np.testing.assert_allclose(
        on_gpu.transform(X, X2), on_cpu.transform(X, X2), rtol=1e-4, atol=1e-6
    )
