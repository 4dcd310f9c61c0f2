"""Synthetic classes of time-warped sequences that differ by the order of motifs."""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy.interpolate import PchipInterpolator
from sklearn.utils import check_random_state

from .._validation import as_output, pad_sequences

__all__ = ["make_warped_sequences"]

# Interior knots of the random warp: few enough that a warp is a smooth change
# of speed, not jitter.
_N_WARP_KNOTS = 4
# Expected local reorders per time step at warp_strength=1 (about one swap
# per 25 frames).
_SWAP_RATE = 1 / 25


def _check_int(value, name: str, low: int) -> int:
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def _check_real(value, name: str, low: float, high: float) -> float:
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        bounds = f"in [{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
        raise ValueError(f"{name} must be a finite real number {bounds}; got {value!r}")
    return float(value)


def _check_length_range(length_range) -> tuple[int, int]:
    try:
        low, high = length_range
    except (TypeError, ValueError):
        raise ValueError(
            f"length_range must be a pair (low, high); got {length_range!r}"
        ) from None
    low = _check_int(low, "length_range[0]", 1)
    high = _check_int(high, "length_range[1]", 1)
    if low > high:
        raise ValueError(
            f"length_range must satisfy 1 <= low <= high; got {length_range!r}"
        )
    return low, high


def _n_motifs(n_classes: int) -> int:
    """Motifs per template: at least 4, with twice as many orders as classes."""
    k = 4
    while math.factorial(k) < 2 * n_classes:
        k += 1
    return k


def _distinct_orders(n_classes: int, n_motifs: int, rng) -> np.ndarray:
    # Rejection is cheap because n_motifs! >= 2 * n_classes: at most two draws
    # per class on average.
    seen: set[tuple[int, ...]] = set()
    orders = []
    while len(orders) < n_classes:
        order = tuple(int(i) for i in rng.permutation(n_motifs))
        if order not in seen:
            seen.add(order)
            orders.append(order)
    return np.array(orders, dtype=np.int64)  # (n_classes, n_motifs)


def _motif_bank(n_features: int, n_motifs: int, rng) -> dict[str, np.ndarray]:
    """Parameters of ``sin(pi s)^2 (a + b sin(2 pi n s + phi))`` per feature, motif."""
    shape = (n_features, n_motifs)
    sign = rng.choice([-1.0, 1.0], size=shape)
    return {
        "a": sign * rng.uniform(0.5, 1.5, size=shape),
        "b": rng.uniform(0.2, 0.6, size=shape),
        "n": rng.randint(1, 4, size=shape).astype(np.float64),
        "phi": rng.uniform(0.0, 2 * np.pi, size=shape),
    }


def _template(times: np.ndarray, order: np.ndarray, bank) -> np.ndarray:
    """Evaluate one class template at ``times`` in [0, 1]; returns (L, d)."""
    n_motifs = len(order)
    segment = np.clip(np.floor(times * n_motifs), 0, n_motifs - 1).astype(np.int64)
    s = (times * n_motifs - segment)[:, None]  # (L, 1) position inside the motif
    motif = order[segment]  # (L,)
    a, b, n, phi = (bank[k][:, motif].T for k in ("a", "b", "n", "phi"))  # (L, d)
    # The sin^2 window is 0 with zero slope at both ends of every motif, so the
    # concatenation is smooth whatever the order.
    return np.sin(np.pi * s) ** 2 * (a + b * np.sin(2 * np.pi * n * s + phi))


def _monotone_warp(length: int, strength: float, rng) -> np.ndarray:
    """Increasing map of ``linspace(0, 1, length)`` onto [0, 1], ends fixed."""
    t = np.linspace(0.0, 1.0, length)
    knots = np.linspace(0.0, 1.0, _N_WARP_KNOTS + 1)
    # Gamma(2) increments: speeds vary by a few times, never stop.
    steps = np.concatenate([[0.0], np.cumsum(rng.gamma(2.0, size=_N_WARP_KNOTS))])
    random_map = PchipInterpolator(knots, steps / steps[-1])(t)
    return np.clip((1 - strength) * t + strength * random_map, 0.0, 1.0)


