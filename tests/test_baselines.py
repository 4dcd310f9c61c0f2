import numpy as np
import pytest
import torch
from tslearn.metrics import SoftDTWLossPyTorch

from sktap.baselines import SoftDTWMetricLearner

from .conftest import TINY_SOFT_DTW


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 6), 2) + (i % 2) for i in range(8)]
    y = np.array([i % 2 for i in range(8)])
    est = SoftDTWMetricLearner(**dict(TINY_SOFT_DTW, max_epochs=2, batch_size=4))
    return est.fit(X, y), X


def test_distances_are_per_pair_soft_dtw_divergences(fitted):
    est, X = fitted
    D = est.pairwise_distances(X)
    Z = est.encode(X)
    sdtw = SoftDTWLossPyTorch(gamma=est.gamma, normalize=True)
    for i in (0, 3):
        for j in (1, 5):
            zi = torch.as_tensor(Z.data[i, : Z.lengths[i]])[None]
            zj = torch.as_tensor(Z.data[j, : Z.lengths[j]])[None]
            expected = float(sdtw(zi, zj)) / ((Z.lengths[i] + Z.lengths[j]) / 2)
            assert D[i, j] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(np.diag(D), 0.0, atol=1e-5)
    np.testing.assert_allclose(D, D.T, rtol=1e-4, atol=1e-6)


def test_training_changes_weights_and_logs(fitted):
    est, X = fitted
    assert len(est.history_) == 2 and "metric_loss" in est.history_[0]
    assert "self_supervised_loss" not in est.history_[0]
    untrained = SoftDTWMetricLearner(**{**est.get_params(), "max_epochs": 1})
    untrained.fit(X, [i % 2 for i in range(8)])
    a = dict(est.model_.named_parameters())
    b = dict(untrained.model_.named_parameters())
    # same seed, one epoch fewer: the second epoch moved every layer
    assert all(not torch.equal(a[k], b[k]) for k in a)


def test_knn_ranks_by_the_learned_soft_dtw(fitted, tmp_path):
    import sktap
    from sktap import TAPKNeighborsClassifier

    est, X = fitted
    y = [i % 2 for i in range(8)]
    knn = TAPKNeighborsClassifier(2, metric_learner=est).fit(X, y)
    Q = [x[::-1] + 0.1 for x in X[:3]]
    dist, ind = knn.kneighbors(Q)
    D = knn.metric_learner_.pairwise_distances(Q, X)
    np.testing.assert_allclose(dist, np.take_along_axis(D, ind, 1), rtol=1e-4)
    np.testing.assert_array_equal(ind[:, 0], D.argmin(axis=1))
    knn.save(tmp_path / "knn.sktap")
    loaded = sktap.load(tmp_path / "knn.sktap")
    assert isinstance(loaded.metric_learner_, SoftDTWMetricLearner)
    np.testing.assert_array_equal(loaded.predict(Q), knn.predict(Q))
    np.testing.assert_allclose(loaded.kneighbors(Q)[0], dist, rtol=1e-6)


def test_labels_required(fitted):
    _, X = fitted
    with pytest.raises(ValueError, match="needs labels y"):
        SoftDTWMetricLearner(device="cpu").fit(X)
    with pytest.raises(ValueError, match="The 'gamma' parameter"):
        SoftDTWMetricLearner(gamma=0, device="cpu").fit(X, [0, 1] * 4)


def test_save_load_and_alignment(fitted, tmp_path):
    import sktap

    est, X = fitted
    est.save(tmp_path / "sdtw.sktap")
    loaded = sktap.load(tmp_path / "sdtw.sktap")
    assert isinstance(loaded, SoftDTWMetricLearner)
    np.testing.assert_allclose(loaded.pairwise_distances(X), est.pairwise_distances(X))
    assert not hasattr(est, "tap_alignment")
    T = est.alignment(X[0], X[1])
    assert T.shape == (len(X[0]), len(X[1]))
    np.testing.assert_allclose(T.sum(axis=1), 1 / len(X[0]))
