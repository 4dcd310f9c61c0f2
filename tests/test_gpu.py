"""CUDA smoke tests: the same numbers on the GPU as on the CPU.

Marked ``gpu``; conftest skips them where no CUDA device is present.
"""

import numpy as np
import pytest
import torch

import sktap
from sktap import TAPMetricLearner, TAPNet
from sktap.metrics import cdist_tap

from .conftest import TINY_LEARNER, random_sequences, requires_cuda

pytestmark = requires_cuda

DEVICE = "cuda"


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
