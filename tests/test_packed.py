"""Packed grids (sktap/core/_packed.py) equal the plain all-pairs TAP."""

from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sktap
from sktap import TAPMetricLearner, _thresholds
from sktap.core import TAPNet, TAPTransNet, tap_pairs, tap_pairwise
from sktap.core._packed import (
    can_pack,
    packed_cells,
    packing_beats_shapes,
    packing_pays,
    pairs_packing_pays,
    tap_pairs_packed,
    tap_pairwise_packed,
)
from sktap.metrics import cdist_tap

F64 = torch.float64


def _batch(rng, lengths, d=3, dtype=F64):
    lengths = torch.as_tensor(lengths)
    x = torch.as_tensor(rng.standard_normal((len(lengths), int(lengths.max()), d)))
    x = x * (torch.arange(x.shape[1])[None, :, None] < lengths[:, None, None])
    return x.to(dtype).requires_grad_(), lengths


def _net(seed, channels=(8,), kernel_sizes=(5, 3)):
    torch.manual_seed(seed)
    net = TAPNet(channels, kernel_sizes).double()
    for p in net.parameters():  # far from zero, so that g matters
        p.data.normal_(0, 0.4)
    return net


def _grads(dist, w, tensors):
    return torch.autograd.grad((dist * w).sum(), tensors)


NETS = {
    "none": lambda s: None,
    "default": lambda s: _net(s, (30, 30), (5, 5, 3)),
    "one-layer": lambda s: _net(s),
    "wide-last": lambda s: _net(s, (4, 24), (3, 7, 5)),
}


@settings(max_examples=25, deadline=None)
@given(
    lx=st.lists(st.integers(1, 30), min_size=1, max_size=7),
    ly=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
    net=st.sampled_from(sorted(NETS)),
    rounding=st.booleans(),
)
def test_packed_equals_tap_pairwise_with_gradients(lx, ly, seed, net, rounding):
    rng = np.random.default_rng(seed)
    x, lx = _batch(rng, lx)
    y, ly = _batch(rng, ly)
    net = NETS[net](seed)
    params = [x, y] + ([] if net is None else list(net.parameters()))
    with sktap.config_context(shape_rounding=rounding):
        got = tap_pairwise_packed(x, lx, y, ly, net)
        with torch.no_grad():
            fast = tap_pairwise_packed(x, lx, y, ly, net)
    want = tap_pairwise(x, lx, y, ly, net)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    # without autograd: frame distances by a float64 product, gaps in place
    torch.testing.assert_close(fast, want.detach(), rtol=0, atol=1e-10)
    w = torch.as_tensor(rng.standard_normal(want.shape))
    for a, b in zip(_grads(got, w, params), _grads(want, w, params)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_packed_softmax_of_targets_far_below_the_row_maximum():
    # target 1 lies 1,000 away: its logits sit far below target 0's, so a
    # shift shared by the row would underflow its softmax; each target's
    # block is shifted by its own maximum
    x = torch.zeros(1, 3, 2, dtype=F64)
    y = torch.zeros(2, 4, 2, dtype=F64)
    y[0] = torch.rand(4, 2, dtype=F64)
    y[1] = 1000.0 + torch.rand(4, 2, dtype=F64)
    for net in (None, _net(0)):
        got = tap_pairwise_packed(x, [3], y, [4, 3], net)
        want = tap_pairwise(x, [3], y, [4, 3], net)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
        assert torch.isfinite(got).all()


def test_packed_in_bands_equals_one_image(monkeypatch):
    # cache-sized bands: 16 sequences of up to 60 frames cut into several
    rng = np.random.default_rng(0)
    x, lx = _batch(rng, rng.integers(1, 61, 16), dtype=torch.float32)
    net = TAPNet((8,), (5, 3))
    want = tap_pairwise(x, lx, x, lx, net)
    monkeypatch.setattr(_thresholds, "CPU_BATCH_BYTES", 60 * 8 * 4 * 200)
    got = tap_pairwise_packed(x, lx, x, lx, net)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(_thresholds, "CPU_BATCH_BYTES", 1)  # one sequence a band
    torch.testing.assert_close(
        tap_pairwise_packed(x, lx, x, lx, net), want, rtol=1e-5, atol=1e-5
    )


def test_packed_compares_half_precision_frames_in_float32():
    rng = np.random.default_rng(1)
    x, lx = _batch(rng, [5, 9, 2], dtype=torch.float32)
    net = TAPNet((8,), (5, 3))
    with torch.no_grad():
        got = tap_pairwise_packed(x.bfloat16(), lx, x.bfloat16(), lx, net)
        want = tap_pairwise(x.bfloat16(), lx, x.bfloat16(), lx, net)
    assert got.dtype == want.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_packed_does_not_hide_non_finite_frames():
    rng = np.random.default_rng(2)
    x, lx = _batch(rng, [4, 6, 3], dtype=torch.float32)
    x = x.detach().clone()
    x[1, 2, 0] = float("nan")
    net = TAPNet((8,), (5, 3))
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            dist = tap_pairwise_packed(x, lx, x, lx, net)
        assert not torch.isfinite(dist[1]).any()
        assert not torch.isfinite(dist[:, 1]).any()


def test_packed_refuses_lengths_beyond_the_batch():
    x = torch.rand(2, 4, 3)
    with pytest.raises(ValueError, match="x lengths must lie between 1 and 4"):
        tap_pairwise_packed(x, [5, 2], x, [4, 2])
    with pytest.raises(ValueError, match="y lengths must lie between 1 and 4"):
        tap_pairwise_packed(x, [4, 2], x, [4, 0])
    with pytest.raises(ValueError, match="must have shape"):
        tap_pairwise_packed(x, [4, 2, 1], x, [4, 2])
    with pytest.raises(ValueError, match=r"\(n, L, d\) batch"):
        tap_pairwise_packed(x[0], [4, 2], x, [4, 2])


def test_packed_sums_stay_float32_under_autocast():
    # bfloat16 training runs the step under autocast: the per-pair sums
    # (matrix products) must not drop to bfloat16 with it
    rng = np.random.default_rng(3)
    x, lx = _batch(rng, [7, 3, 12, 5], dtype=torch.float32)
    want = tap_pairwise(x, lx, x, lx).detach()
    for grad in (False, True):
        with torch.set_grad_enabled(grad), torch.autocast("cpu", torch.bfloat16):
            got = tap_pairwise_packed(x, lx, x, lx)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-6)


