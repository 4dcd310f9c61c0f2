"""TAPKNeighborsClassifier: exact and prefiltered search, streaming, sklearn use."""

import pickle
import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from tslearn.preprocessing import TimeSeriesScalerMeanVariance
from tslearn.utils import to_time_series_dataset

import sktap
from sktap import TAPKNeighborsClassifier, TAPMetricLearner
from sktap._engine import TAPKernel, _tiling, merge_topk, sorted_topk
from sktap.metrics import cdist_tap

from .conftest import TINY_LEARNER as SMALL
from .conftest import random_sequences

F32 = torch.float32


@pytest.fixture
def data():
    """24 training and 7 query sequences of 3 classes told apart by offset."""
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 13), 2) + 2 * (i % 3) for i in range(31)]
    y = np.array([i % 3 for i in range(31)])
    return X[:24], y[:24], X[24:], y[24:]


def _brute(D, k, exclude_self=False):
    D = D.astype(np.float64)
    if exclude_self:
        np.fill_diagonal(D, np.inf)
    ind = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, ind, axis=1), ind


@pytest.mark.parametrize("symmetric", [False, True])
def test_kneighbors_matches_brute_force(data, symmetric):
    X, y, Q, _ = data
    clf = TAPKNeighborsClassifier(
        4, symmetric=symmetric, working_memory=0.05, device="cpu"
    ).fit(X, y)
    dist, ind = clf.kneighbors(Q)
    ref_d, ref_i = _brute(cdist_tap(Q, X, symmetric=symmetric), 4)
    np.testing.assert_array_equal(ind, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-5)
    dist, ind = clf.kneighbors()  # each training sequence, itself left out
    ref_d, ref_i = _brute(cdist_tap(X, symmetric=symmetric), 4, exclude_self=True)
    np.testing.assert_array_equal(ind, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-5)
    np.testing.assert_array_equal(
        clf.kneighbors(Q, 2, return_distance=False), clf.kneighbors(Q)[1][:, :2]
    )


def test_learned_distance_matches_learner(data):
    X, y, Q, _ = data
    learner = TAPMetricLearner(**SMALL).fit(X, y)
    clf = TAPKNeighborsClassifier(
        3, metric_learner=learner, refit_metric=False, device="cpu"
    ).fit(X, y)
    assert clf.metric_learner_ is not learner  # a private copy, used as is
    ref_d, ref_i = _brute(learner.pairwise_distances(Q, X), 3)
    dist, ind = clf.kneighbors(Q)
    np.testing.assert_array_equal(ind, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-5)
    # refit_metric=True fits a clone with the same seed: the same distances
    refit = TAPKNeighborsClassifier(3, metric_learner=learner, device="cpu").fit(X, y)
    assert refit.metric_learner_ is not learner
    np.testing.assert_allclose(refit.kneighbors(Q)[0], dist, rtol=1e-5)


def test_predict_proba_string_labels_and_weights(data):
    X, y, Q, yq = data
    labels = np.array(["zeta", "alpha", "mid"])[y]
    clf = TAPKNeighborsClassifier(5, device="cpu").fit(X, labels)
    assert clf.classes_.tolist() == ["alpha", "mid", "zeta"]
    dist, ind = clf.kneighbors(Q)
    votes = np.stack([(labels[ind] == c).sum(axis=1) for c in clf.classes_], 1)
    np.testing.assert_allclose(clf.predict_proba(Q), votes / 5)
    assert clf.predict(Q).tolist() == np.array(["zeta", "alpha", "mid"])[yq].tolist()
    assert clf.score(Q, np.array(["zeta", "alpha", "mid"])[yq]) == 1.0
    weighted = clf.set_params(weights="distance")
    w = 1 / dist
    expected = np.stack([(w * (labels[ind] == c)).sum(1) for c in clf.classes_], 1)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(weighted.predict_proba(Q), expected, rtol=1e-6)


def test_distance_weights_zero_distance_takes_the_vote():
    clf = TAPKNeighborsClassifier(2, weights="distance", device="cpu")
    clf.fit([np.zeros(3), np.zeros(4)], ["a", "b"])
    # both neighbours at distance 0 from a constant query: an even split
    np.testing.assert_allclose(clf.predict_proba([np.zeros(5)]), [[0.5, 0.5]])


def _patch_every_binding(monkeypatch, function, replacement):
    """Replace ``function`` under its name in every sktap module that holds it.

    Modules bind it at import time (``from .._engine import run_tiles``), so
    patching only the module that defines it would miss their calls.
    """
    patched = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "sktap" or name.startswith("sktap.")):
            continue
        if vars(module).get(function.__name__) is function:
            monkeypatch.setattr(module, function.__name__, replacement)
            patched.append(name)
    return patched


