"""Shapes that repeat: padded lengths rounded up to a grid, results unchanged."""

import numpy as np
import pytest
import torch

import sktap
from sktap import TAPMetricLearner, TAPNet, _thresholds
from sktap._engine import TensorSequences
from sktap._thresholds import round_up_length
from sktap._validation import check_sequences
from sktap.core import tap_pairs, tap_pairwise_bucketed
from sktap.core._bucketed import padded_length
from sktap.metric_learning._steps import _padded
from sktap.metrics import cdist_tap

from .conftest import TINY_LEARNER, random_sequences, weights_of

GRID = sorted({round_up_length(n) for n in range(1, 5000)})


# -- the grid ------------------------------------------------------------------
def test_round_up_length_is_a_small_monotone_grid():
    n = np.arange(1, 5000)
    r = np.array([round_up_length(v) for v in n])
    assert (r >= n).all()
    assert (np.diff(r) >= 0).all()
    small = n <= 64
    assert (r[small] - n[small] <= 7).all()
    assert (r[~small] - n[~small] < n[~small] / 8).all()
    assert all(round_up_length(g) == g for g in GRID)  # sizes of the grid stay
    # multiples of 8 up to 64, then 8 sizes per octave
    assert GRID[:9] == [8, 16, 24, 32, 40, 48, 56, 64, 72]
    for k in range(6, 12):
        assert sum(2**k < g <= 2 ** (k + 1) for g in GRID) == 8
    assert round_up_length(0) == 0


def test_padded_length_follows_the_config_and_the_width():
    assert padded_length(57) == 64
    assert padded_length(57, width=60) == 60  # never beyond what is stored
    assert padded_length(57, width=57) == 57
    with sktap.config_context(shape_rounding=False):
        assert padded_length(57) == 57
        assert sktap.get_config()["shape_rounding"] is False
    assert sktap.get_config()["shape_rounding"] is True


@pytest.mark.parametrize("value", [1, "yes", None])
def test_shape_rounding_must_be_a_bool(value):
    if value is None:  # None leaves the setting as it is
        sktap.set_config(shape_rounding=None)
        assert sktap.get_config()["shape_rounding"] is True
        return
    with pytest.raises(ValueError, match="shape_rounding must be True or False; got"):
        sktap.set_config(shape_rounding=value)
    with pytest.raises(ValueError, match="shape_rounding must be True or False"):
        with sktap.config_context(shape_rounding=value):
            pass
    assert sktap.get_config()["shape_rounding"] is True


# -- where shapes are rounded --------------------------------------------------
class _GridShapes:
    """(Lx, Ly) of every input of the network's first layer."""

    def __init__(self, net):
        self.sizes = []
        net.convs[0].register_forward_pre_hook(
            lambda m, args: self.sizes.append(tuple(args[0].shape[2:]))
        )

    def off_grid(self, *widths):
        allowed = {*GRID, *widths}
        return {s for size in self.sizes for s in size if s not in allowed}


@pytest.mark.parametrize("rounding", [True, False])
def test_buckets_are_padded_to_the_grid(rng, rounding, monkeypatch):
    # one bucket per group of similar lengths (no per-call allowance, which
    # would merge these small pairs into a few buckets)
    monkeypatch.setattr(_thresholds, "PAIRS_CALL_CELLS", 0)
    net = TAPNet(channels=(4,), kernel_sizes=(3, 3))
    shapes = _GridShapes(net)
    X = random_sequences(rng, 12, 2, 1, 45)
    lengths = torch.tensor([len(s) for s in X])
    x = torch.zeros(12, 50, 2)  # stored wider than the longest (45)
    for i, s in enumerate(X):
        x[i, : len(s)] = torch.as_tensor(s)
    rows, cols = np.nonzero(rng.random((12, 12)) < 0.5)
    with sktap.config_context(shape_rounding=rounding), torch.no_grad():
        tap_pairs(x, lengths, rows, cols, net)
        tap_pairwise_bucketed(x, lengths, x, lengths, net)
    if rounding:
        assert not shapes.off_grid(50)
    else:  # each bucket padded to its longest: sizes off the grid
        assert len(shapes.off_grid(50)) > 5