def test_only_tapnet_and_none_can_be_packed():
    class Scaled(TAPNet):  # a subclass may compute otherwise: not packed
        def forward(self, *args):
            return 2 * super().forward(*args)

    x = torch.rand(2, 4, 3)
    assert can_pack(None) and can_pack(TAPNet())
    assert not can_pack(TAPTransNet(3))
    assert not can_pack(Scaled())
    assert not packing_pays([4, 2], [4, 2], TAPTransNet(3))
    assert not packing_beats_shapes([4, 2], [4, 9], Scaled())
    with pytest.raises(TypeError, match="TAPTransNet cannot be packed"):
        tap_pairwise_packed(x, [4, 2], x, [4, 2], TAPTransNet(3))
    with pytest.raises(TypeError, match="Scaled cannot be packed"):
        tap_pairwise_packed(x, [4, 2], x, [4, 2], Scaled())
    assert tap_pairwise_packed(x[:0], [], x, [4, 2]).shape == (0, 2)


@pytest.mark.parametrize("net", [None, TAPNet((8,), (5, 3))])
def test_packed_pairs_do_not_depend_on_the_pairs_packed_with_them(net):
    # as sklearn's subset invariance asks of transform: a pair's distance is
    # the same bit for bit whichever other sources and targets share its
    # bands and images
    rng = np.random.default_rng(4)
    x, lx = _batch(rng, rng.integers(1, 40, 12), dtype=torch.float32)
    y, ly = _batch(rng, rng.integers(1, 40, 9), dtype=torch.float32)
    with torch.no_grad():
        whole = tap_pairwise_packed(x, lx, y, ly, net)
        for i in range(0, 12, 5):
            part = tap_pairwise_packed(x[i : i + 5], lx[i : i + 5], y, ly, net)
            assert torch.equal(part, whole[i : i + 5])
        for j in range(0, 9, 4):
            part = tap_pairwise_packed(x, lx, y[j : j + 4], ly[j : j + 4], net)
            assert torch.equal(part, whole[:, j : j + 4])


def test_packed_in_target_groups_equals_one_image(monkeypatch):
    # 7 targets in groups of at most 2: four images, the same distances and
    # gradients as tap_pairwise
    monkeypatch.setattr(_thresholds, "PACKED_MAX_TARGETS", 2)
    rng = np.random.default_rng(3)
    x, lx = _batch(rng, [5, 1, 12])
    y, ly = _batch(rng, [3, 9, 1, 14, 6, 2, 8])
    net = _net(3)
    got = tap_pairwise_packed(x, lx, y, ly, net)
    want = tap_pairwise(x, lx, y, ly, net)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    w = torch.as_tensor(rng.standard_normal(want.shape))
    params = [x, y, *net.parameters()]
    for a, b in zip(_grads(got, w, params), _grads(want, w, params)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)
    # the cost counts every group's image
    monkeypatch.setattr(_thresholds, "PACKED_MAX_TARGETS", 100)
    whole = packed_cells(lx, ly, net)
    monkeypatch.setattr(_thresholds, "PACKED_MAX_TARGETS", 2)
    with sktap.config_context(shape_rounding=False):
        assert packed_cells(lx, ly, net) == (5 + 1 + 12 + 6) * (
            (3 + 9 + 4) + (1 + 14 + 4) + (6 + 2 + 4) + (8 + 2)
        )
    assert packed_cells(lx, ly, net) >= whole


