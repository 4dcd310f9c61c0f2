"""Math of the core: properties, exact batching, gradients."""

from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import sktap
from sktap import TAPNet, TAPTransNet, _thresholds
from sktap.core import tap_pairs, tap_pairwise_bucketed
from sktap.functional import frame_distances, tap_paired, tap_pairwise
from sktap.metrics import cdist_tap, tap_alignment, tap_distance

from .conftest import random_sequences


def _padded(seqs, dtype=torch.float32):
    lengths = [len(s) for s in seqs]
    out = torch.zeros(len(seqs), max(lengths), seqs[0].shape[1], dtype=dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=dtype)
    return out, torch.tensor(lengths)


def _reference_tap(x, y, net=None):
    """Per-pair TAP written out from the five steps of the method, unbatched."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    Lx, Ly = len(x), len(y)
    D = torch.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    i = torch.arange(1, Lx + 1, dtype=torch.float64)[:, None] / Lx
    j = torch.arange(1, Ly + 1, dtype=torch.float64)[None, :] / Ly
    P = (i - j).abs()
    with torch.no_grad():
        g = 0 if net is None else net.double().correction(D[None], P[None], None)[0]
    A = torch.softmax(-(D + g), dim=1)
    T = A / Lx
    return float((T * D).sum()), T.numpy()


sequence_sets = st.integers(1, 5).flatmap(
    lambda n: st.lists(
        st.integers(1, 12).flatmap(
            lambda L: arrays(np.float64, (L, 2), elements=st.floats(-10, 10, width=32))
        ),
        min_size=n,
        max_size=n,
    )
)


@settings(max_examples=30, deadline=None)
@given(X=sequence_sets, Y=sequence_sets)
def test_alignment_properties(X, Y):
    torch.manual_seed(0)
    net = TAPNet(channels=(4,), kernel_sizes=(3, 3))
    for x in X[:2]:
        for y in Y[:2]:
            T = tap_alignment(x, y, net=net)
            assert (T >= 0).all()
            np.testing.assert_allclose(T.sum(axis=1), 1 / len(x), rtol=1e-5)
    D = cdist_tap(X, Y, net=net, device="cpu")
    assert np.isfinite(D).all() and (D >= 0).all()


# Tiles of one sequence per side (a tiny working memory): with shape
# rounding (sktap.config_context), here on the CPU too, each is padded
# beyond its longest sequence, up to a size of the grid; without, to its
# longest exactly.
ONE_PER_TILE = 1e-4  # MiB


def _tile_rounding(rounding):
    return mock.patch.multiple(
        _thresholds, ROUNDED_TILE_DEVICES=("cpu",) if rounding else ()
    )


@settings(max_examples=20, deadline=None)
@given(X=sequence_sets, Y=sequence_sets, rounding=st.booleans())
def test_batched_equals_per_pair_hypothesis(X, Y, rounding):
    torch.manual_seed(1)
    net = TAPNet(channels=(5, 5), kernel_sizes=(3, 5, 3)).double()
    with sktap.config_context(shape_rounding=rounding), _tile_rounding(rounding):
        D = cdist_tap(X, Y, net=net, dtype="float64", device="cpu")
        tiled = cdist_tap(
            X, Y, net=net, dtype="float64", device="cpu", working_memory=ONE_PER_TILE
        )
    ref = np.array([[_reference_tap(x, y, net)[0] for y in Y] for x in X])
    np.testing.assert_allclose(D, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tiled, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("rounding", [True, False])
@pytest.mark.parametrize("net_factory", [lambda: None, TAPNet])
def test_batched_equals_per_pair_float32(rng, net_factory, rounding):
    torch.manual_seed(0)
    net = net_factory()
    X = random_sequences(rng, 9, 3, 1, 60)
    X[0] = X[0][:1]  # a length-1 sequence
    Y = random_sequences(rng, 7, 3, 1, 60)
    with sktap.config_context(shape_rounding=rounding), _tile_rounding(rounding):
        D = cdist_tap(X, Y, net=net, device="cpu", working_memory=ONE_PER_TILE)
    ref = np.array([[tap_distance(x, y, net=net) for y in Y] for x in X])
    np.testing.assert_allclose(D, ref, rtol=1e-5)
    if net is not None:
        ref64 = np.array([[_reference_tap(x, y, net)[0] for y in Y] for x in X])
        np.testing.assert_allclose(D, ref64, rtol=1e-5)


@pytest.mark.parametrize("rounding", [True, False])
@pytest.mark.parametrize("with_net", [False, True])
def test_bucketed_equals_unpadded_per_pair(rng, with_net, rounding):
    # distances and gradients (frames and network) of the length buckets,
    # each padded beyond its longest sequence when rounding, against each
    # pair computed alone at its own lengths
    torch.manual_seed(0)
    net = TAPNet(channels=(4,), kernel_sizes=(3, 3)).double() if with_net else None
    params = [] if net is None else list(net.parameters())
    X = random_sequences(rng, 9, 3, 1, 45)
    Y = random_sequences(rng, 6, 3, 1, 45)
    x, lx = _padded(X, torch.float64)
    y, ly = _padded(Y, torch.float64)
    x.requires_grad_(True)
    y.requires_grad_(True)
    rows = torch.as_tensor(rng.integers(0, 9, 30))  # repeats on purpose
    cols = torch.as_tensor(rng.integers(0, 6, 30))

    def per_pair(i, j):
        return tap_paired(
            x[i : i + 1, : lx[i]],
            lx[i : i + 1],
            y[j : j + 1, : ly[j]],
            ly[j : j + 1],
            net,
        )[0]

    with sktap.config_context(shape_rounding=rounding):
        got = {
            "pairs": tap_pairs(x, lx, rows, cols, net, y=y, y_lengths=ly),
            "all": tap_pairwise_bucketed(x, lx, y, ly, net),
        }
    want = {
        "pairs": torch.stack([per_pair(i, j) for i, j in zip(rows, cols)]),
        "all": torch.stack(
            [torch.stack([per_pair(i, j) for j in range(6)]) for i in range(9)]
        ),
    }
    for key in got:
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12)
        w = torch.as_tensor(rng.normal(size=got[key].shape))
        grads = [
            torch.autograd.grad((w * out[key]).sum(), [x, y, *params])
            for out in (got, want)
        ]
        for a, b in zip(*grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_alignment_matches_reference(rng):
    torch.manual_seed(0)
    net = TAPNet()
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(4, 2))
    T = tap_alignment(x, y, net=net)
    np.testing.assert_allclose(T, _reference_tap(x, y, net)[1], rtol=1e-5, atol=1e-7)


def test_pairwise_alignment_equals_unpadded(rng):
    torch.manual_seed(0)
    net = TAPNet()
    X = random_sequences(rng, 3, 2, 2, 9)
    Y = random_sequences(rng, 2, 2, 2, 9)
    x, lx = _padded(X)
    y, ly = _padded(Y)
    with torch.no_grad():
        _, T = tap_pairwise(x, lx, y, ly, net, return_alignment=True)
    for i, xi in enumerate(X):
        for j, yj in enumerate(Y):
            block = T[i, j, : len(xi), : len(yj)].numpy()
            np.testing.assert_allclose(block, tap_alignment(xi, yj, net=net), atol=1e-7)
            assert T[i, j, len(xi) :].abs().sum() == 0
            assert T[i, j, :, len(yj) :].abs().sum() == 0


def test_paired_equals_pairwise_diagonal(rng):
    torch.manual_seed(0)
    net = TAPNet()
    x, lx = _padded(random_sequences(rng, 4, 3, 1, 20))
    y, ly = _padded(random_sequences(rng, 4, 3, 1, 20))
    with torch.no_grad():
        d_pair = tap_paired(x, lx, y, ly, net)
        d_all = tap_pairwise(x, lx, y, ly, net)
    torch.testing.assert_close(d_pair, torch.diagonal(d_all), rtol=1e-5, atol=1e-6)


def test_order_of_pairs_is_irrelevant(rng):
    net = TAPNet()
    X = random_sequences(rng, 6, 2, 1, 30)
    Y = random_sequences(rng, 5, 2, 1, 30)
    D = cdist_tap(X, Y, net=net)
    px, py = rng.permutation(6), rng.permutation(5)
    Dp = cdist_tap([X[i] for i in px], [Y[j] for j in py], net=net)
    np.testing.assert_allclose(Dp, D[np.ix_(px, py)], rtol=1e-5)


def test_symmetric_is_mean_of_both_directions(rng):
    net = TAPNet()
    X = random_sequences(rng, 4, 2, 1, 15)
    Y = random_sequences(rng, 3, 2, 1, 15)
    fwd = cdist_tap(X, Y, net=net)
    back = cdist_tap(Y, X, net=net)
    np.testing.assert_allclose(
        cdist_tap(X, Y, net=net, symmetric=True), (fwd + back.T) / 2, rtol=1e-5
    )
    assert tap_distance(X[0], Y[0], net=net, symmetric=True) == pytest.approx(
        (fwd[0, 0] + back[0, 0]) / 2, rel=1e-5
    )


def test_parameter_free_by_hand():
    # x = [0], y = [0, 1]: D = [0, 1], A = softmax([0, -1]), tap = A[1]
    expected = np.exp(-1) / (1 + np.exp(-1))
    assert tap_distance([0.0], [0.0, 1.0]) == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(
        tap_alignment([0.0], [0.0, 1.0]), [[1 / (1 + np.exp(-1)), expected]], rtol=1e-6
    )


def test_transnet_formula_and_batching(rng):
    torch.manual_seed(0)
    net = TAPTransNet(2, n_components=3, position_weight=50.0).double()
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(3, 2))
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    with torch.no_grad():
        q, k = net.query(xt), net.key(yt)
    P = (torch.arange(1, 6.0)[:, None] / 5 - torch.arange(1, 4.0)[None] / 3).abs()
    S = -(torch.cdist(q, k) / np.sqrt(3) + 50 * P.double())
    T = torch.softmax(S, 1) / 5
    D = torch.cdist(xt, yt)
    assert tap_distance(x, y, net=net) == pytest.approx(float((T * D).sum()), rel=1e-9)
    X = random_sequences(rng, 4, 2, 1, 10)
    ref = np.array([[tap_distance(a, b, net=net) for b in X] for a in X])
    np.testing.assert_allclose(cdist_tap(X, net=net, dtype="float64"), ref, rtol=1e-9)


def test_gradcheck_through_distance(rng):
    torch.manual_seed(0)
    net = TAPNet(channels=(3,), kernel_sizes=(3, 3)).double()
    x, lx = _padded(random_sequences(rng, 2, 2, 2, 5), torch.float64)
    y, ly = _padded(random_sequences(rng, 2, 2, 2, 5), torch.float64)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: tap_pairwise(a, lx, b, ly, net, symmetric=True), (x, y)
    )
    w = net.convs[0].weight
    assert torch.autograd.gradcheck(
        lambda weight: tap_paired(
            x.detach(), lx, y.detach(), ly, _with_weight(net, weight)
        ),
        (w.detach().clone().requires_grad_(True),),
    )


def _with_weight(net, weight):
    class _Net(torch.nn.Module):
        def forward(self, x, y, D, P, mask):
            h = torch.stack((D, P), 1)
            h = torch.relu(
                torch.nn.functional.conv2d(h, weight, net.convs[0].bias, padding=1)
            )
            if mask is not None:
                h = h * mask
            return -(D + net.convs[1](h)[:, 0])

    return _Net()


def test_gradients_finite_for_identical_frames():
    x = torch.zeros(1, 3, 2, requires_grad=True)
    d = tap_pairwise(x, [3], x, [3], TAPNet())
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
    D = frame_distances(torch.ones(1, 2, 1), torch.ones(1, 2, 1))
    assert (D == 0).all()


def test_tapnet_layers_and_validation():
    net = TAPNet(channels=(30, 30, 30), kernel_sizes=(5, 5, 5, 3))
    assert [c.kernel_size[0] for c in net.convs] == [5, 5, 5, 3]
    assert net.convs[0].in_channels == 2 and net.convs[-1].out_channels == 1
    with pytest.raises(ValueError, match="kernel_sizes needs one entry per layer"):
        TAPNet(channels=(30,), kernel_sizes=(5, 5, 3))
    with pytest.raises(ValueError, match="positive odd integers"):
        TAPNet(kernel_sizes=(4, 5, 3))
    with pytest.raises(ValueError, match="channels must be positive integers"):
        TAPNet(channels=(0, 3))


@pytest.fixture
def by_shape_everywhere(monkeypatch):
    """TAPNet's CPU path by block shape on any batch, in small batches.

    Without this, the test sizes are below the work at which the path pays
    and the padded batch runs.
    """
    from sktap import _thresholds

    monkeypatch.setattr(_thresholds, "CPU_MIN_MACS_PER_THREAD", 0)
    monkeypatch.setattr(_thresholds, "CPU_BATCH_BYTES", 30 * 8 * 6 * 6 * 3)


@pytest.mark.parametrize("kernel_sizes", [(5, 5, 3), (3, 3, 5)])
def test_tapnet_by_shape_equals_padded(
    rng, monkeypatch, by_shape_everywhere, kernel_sizes
):
    # float64 distances and gradients (weights and frames) of the CPU path
    # by shape against the padded batch, on lengths that share and do not
    # share block shapes, 1-frame sequences included
    torch.manual_seed(0)
    net = TAPNet(channels=(30, 30), kernel_sizes=kernel_sizes).double()
    X = random_sequences(rng, 7, 3, 1, 9) + [rng.normal(size=(6, 3))] * 2
    Y = [*random_sequences(rng, 5, 3, 1, 9), rng.normal(size=(6, 3))]
    x, lx = _padded(X, torch.float64)
    y, ly = _padded(Y, torch.float64)

    def run():
        xg = x.clone().requires_grad_(True)
        dist, T = tap_pairwise(xg, lx, y, ly, net, return_alignment=True)
        weights = torch.randn(dist.shape, generator=torch.Generator().manual_seed(1))
        grads = torch.autograd.grad(
            (dist.double() * weights).sum(), [xg, *net.parameters()]
        )
        return dist, T, grads

    calls = []
    original = TAPNet._correction_by_shape
    monkeypatch.setattr(
        TAPNet,
        "_correction_by_shape",
        lambda self, *a: calls.append(len(a[-1])) or original(self, *a),
    )
    by_shape = run()
    assert calls and calls[0] > 5  # several block shapes, several batches
    monkeypatch.setattr(TAPNet, "_plan_by_shape", lambda self, *a: None)
    padded = run()
    torch.testing.assert_close(by_shape[0], padded[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(by_shape[1], padded[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(by_shape[2], padded[2]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("shape", [(40, 9, 7), (24, 1, 2), (16, 2, 1)])
@pytest.mark.parametrize("grad", [False, True])
def test_single_output_conv_equals_conv(k, shape, grad):
    # the 1x1-maps-and-shifted-adds form of a C -> 1 convolution, borders
    # included (maps shifted past a 1- or 2-frame edge)
    from sktap.core._nets import _single_output_conv

    C, H, W = shape
    torch.manual_seed(k + C)
    conv = torch.nn.Conv2d(C, 1, k, padding=k // 2).double()
    h = torch.randn(3, C, H, W, dtype=torch.float64, requires_grad=grad)
    with torch.set_grad_enabled(grad):
        out = _single_output_conv(conv, h)
        ref = conv(h)[:, 0]
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    if grad:
        w = torch.randn_like(ref)
        ga = torch.autograd.grad((out * w).sum(), [h, conv.weight, conv.bias])
        gb = torch.autograd.grad((ref * w).sum(), [h, conv.weight, conv.bias])
        for a, b in zip(ga, gb):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_tapnet_keeps_a_callers_own_mask(by_shape_everywhere):
    # a mask that is not one block per pair is applied as given (padded path)
    torch.manual_seed(0)
    net = TAPNet().double()
    D = torch.rand(3, 5, 6, dtype=torch.float64)
    P = torch.rand(3, 5, 6, dtype=torch.float64)
    mask = (torch.rand(3, 1, 5, 6) > 0.3).double()
    torch.testing.assert_close(
        net.correction(D, P, mask), net._correction_padded(D, P, mask)
    )
    # one block per pair, one of them empty: zeros there, the rest as padded
    block = torch.zeros(3, 1, 5, 6, dtype=torch.float64)
    block[0, :, :4, :2] = 1
    block[2, :, :5, :6] = 1
    g = net.correction(D * block[:, 0], P * block[:, 0], block)
    ref = net._correction_padded(D * block[:, 0], P * block[:, 0], block)
    assert torch.equal(g[1], torch.zeros(5, 6, dtype=torch.float64))
    torch.testing.assert_close(g * block[:, 0], ref * block[:, 0])


@pytest.mark.parametrize("d", [0, 1, 13, 70])
def test_cdist_by_channel_equals_cdist(rng, d):
    # the accelerators' frame distances, run here on the CPU, zero
    # distances (identical frames) included
    from sktap.core._tap import _cdist_by_channel

    x = torch.as_tensor(rng.normal(size=(4, 6, d)))
    y = torch.as_tensor(rng.normal(size=(4, 5, d)))
    if d:
        y[1, 2] = x[1, 3]  # a zero distance
    with torch.no_grad():
        out = _cdist_by_channel(x, y)
    torch.testing.assert_close(out, torch.cdist(x, y))
    if d:
        assert out[1, 3, 2] == 0


def _assert_same_function(out, ref, params, tol=None):
    """``out`` equals ``ref`` in value and in the gradients of a random
    weighting of it with respect to ``params``."""
    tol = {} if tol is None else {"rtol": tol, "atol": tol}
    torch.testing.assert_close(out, ref)
    w = torch.randn_like(ref)
    got = torch.autograd.grad((out * w).sum(), params, retain_graph=True)
    want = torch.autograd.grad((ref * w).sum(), params, retain_graph=True)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, **tol)
    return w, want


@pytest.mark.parametrize("by_rows", [True, False])
@pytest.mark.parametrize("k, channels, batch", [(3, 8, 2), (5, 4, 1), (3, 23, 3)])
def test_single_output_conv_gradients_equal_the_convolution(
    k, channels, batch, by_rows, monkeypatch
):
    from sktap import _thresholds
    from sktap.core._nets import _single_output_conv, _SingleOutputConv

    monkeypatch.setattr(_thresholds, "CPU_ROWS_MIN_VALUES", 0 if by_rows else 10**9)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, 1, k, padding=k // 2).double()
    h = torch.randn(batch, channels, 9, 13, dtype=torch.float64)
    h = h.contiguous(memory_format=torch.channels_last).requires_grad_()
    assert _SingleOutputConv.takes(h, conv)  # the path under test runs
    out = _single_output_conv(conv, h)
    _assert_same_function(out, conv(h)[:, 0], [h, conv.weight, conv.bias], 1e-10)
    small = h.detach()[:1, :, :4, :5].clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b, c: _SingleOutputConv.apply(a, b, c),
        (small, conv.weight.detach().clone().requires_grad_(), conv.bias.detach()),
    )


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(
    "k, channels, shape", [(3, 8, (2, 9, 13)), (5, 3, (1, 4, 2)), (1, 6, (2, 3, 5))]
)
def test_single_output_rows_equals_the_convolution(k, channels, shape, channels_last):
    """The last layer by kernel rows and one strided sum: the convolution's
    values, with or without autograd, in either memory layout, and its
    float32 sum under bfloat16 autocast."""
    from sktap.core._nets import _single_output_rows

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, 1, k, padding=k // 2).double()
    m, H, W = shape
    h = torch.randn(m, channels, H, W, dtype=torch.float64)
    if channels_last:
        h = h.contiguous(memory_format=torch.channels_last)
    h.requires_grad_()
    out = _single_output_rows(h, conv.weight, conv.bias)
    ref = conv(h)[:, 0]
    _assert_same_function(out, ref, [h, conv.weight, conv.bias])
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        low = _single_output_rows(h.float(), conv.weight.float(), conv.bias.float())
    assert low.dtype == torch.float32
    torch.testing.assert_close(low.double(), ref.detach(), rtol=0.05, atol=0.05)


@pytest.mark.parametrize(
    "k, channels, shape", [(5, 8, (2, 9, 13)), (3, 4, (1, 1, 7)), (7, 3, (3, 6, 2))]
)
def test_distance_input_conv_gradients_equal_the_convolution(k, channels, shape):
    from sktap.core._nets import _DistanceInputConv

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, channels, k, padding=k // 2).double()
    D = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    P = torch.rand(*shape, dtype=torch.float64)
    assert _DistanceInputConv.takes(D, P, conv)  # the path under test runs
    assert not _DistanceInputConv.takes(D.detach(), P, conv)
    assert not _DistanceInputConv.takes(D.float(), P.float(), conv)  # dtype
    out = _DistanceInputConv.apply(D, P, conv.weight, conv.bias)
    ref = conv(torch.stack((D, P), dim=1))
    params = [D, conv.weight, conv.bias]
    w, want = _assert_same_function(out, ref, params, 1e-10)
    # an output gradient in the plain layout takes the same path
    got = torch.autograd.grad(out, D, w.contiguous())[0]
    torch.testing.assert_close(got, want[0], rtol=1e-10, atol=1e-10)
    small = D.detach()[:1, :4, :5].clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b, c: _DistanceInputConv.apply(a, P[:1, :4, :5], b, c),
        (small, conv.weight.detach().clone().requires_grad_(), conv.bias.detach()),
    )


@pytest.mark.parametrize("H, cut", [(24, True), (27, True), (17, False), (6, False)])
def test_first_layer_weight_gradient_on_row_strips(monkeypatch, H, cut):
    """One image's weight and bias gradients, computed on row strips with
    their halos, equal the whole image's (zero rows at its edges)."""
    from sktap.core import _nets

    monkeypatch.setattr(_thresholds, "CPU_STRIPS_MIN_CELLS", 1)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # strips of 8+ rows
    assert (_nets._strips(1, H, 11) > 1) == cut  # 17 is prime, 6 too few rows
    assert _nets._strips(2, H, 11) == 1  # a minibatch goes whole
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 8, 5, padding=2).double()
    D = torch.randn(1, H, 11, dtype=torch.float64, requires_grad=True)
    P = torch.rand(1, H, 11, dtype=torch.float64)
    out = _nets._DistanceInputConv.apply(D, P, conv.weight, conv.bias)
    ref = conv(torch.stack((D, P), dim=1))
    _assert_same_function(out, ref, [D, conv.weight, conv.bias], 1e-10)


