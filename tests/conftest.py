import os

# numba (tslearn's DTW and soft-DTW) starts one OpenMP thread per core. On
# the tiny test data the threads only cost time, and on busy shared cores
# their spin-waits made the soft-DTW learner's fit 50x slower. Set before
# numba is imported; the examples' subprocesses inherit it.
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

# Tiny settings shared by the test files: a fit takes a fraction of a second.
TINY_NET = dict(
    hidden_layer_sizes=(8,),
    tap_channels=(4,),
    tap_kernel_sizes=(3, 3),
    device="cpu",
    random_state=0,
)
TINY_LEARNER = dict(TINY_NET, batch_size=8, max_epochs=1)
TINY_FEW_SHOT = dict(TINY_NET, n_way=3, n_query=1, n_episodes=3)
# OTAM has no alignment network
TINY_OTAM = {k: v for k, v in TINY_FEW_SHOT.items() if not k.startswith("tap_")}
TINY_SOFT_DTW = dict(
    hidden_layer_sizes=(8,), batch_size=8, max_epochs=1, device="cpu", random_state=0
)

# The gpu marker: every test carrying it is skipped where CUDA is missing
# (see pytest_collection_modifyitems below).
requires_cuda = pytest.mark.gpu


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def random_sequences(rng, n, d, low=1, high=60):
    """A list of ``n`` float sequences with random lengths in [low, high]."""
    return [rng.normal(size=(int(rng.integers(low, high + 1)), d)) for _ in range(n)]


def weights_of(est):
    """A copy of a fitted estimator's weights (``model_.state_dict()``)."""
    return {k: v.clone() for k, v in est.model_.state_dict().items()}


def same_weights(a, b):
    """Whether two weight dicts of :func:`weights_of` are exactly equal."""
    return all(torch.equal(a[k], b[k]) for k in a)
