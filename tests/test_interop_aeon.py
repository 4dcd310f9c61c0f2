"""sktap.interop.aeon_distance: the learned distance as aeon's ``distance=``."""

import copy
import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
import torch

pytest.importorskip("aeon")

from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from aeon.clustering import TimeSeriesKMedoids
from aeon.datasets import load_basic_motions
from aeon.distances import pairwise_distance
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator

import sktap
from sktap.datasets import make_warped_sequences
from sktap.interop import aeon_distance
from sktap.interop._aeon import _Rows
from sktap.interop._common import learned_distances

from .conftest import TINY_LEARNER

# the divergence subtracts float32 distances of about 0.5: its absolute
# error is theirs (~1e-7), not a fraction of its own, sometimes small, value
DIVERGENCE_ATOL = 1e-6


def _aeon_list(X):
    """tslearn-format (n, sz, d) with NaN padding -> aeon's list of (d, L_i)."""
    return [s[~np.isnan(s).all(axis=1)].T.copy() for s in X]


def _time_first(series):
    return [s.T for s in series]


@pytest.fixture(scope="module")
def data():
    """Multivariate (3 channels), unequal lengths (8 to 30), aeon's layout."""
    X, y = make_warped_sequences(
        3, 8, length_range=(8, 30), n_features=3, random_state=0
    )
    series = _aeon_list(X)
    return series[:14], y[:14], series[14:], y[14:]


@pytest.fixture(scope="module")
def learner(data):
    train, y_train, _, _ = data
    return sktap.TAPMetricLearner(**TINY_LEARNER).fit(_time_first(train), y_train)


def _atol(symmetric):
    return DIVERGENCE_ATOL if symmetric == "divergence" else 0


# -- 1. the contract: aeon's matrices are learned_distances' ------------------


@pytest.mark.parametrize("use_learner", [True, False])
@pytest.mark.parametrize("symmetric", [False, True, "divergence"])
def test_pairwise_x_vs_y_equals_learned_distances(
    data, learner, use_learner, symmetric
):
    X, _, Y, _ = data
    metric_learner = learner if use_learner else None
    dist = aeon_distance(metric_learner, symmetric=symmetric, device="cpu")
    got = pairwise_distance(X, Y, method=dist)
    expected = learned_distances(
        metric_learner,
        _time_first(X),
        _time_first(Y),
        symmetric=symmetric,
        device="cpu",
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=_atol(symmetric))


def test_one_set_divergence_equals_sktap_matrix(data, learner):
    X = data[0]
    dist = aeon_distance(learner, symmetric="divergence")
    got = pairwise_distance(X, method=dist)
    expected = learner.pairwise_distances(_time_first(X), symmetric="divergence")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=DIVERGENCE_ATOL)
    # what TimeSeriesKMedoids asks for its diagonal, exactly
    assert [dist(x, x) for x in X] == [0.0] * len(X)
    # X against itself as two sets: x meets itself inside batched rows
    assert (pairwise_distance(X, X, method=dist).diagonal() == 0).all()


def test_one_set_symmetric_true_has_aeon_zero_diagonal(data, learner):
    X = data[0]
    dist = aeon_distance(learner, symmetric=True)
    got = pairwise_distance(X, method=dist)
    expected = learner.pairwise_distances(_time_first(X), symmetric=True)
    off = ~np.eye(len(X), dtype=bool)
    np.testing.assert_allclose(got[off], expected[off], rtol=1e-5)
    # aeon leaves 0 on the diagonal; TAP's self-distance is positive, and
    # that is what a direct call (TimeSeriesKMedoids' diagonal) gives
    assert (got.diagonal() == 0).all() and (expected.diagonal() > 0).all()
    np.testing.assert_allclose([dist(x, x) for x in X], expected.diagonal(), rtol=1e-5)


def test_one_set_mirrors_the_asymmetric_distance(data, learner):
    """Why symmetric=False is wrong for one-set matrices: aeon mirrors i < j."""
    X = data[0]
    got = pairwise_distance(X, method=aeon_distance(learner, symmetric=False))
    expected = learner.pairwise_distances(_time_first(X))
    upper = np.triu(np.ones_like(got, dtype=bool), k=1)
    np.testing.assert_allclose(got[upper], expected[upper], rtol=1e-5)
    np.testing.assert_allclose(got.T[upper], expected[upper], rtol=1e-5)
    assert not np.allclose(got.T[upper], expected.T[upper], rtol=1e-3)