def test_streaming_bounds_every_tile(data, monkeypatch):
    X, y, Q, _ = data
    budget = 0.01  # MiB
    cells = budget * 2**20 / TAPKernel(None, torch.device("cpu")).bytes_per_cell
    seen = []
    block = TAPKernel.block

    def recording_block(self, x, lx, yy, ly):
        seen.append((x.shape, yy.shape))
        return block(self, x, lx, yy, ly)

    def no_full_matrix(*args, **kwargs):
        raise AssertionError("the full query x train matrix was built")

    monkeypatch.setattr(TAPKernel, "block", recording_block)
    for full in (_tiling.run_tiles, _tiling.run_form):
        patched = _patch_every_binding(monkeypatch, full, no_full_matrix)
        assert {"sktap._engine._tiling", "sktap._engine"} <= set(patched)
    clf = TAPKNeighborsClassifier(3, working_memory=budget, device="cpu").fit(X, y)
    ind = clf.kneighbors(Q, return_distance=False)
    assert len(seen) > 1
    for (a, lx, _), (b, ly, _) in seen:
        assert a * lx * b * ly <= cells or a == b == 1
        assert b < len(X)
    monkeypatch.undo()
    np.testing.assert_array_equal(ind, _brute(cdist_tap(Q, X), 3)[1])