def test_packing_beats_shapes_as_measured():
    # inference tiles (bench_packed.py --part tiles): None always packed, the
    # default network unless every length is one, wider ones by cell count
    spread = np.random.default_rng(0).integers(7, 95, 40)
    narrow = np.random.default_rng(0).integers(20, 31, 40)
    one = np.full(40, 64)
    default, wide = TAPNet((8,), (5, 3)), TAPNet((30, 30), (5, 5, 3))
    assert all(packing_beats_shapes(n, n, None) for n in (spread, narrow, one))
    assert packing_beats_shapes(spread, spread, default)
    assert packing_beats_shapes(narrow, narrow, default)
    assert not packing_beats_shapes(one, one, default)
    assert packing_beats_shapes(one, narrow, default)
    near = np.random.default_rng(0).integers(60, 65, 30)
    assert packing_beats_shapes(spread, spread, wide)
    assert not packing_beats_shapes(near, near, wide)
    assert not packing_beats_shapes(one, one, wide)
    assert not packing_beats_shapes([], one, default)


@pytest.fixture
def tile_paths(monkeypatch):
    """Counts inference tiles packed; ``off()`` sends every tile unpacked."""
    from sktap._engine import _kernels

    calls = []
    chooser = _kernels.packing_beats_shapes

    def counted(*args):
        packed = chooser(*args)
        calls.append(packed)
        return packed

    monkeypatch.setattr(_kernels, "packing_beats_shapes", counted)

    def off():
        monkeypatch.setattr(_kernels, "packing_beats_shapes", lambda *a: False)

    counted.calls, counted.off = calls, off
    return counted


@pytest.mark.parametrize("symmetric", [False, True, "divergence"])
@pytest.mark.parametrize("dtype", [None, "float64", "bfloat16"])
def test_cdist_tap_packs_tiles_exactly(tile_paths, symmetric, dtype):
    rng = np.random.default_rng(1)
    X = [rng.standard_normal((n, 3)) for n in rng.integers(2, 40, 30)]
    Y = [rng.standard_normal((n, 3)) for n in rng.integers(2, 40, 9)]
    torch.manual_seed(0)
    net = TAPNet((8,), (5, 3))
    kw = dict(net=net, symmetric=symmetric, dtype=dtype, working_memory=1)
    packed = cdist_tap(X, Y, **kw)
    assert any(tile_paths.calls)  # several tiles, packed
    tile_paths.off()
    plain = cdist_tap(X, Y, **kw)
    assert packed.dtype == plain.dtype
    tol = {"float64": 1e-12, "bfloat16": 1e-4}.get(dtype, 2e-6)
    np.testing.assert_allclose(packed, plain, rtol=tol, atol=tol)


def test_packing_pays_on_spread_lengths_only():
    # measured (sktap/_thresholds.py, PACKED_CALL_CELLS): packing wins where
    # lengths spread, buckets where every sequence has one length
    net = TAPNet((8,), (5, 3))
    spread = np.random.default_rng(0).integers(7, 95, 16)
    assert packing_pays(spread, spread, net)
    assert not packing_pays(np.full(16, 64), np.full(16, 64), net)
    # the gaps: one halo of zero cells after every sequence, each side
    cells = packed_cells([10, 20], [5], net)
    with sktap.config_context(shape_rounding=False):
        assert packed_cells([10, 20], [5], net) == (10 + 2 + 20 + 2) * (5 + 2)
    assert cells >= (10 + 2 + 20 + 2) * (5 + 2)


@pytest.fixture
def packed_calls(monkeypatch):
    """Counts the training step's calls of the packed computation."""
    from sktap.metric_learning import _steps

    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return tap_pairwise_packed(*args, **kwargs)

    monkeypatch.setattr(_steps, "tap_pairwise_packed", counted)
    return calls


