"""Reliability: bounded memory and finite numbers at the edges."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sktap import TAPNet
from sktap.functional import tap_pairwise
from sktap.metrics import cdist_tap

_MEMORY_PROBE = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from sktap.metrics import cdist_tap

    n, L, wm = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    X = np.random.default_rng(0).normal(size=(n, L, 2))
    cdist_tap(X[:4], X[:4], working_memory=wm, device="cpu")  # allocator warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    D = cdist_tap(X, working_memory=wm, device="cpu")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(after - before)
    """
)


@pytest.mark.slow
def test_cdist_peak_memory_is_bounded_by_working_memory():
    # 250 x 250 pairs of length 60: all tiles together would be ~0.84 GiB
    # of float32 cells; with working_memory=8 MiB the peak growth must stay
    # near the budget plus the (250, 250) result (it grew by about 6 MiB).
    n, L, wm = 250, 60, 8
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(n), str(L), str(wm)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    growth_mib = float(out.stdout.strip().splitlines()[-1])
    full_mib = n * n * L * L * 4 / 2**20
    bound = 4 * wm + n * n * 8 / 2**20 + 16
    assert growth_mib < bound, (growth_mib, bound, full_mib)


@pytest.mark.parametrize("scale", [1e-6, 1e-3, 1.0, 1e3, 1e6])
def test_finite_distances_and_gradients_across_scales(scale):
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(3, 7, 2)) * scale, dtype=torch.float32)
    x[1] = x[1, :1]  # constant sequence
    x[2] = x[0]  # duplicate
    lengths = torch.tensor([7, 7, 1])
    x.requires_grad_(True)
    net = TAPNet()
    d = tap_pairwise(x, lengths, x, lengths, net, symmetric=True)
    assert torch.isfinite(d).all() and (d >= 0).all()
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_low_precision_overflow_falls_back_to_float32():
    # frame distances ~1e5 overflow float16 (max 65504) inside the network
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(9, 2)) * 1e5, rng.normal(size=(4, 2)) * 1e5]
    net = TAPNet()
    ref = cdist_tap(X, net=net)
    with pytest.warns(RuntimeWarning, match="recomputing in float32"):
        D = cdist_tap(X, net=net, dtype="float16")
    assert np.isfinite(D).all()
    np.testing.assert_allclose(D, ref, rtol=1e-5)


def test_overflow_in_float32_raises_instead_of_nan():
    # frame distances of about 8e38, beyond float32's largest (3.4e38)
    X = [np.full((3, 2), 3e38), np.full((2, 2), -3e38)]
    with pytest.raises(ValueError, match="non-finite distances"):
        cdist_tap(X)
    assert np.isfinite(cdist_tap(X, dtype="float64")).all()