def _local_reorders(times: np.ndarray, strength: float, rng) -> np.ndarray:
    """Swap a few pairs of short adjacent segments (out-of-order events)."""
    times = times.copy()
    length = len(times)
    max_segment = max(1, length // 10)
    # Swaps never overlap, so no frame moves more than max_segment steps.
    used = np.zeros(length, dtype=bool)
    for _ in range(rng.poisson(strength * length * _SWAP_RATE)):
        seg = int(rng.randint(1, max_segment + 1))
        if 2 * seg > length:
            continue
        start = int(rng.randint(0, length - 2 * seg + 1))
        if used[start : start + 2 * seg].any():
            continue
        used[start : start + 2 * seg] = True
        first = times[start : start + seg].copy()
        times[start : start + seg] = times[start + seg : start + 2 * seg]
        times[start + seg : start + 2 * seg] = first
    return times


def _sample(order, bank, lengths, warp_strength, noise, rng):
    length = int(rng.randint(lengths[0], lengths[1] + 1))
    times = _monotone_warp(length, warp_strength, rng)
    times = _local_reorders(times, warp_strength, rng)
    values = _template(times, order, bank)
    return values + rng.normal(0.0, noise, size=values.shape), times


def make_warped_sequences(
    n_classes=3,
    n_per_class=20,
    *,
    length_range=(30, 50),
    n_features=2,
    warp_strength=0.5,
    noise=0.1,
    return_warps=False,
    random_state=None,
):
    """Generate classes of variable-length sequences told apart by temporal order.

    Each template on [0, 1] is a chain of ``K`` smooth motifs (``K >= 4``,
    chosen so that there are at least twice as many orders as classes). All
    classes share the same ``K`` motifs and differ only by their order, so
    every class has the same distribution of frame values: a distance that
    ignores time (a bag of frames, a soft nearest-frame match) cannot separate
    them, while an order-aware one (DTW, TAP with its position channel) can.

    Motif ``k`` of feature ``f`` is ``sin(pi s)^2 (a + b sin(2 pi n s + phi))``
    for ``s`` in [0, 1], with ``|a|`` in [0.5, 1.5], ``b`` in [0.2, 0.6],
    ``n`` in {1, 2, 3}; the window vanishes smoothly at both ends, so any order
    gives a smooth template of unit scale.

    Each sample draws a length ``L``, a smooth increasing time warp (a mix of
    the identity and a random monotone spline, weight ``warp_strength``),
    swaps a few pairs of short adjacent segments of warped times (up to
    ``warp_strength * L / 25`` swaps on average, of at most ``L // 10`` steps
    each, never overlapping, so no frame moves further than that), reads
    the template at those times and adds Gaussian noise.

    Parameters
    ----------
    n_classes : int, default=3
        Number of classes, labelled ``0 .. n_classes - 1``.
    n_per_class : int, default=20
        Samples per class.
    length_range : (int, int), default=(30, 50)
        Inclusive range ``(low, high)`` of sequence lengths, ``1 <= low <= high``.
    n_features : int, default=2
        Features per time step ``d``.
    warp_strength : float in [0, 1], default=0.5
        0 gives evenly spaced template times and no reorders; 1 the strongest
        warps and most reorders.
    noise : float >= 0, default=0.1
        Standard deviation of the additive Gaussian noise.
    return_warps : bool, default=False
        Also return the template time of every frame.
    random_state : int, RandomState instance or None, default=None
        Seed or generator; the same seed gives identical output.

    Returns
    -------
    X : ndarray of shape (n_classes * n_per_class, max_len, n_features)
        Sequences in tslearn format: float64, NaN after each sequence's end
        (channels first under ``sktap.config_context(layout="channels_first")``).
    y : ndarray of shape (n_classes * n_per_class,), dtype int64
        Class labels. Samples are in random order.
    warps : list of ndarray of shape (L_i,)
        Only if ``return_warps``: the template times in [0, 1] at which sample
        ``i`` was read (increasing except inside local reorders); this is its
        ground-truth alignment to the class template.

    Examples
    --------
    >>> from sktap.datasets import make_warped_sequences
    >>> X, y = make_warped_sequences(
    ...     n_classes=2, n_per_class=3, length_range=(5, 8), random_state=0
    ... )
    >>> X.shape[0], X.shape[2], sorted(y.tolist())
    (6, 2, [0, 0, 0, 1, 1, 1])
    """
    n_classes = _check_int(n_classes, "n_classes", 1)
    n_per_class = _check_int(n_per_class, "n_per_class", 1)
    lengths = _check_length_range(length_range)
    n_features = _check_int(n_features, "n_features", 1)
    warp_strength = _check_real(warp_strength, "warp_strength", 0.0, 1.0)
    noise = _check_real(noise, "noise", 0.0, math.inf)
    rng = check_random_state(random_state)

    n_motifs = _n_motifs(n_classes)
    orders = _distinct_orders(n_classes, n_motifs, rng)
    bank = _motif_bank(n_features, n_motifs, rng)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    samples = [_sample(orders[c], bank, lengths, warp_strength, noise, rng) for c in y]
    perm = rng.permutation(len(y))
    X, _ = pad_sequences([samples[i][0] for i in perm], fill=np.nan)
    X = as_output(X)
    if return_warps:
        return X, y[perm], [samples[i][1] for i in perm]
    return X, y[perm]