def test_univariate_1d_and_2d_series_agree():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=12), rng.normal(size=9)
    dist = aeon_distance(symmetric=False, device="cpu")
    expected = learned_distances(None, [x], [y], device="cpu")[0, 0]
    assert dist(x, y) == pytest.approx(expected, rel=1e-5)
    assert dist(x[None], y[None]) == pytest.approx(expected, rel=1e-5)


def test_reads_aeon_layout_whatever_the_sktap_setting():
    # 4 channels, 3 steps: time first, sktap's "auto" would warn and read
    # 3 channels of 4 steps
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 5))
    with sktap.config_context(layout="time_first"):
        expected = learned_distances(None, [x.T], [y.T], device="cpu")[0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for layout in ("auto", "time_first", "channels_first"):
            dist = aeon_distance(symmetric=False, device="cpu")  # cache empty
            with sktap.config_context(layout=layout):
                assert dist(x, y) == pytest.approx(expected, rel=1e-5)


def test_threads_share_the_callable(data, learner):
    # aeon's n_jobs > 1 needs numba threads, which tests/conftest.py pins to
    # one: call from joblib's threads directly, rows interleaved
    X, _, Y, _ = data
    dist = aeon_distance(learner, symmetric=True)
    values = joblib.Parallel(n_jobs=2, backend="threading")(
        joblib.delayed(dist)(x, y) for x in X for y in Y
    )
    expected = learned_distances(
        learner, _time_first(X), _time_first(Y), symmetric=True
    )
    np.testing.assert_allclose(np.reshape(values, expected.shape), expected, rtol=1e-5)


def test_rows_ignore_a_source_another_thread_left():
    rows = _Rows()
    assert rows.lookup("a", "y") is None  # thread 1 starts a's row
    assert rows.lookup("b", "y") is None  # thread 2 moves on to b
    rows.store("a", {"y": 1.0})  # thread 1 finishes a's row late
    assert rows.lookup("b", "y") is None
    rows.store("b", {"y": 2.0})
    assert rows.lookup("b", "y") == 2.0
    assert rows.expected_after("y") == []  # a asked for y, nothing after


# -- 2. aeon's k-NN ranks as sktap's -------------------------------------------


@pytest.mark.parametrize("symmetric", [False, True])
def test_knn_equals_tap_kneighbors_classifier(data, learner, symmetric):
    train, y_train, test, _ = data
    knn = KNeighborsTimeSeriesClassifier(
        distance=aeon_distance(learner, symmetric=symmetric), n_neighbors=1
    ).fit(train, y_train)
    ours = sktap.TAPKNeighborsClassifier(
        n_neighbors=1, metric_learner=learner, refit_metric=False, symmetric=symmetric
    )
    with sktap.config_context(layout="channels_first"):
        ours.fit(train, y_train)
        expected = ours.predict(test)
        dist, ind = ours.kneighbors(test, n_neighbors=3)
    np.testing.assert_array_equal(knn.predict(test), expected)
    aeon_dist, aeon_ind = knn.kneighbors(test, n_neighbors=3)
    np.testing.assert_array_equal(aeon_ind, ind)
    np.testing.assert_allclose(aeon_dist, dist, rtol=1e-5)


# -- 3. aeon's k-medoids clusters on sktap's divergence matrix ------------------


def test_kmedoids_uses_sktap_divergence_matrix(learner):
    X, _ = make_warped_sequences(
        3, 5, length_range=(20, 20), n_features=3, random_state=1
    )
    X = np.ascontiguousarray(X.transpose(0, 2, 1))  # aeon's (n, C, L)
    D = learner.pairwise_distances(X.transpose(0, 2, 1), symmetric="divergence")
    index = {x.tobytes(): i for i, x in enumerate(X)}
    dist = aeon_distance(learner, symmetric="divergence")
    seen = []

    def recorded(x, y):
        i, j = index[x.tobytes()], index[y.tobytes()]  # aeon passes series as they are
        d = dist(x, y)
        seen.append((i, j, d))
        return d

    def precomputed(x, y):
        return float(D[index[x.tobytes()], index[y.tobytes()]])

    params = dict(n_clusters=3, method="pam", n_init=2, random_state=0)
    km = TimeSeriesKMedoids(distance=recorded, **params).fit(X)
    ref = TimeSeriesKMedoids(distance=precomputed, **params).fit(X)
    rows, cols, values = map(np.array, zip(*seen))
    np.testing.assert_allclose(values, D[rows, cols], rtol=1e-5, atol=DIVERGENCE_ATOL)
    assert (rows == cols).any()  # the diagonal was asked, and was 0
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)


# -- 4. data from aeon's loader: the layout setting, never silent ---------------