@pytest.mark.parametrize("n_candidates", [None, 30])
def test_ties_broken_by_training_index(n_candidates):
    # all-zero sequences: every TAP distance is exactly 0. Tiles take the
    # training set sorted by length, which runs against the index here, so
    # ties meet within tiles and across them
    X = [np.zeros(3 + (30 - i) // 3) for i in range(30)]
    clf = TAPKNeighborsClassifier(
        5, n_candidates=n_candidates, working_memory=0.01, device="cpu"
    ).fit(X, np.arange(30) % 2)
    dist, ind = clf.kneighbors([np.zeros(4), np.zeros(9)])
    np.testing.assert_array_equal(dist, 0)
    np.testing.assert_array_equal(ind, [[0, 1, 2, 3, 4]] * 2)
    ind = clf.kneighbors(return_distance=False)  # itself left out
    expected = [[j for j in range(6) if j != i][:5] for i in range(30)]
    np.testing.assert_array_equal(ind, expected)


def test_topk_matches_lexsort_across_tiles():
    rng = np.random.RandomState(0)
    for _ in range(200):
        r, n = rng.randint(1, 4), rng.randint(2, 40)
        k = rng.randint(1, n + 1)
        D = rng.randint(0, 3, (r, n)).astype(float)  # many ties
        best_d, best_i = np.full((r, k), np.inf), np.full((r, k), -1)
        cols = rng.permutation(n)
        for tile in np.array_split(cols, rng.randint(1, 6)):
            if len(tile):
                merge_topk(best_d, best_i, np.arange(r), tile, D[:, tile], k)
        dist, ind = sorted_topk(best_d, best_i, k)
        ref = np.argsort(D, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(ind, ref)
        np.testing.assert_array_equal(dist, np.take_along_axis(D, ref, 1))
        # candidates in any order, each row its own
        cand = np.stack([rng.permutation(n) for _ in range(r)])
        order = np.lexsort((cand, D), axis=1)[:, :k]
        _, ind = sorted_topk(D, cand, k)
        np.testing.assert_array_equal(ind, np.take_along_axis(cand, order, 1))


def test_queries_transformed_per_chunk(data, monkeypatch):
    X, y, _, _ = data
    # wide frames (64 floats) make a query chunk of a small budget hold few
    learner = TAPMetricLearner(**SMALL, n_components=64)
    clf = TAPKNeighborsClassifier(metric_learner=learner, device="cpu").fit(X, y)
    sizes = []
    encode = TAPMetricLearner.encode

    def recording(self, seqs, name="X"):
        sizes.append(len(seqs))
        return encode(self, seqs, name=name)

    monkeypatch.setattr(TAPMetricLearner, "encode", recording)
    full = clf.predict(X)
    assert sizes == [len(X)]
    sizes.clear()
    chunked = clf.set_params(working_memory=0.05).predict(X)
    assert len(sizes) > 1 and max(sizes) < len(X) and sum(sizes) == len(X)
    np.testing.assert_array_equal(chunked, full)


def test_candidates_cover_all_equals_exact(data):
    X, y, Q, _ = data
    exact = TAPKNeighborsClassifier(3, device="cpu").fit(X, y)
    approx = clone(exact).set_params(n_candidates=len(X), random_state=0).fit(X, y)
    for query in (Q, None):
        d_exact, i_exact = exact.kneighbors(query)
        d, i = approx.kneighbors(query)
        np.testing.assert_array_equal(i, i_exact)
        np.testing.assert_allclose(d, d_exact, rtol=1e-5)


def test_candidates_are_scored_with_tap_in_bounded_batches(data, monkeypatch):
    X, y, Q, _ = data
    budget = 0.02
    cells = budget * 2**20 / TAPKernel(None, torch.device("cpu")).bytes_per_cell
    clf = TAPKNeighborsClassifier(
        2, n_candidates=6, working_memory=budget, random_state=0, device="cpu"
    ).fit(X, y)
    batches = []
    paired = TAPKernel.paired

    def recording(self, x, lx, yy, ly):
        batches.append((x.shape[0], x.shape[0] * x.shape[1] * yy.shape[1]))
        return paired(self, x, lx, yy, ly)

    monkeypatch.setattr(TAPKernel, "paired", recording)
    dist, ind = clf.kneighbors(Q)
    # 6 candidates per query, scored pair by pair with TAP, under the bound
    assert sum(n for n, _ in batches) == 6 * len(Q)
    assert len(batches) > 2 and max(n for n, _ in batches) > 1
    assert all(n == 1 or size <= cells for n, size in batches)
    D = cdist_tap(Q, X)
    np.testing.assert_allclose(dist, np.take_along_axis(D, ind, 1), rtol=1e-5)
    # the candidates are the 6 of the ranker's shortlist (here every
    # reference: 10 x 6 > 24) with the lowest nearest-frame score
    w = clf.ranker_.position_weight_
    near = np.argsort([[_frame_score(q, x, w) for x in X] for q in Q], 1)[:, :6]
    assert all(set(i) <= set(n) for i, n in zip(ind, near))


def _frame_score(q, x, w):
    """mean over q's frames of min over x's of distance + w * position gap."""
    D = np.sqrt(((q[:, None] - x[None]) ** 2).sum(-1))
    P = np.abs(
        np.arange(1, len(q) + 1)[:, None] / len(q) - np.arange(1, len(x) + 1) / len(x)
    )
    return (D + w * P).min(1).mean()


def _padded(seqs):
    lengths = np.array([len(s) for s in seqs])
    data = np.zeros((len(seqs), lengths.max(), seqs[0].shape[1]))
    for row, s in zip(data, seqs):
        row[: len(s)] = s
    return data, lengths


def test_pair_batches_respect_the_bound():
    rng = np.random.RandomState(0)
    lx, ly = rng.randint(1, 30, 500), rng.randint(1, 30, 500)
    order = np.lexsort((ly, lx))
    lx, ly = lx[order], ly[order]
    batches = _tiling._pair_batches(lx, ly, cells=3000)
    assert batches[0][0] == 0 and batches[-1][1] == 500
    for (start, stop), (nxt, _) in zip(batches, [*batches[1:], (500, None)]):
        assert stop == nxt
        size = stop - start
        assert size == 1 or size * lx[start:stop].max() * ly[start:stop].max() <= 3000


@pytest.mark.slow
def test_pipeline_gridsearch_cross_val(data):
    X, y, Q, _ = data
    Xd = to_time_series_dataset(X)
    pipe = Pipeline(
        [
            ("scale", TimeSeriesScalerMeanVariance()),
            ("knn", TAPKNeighborsClassifier(device="cpu")),
        ]
    )
    assert pipe.fit(Xd, y).predict(to_time_series_dataset(Q)).shape == (7,)
    grid = GridSearchCV(
        TAPKNeighborsClassifier(metric_learner=TAPMetricLearner(**SMALL), device="cpu"),
        {"n_neighbors": [1, 3], "metric_learner__loss": ["triplet", "binomial"]},
        cv=2,
    ).fit(Xd, y)
    assert set(grid.best_params_) == {"n_neighbors", "metric_learner__loss"}
    assert (
        grid.best_estimator_.metric_learner_.loss
        == grid.best_params_["metric_learner__loss"]
    )
    scores = cross_val_score(
        TAPKNeighborsClassifier(device="cpu"), Xd, y, cv=3, n_jobs=2
    )
    assert scores.shape == (3,) and scores.min() > 0.5


def test_clone_pickle_save_load(data, tmp_path):
    X, y, Q, _ = data
    labels = np.array(["b", "a", "c"])[y]
    for clf in (
        TAPKNeighborsClassifier(3, n_candidates=5, device="cpu"),
        TAPKNeighborsClassifier(
            2,
            weights="distance",
            metric_learner=TAPMetricLearner(**SMALL),
            device="cpu",
        ),
    ):
        params = clf.get_params(deep=False)
        clf.fit(X, labels)
        assert clf.get_params(deep=False) == params  # never mutated
        proba = clf.predict_proba(Q)
        fresh = clone(clf)
        assert not hasattr(fresh, "classes_")
        again = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(again.predict_proba(Q), proba)
        path = tmp_path / "knn.sktap"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the learner parameter is kept, silently
            clf.save(path)
        loaded = sktap.load(path)
        assert isinstance(loaded, TAPKNeighborsClassifier)
        assert repr(loaded) == repr(clf)
        np.testing.assert_allclose(loaded.predict_proba(Q), proba, rtol=1e-6)
        assert loaded.predict(Q).tolist() == clf.predict(Q).tolist()


@pytest.mark.parametrize(
    ("kwargs", "fit_y", "match"),
    [
        ({"n_neighbors": 0}, "ok", "The 'n_neighbors' parameter"),
        ({"n_neighbors": -2}, "ok", "The 'n_neighbors' parameter"),
        (
            {"n_neighbors": 25},
            "ok",
            r"n_neighbors=25 is larger than the number of "
            r"training sequences \(24\)",
        ),
        ({"weights": "gaussian"}, "ok", "The 'weights' parameter"),
        (
            {"metric_learner": KNeighborsClassifier()},
            "ok",
            "The 'metric_learner' parameter",
        ),
        ({"metric_learner": "prefit"}, "ok", "The 'metric_learner' parameter"),
        ({"n_candidates": 0}, "ok", "The 'n_candidates' parameter"),
        ({"working_memory": -1}, "ok", "The 'working_memory' parameter"),
        ({"device": "tpu"}, "ok", "not a valid torch device"),
        ({}, "short", "24 sequences but 5 labels"),
        ({}, None, "requires y to be passed"),
        ({}, "float", "Unknown label type"),
    ],
)
def test_bad_input(data, kwargs, fit_y, match):
    X, y, _, _ = data
    labels = {"ok": y, "short": y[:5], None: None, "float": y + 0.5}[fit_y]
    with pytest.raises(ValueError, match=match):
        TAPKNeighborsClassifier(**kwargs).fit(X, labels)


def test_bad_input_after_fit(data):
    X, y, Q, _ = data
    clf = TAPKNeighborsClassifier(device="cpu")
    with pytest.raises(NotFittedError):
        clf.predict(Q)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="has 3 features per time step, but 2"):
        clf.predict([np.ones((4, 3))])
    with pytest.raises(ValueError, match="n_neighbors must be a positive integer"):
        clf.kneighbors(Q, n_neighbors=0)
    with pytest.raises(ValueError, match=r"larger than the number of reference"):
        clf.kneighbors(Q, n_neighbors=25)
    with pytest.raises(ValueError, match=r"number of other reference sequences \(23\)"):
        clf.kneighbors(n_neighbors=24)
    with pytest.raises(ValueError, match="fit again to train the ranker"):
        clf.set_params(n_candidates=3).predict(Q)


def test_unfitted_learner_with_refit_false(data):
    X, y, _, _ = data
    clf = TAPKNeighborsClassifier(
        metric_learner=TAPMetricLearner(**SMALL), refit_metric=False
    )
    with pytest.raises(NotFittedError, match="must be fitted when refit_metric=False"):
        clf.fit(X, y)


def test_random_sequences_brute_force(rng):
    X = random_sequences(rng, 15, 3, 1, 20)
    Q = random_sequences(rng, 4, 3, 1, 20)
    y = np.arange(15) % 2
    clf = TAPKNeighborsClassifier(5, working_memory=0.02, device="cpu").fit(X, y)
    np.testing.assert_array_equal(
        clf.kneighbors(Q, return_distance=False), _brute(cdist_tap(Q, X), 5)[1]
    )


@pytest.mark.slow
def test_dask_backend_gives_same_results(data):
    distributed = pytest.importorskip("distributed")
    import joblib

    X, y, Q, _ = data
    learned = TAPKNeighborsClassifier(
        3, metric_learner=TAPMetricLearner(**SMALL), working_memory=0.01, device="cpu"
    ).fit(X, y)
    local_d, local_i = learned.kneighbors(Q)
    grid = GridSearchCV(
        TAPKNeighborsClassifier(device="cpu"), {"n_neighbors": [1, 3, 5]}, cv=2
    )
    local_grid = clone(grid).fit(X, y)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with distributed.get_task_stream(client) as stream:
            with joblib.parallel_config(backend="dask"):
                remote_d, remote_i = learned.kneighbors(Q)
                remote_grid = clone(grid).fit(X, y)
        # the tiles and the grid's fits ran as tasks on both worker processes
        workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2
    np.testing.assert_array_equal(remote_i, local_i)
    np.testing.assert_allclose(remote_d, local_d, rtol=1e-5)
    np.testing.assert_array_equal(
        remote_grid.cv_results_["mean_test_score"],
        local_grid.cv_results_["mean_test_score"],
    )
    assert remote_grid.best_params_ == local_grid.best_params_
