"""Training repeats exactly with several CPU threads, on long inputs too."""

import numpy as np
import pytest
import torch

from sktap import TAPMetricLearner


@pytest.fixture
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


@pytest.mark.slow
def test_two_fits_on_long_walks_give_identical_weights(two_threads):
    # 40 random walks of 2,000 steps in 20 classes of 2: the minibatches mine
    # few pairs, so the step recomputes them through a gather with repeated
    # indices, whose backward by advanced indexing added in a thread-dependent
    # order (weights differed by about 1e-5 after 2 epochs)
    rng = np.random.RandomState(0)
    X = np.cumsum(rng.randn(40, 2000, 1), axis=1)
    y = np.repeat(np.arange(20), 2)
    fits = [
        TAPMetricLearner(max_epochs=2, device="cpu", random_state=0).fit(X, y)
        for _ in range(2)
    ]
    assert any("mined_fraction" in h for h in fits[0].history_)  # the mined path
    first, second = (f.model_.state_dict() for f in fits)
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


def test_tap_pairs_gradient_repeats_exactly(two_threads):
    from sktap.core import TAPNet, tap_pairs

    torch.manual_seed(0)
    z = torch.randn(16, 64, 32, requires_grad=True)
    lengths = torch.randint(40, 65, (16,))
    rows = torch.randint(0, 16, (160,))  # many repeated sources
    cols = torch.randint(0, 16, (160,))
    net = TAPNet((4,), (3, 3))
    weights = torch.randn(160)
    grads = [
        torch.autograd.grad(
            (tap_pairs(z, lengths, rows, cols, net) * weights).sum(), z
        )[0]
        for _ in range(30)
    ]
    for g in grads[1:]:
        assert torch.equal(g, grads[0])