def test_aeon_loader_array_under_channels_first():
    X, y = load_basic_motions(split="train")  # (40, 6, 100)
    X_test, _ = load_basic_motions(split="test")
    X, y, X_test = X[::4], y[::4], X_test[::8]  # 10 and 5 series
    params = dict(n_neighbors=1, device="cpu")
    with sktap.config_context(layout="channels_first"):
        got = sktap.TAPKNeighborsClassifier(**params).fit(X, y).predict(X_test)
    expected = (
        sktap.TAPKNeighborsClassifier(**params)
        .fit(X.transpose(0, 2, 1), y)
        .predict(X_test.transpose(0, 2, 1))
    )
    np.testing.assert_array_equal(got, expected)
    knn = KNeighborsTimeSeriesClassifier(
        distance=aeon_distance(symmetric=False, device="cpu")
    )
    np.testing.assert_array_equal(knn.fit(X, y).predict(X_test), expected)
    with pytest.warns(sktap.LayoutWarning, match="channels-first data"):
        sktap.TAPKNeighborsClassifier(**params).fit(X, y)


# -- 5. errors, inputs left alone, pickling ------------------------------------


def test_bad_arguments():
    with pytest.raises(
        ValueError,
        match=re.escape("symmetric must be False, True or 'divergence'; got 'yes'"),
    ):
        aeon_distance(symmetric="yes")
    with pytest.raises(
        TypeError,
        match=re.escape(
            "metric_learner must be None (parameter-free TAP) or a fitted sktap "
            "metric learner such as sktap.TAPMetricLearner; got str"
        ),
    ):
        aeon_distance("dtw")
    with pytest.raises(
        NotFittedError, match="This TAPMetricLearner instance is not fitted yet"
    ):
        aeon_distance(sktap.TAPMetricLearner())
    with pytest.raises(
        ValueError,
        match=re.escape(
            "device='tpu' is not a valid torch device; use 'auto', 'cpu' or 'cuda'"
        ),
    ):
        aeon_distance(device="tpu")


def test_bad_series(learner):
    dist = aeon_distance(learner)
    x = np.zeros((3, 10))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "x must be one series of shape (n_channels, n_timepoints) or "
            "(n_timepoints,), as aeon passes it; got an array of shape (1, 3, 10)"
        ),
    ):
        dist(x[None], x)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "x has 3 channels and y has 2; both series must have the same number "
            "of channels"
        ),
    ):
        aeon_distance()(x, x[:2])
    with pytest.raises(
        ValueError,
        match=re.escape("y has 2 channels, but the metric learner was fitted on 3"),
    ):
        dist(x, x[:2])
    with pytest.raises(
        TypeError, match=re.escape("y must hold real numbers; got dtype <U1")
    ):
        dist(x, np.full((3, 10), "a"))
    bad = x.copy()
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dist(x, bad)


def test_inputs_are_not_modified(data, learner):
    X, _, Y, _ = data
    copies = [s.copy() for s in X + Y]
    for symmetric in (False, "divergence"):
        pairwise_distance(X, Y, method=aeon_distance(learner, symmetric=symmetric))
    for s, c in zip(X + Y, copies):
        np.testing.assert_array_equal(s, c)


def test_pickle_round_trip(data, learner):
    X, _, Y, _ = data
    dist = aeon_distance(learner, symmetric="divergence")
    before = pairwise_distance(X, Y, method=dist)  # fills the caches
    clone = pickle.loads(pickle.dumps(dist))
    assert repr(clone) == repr(dist)
    assert repr(dist).startswith("AeonTAPDistance(metric_learner=TAPMetricLearner(")
    np.testing.assert_allclose(pairwise_distance(X, Y, method=clone), before, rtol=1e-5)


def test_keeps_a_private_copy_of_the_learner(data, learner):
    X, _, Y, _ = data
    own = copy.deepcopy(learner)
    dist = aeon_distance(own, symmetric=False)
    before = dist(X[0], Y[0])
    with torch.no_grad():  # an in-place refit, as warm_start does
        for p in own.model_.parameters():
            p.add_(0.5)
    assert aeon_distance(own, symmetric=False)(X[0], Y[0]) != pytest.approx(
        before, rel=1e-3
    )
    assert dist(X[0], Y[0]) == before
    expected = learned_distances(learner, [X[1].T], [Y[1].T])[0, 0]
    assert dist(X[1], Y[1]) == pytest.approx(expected, rel=1e-5)
    frozen = aeon_distance(FrozenEstimator(learner), symmetric=False)
    assert frozen(X[1], Y[1]) == pytest.approx(expected, rel=1e-5)