def test_training_with_packed_grids_equals_buckets(monkeypatch, packed_calls):
    # spread lengths, so that packing pays; the same losses and weights as
    # the bucketed computation, within float32 rounding
    monkeypatch.setattr(_thresholds, "MINED_MIN_MACS", 0)
    rng = np.random.RandomState(5)
    X = [rng.randn(rng.randint(3, 60), 2) + 2 * (i % 3) for i in range(24)]
    y = np.arange(24) % 3
    kw = dict(
        encoder="mlp",
        hidden_layer_sizes=(8,),
        n_components=4,
        tap_channels=(4,),
        batch_size=12,
        max_epochs=3,
        random_state=0,
        device="cpu",
    )
    lengths = np.array([len(s) for s in X])
    assert packing_pays(lengths[:12], lengths[:12], TAPNet((4,), (5, 3)))
    packed = TAPMetricLearner(**kw).fit(X, y)
    assert packed_calls  # the packed computation really ran
    monkeypatch.setattr(_thresholds, "PACKED_CALL_CELLS", float("inf"))
    del packed_calls[:]
    bucketed = TAPMetricLearner(**kw).fit(X, y)
    assert not packed_calls
    np.testing.assert_allclose(
        [h["metric_loss"] for h in packed.history_],
        [h["metric_loss"] for h in bucketed.history_],
        rtol=1e-4,
        atol=1e-6,
    )
    for k, v in packed.model_.state_dict().items():
        np.testing.assert_allclose(
            v, bucketed.model_.state_dict()[k], rtol=1e-3, atol=1e-5
        )


