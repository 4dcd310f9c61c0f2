"""Random blur and random merge, with their ground-truth alignments.

Each augmentation of a sequence ``x`` of shape (L, d) is linear in the
frames: ``x_aug = G.T @ x`` for a non-negative matrix ``G`` of shape
(L, L_aug) whose columns sum to 1 (column j holds the weights with which
the original frames make augmented frame j). ``G`` is the ground-truth
alignment used by the self-supervised loss (TAP paper, Eq. 10).
"""

from __future__ import annotations

import itertools
import numbers

import numpy as np

from .._validation import check_sequence, sequence_output

__all__ = ["augment_batch", "random_blur", "random_merge"]

_KERNEL_SIZES = (3, 5)
_STRIDES = (1, 2, 3)
_SIGMA_RANGE = (0.5, 2.0)
_KINDS = ("blur", "merge")


def _check_rng(rng):
    """None, an int seed, a RandomState or a Generator -> a local generator."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        "rng must be None, an int, a numpy.random.RandomState or a "
        f"numpy.random.Generator; got {type(rng).__name__}"
    )


def _integer(rng, low: int, high: int) -> int:
    """One integer in [low, high) from either kind of numpy generator."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(low, high))
    return int(rng.randint(low, high))


def _identity(x):
    return x.copy(), np.eye(len(x))


def _blur_kernel(size: int, sigma: float) -> np.ndarray:
    """Normalised Gaussian weights, symmetric and decreasing from the middle."""
    t = np.arange(size) - size // 2
    w = np.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def _blur_matrix(length: int, kernel: np.ndarray, stride: int) -> np.ndarray:
    """``G`` (length, L_aug) of a valid (unpadded) strided convolution."""
    n_out = (length - len(kernel)) // stride + 1
    G = np.zeros((length, n_out))
    cols = np.arange(n_out)
    for offset, weight in enumerate(kernel):
        G[cols * stride + offset, cols] = weight
    return G


def _blur(x, rng):
    # Only kernels that fit are drawn, so L = 3 or 4 still gets blurred.
    sizes = [k for k in _KERNEL_SIZES if k <= len(x)]
    if not sizes:
        return _identity(x)
    size = sizes[_integer(rng, 0, len(sizes))]
    stride = _STRIDES[_integer(rng, 0, len(_STRIDES))]
    sigma = float(rng.uniform(*_SIGMA_RANGE))
    G = _blur_matrix(len(x), _blur_kernel(size, sigma), stride)
    return G.T @ x, G


