"""CUDA smoke tests: the same numbers on the GPU as on the CPU.

Marked ``gpu``; conftest skips them where no CUDA device is present.
"""

import numpy as np
import pytest
import torch

import sktap
from sktap import (
    TAPFewShotClassifier,
    TAPKNeighborsClassifier,
    TAPMetricLearner,
    TAPNet,
)
from sktap.metrics import cdist_tap

from .conftest import TINY_FEW_SHOT, TINY_LEARNER, random_sequences, requires_cuda

pytestmark = requires_cuda

DEVICE = "cuda"


@pytest.fixture(autouse=True)
def full_float32():
    """float32 convolutions and products without TF32.

    PyTorch lets cuDNN run float32 convolutions in TF32 (10-bit mantissa)
    on Ampere and later cards unless told otherwise; the comparisons with
    the CPU below are of float32 arithmetic, so TF32 is off while they run
    and restored after.
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 15), 2) + (i % 3) for i in range(18)]
    return X, np.array([i % 3 for i in range(18)])


def test_cdist_tap_on_cuda_equals_cpu(rng):
    X = random_sequences(rng, 9, 3, 1, 40)
    Y = random_sequences(rng, 5, 3, 1, 40)
    torch.manual_seed(0)
    net = TAPNet()
    for symmetric in (False, True):
        cpu = cdist_tap(X, Y, net=net, symmetric=symmetric, device="cpu")
        gpu = cdist_tap(X, Y, net=net, symmetric=symmetric, device=DEVICE)
        assert gpu.dtype == np.float32
        np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-6)
    cpu = cdist_tap(X, Y, net=net, device="cpu")
    bf16 = cdist_tap(X, Y, net=net, device=DEVICE, dtype=torch.bfloat16)
    assert bf16.dtype == np.float32 and np.isfinite(bf16).all()
    np.testing.assert_allclose(bf16, cpu, rtol=0.05)


def test_one_epoch_on_cuda_leaves_weights_on_cpu(data):
    X, y = data
    est = TAPMetricLearner(**dict(TINY_LEARNER, device=DEVICE)).fit(X, y)
    assert len(est.history_) == 1 and np.isfinite(est.history_[0]["loss"])
    assert all(p.device.type == "cpu" for p in est.model_.parameters())
    assert all(b.device.type == "cpu" for b in est.model_.buffers())
    D = est.pairwise_distances(X[:4], X)  # runs on the GPU, weights go back
    assert D.shape == (4, 18) and np.isfinite(D).all()
    assert all(p.device.type == "cpu" for p in est.model_.parameters())


def test_fit_on_cuda_save_load_on_cpu(data, tmp_path):
    X, y = data
    est = TAPMetricLearner(**dict(TINY_LEARNER, device=DEVICE)).fit(X, y)
    on_gpu = est.pairwise_distances(X)
    est.save(tmp_path / "learner.sktap")
    loaded = sktap.load(tmp_path / "learner.sktap").set_params(device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.model_.parameters())
    on_cpu = est.set_params(device="cpu").pairwise_distances(X)
    np.testing.assert_array_equal(loaded.pairwise_distances(X), on_cpu)
    np.testing.assert_allclose(on_cpu, on_gpu, rtol=1e-4, atol=1e-6)


def test_one_epoch_same_losses_on_cuda_and_cpu(data):
    # same seed: same initial weights and minibatches on both devices
    X, y = data
    params = dict(TINY_LEARNER, max_epochs=2)
    cpu = TAPMetricLearner(**params).fit(X, y)
    gpu = TAPMetricLearner(**dict(params, device=DEVICE)).fit(X, y)
    np.testing.assert_allclose(
        [h["loss"] for h in gpu.history_], [h["loss"] for h in cpu.history_], rtol=1e-3
    )


def test_bfloat16_training_and_knn_on_cuda(data):
    X, y = data
    learner = TAPMetricLearner(
        **dict(TINY_LEARNER, device=DEVICE, precision="bfloat16", max_epochs=2)
    )
    knn = TAPKNeighborsClassifier(metric_learner=learner, n_neighbors=1).fit(X, y)
    assert all(np.isfinite(h["loss"]) for h in knn.metric_learner_.history_)
    pred = knn.predict(X)
    # mostly the training points' own labels (chance is 1/3)
    assert pred.shape == (18,) and (pred == y).mean() > 0.5
    D = knn.metric_learner_.pairwise_distances(X)
    assert D.shape == (18, 18) and np.isfinite(D).all()


def test_few_shot_episodes_on_cuda(data):
    X, y = data
    clf = TAPFewShotClassifier(**dict(TINY_FEW_SHOT, device=DEVICE)).fit(X, y)
    assert all(np.isfinite(h["loss"]) for h in clf.history_)
    on_gpu = clf.predict_proba(X)
    on_cpu = clf.set_params(device="cpu").predict_proba(X)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-4, atol=1e-6)
    support = list(range(0, 18, 2))
    clf.set_params(device=DEVICE).set_support([X[i] for i in support], y[support])
    assert set(clf.predict(X)) <= set(y)
