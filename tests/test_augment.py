"""Random blur / merge: exact ground truth, ranges, determinism, batching."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sktap.augment import augment_batch, random_blur, random_merge

AUGMENTERS = [random_blur, random_merge]

lengths = st.integers(min_value=1, max_value=40)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _sequence(length, d=2, seed=0):
    return np.random.default_rng(seed).normal(size=(length, d))


@pytest.mark.parametrize("augment", AUGMENTERS)
@settings(max_examples=40, deadline=None)
@given(length=lengths, seed=seeds)
def test_ground_truth_reproduces_augmentation(augment, length, seed):
    x = _sequence(length, seed=seed)
    x_aug, G = augment(x, rng=seed)
    assert G.shape == (length, len(x_aug))
    assert x_aug.shape[1] == x.shape[1]
    np.testing.assert_allclose(G.T @ x, x_aug, rtol=0, atol=0)
    assert (G >= 0).all()
    np.testing.assert_allclose(G.sum(axis=0), 1.0, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(length=st.integers(min_value=3, max_value=40), seed=seeds)
def test_blur_length_and_kernel(length, seed):
    _, G = random_blur(_sequence(length), rng=seed)
    n_out = G.shape[1]
    kernels = [G[:, j][G[:, j] > 0] for j in range(n_out)]
    size = len(kernels[0])
    assert size in (3, 5) and size <= length
    starts = [int(np.flatnonzero(G[:, j])[0]) for j in range(n_out)]
    # one output frame leaves the stride unobservable: some stride must fit
    strides = [starts[1] - starts[0]] if n_out > 1 else [1, 2, 3]
    assert set(strides) <= {1, 2, 3}
    assert any(n_out == (length - size) // s + 1 for s in strides)
    kernel = kernels[0]
    np.testing.assert_allclose(kernel, kernel[::-1], rtol=1e-12)
    half = size // 2
    assert (np.diff(kernel[: half + 1]) > 0).all()  # rising to the middle
    for k in kernels[1:]:
        np.testing.assert_array_equal(k, kernel)  # one kernel per sequence


@settings(max_examples=40, deadline=None)
@given(length=st.integers(min_value=3, max_value=40), seed=seeds)
def test_merge_length_and_parts(length, seed):
    _, G = random_merge(_sequence(length), rng=seed)
    n_out = G.shape[1]
    assert int(np.ceil(0.5 * length)) <= n_out <= int(np.floor(0.8 * length))
    owner = np.argmax(G > 0, axis=1)
    assert ((G > 0).sum(axis=1) == 1).all()  # every frame in exactly one part
    assert (np.diff(owner) >= 0).all()  # parts are consecutive and in order
    assert set(owner) == set(range(n_out))  # no empty part


@pytest.mark.parametrize("augment", AUGMENTERS)
@pytest.mark.parametrize("length", [1, 2])
def test_short_sequences_give_identity(augment, length):
    x = _sequence(length)
    x_aug, G = augment(x, rng=0)
    np.testing.assert_array_equal(G, np.eye(length))
    np.testing.assert_array_equal(x_aug, x)
    assert x_aug is not x


@pytest.mark.parametrize("augment", AUGMENTERS)
def test_univariate_input_returns_two_dimensions(augment):
    x_aug, G = augment(np.arange(12.0), rng=1)
    assert x_aug.ndim == 2 and x_aug.shape[1] == 1
    np.testing.assert_allclose(G.T @ np.arange(12.0), x_aug[:, 0])


@pytest.mark.parametrize("augment", AUGMENTERS)
def test_same_seed_same_result(augment):
    x = _sequence(30)
    for make_rng in (
        lambda: 7,
        lambda: np.random.default_rng(7),
        lambda: np.random.RandomState(7),
    ):
        a, Ga = augment(x, rng=make_rng())
        b, Gb = augment(x, rng=make_rng())
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(Ga, Gb)


def test_global_random_state_untouched():
    state = np.random.get_state()  # noqa: NPY002 (the legacy global state is the point)
    random_blur(_sequence(10), rng=None)
    random_merge(_sequence(10), rng=3)
    after = np.random.get_state()  # noqa: NPY002
    assert state[0] == after[0] and np.array_equal(state[1], after[1])


@pytest.mark.parametrize("augment", AUGMENTERS)
def test_input_not_modified(augment):
    x = _sequence(12)
    before = x.copy()
    x_aug, _ = augment(x, rng=0)
    x_aug += 1.0
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("augment", AUGMENTERS)
def test_bad_rng(augment):
    with pytest.raises(TypeError, match="rng must be None, an int"):
        augment(_sequence(5), rng="seed")


def test_augment_batch_padding_and_ground_truth():
    rng = np.random.default_rng(0)
    lengths = np.array([9, 1, 4, 12])
    data = np.zeros((4, 12, 3))
    for b, length in enumerate(lengths):
        data[b, :length] = rng.normal(size=(length, 3))
    data_before, lengths_before = data.copy(), lengths.copy()
    aug, aug_lengths, G = augment_batch(data, lengths, rng=1)
    np.testing.assert_array_equal(data, data_before)
    np.testing.assert_array_equal(lengths, lengths_before)
    assert aug.shape == (4, aug_lengths.max(), 3)
    assert G.shape == (4, 12, aug_lengths.max())
    assert aug_lengths[1] == 1
    for b, (length, n_out) in enumerate(zip(lengths, aug_lengths)):
        assert not aug[b, n_out:].any()
        assert not G[b, length:].any() and not G[b, :, n_out:].any()
        np.testing.assert_allclose(G[b].T @ data[b], aug[b], atol=1e-12)


def test_augment_batch_kinds_and_determinism():
    data = np.ones((6, 10, 2), dtype=np.float32)
    lengths = np.full(6, 10)
    aug, aug_lengths, G = augment_batch(data, lengths, rng=2, kinds=("merge",))
    assert aug.dtype == np.float32 and G.dtype == np.float32
    assert ((G[:, :10] > 0).sum(axis=2) == 1).all()  # merge never drops frames
    again = augment_batch(data, lengths, rng=2, kinds=("merge",))
    np.testing.assert_array_equal(again[0], aug)
    np.testing.assert_array_equal(again[1], aug_lengths)
    np.testing.assert_array_equal(again[2], G)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kinds": ()}, "kinds must be a non-empty subset"),
        ({"kinds": ("blur", "crop")}, "kinds must be a non-empty subset"),
        ({"lengths": [3, 0]}, r"lengths must lie in \[1, 5\]"),
        ({"lengths": [3, 6]}, r"lengths must lie in \[1, 5\]"),
        ({"lengths": [3]}, r"lengths must be an integer array of shape \(2,\)"),
        ({"data": np.zeros((5, 2))}, "data must be a 3-D array"),
    ],
)
def test_augment_batch_errors(kwargs, message):
    args = {"data": np.zeros((2, 5, 1)), "lengths": [3, 5], **kwargs}
    with pytest.raises(ValueError, match=message):
        augment_batch(args.pop("data"), args.pop("lengths"), **args)