@pytest.mark.parametrize("rounding", [True, False])
def test_training_batches_are_padded_to_the_grid(rng, rounding):
    seqs = check_sequences(random_sequences(rng, 20, 2, 3, 100))
    data = TensorSequences(seqs, "cpu")
    width = data.data.shape[1]
    with sktap.config_context(shape_rounding=rounding):
        for idx in ([0, 1, 2], [3, 4], [5], list(range(20))):
            x, lx = data.batch(idx)
            longest = int(seqs.lengths[idx].max())
            assert torch.equal(lx, torch.as_tensor(seqs.lengths[idx]))
            want = min(round_up_length(longest), width) if rounding else longest
            assert x.shape[1] == want
            assert torch.equal(x[:, :longest], data.data[idx, :longest])
            assert (x[:, longest:] == 0).all()  # padding is zeros


def test_augmentations_are_padded_to_the_grid(rng):
    aug, la = rng.normal(size=(3, 13, 2)), np.array([13, 4, 9])
    G = rng.random((3, 20, 13))
    with sktap.config_context(shape_rounding=False):
        assert _padded(aug, la, G)[0] is aug
    pa, pla, pG = _padded(aug, la, G)
    assert pa.shape == (3, 16, 2) and pG.shape == (3, 20, 16)
    np.testing.assert_array_equal(pa[:, :13], aug)
    np.testing.assert_array_equal(pG[:, :, :13], G)
    assert not pa[:, 13:].any() and not pG[:, :, 13:].any() and pla is la


@pytest.mark.parametrize(
    ("rounding", "devices"), [(True, ("cpu",)), (False, ("cpu",)), (True, ())]
)
def test_inference_tiles_are_padded_to_the_grid(rng, monkeypatch, rounding, devices):
    # on the device types of ROUNDED_TILE_DEVICES only (not the CPU by default)
    from sktap._engine._kernels import TAPKernel

    monkeypatch.setattr(_thresholds, "ROUNDED_TILE_DEVICES", devices)

    widths = []
    block = TAPKernel.block

    def recording(self, x, lx, y, ly):
        widths.append((x.shape[1], int(lx.max()), y.shape[1], int(ly.max())))
        return block(self, x, lx, y, ly)

    monkeypatch.setattr(TAPKernel, "block", recording)
    X = random_sequences(rng, 10, 2, 1, 60)
    longest = max(len(s) for s in X)
    with sktap.config_context(shape_rounding=rounding):
        cdist_tap(X, net=TAPNet(), device="cpu", working_memory=1e-4, n_jobs=1)
    assert len(widths) == 100  # one tile per pair
    for wx, lx, wy, ly in widths:
        for w, longest_of_tile in ((wx, lx), (wy, ly)):
            if rounding and devices:
                assert w == min(round_up_length(longest_of_tile), longest)
            else:
                assert w == longest_of_tile


# -- results do not change -----------------------------------------------------
@pytest.mark.parametrize(
    ("path", "kwargs"),
    [("mined", {}), ("all_pairs", {}), ("mined", {"augment": True})],
)
def test_training_gives_the_same_weights_with_and_without_rounding(
    monkeypatch, path, kwargs
):
    # every batch through the length buckets and the mined pairs, however
    # little work it has (the default sends tiny batches to all pairs)
    monkeypatch.setattr(_thresholds, "MINED_MIN_MACS", 0)
    monkeypatch.setattr(_thresholds, "MINING_PAYS_BELOW", 0.9)
    rng = np.random.default_rng(0)
    X = random_sequences(rng, 24, 2, 5, 70)
    y = np.arange(24) % 3
    fits, shapes = {}, {}
    for rounding in (False, True):
        est = TAPMetricLearner(**{**TINY_LEARNER, "downsample": 1, **kwargs})
        seen = set()
        hook = torch.nn.modules.module.register_module_forward_pre_hook(
            lambda m, args, seen=seen: (
                seen.add(tuple(args[0].shape))
                if isinstance(m, torch.nn.Conv2d | torch.nn.Conv1d)
                else None
            )
        )
        try:
            with sktap.config_context(shape_rounding=rounding, training_path=path):
                est.fit(X, y)
        finally:
            hook.remove()
        fits[rounding], shapes[rounding] = weights_of(est), seen
    assert shapes[True] != shapes[False]  # rounding did change the shapes
    assert len(shapes[True]) < len(shapes[False])
    for name, w in fits[True].items():
        torch.testing.assert_close(w, fits[False][name], rtol=1e-5, atol=1e-6)