def _merge_range(length: int) -> tuple[int, int]:
    """Inclusive bounds ceil(0.5 L) and floor(0.8 L), in exact integers."""
    return max(1, (length + 1) // 2), (4 * length) // 5


def _merge(x, rng):
    length = len(x)
    low, high = _merge_range(length)
    if length < 3 or low > high:
        return _identity(x)
    n_out = _integer(rng, low, high + 1)
    cuts = np.sort(rng.choice(np.arange(1, length), size=n_out - 1, replace=False))
    bounds = np.concatenate(([0], cuts, [length]))
    G = np.zeros((length, n_out))
    for j, (start, stop) in enumerate(itertools.pairwise(bounds)):
        z = rng.standard_normal(stop - start)
        w = np.exp(z - z.max())  # softmax, shifted against overflow
        G[start:stop, j] = w / w.sum()
    return G.T @ x, G


def random_blur(x, rng=None):
    """Blur a sequence with a random Gaussian kernel and stride.

    The kernel has 3 or 5 taps (drawn among the sizes that fit the
    sequence) with weights ``exp(-t**2 / (2 sigma**2))`` for offsets
    ``t`` from the middle, ``sigma`` drawn uniformly in [0.5, 2], normalised
    to sum to 1: symmetric and strictly decreasing from the middle outwards.
    The stride is drawn from {1, 2, 3}. The convolution is valid (no
    padding), so ``L_aug = (L - k) // stride + 1`` and trailing frames
    beyond the last window are unused (their rows of ``G`` are zero).
    A sequence shorter than 3 frames comes back unchanged with
    ``G = I``.

    Parameters
    ----------
    x : array-like of shape (L, d) or (L,)
        One sequence.
    rng : None, int, numpy.random.RandomState or numpy.random.Generator
        Source of randomness (``None``: fresh OS entropy); global seeds are
        never touched.

    Returns
    -------
    x_aug : ndarray of shape (L_aug, d)
        The blurred sequence, equal to ``G.T @ x`` (``(d, L_aug)`` under
        ``sktap.config_context(layout="channels_first")``).
    G : ndarray of shape (L, L_aug)
        Ground-truth alignment: non-negative, columns summing to 1.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, appendix A.1.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(20.0).reshape(10, 2)
    >>> x_aug, G = random_blur(x, rng=0)
    >>> G.shape[0], x_aug.shape[1], bool(np.allclose(G.T @ x, x_aug))
    (10, 2, True)
    """
    x_aug, G = _blur(check_sequence(x), _check_rng(rng))
    return sequence_output(x_aug), G


def random_merge(x, rng=None):
    """Merge random runs of consecutive frames into single frames.

    ``L_aug`` is drawn uniformly in [ceil(0.5 L), floor(0.8 L)]; the
    sequence is cut into ``L_aug`` non-empty consecutive parts at distinct
    random cut points, and each part becomes one frame: the weighted
    average of its frames with weights ``softmax(z)``, ``z`` drawn i.i.d.
    from the standard normal distribution (positive, summing to 1). A
    sequence shorter than 3 frames comes back unchanged with ``G = I``.

    Parameters
    ----------
    x : array-like of shape (L, d) or (L,)
        One sequence.
    rng : None, int, numpy.random.RandomState or numpy.random.Generator
        Source of randomness (``None``: fresh OS entropy); global seeds are
        never touched.

    Returns
    -------
    x_aug : ndarray of shape (L_aug, d)
        The merged sequence, equal to ``G.T @ x`` (``(d, L_aug)`` under
        ``sktap.config_context(layout="channels_first")``).
    G : ndarray of shape (L, L_aug)
        Ground-truth alignment: non-negative, columns summing to 1, every
        row with exactly one non-zero entry (frames are never dropped).

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, appendix A.1.

    Examples
    --------
    >>> import numpy as np
    >>> x_aug, G = random_merge(np.arange(10.0), rng=0)
    >>> 5 <= len(x_aug) <= 8, G.shape[0], bool(np.allclose(G.sum(axis=0), 1))
    (True, 10, True)
    """
    x_aug, G = _merge(check_sequence(x), _check_rng(rng))
    return sequence_output(x_aug), G


_AUGMENTERS = {"blur": _blur, "merge": _merge}


def _check_kinds(kinds) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    if not kinds or any(k not in _AUGMENTERS for k in kinds):
        raise ValueError(f"kinds must be a non-empty subset of {_KINDS}; got {kinds!r}")
    return kinds


def _check_batch(data, lengths):
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(
            f"data must be a 3-D array (B, L, d); got {data.ndim} dimensions"
        )
    lengths = np.asarray(lengths)
    if lengths.shape != (data.shape[0],) or lengths.dtype.kind not in "iu":
        raise ValueError(
            f"lengths must be an integer array of shape ({data.shape[0]},); "
            f"got shape {lengths.shape} and dtype {lengths.dtype}"
        )
    if lengths.size and (lengths.min() < 1 or lengths.max() > data.shape[1]):
        raise ValueError(f"lengths must lie in [1, {data.shape[1]}]")
    return data, lengths.astype(np.int64)


def augment_batch(data, lengths, rng=None, *, kinds=_KINDS):
    """Augment each sequence of a padded batch by a randomly chosen method.

    For each sequence, one of ``kinds`` is drawn uniformly and applied to
    its valid frames (see :func:`random_blur` and :func:`random_merge`).
    The inputs are never modified.

    Parameters
    ----------
    data : ndarray of shape (B, L_max, d)
        Zero-padded sequences.
    lengths : array-like of int, shape (B,)
        True length of each sequence.
    rng : None, int, numpy.random.RandomState or numpy.random.Generator
        Source of randomness; global seeds are never touched.
    kinds : sequence of {"blur", "merge"}, default=("blur", "merge")
        The augmentations to choose from.

    Returns
    -------
    aug_data : ndarray of shape (B, L_aug_max, d)
        Augmented sequences, zero beyond each ``aug_lengths[b]``.
    aug_lengths : ndarray of shape (B,), dtype int64
    G : ndarray of shape (B, L_max, L_aug_max)
        Ground-truth alignments, zero outside each valid
        ``lengths[b] x aug_lengths[b]`` block.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, appendix A.1.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.ones((2, 6, 3))
    >>> aug, aug_lengths, G = augment_batch(data, [6, 4], rng=0)
    >>> aug.shape[0], G.shape[:2], bool((aug_lengths < [6, 4]).all())
    (2, (2, 6), True)
    """
    kinds = _check_kinds(kinds)
    data, lengths = _check_batch(data, lengths)
    rng = _check_rng(rng)
    dtype = data.dtype if data.dtype.kind == "f" else np.float64
    results = []
    for seq, length in zip(data, lengths):
        kind = kinds[_integer(rng, 0, len(kinds))]
        results.append(_AUGMENTERS[kind](seq[:length].astype(np.float64), rng))
    aug_lengths = np.array([len(a) for a, _ in results], dtype=np.int64)
    n_aug = int(aug_lengths.max()) if len(results) else 0
    aug_data = np.zeros((len(results), n_aug, data.shape[2]), dtype=dtype)
    G = np.zeros((len(results), data.shape[1], n_aug), dtype=dtype)
    for b, (x_aug, g) in enumerate(results):
        aug_data[b, : len(x_aug)] = x_aug
        G[b, : g.shape[0], : g.shape[1]] = g
    return aug_data, aug_lengths, G
