"""Frame encoders: exact batching, lengths, receptive field, gradients, errors."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sktap.core._encoders import ConvFrameEncoder, choose_stride, pool_frames

from .conftest import requires_cuda


def _padded(seqs, dtype=torch.float64):
    lengths = [len(s) for s in seqs]
    out = torch.zeros(len(seqs), max(lengths), seqs[0].shape[1], dtype=dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=dtype)
    return out, torch.tensor(lengths)


def _encoder(d, n_components=3, *, seed=0, dtype=torch.float64, **kwargs):
    torch.manual_seed(seed)
    return ConvFrameEncoder(d, n_components, **kwargs).to(dtype)


configs = st.fixed_dictionaries(
    {
        "channels": st.lists(st.integers(1, 6), min_size=1, max_size=2).map(tuple),
        "kernel_size": st.sampled_from([1, 3, 5]),
        "stride": st.integers(1, 4),
        "normalize": st.booleans(),
        "context": st.booleans(),
        "max_frames": st.sampled_from([None, 1, 4, 9]),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    config=configs,
    d=st.integers(1, 4),
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
)
def test_batched_equals_per_sequence_hypothesis(config, d, lengths, seed):
    rng = np.random.default_rng(seed)
    # large padding values: any leak into valid frames would show
    seqs = [rng.normal(size=(L, d)) for L in lengths]
    x, lens = _padded(seqs)
    x = torch.where(
        torch.arange(x.shape[1])[None, :, None] < lens[:, None, None], x, 1e3
    )
    enc = _encoder(d, seed=seed, **config)
    with torch.no_grad():
        z, out_lengths = enc(x, lens)
        for i, s in enumerate(seqs):
            zi, li = enc(torch.as_tensor(s)[None], torch.tensor([len(s)]))
            assert li.item() == out_lengths[i].item() == zi.shape[1]
            kept = math.ceil(len(s) / config["stride"])
            assert zi.shape[1] == min(kept, config["max_frames"] or kept)
            np.testing.assert_allclose(
                z[i, : li.item()].numpy(), zi[0].numpy(), rtol=0, atol=1e-12
            )
            assert (z[i, li.item() :] == 0).all()
    widest = math.ceil(max(lengths) / config["stride"])
    assert z.shape == (len(seqs), min(widest, config["max_frames"] or widest), 3)


def test_batched_equals_per_sequence_float32(rng):
    enc = _encoder(2, 8, dtype=torch.float32, channels=(16, 16), stride=3)
    seqs = [rng.normal(size=(L, 2)) for L in (1, 5, 17, 40, 39)]
    x, lens = _padded(seqs, torch.float32)
    with torch.no_grad():
        z, _ = enc(x, lens)
        for i, s in enumerate(seqs):
            zi, li = enc(torch.as_tensor(s, dtype=torch.float32)[None], [len(s)])
            np.testing.assert_allclose(
                z[i, : li.item()].numpy(), zi[0].numpy(), rtol=1e-5, atol=1e-6
            )
    assert z.dtype == torch.float32


@pytest.mark.parametrize("context", [False, True])
def test_frames_beyond_lengths_are_exactly_zero(context):
    enc = _encoder(1, 4, channels=(8,), stride=2, context=context)
    x = torch.randn(3, 11, 1, dtype=torch.float64)
    x[:, 6:] = float("nan")  # non-finite padding must not leak either
    with torch.no_grad():
        z, out_lengths = enc(x, torch.tensor([6, 3, 1]))
    assert out_lengths.tolist() == [3, 2, 1]
    assert z.shape == (3, 6, 4)
    assert torch.isfinite(z).all()
    for i, n in enumerate(out_lengths.tolist()):
        assert (z[i, n:] == 0).all()
        np.testing.assert_allclose(z[i, :n].norm(dim=-1).numpy(), 1.0)


@pytest.mark.parametrize("channels", [(), (8,)])
@pytest.mark.parametrize("stride", [1, 2, 3, 5, 7])
def test_output_lengths_are_ceil(stride, channels):
    enc = ConvFrameEncoder(1, 2, channels=channels, stride=stride)
    lengths = torch.arange(0, 60)
    expected = [math.ceil(L / stride) for L in range(60)]
    assert enc.output_lengths(lengths).tolist() == expected
    assert enc.output_lengths(lengths).dtype == torch.long
    assert enc.output_lengths([5, 1]).tolist() == [math.ceil(5 / stride), 1]
    # the convolution itself produces that many frames for every length
    for L in range(1, 30):
        z, _ = enc(torch.randn(1, L, 1), torch.tensor([L]))
        assert z.shape[1] == math.ceil(L / stride)


@pytest.mark.parametrize(
    "channels, context", [((), False), ((4,), False), ((3, 5), False), ((4,), True)]
)
@pytest.mark.parametrize("stride", [1, 2])
def test_gradcheck(channels, context, stride):
    enc = _encoder(
        2, 3, channels=channels, kernel_size=3, stride=stride, context=context
    )
    x = torch.randn(2, 7, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([7, 4])
    assert torch.autograd.gradcheck(lambda x: enc(x, lengths)[0], (x,))
    z, _ = enc(x, lengths)
    z.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    # padding gets no gradient: it does not influence the output
    assert (x.grad[1, 4:] == 0).all()


def _influence(enc, L, step):
    """Output frames of one length-L sequence that change with input ``step``."""
    x = torch.rand(1, L, enc.n_features, dtype=torch.float64) + 0.5
    with torch.no_grad():
        z0, _ = enc(x, torch.tensor([L]))
        x[0, step] += 1.0
        z1, _ = enc(x, torch.tensor([L]))
    return set(torch.nonzero((z1 - z0).abs().sum(-1)[0]).flatten().tolist())


@pytest.mark.parametrize(
    "channels, kernel_size, expected",
    [
        ((), 5, 1),
        ((4,), 1, 1),
        ((4,), 3, 3),
        ((4,), 5, 5),
        ((4, 4), 5, 9),
        ((3, 3, 3), 3, 7),
    ],
)
def test_receptive_field_matches_empirical(channels, kernel_size, expected):
    enc = _encoder(2, 3, channels=channels, kernel_size=kernel_size, normalize=False)
    # positive weights and inputs keep every ReLU active, so every path counts
    with torch.no_grad():
        for p in enc.parameters():
            p.uniform_(0.1, 1.0)
    assert enc.receptive_field == expected
    L, step = 40, 20
    changed = _influence(enc, L, step)
    half = (expected - 1) // 2
    assert changed == set(range(step - half, step + half + 1))


@pytest.mark.parametrize("stride", [2, 3])
@pytest.mark.parametrize("channels", [(4,), (4, 4)])
def test_receptive_field_with_stride(stride, channels):
    enc = _encoder(1, 2, channels=channels, kernel_size=5, stride=stride)
    k, n = 5, len(channels)
    assert enc.receptive_field == 1 + (k - 1) * (1 + (n - 1) * stride)
    half = (enc.receptive_field - 1) // 2
    for step in (10, 11, 12, 20):
        # output t is centred on input step t * stride
        changed = _influence(enc, 60, step)
        assert changed
        assert all(abs(t * stride - step) <= half for t in changed)


@pytest.mark.parametrize(
    "max_length, target_length, expected",
    [
        (1, 64, 1),
        (64, 64, 1),
        (65, 64, 2),
        (128, 64, 2),
        (129, 64, 3),
        (500, 64, 8),
        (1000, 100, 10),
        (7, 1, 7),
        (np.int64(300), 64, 5),
    ],
)
def test_choose_stride(max_length, target_length, expected):
    s = choose_stride(max_length, target_length)
    assert s == expected and isinstance(s, int)
    assert math.ceil(max_length / s) <= target_length
    assert s == 1 or math.ceil(max_length / (s - 1)) > target_length


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, 64), "max_length must be a positive integer; got 0"),
        ((10.5, 64), "max_length must be a positive integer; got 10.5"),
        ((10, 0), "target_length must be a positive integer; got 0"),
    ],
)
def test_choose_stride_bad_arguments(args, message):
    with pytest.raises(ValueError) as info:
        choose_stride(*args)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_features": 0}, "n_features must be a positive integer; got 0"),
        ({"n_components": 2.0}, "n_components must be a positive integer; got 2.0"),
        ({"channels": (8, 0)}, "channels must be positive integers; got (8, 0)"),
        ({"channels": (8, True)}, "channels must be positive integers; got (8, True)"),
        ({"channels": (4.5,)}, "channels must be positive integers; got (4.5,)"),
        (
            {"kernel_size": 4},
            "kernel_size must be a positive odd integer (for 'same' padding); got 4",
        ),
        (
            {"kernel_size": 0},
            "kernel_size must be a positive odd integer (for 'same' padding); got 0",
        ),
        (
            {"kernel_size": 3.0},
            "kernel_size must be a positive odd integer (for 'same' padding); got 3.0",
        ),
        ({"stride": 0}, "stride must be a positive integer; got 0"),
        ({"stride": "2"}, "stride must be a positive integer; got '2'"),
        ({"max_frames": 0}, "max_frames must be a positive integer; got 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    params = {"n_features": 1, "n_components": 2, **kwargs}
    with pytest.raises(ValueError) as info:
        ConvFrameEncoder(params.pop("n_features"), params.pop("n_components"), **params)
    assert str(info.value) == message


@pytest.mark.parametrize("L", [9, 64, 301])
def test_context_lets_every_frame_see_every_step(L):
    local = _encoder(1, 4, channels=(6, 6), kernel_size=3, stride=2)
    far = _encoder(1, 4, channels=(6, 6), kernel_size=3, stride=2, context=True)
    n_frames = math.ceil(L / 2)
    for step in (0, L // 2, L - 1):
        assert _influence(far, L, step) == set(range(n_frames))
        assert len(_influence(local, L, step)) < n_frames or L == 9


def test_context_needs_a_hidden_layer():
    with pytest.raises(ValueError, match="context=True needs at least one hidden"):
        ConvFrameEncoder(1, 2, channels=(), context=True)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 50), min_size=1, max_size=4),
    frames=st.integers(1, 20),
    seed=st.integers(0, 2**16),
)
def test_pool_frames_is_adaptive_average_pooling(lengths, frames, seed):
    rng = np.random.default_rng(seed)
    seqs = [rng.normal(size=(L, 2)) for L in lengths]
    x, lens = _padded(seqs)
    x = torch.where(  # NaN padding: it must not leak into the means
        torch.arange(x.shape[1])[None, :, None] < lens[:, None, None], x, torch.nan
    )
    pooled, new = pool_frames(x, lens, frames)
    assert new.tolist() == [min(L, frames) for L in lengths]
    assert pooled.shape == (len(seqs), min(max(lengths), frames), 2)
    for i, s in enumerate(seqs):
        n = new[i].item()
        if len(s) <= frames:  # unchanged, bit for bit
            assert torch.equal(pooled[i, :n], torch.as_tensor(s))
        else:  # torch's adaptive average pooling of the sequence alone
            ref = torch.nn.functional.adaptive_avg_pool1d(
                torch.as_tensor(s).T[None], frames
            )[0].T
            np.testing.assert_allclose(pooled[i, :n], ref, rtol=0, atol=1e-12)
        assert (pooled[i, n:] == 0).all()


def test_pool_frames_keeps_dtype_and_gradients():
    x = torch.randn(2, 30, 3, requires_grad=True)
    pooled, _ = pool_frames(x, torch.tensor([30, 12]), 10)
    assert pooled.dtype == torch.float32
    pooled.sum().backward()
    # each of the 30 steps feeds one or two segments of 3; padding gets none
    assert (x.grad[0] > 0).all() and (x.grad[1, 12:] == 0).all()
    np.testing.assert_allclose(x.grad[0].sum(0), [10.0] * 3, rtol=1e-6)


def test_max_frames_bounds_every_sequence():
    lengths = torch.tensor([5, 32, 33, 300])
    x = torch.randn(4, 300, 1, dtype=torch.float64)
    for channels in [(8,), (8, 8), ()]:
        enc = _encoder(1, 4, channels=channels, max_frames=16, stride=2)
        z, out = enc(x, lengths)
        # ceil(L / 2), then at most 16
        assert out.tolist() == [3, 16, 16, 16] == enc.output_lengths(lengths).tolist()
        assert z.shape == (4, 16, 4)


def test_max_frames_pools_the_first_layers_features():
    # an oscillation whose plain mean over each segment is zero still gives
    # frames that differ from silence: the rectified features are pooled
    enc = _encoder(1, 4, channels=(8,), kernel_size=3, max_frames=10)
    t = torch.arange(400, dtype=torch.float64)
    wave = torch.sin(t * torch.pi / 2)[None, :, None]  # period 4: segment means 0
    silent = torch.zeros_like(wave)
    assert pool_frames(wave, torch.tensor([400]), 10)[0].abs().max() < 1e-12
    with torch.no_grad():
        z_wave, _ = enc(wave, torch.tensor([400]))
        z_silent, _ = enc(silent, torch.tensor([400]))
    assert (z_wave - z_silent).abs().max() > 1e-3


def test_layers_are_conv1d_only():
    # init_parameters re-draws Conv1d and Linear weights; other layer types
    # would keep the global-RNG draw
    enc = ConvFrameEncoder(2, 3, channels=(4, 5), stride=2)
    weighted = [m for m in enc.modules() if getattr(m, "weight", None) is not None]
    assert len(weighted) == 3
    assert all(isinstance(m, torch.nn.Conv1d) for m in weighted)
    assert [m.stride[0] for m in weighted] == [2, 1, 1]
    assert ConvFrameEncoder(2, 3, channels=(), stride=4).out.stride[0] == 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keeps_dtype(dtype):
    enc = ConvFrameEncoder(3, 2).to(dtype)
    z, out_lengths = enc(torch.randn(2, 9, 3, dtype=dtype), torch.tensor([9, 2]))
    assert z.dtype == dtype and out_lengths.dtype == torch.long


@requires_cuda
def test_keeps_device_cuda():
    enc = ConvFrameEncoder(3, 2, stride=2).cuda().double()
    x = torch.randn(2, 9, 3, dtype=torch.float64, device="cuda")
    z, out_lengths = enc(x, torch.tensor([9, 2], device="cuda"))
    assert z.device == x.device and out_lengths.device == x.device
    assert z.dtype == torch.float64
    zc, _ = enc.cpu()(x.cpu(), torch.tensor([9, 2]))
    np.testing.assert_allclose(
        z.detach().cpu().numpy(), zc.detach().numpy(), atol=1e-10
    )
