import numpy as np
import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def random_sequences(rng, n, d, low=1, high=60):
    """A list of ``n`` float sequences with random lengths in [low, high]."""
    return [rng.normal(size=(int(rng.integers(low, high + 1)), d)) for _ in range(n)]