def test_tapnet_first_layer_gradient_path_equals_the_plain_one():
    """The network with its CPU gradient path gives the plain layers'
    gradients, padded with a mask, by shape and packed."""
    from sktap import TAPNet

    torch.manual_seed(1)
    net = TAPNet(channels=(8,), kernel_sizes=(5, 3)).double()
    D = torch.rand(3, 7, 9, dtype=torch.float64, requires_grad=True)
    P = torch.rand(3, 7, 9, dtype=torch.float64)
    mask = torch.ones(3, 1, 7, 9, dtype=torch.float64)
    mask[1, :, 5:] = 0
    mask[2, :, :, 4:] = 0
    Pm = P * mask[:, 0]

    def plain(D, P, mask):
        h = torch.stack((D, P), dim=1)
        h = torch.relu(net.convs[0](h)) * mask
        return net.convs[1](h)[:, 0]

    w = torch.randn(3, 7, 9, dtype=torch.float64)
    params = [D, *net.parameters()]
    from sktap.core._nets import _shape_batches, _valid_blocks

    plan = _shape_batches(_valid_blocks(mask), D.shape, 10_000)
    assert len(plan[1]) == 3  # three block shapes: three unpadded batches

    def by_shape(D, P, mask):
        return net._correction_by_shape(D, P, *plan)

    for path in (net._correction_padded, by_shape):
        got = path(D * mask[:, 0], Pm, mask)
        want = plain(D * mask[:, 0], Pm, mask)
        torch.testing.assert_close(got * mask[:, 0], want * mask[:, 0])
        a = torch.autograd.grad((got * mask[:, 0] * w).sum(), params)
        b = torch.autograd.grad((want * mask[:, 0] * w).sum(), params)
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)