def test_packed_training_repeats_exactly_with_two_threads(packed_calls):
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rng = np.random.RandomState(0)
        X = [np.cumsum(rng.randn(rng.randint(20, 400), 1), 0) for _ in range(32)]
        y = np.arange(32) % 4
        fits = [
            TAPMetricLearner(max_epochs=2, device="cpu", random_state=0).fit(X, y)
            for _ in range(2)
        ]
    finally:
        torch.set_num_threads(old)
    assert packed_calls
    first, second = (f.model_.state_dict() for f in fits)
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=8),
    density=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**16),
    net=st.sampled_from(sorted(NETS)),
    shuffled=st.booleans(),
    rounding=st.booleans(),
    call_cells=st.sampled_from([0, 50, 10**9]),  # a group per band .. one
    strips=st.booleans(),  # the first layer's weight gradient on row strips
)
def test_packed_pairs_equal_tap_pairs_with_gradients(
    lengths, density, seed, net, shuffled, rounding, call_cells, strips
):
    rng = np.random.default_rng(seed)
    x, lx = _batch(rng, lengths)
    n = len(lengths)
    chosen = rng.random((n, n)) < density
    chosen[rng.integers(n), rng.integers(n)] = True
    rows, cols = np.nonzero(chosen)
    if shuffled:  # pairs need not come sorted by source
        order = rng.permutation(len(rows))
        rows, cols = rows[order], cols[order]
    net = NETS[net](seed)
    params = [x, *([] if net is None else net.parameters())]
    w = torch.as_tensor(rng.standard_normal(len(rows)))
    with (
        sktap.config_context(shape_rounding=rounding),
        mock.patch.object(_thresholds, "DISTANCE_CALL_CELLS", call_cells),
        mock.patch.object(_thresholds, "CPU_STRIPS_MIN_CELLS", 1 if strips else 10**18),
    ):
        packed = tap_pairs_packed(x, lx, rows, cols, net)
        ref = tap_pairs(x, lx, rows, cols, net)
    # a self-pair's zero frame distances come out of the float64 expansion
    # (sktap.core._tap._WideEuclidean) as the square root of its rounding,
    # about sqrt(eps) = 1.5e-8 times the frames' norms (up to about 4 here),
    # in each product (each grouping and placement of bands) its own way;
    # the network's large weights here carried that to 2.4e-7 on one
    # distance (of 0.35) and its gradients, in 40 runs of this test
    same = torch.as_tensor(rows == cols)
    torch.testing.assert_close(packed[same], ref[same], rtol=1e-10, atol=1e-6)
    torch.testing.assert_close(packed[~same], ref[~same], rtol=1e-10, atol=1e-9)
    others = w.masked_fill(same, 0.0)

    def grads(dist):  # weighted by ``others``, then by ``w``
        tight = torch.autograd.grad((dist * others).sum(), params, retain_graph=True)
        return tight, _grads(dist, w, params)

    (tight, loose), (tight_ref, loose_ref) = grads(packed), grads(ref)
    for a, b in zip(tight, tight_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(loose, loose_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("net", [None, TAPNet((8,), (5, 3))])
def test_packed_pairs_do_not_depend_on_the_other_pairs(net):
    # each pair's block, softmax and sums are its own, wherever the other
    # pairs put it on the shelves
    rng = np.random.default_rng(7)
    x, lx = _batch(rng, rng.integers(1, 40, 10), dtype=torch.float32)
    rows, cols = np.nonzero(rng.random((10, 10)) < 0.4)
    with torch.no_grad():
        whole = tap_pairs_packed(x, lx, rows, cols, net)
        for keep in (rows % 2 == 0, cols < 4, np.arange(len(rows)) % 3 == 1):
            part = tap_pairs_packed(x, lx, rows[keep], cols[keep], net)
            assert torch.equal(part, whole[keep])


def test_distance_groups_cover_every_band_once(monkeypatch):
    from sktap.core._packed import _distance_groups

    rows = np.array([10, 90, 12, 88, 50])
    cols = np.array([400, 30, 380, 35, 200])
    monkeypatch.setattr(_thresholds, "DISTANCE_CALL_CELLS", 2000)
    groups = _distance_groups(rows, cols)
    assert sorted(k for members, _, _ in groups for k in members) == list(range(5))
    for members, R, C in groups:  # each group padded to its largest band
        assert R == rows[members].max() and C == cols[members].max()
    # the tall narrow bands and the short wide ones do not share a product
    assert {frozenset(m) for m, _, _ in groups} >= {
        frozenset({1, 3}),
        frozenset({0, 2}),
    }
    monkeypatch.setattr(_thresholds, "DISTANCE_CALL_CELLS", 10**9)
    assert len(_distance_groups(rows, cols)) == 1
    monkeypatch.setattr(_thresholds, "DISTANCE_CALL_CELLS", 0)
    assert len(_distance_groups(rows, cols)) == 5


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rounding", [True, False])
def test_block_shelves_keep_blocks_apart_and_bands_in_order(seed, rounding):
    from sktap.core._packed import _block_shelves

    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 120, 20)
    rows, cols = np.nonzero(rng.random((20, 20)) < rng.uniform(0.02, 0.6))
    if not len(rows):
        rows, cols = np.array([0]), np.array([1])
    gap = 2
    with sktap.config_context(shape_rounding=rounding):
        top, left, (H, W) = _block_shelves(lengths, lengths, rows, cols, gap)
    heights, widths = lengths[rows] + gap, lengths[cols] + gap
    bottom, right = top + heights, left + widths
    # every block with its gap inside the image, no two within a gap
    assert top.min() >= 0 and left.min() >= 0
    assert bottom.max() <= H and right.max() <= W
    apart = (
        (bottom[:, None] <= top[None, :])
        | (bottom[None, :] <= top[:, None])
        | (right[:, None] <= left[None, :])
        | (right[None, :] <= left[:, None])
    )
    np.fill_diagonal(apart, True)
    assert apart.all()
    if rounding:
        assert H == _thresholds.round_up_length(H)
        assert W == _thresholds.round_up_length(W)
    # a source's pairs follow one another, left to right then down
    for a in np.unique(rows):
        mine = np.flatnonzero(rows == a)
        assert (np.diff(top[mine] * W + left[mine]) > 0).all()
    # the image is no larger than the blocks' own area calls for: one
    # shelf per distinct height at most, each as wide as the widest fill
    assert H * W <= 2.0 * (heights * widths).sum() + H * widths.max()


def test_packed_pairs_input_errors():
    x = torch.zeros(3, 4, 2)
    with pytest.raises(ValueError, match="not be empty"):
        tap_pairs_packed(x, [4, 2, 1], [], [])
    with pytest.raises(ValueError, match=r"index 0\.\.2"):
        tap_pairs_packed(x, [4, 2, 1], [0, 3], [1, 1])
    with pytest.raises(ValueError, match="lengths must lie"):
        tap_pairs_packed(x, [4, 5, 1], [0], [1])
    with pytest.raises(TypeError, match="TAPTransNet cannot be packed"):
        tap_pairs_packed(x, [4, 2, 1], [0], [1], TAPTransNet(2))


def test_pairs_packing_pays_on_many_shapes_only():
    net = TAPNet((8,), (5, 3))
    lengths = np.arange(7, 95, 5)  # 18 sequences, each of its own length
    rows, cols = np.nonzero(np.random.default_rng(0).random((18, 18)) < 0.3)
    assert pairs_packing_pays(lengths, rows, cols, net)
    # one pair: its exact block beats a rounded image with the same calls
    assert not pairs_packing_pays(lengths, [3], [5], net)
    assert not pairs_packing_pays(lengths, rows, cols, TAPTransNet(2))
    assert not pairs_packing_pays(lengths, [], [], net)
