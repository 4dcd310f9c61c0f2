"""The distance and kernel transformers, tslearn's precomputed route, clustering."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import DBSCAN, AgglomerativeClustering
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from sktap import TAPKNeighborsClassifier, TAPMetricLearner
from sktap.baselines import SoftDTWMetricLearner
from sktap.interop import TAPDistanceTransformer, TAPKernelTransformer
from sktap.metrics import cdist_tap

from .conftest import TINY_LEARNER, TINY_SOFT_DTW, random_sequences

FORMS = [False, True, "divergence"]


@pytest.fixture(scope="module")
def data():
    """Multivariate, unequal-length, two separable classes."""
    rng = np.random.default_rng(0)
    X = random_sequences(rng, 16, 3, low=5, high=25)
    y = np.repeat([0, 1], 8)
    X = [x + 4 * label for x, label in zip(X, y)]
    return X[:12], y[:12], X[12:], y[12:]


@pytest.fixture(scope="module")
def learner(data):
    X, y, _, _ = data
    return TAPMetricLearner(**TINY_LEARNER).fit(X, y)


@pytest.mark.parametrize("form", FORMS)
def test_transform_equals_the_learners_pairwise_distances(data, learner, form):
    X, _y, Xq, _ = data
    tr = TAPDistanceTransformer(learner, refit_metric=False, symmetric=form)
    tr.fit(X)
    np.testing.assert_allclose(
        tr.transform(Xq), learner.pairwise_distances(Xq, X, symmetric=form), rtol=1e-5
    )
    np.testing.assert_allclose(
        tr.fit_transform(X), learner.pairwise_distances(X, symmetric=form), rtol=1e-5
    )


@pytest.mark.parametrize("form", FORMS)
def test_parameter_free_transform_equals_cdist_tap(data, form):
    X, _, Xq, _ = data
    tr = TAPDistanceTransformer(symmetric=form, device="cpu").fit(X)
    np.testing.assert_allclose(
        tr.transform(Xq), cdist_tap(Xq, X, symmetric=form, device="cpu"), rtol=1e-5
    )


@pytest.mark.parametrize("form", [True, "divergence"])
def test_transform_of_subsets_matches_at_float32_precision(data, learner, form):
    # sklearn's check_methods_subset_invariance at float32's tolerance
    X, _, Xq, _ = data
    tr = TAPDistanceTransformer(learner, refit_metric=False, symmetric=form)
    full = tr.fit(X).transform(Xq)
    parts = np.vstack([tr.transform(Xq[i : i + 2]) for i in range(0, len(Xq), 2)])
    np.testing.assert_allclose(parts, full, rtol=1e-5, atol=1e-6)


def test_divergence_is_clustering_ready(data, learner):
    X, _, _Xq, _ = data
    D = learner.pairwise_distances(X, symmetric="divergence")
    S = learner.pairwise_distances(X, symmetric=True)
    assert not np.allclose(np.diag(S), 0)  # TAP's own self-distance is not 0
    np.testing.assert_array_equal(np.diag(D), 0)
    np.testing.assert_allclose(D, D.T, rtol=1e-6, atol=1e-7)
    assert (D >= 0).all()
    # the formula, from the two-sided distances
    s = np.diag(S)
    expected = np.maximum(S - (s[:, None] + s[None, :]) / 2, 0)
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(D, expected, rtol=1e-5, atol=1e-7)
    # a query that is a reference is at zero from it, however the calls are
    # batched (the three distances come from different float32 tiles)
    tr = TAPDistanceTransformer(learner, refit_metric=False, symmetric="divergence")
    np.testing.assert_array_equal(np.diag(tr.fit(X).transform(X)), 0)
    for i in (0, 3):
        assert tr.transform(X[i : i + 1])[0, i] == 0


def test_bad_form_is_refused(data, learner):
    X = data[0]
    msg = "symmetric must be False, True or 'divergence'; got 'both'"
    with pytest.raises(ValueError, match=msg):
        cdist_tap(X, symmetric="both")
    with pytest.raises(ValueError, match=msg):
        learner.pairwise_distances(X, symmetric="both")
    with pytest.raises(ValueError, match="symmetric"):
        TAPDistanceTransformer(symmetric="both").fit(X)


def test_knn_pipeline_equals_tap_knn(data, learner):
    X, y, Xq, _ = data
    pipe = make_pipeline(
        TAPDistanceTransformer(learner, refit_metric=False),
        KNeighborsClassifier(n_neighbors=3, metric="precomputed"),
    )
    knn = TAPKNeighborsClassifier(3, metric_learner=learner, refit_metric=False)
    np.testing.assert_array_equal(pipe.fit(X, y).predict(Xq), knn.fit(X, y).predict(Xq))


def test_pipeline_refits_a_clone_and_grid_search_tunes_it(data):
    X, y, Xq, _yq = data
    pipe = make_pipeline(
        TAPDistanceTransformer(TAPMetricLearner(**TINY_LEARNER)),
        KNeighborsClassifier(n_neighbors=1, metric="precomputed"),
    )
    search = GridSearchCV(
        pipe,
        {"tapdistancetransformer__metric_learner__loss": ["triplet", "lifted"]},
        cv=2,
    )
    search.fit(X, y)
    assert search.best_params_["tapdistancetransformer__metric_learner__loss"] in (
        "triplet",
        "lifted",
    )
    tr = search.best_estimator_[0]
    assert tr.metric_learner_ is not tr.metric_learner  # a fitted clone
    assert search.predict(Xq).shape == (len(Xq),)


def test_clone_keeps_a_fitted_learner_when_not_refitted(data, learner):
    X, _y, Xq, _ = data
    for tr in (
        TAPDistanceTransformer(learner, refit_metric=False),
        TAPDistanceTransformer(FrozenEstimator(learner)),
    ):
        expected = clone(tr).fit(X).transform(Xq)
        np.testing.assert_allclose(
            expected, learner.pairwise_distances(Xq, X), rtol=1e-5
        )
    unfitted = TAPDistanceTransformer(TAPMetricLearner(), refit_metric=False)
    with pytest.raises(Exception, match="must be fitted when refit_metric=False"):
        unfitted.fit(X)


def test_unsupervised_fit_and_a_learner_that_needs_labels(data):
    X, y, Xq, _ = data
    tr = TAPDistanceTransformer(TAPMetricLearner(**TINY_LEARNER)).fit(X)
    assert tr.transform(Xq).shape == (len(Xq), len(X))
    soft = TAPDistanceTransformer(SoftDTWMetricLearner(**TINY_SOFT_DTW))
    assert soft.fit(X, y).transform(Xq).shape == (len(Xq), len(X))
    with pytest.raises(ValueError, match="X has 12 sequences but y has 3 labels"):
        TAPDistanceTransformer().fit(X, y[:3])


def test_feature_names_and_pickle(data, learner):
    X, _, Xq, _ = data
    tr = TAPDistanceTransformer(learner, refit_metric=False).fit(X)
    names = tr.get_feature_names_out()
    assert len(names) == len(X) and names[0] == "tapdistancetransformer0"
    again = pickle.loads(pickle.dumps(tr))
    np.testing.assert_array_equal(again.transform(Xq), tr.transform(Xq))


def test_clustering_on_the_divergence(data, learner):
    X, y, _, _ = data
    tr = TAPDistanceTransformer(learner, refit_metric=False, symmetric="divergence")
    D = tr.fit_transform(X)
    eps = np.median(D[D > 0])
    labels = DBSCAN(eps=eps, min_samples=2, metric="precomputed").fit_predict(D)
    assert (labels >= 0).any()  # not every point is noise
    agg = AgglomerativeClustering(2, metric="precomputed", linkage="average")
    assert adjusted_rand_score(y, agg.fit_predict(D)) == 1.0
    pipe = make_pipeline(
        TAPDistanceTransformer(device="cpu", symmetric="divergence"),
        AgglomerativeClustering(2, metric="precomputed", linkage="average"),
    )
    assert adjusted_rand_score(y, pipe.fit_predict(X)) == 1.0


def test_kernel_transformer(data, learner):
    X, y, Xq, yq = data
    kt = TAPKernelTransformer(learner, refit_metric=False)
    K = kt.fit_transform(X)
    D = learner.pairwise_distances(X, symmetric="divergence")
    off = D[~np.eye(len(D), dtype=bool)]
    assert kt.sigma_ == pytest.approx(np.median(off), rel=1e-6)
    np.testing.assert_allclose(K, np.exp(-D / kt.sigma_), rtol=1e-5)
    np.testing.assert_array_equal(np.diag(K), 1.0)
    np.testing.assert_allclose(K, K.T, rtol=1e-6)
    Kq = kt.transform(Xq)
    np.testing.assert_allclose(
        Kq,
        np.exp(-learner.pairwise_distances(Xq, X, symmetric="divergence") / kt.sigma_),
        rtol=1e-5,
    )
    svc = make_pipeline(
        TAPKernelTransformer(learner, refit_metric=False, sigma=2.0),
        SVC(kernel="precomputed"),
    )
    assert svc.fit(X, y).score(Xq, yq) == 1.0
    assert svc[0].sigma_ == 2.0
    with pytest.raises(ValueError, match="sigma"):
        TAPKernelTransformer(sigma=0).fit(X)


def test_get_metric_with_brute_force_scikit_learn(data, learner):
    # scikit-learn's callable metric sees equal-length univariate rows
    rng = np.random.default_rng(1)
    X = rng.normal(size=(10, 12))
    y = np.repeat([0, 1], 5)
    X[y == 1] += 3
    uni = TAPMetricLearner(**TINY_LEARNER).fit(X, y)
    knn = KNeighborsClassifier(1, metric=uni.get_metric(), algorithm="brute")
    tap = TAPKNeighborsClassifier(1, metric_learner=uni, refit_metric=False)
    np.testing.assert_array_equal(
        knn.fit(X, y).predict(X[:4] + 0.1), tap.fit(X, y).predict(X[:4] + 0.1)
    )


class TestTslearnPrecomputed:
    def test_knn(self, data, learner):
        from tslearn.neighbors import KNeighborsTimeSeriesClassifier

        X, y, Xq, _ = data
        tr = TAPDistanceTransformer(learner, refit_metric=False).fit(X)
        knn = KNeighborsTimeSeriesClassifier(n_neighbors=3, metric="precomputed")
        knn.fit(tr.fit_transform(X), y)
        tap = TAPKNeighborsClassifier(3, metric_learner=learner, refit_metric=False)
        np.testing.assert_array_equal(
            knn.predict(tr.transform(Xq)), tap.fit(X, y).predict(Xq)
        )

    def test_dbscan_and_silhouette(self, data, learner):
        from sklearn.metrics import silhouette_score as sk_silhouette
        from tslearn.clustering import TimeSeriesDBSCAN, silhouette_score

        X, y, _, _ = data
        D = TAPDistanceTransformer(
            learner, refit_metric=False, symmetric="divergence"
        ).fit_transform(X)
        score = silhouette_score(D, y, metric="precomputed")
        assert score == pytest.approx(sk_silhouette(D, y, metric="precomputed"))
        assert score > 0  # the learned distance separates the two classes
        eps = np.median(D[D > 0])
        labels = TimeSeriesDBSCAN(eps=eps, min_ts=2, metric="precomputed").fit(D)
        expected = DBSCAN(eps=eps, min_samples=2, metric="precomputed").fit_predict(D)
        np.testing.assert_array_equal(labels.labels_, expected)


def test_optional_library_missing_says_which_extra(monkeypatch):
    import sys

    import sktap.interop as interop

    for name in [m for m in sys.modules if m.split(".")[0] == "sktime"] + ["sktime"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "sktap.interop._sktime", raising=False)
    monkeypatch.delitem(vars(interop), "TAPPairwiseTransformerPanel", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'sktap\[sktime\]'"):
        interop.TAPPairwiseTransformerPanel
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        interop.nothing
    assert "aeon_distance" in dir(interop)