def test_relu_zeroed_in_place_has_the_relu_times_mask_gradient():
    from sktap.core._nets import _ReluZeroed

    torch.manual_seed(1)
    h = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(2, 1, 5, 6) > 0.3).double()
    gaps = torch.tensor([1, 4]), torch.tensor([0, 5])
    grid = torch.ones(1, 1, 5, 6, dtype=torch.float64)
    grid[:, :, gaps[0]] = 0
    grid[:, :, :, gaps[1]] = 0
    w = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    for zero_mask, zero_gaps, ref_mask in ((mask, None, mask), (None, gaps, grid)):
        out = _ReluZeroed.apply(h * 1.0, zero_mask, zero_gaps)
        ref = torch.relu(h) * ref_mask
        torch.testing.assert_close(out, ref)
        (got,) = torch.autograd.grad((out * w).sum(), h)
        (want,) = torch.autograd.grad((ref * w).sum(), h)
        torch.testing.assert_close(got, want)


def test_wide_euclidean_matches_cdist_and_its_gradient():
    from sktap.core._tap import _cdist, _WideEuclidean

    torch.manual_seed(2)
    x = torch.randn(3, 7, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 6, 5, dtype=torch.float64)
    y[0, 2] = x[0, 3].detach()  # a zero distance: gradient 0 there, as torch's
    y.requires_grad_()
    D = _cdist(x, y)
    assert D.grad_fn is not None and "_WideEuclidean" in type(D.grad_fn).__name__
    ref = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")
    torch.testing.assert_close(D, ref, rtol=1e-12, atol=1e-7)
    g = torch.randn_like(ref)
    for a, b in zip(
        torch.autograd.grad((D * g).sum(), (x, y)),
        torch.autograd.grad((ref * g).sum(), (x, y)),
    ):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-7)
    away = torch.ones_like(ref, dtype=torch.bool)
    away[0, 3, 2] = False  # gradcheck away from the kink at 0
    assert torch.autograd.gradcheck(
        lambda a, b: _WideEuclidean.apply(a, b)[away], (x, y)
    )
    # float32 frames: float32 distances, within float32 rounding of cdist
    x32, y32 = x.detach().float().requires_grad_(), y.detach().float()
    D32 = _cdist(x32, y32)
    assert D32.dtype == torch.float32
    torch.testing.assert_close(D32, ref.float(), rtol=1e-5, atol=1e-5)
