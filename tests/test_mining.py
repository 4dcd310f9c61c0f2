"""Mine-then-recompute training and length-bucketed TAP equal the plain versions."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sktap
from sktap.core._bucketed import (
    _plan_pairs,
    padding_ratio,
    tap_pairs,
    tap_pairwise_bucketed,
)
from sktap.core._nets import TAPNet
from sktap.core._tap import tap_paired, tap_pairwise
from sktap.losses._metric import get_metric_loss
from sktap.losses._mining import loss_from_pairs, mined_pairs, mining_fraction

F64 = torch.float64


def _batch(seed, n, d=3, lengths=(1, 30), dtype=F64):
    g = torch.Generator().manual_seed(seed)
    lx = torch.randint(lengths[0], lengths[1] + 1, (n,), generator=g)
    x = torch.randn(n, int(lx.max()), d, generator=g, dtype=dtype)
    x = x * (torch.arange(x.shape[1])[None, :, None] < lx[:, None, None])
    return x.requires_grad_(), lx


def _net(seed):
    torch.manual_seed(seed)  # tests only: library code never seeds globally
    return TAPNet(channels=(4,), kernel_sizes=(3, 3)).double()


def _grads(out, weights, net, inputs):
    """Gradients of ``sum(weights * out)`` w.r.t. the inputs and net params."""
    params = [] if net is None else list(net.parameters())
    return torch.autograd.grad((weights * out).sum(), [*inputs, *params])


def _assert_close(a, b, rtol, atol):
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, rtol=rtol, atol=atol)


# -- bucketed TAP ------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_net", [False, True])
@pytest.mark.parametrize(
    "plan", [{}, {"max_padding": 1.0}, {"max_cells": 200}, {"max_padding": 50.0}]
)
def test_tap_pairs_equals_tap_paired(seed, with_net, plan):
    x, lx = _batch(seed, 9)
    y, ly = _batch(seed + 100, 7)
    net = _net(seed) if with_net else None
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, 9, (40,), generator=g)  # repeats on purpose
    cols = torch.randint(0, 7, (40,), generator=g)
    got = tap_pairs(x, lx, rows, cols, net, y=y, y_lengths=ly, **plan)
    want = tap_paired(x[rows], lx[rows], y[cols], ly[cols], net)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    w = torch.randn(40, generator=g, dtype=F64)
    _assert_close(
        _grads(got, w, net, [x, y]), _grads(want, w, net, [x, y]), 1e-10, 1e-10
    )


def test_tap_pairs_defaults_to_self_and_keeps_dtype():
    x, lx = _batch(3, 6, dtype=torch.float32)
    rows, cols = torch.tensor([0, 5, 2]), torch.tensor([4, 5, 0])
    got = tap_pairs(x, lx, rows, cols)
    assert got.dtype == torch.float32
    want = tap_paired(x[rows], lx[rows], x[cols], lx[cols])
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("with_net", [False, True])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("n_buckets", [None, 1, 3, 100])
def test_tap_pairwise_bucketed_equals_tap_pairwise(
    seed, with_net, symmetric, n_buckets
):
    x, lx = _batch(seed, 8)
    y, ly = _batch(seed + 50, 5)
    net = _net(seed) if with_net else None
    got = tap_pairwise_bucketed(
        x, lx, y, ly, net, symmetric=symmetric, n_buckets=n_buckets
    )
    want = tap_pairwise(x, lx, y, ly, net, symmetric=symmetric)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    w = torch.randn(8, 5, generator=torch.Generator().manual_seed(seed), dtype=F64)
    _assert_close(
        _grads(got, w, net, [x, y]), _grads(want, w, net, [x, y]), 1e-10, 1e-10
    )


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=40),
    seed=st.integers(0, 2**16),
    max_padding=st.floats(1.0, 3.0),
    max_cells=st.one_of(st.none(), st.integers(1, 3000)),
)
def test_pair_plan_covers_every_pair_within_its_bounds(
    lengths, seed, max_padding, max_cells
):
    rng = np.random.default_rng(seed)
    lx = np.asarray(lengths)
    ly = rng.integers(1, 31, len(lx))
    order, buckets = _plan_pairs(lx, ly, max_cells, max_padding)
    assert sorted(order.tolist()) == list(range(len(lx)))
    assert buckets[0][0] == 0 and buckets[-1][1] == len(lx)
    for (s, e, mx, my), nxt in zip(buckets, [*buckets[1:], None]):
        sel = order[s:e]
        assert (mx, my) == (lx[sel].max(), ly[sel].max())
        cells = (e - s) * mx * my
        assert cells <= max_padding * (lx[sel] * ly[sel]).sum() + 1e-9
        assert max_cells is None or cells <= max_cells or e - s == 1
        assert nxt is None or nxt[0] == e


@pytest.mark.parametrize(
    "rounding, all_bound, mined_bound", [(False, 1.3, 1.2), (True, 1.5, 1.5)]
)
def test_padding_ratio_on_lengths_7_to_30(
    rounding, all_bound, mined_bound, monkeypatch
):
    # with the shape grid a bucket pads up to 7 more frames of 7-30
    # (measured: 1.28 and 1.41 against 1.15 and 1.18 without); the selected
    # pairs' buckets without the per-call allowance (tested below)
    from sktap import _thresholds

    monkeypatch.setattr(_thresholds, "PAIRS_CALL_CELLS", 0)
    lengths = np.random.default_rng(0).integers(7, 31, 64)
    rows, cols = np.nonzero(np.ones((64, 64)))
    with sktap.config_context(shape_rounding=rounding):
        assert padding_ratio(lengths, bucketed=False) > 1.8  # to the longest
        assert 1 <= padding_ratio(lengths) <= all_bound
        assert 1 <= padding_ratio(lengths, rows=rows, cols=cols) <= mined_bound
        assert padding_ratio([5, 5, 5], n_buckets=2) == 1.0


def test_a_few_pairs_of_spread_lengths_share_a_call():
    # the per-call allowance (PAIRS_CALL_CELLS): 6 pairs of 7-94 frames fit
    # in one padded call; without it nearly every pair is its own bucket
    from sktap import _thresholds

    lx = np.array([7, 20, 35, 50, 70, 94])
    ly = np.array([90, 12, 60, 33, 8, 75])
    allowance = _thresholds.PAIRS_CALL_CELLS
    order, buckets = _plan_pairs(lx, ly, None, 1.2, allowance)
    assert len(buckets) <= 2
    assert len(_plan_pairs(lx, ly, None, 1.2, 0)[1]) >= 5
    for s, e, mx, my in buckets:
        sel = order[s:e]
        assert (e - s) * mx * my <= 1.2 * (lx[sel] * ly[sel]).sum() + allowance


def test_bucketed_input_errors():
    x, lx = _batch(0, 3)
    with pytest.raises(ValueError, match="rows and cols must be 1-D of the same"):
        tap_pairs(x, lx, [0, 1], [0])
    with pytest.raises(ValueError, match=r"cols must index 0\.\.2"):
        tap_pairs(x, lx, [0], [3])
    with pytest.raises(ValueError, match="y and y_lengths must be given together"):
        tap_pairs(x, lx, [0], [1], y=x)
    with pytest.raises(ValueError, match=r"max_padding must be >= 1; got 0\.5"):
        tap_pairs(x, lx, [0], [1], max_padding=0.5)
    with pytest.raises(ValueError, match="n_buckets must be a positive int; got 0"):
        tap_pairwise_bucketed(x, lx, x, lx, n_buckets=0)


# -- mining ------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["triplet", "binomial"])
@pytest.mark.parametrize("margin", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("seed", range(5))
def test_mined_pairs_are_exactly_the_pairs_with_gradient(loss, margin, seed):
    g = torch.Generator().manual_seed(seed)
    dist = torch.rand(12, 12, generator=g, dtype=F64).requires_grad_()
    labels = torch.randint(0, 3, (12,), generator=g)
    get_metric_loss(loss, margin=margin)(dist, labels).backward()
    rows, cols = mined_pairs(dist, labels, loss, margin=margin)
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[rows, cols] = True
    assert torch.equal(dist.grad != 0, mask)


def _train_losses(loss, seed, labels, detached="bucketed", **params):
    """(value, grads) all-pairs and mined + bucketed, float64.

    ``detached``: how the matrix to mine is computed ("plain", "bucketed"),
    or None to mine there but not pass it to ``loss_from_pairs``.
    """
    x, lx = _batch(seed, len(labels))
    net = _net(seed)
    full = tap_pairwise(x, lx, x, lx, net)
    want = get_metric_loss(loss, **params)(full, labels)
    want_g = _grads(want, 1.0, net, [x])
    with torch.no_grad():
        fn = tap_pairwise if detached == "plain" else tap_pairwise_bucketed
        dist = fn(x, lx, x, lx, net)
    rows, cols = mined_pairs(dist, labels, loss, **params)
    pair_dist = tap_pairs(x, lx, rows, cols, net)
    kw = {} if detached is None else {"dist": dist}
    got = loss_from_pairs(pair_dist, rows, cols, labels, len(labels), loss, **kw)
    return want, want_g, got, _grads(got, 1.0, net, [x]), rows


@pytest.mark.parametrize("loss", ["triplet", "binomial"])
@pytest.mark.parametrize("detached", ["plain", "bucketed", None])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mined_bucketed_step_equals_all_pairs(loss, detached, seed):
    labels = torch.arange(12) % 3
    want, want_g, got, got_g, rows = _train_losses(loss, seed, labels, detached)
    assert 0 < mining_fraction(rows, 12) < 1  # the test exercises a real subset
    assert float(want.detach()) > 0
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    _assert_close(got_g, want_g, 1e-6, 1e-12)


def test_loss_mines_on_the_detached_matrix_whatever_the_recomputation():
    # Recomputed values that round differently (here: noise far beyond
    # rounding) must not change which pairs the loss mines.
    g = torch.Generator().manual_seed(0)
    dist = torch.rand(12, 12, generator=g, dtype=F64)
    labels = torch.arange(12) % 3
    rows, cols = mined_pairs(dist, labels, "triplet")
    noisy = dist[rows, cols] + 1e-3 * torch.randn(len(rows), generator=g)
    noisy = noisy.to(F64).requires_grad_()
    got = loss_from_pairs(noisy, rows, cols, labels, 12, "triplet", dist=dist)
    leaf = dist.clone().requires_grad_()
    want = get_metric_loss("triplet")(leaf, labels)
    assert torch.equal(got, want)
    got.backward()
    want.backward()
    assert torch.equal(noisy.grad, leaf.grad[rows, cols])


@pytest.mark.parametrize("detached", ["plain", None])
def test_single_class_batch_gives_zero_loss_and_finite_grads(detached):
    labels = torch.zeros(6, dtype=torch.long)
    for loss in ("triplet", "binomial"):
        want, want_g, got, got_g, rows = _train_losses(loss, 0, labels, detached)
        assert len(rows) == 0 and mining_fraction(rows, 6) == 0
        assert float(got.detach()) == float(want.detach()) == 0
        for a, b in zip(got_g, want_g, strict=True):
            assert torch.isfinite(a).all() and torch.equal(a, b)


def test_lifted_needs_all_pairs():
    dist, labels = torch.rand(4, 4), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="lifted structure loss needs all pairs"):
        mined_pairs(dist, labels, "lifted")
    with pytest.raises(ValueError, match="lifted structure loss needs all pairs"):
        loss_from_pairs(dist[0, :1], [0], [1], labels, 4, "lifted")


def test_loss_modules_and_errors():
    dist = torch.tensor([[0.0, 0.3, 0.35], [0.3, 0.0, 0.9], [0.35, 0.9, 0.0]])
    labels = torch.tensor([0, 0, 1])
    module = get_metric_loss("triplet", margin=0.2)
    r1, c1 = mined_pairs(dist, labels, module)
    r2, c2 = mined_pairs(dist, labels, "triplet", margin=0.2)
    assert torch.equal(r1, r2) and torch.equal(c1, c2)
    got = loss_from_pairs(dist[r1, c1], r1, c1, labels, 3, module, dist=dist)
    assert torch.equal(got, module(dist, labels))
    with pytest.raises(TypeError, match="loss parameters go with a loss name"):
        mined_pairs(dist, labels, module, margin=0.1)
    with pytest.raises(ValueError, match="unknown metric loss 'hinge'"):
        mined_pairs(dist, labels, "hinge")
    with pytest.raises(ValueError, match=r"must have the same shape \(n_pairs,\)"):
        loss_from_pairs(dist[0], [0], [1], labels, 3, "triplet")
    with pytest.raises(ValueError, match=r"dist must have shape \(3, 3\)"):
        loss_from_pairs(dist[0, :1], [0], [1], labels, 3, "triplet", dist=dist[:2])


# -- benchmark (not a test): python tests/test_mining.py --------------------
def _benchmark(B=64, d=12, n_repeat=3):
    import time

    from sktap.core._modules import FrameMLP

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    lx = torch.as_tensor(rng.integers(7, 31, B))
    x = torch.randn(B, int(lx.max()), d, generator=torch.Generator().manual_seed(0))
    valid = (torch.arange(x.shape[1])[None, :] < lx[:, None])[:, :, None]
    x = x * valid
    labels = torch.as_tensor(rng.integers(0, 5, B))
    print(f"B={B}, d={d}, lengths 7-30, {len(labels.unique())} classes, 1 thread")
    for encoder in ("raw frames", "FrameMLP"):
        torch.manual_seed(0)
        net = TAPNet()
        frame = FrameMLP(d, n_components=d) if encoder == "FrameMLP" else None

        def encode(frame=frame):
            return x if frame is None else frame(x) * valid

        for loss in ("triplet", "binomial"):
            fn = get_metric_loss(loss)

            def all_pairs(fn=fn, encode=encode, net=net):
                z = encode()
                fn(tap_pairwise(z, lx, z, lx, net), labels).backward()

            def mined(loss=loss, encode=encode, net=net):
                z = encode()
                with torch.no_grad():
                    dist = tap_pairwise_bucketed(z, lx, z, lx, net)
                rows, cols = mined_pairs(dist, labels, loss)
                pair = tap_pairs(z, lx, rows, cols, net)
                loss_from_pairs(pair, rows, cols, labels, B, loss, dist=dist).backward()
                return rows, cols

            times = {}
            for name, step in (("all", all_pairs), ("mined", mined)):
                best = float("inf")
                for _ in range(n_repeat):
                    t0 = time.perf_counter()
                    out = step()
                    best = min(best, time.perf_counter() - t0)
                times[name] = best
            rows, cols = out
            print(
                f"{encoder} {loss}: all-pairs {times['all']:.2f}s, mined+bucketed "
                f"{times['mined']:.2f}s ({times['all'] / times['mined']:.1f}x); "
                f"mined {mining_fraction(rows, B):.1%} of pairs; padding "
                f"{padding_ratio(lx, rows=rows, cols=cols):.2f} (mined pairs), "
                f"{padding_ratio(lx):.2f} (all pairs, bucketed), "
                f"{padding_ratio(lx, bucketed=False):.2f} (unbucketed)"
            )


if __name__ == "__main__":
    _benchmark()
