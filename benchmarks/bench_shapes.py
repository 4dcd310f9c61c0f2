"""Shapes that repeat: epoch times with and without rounding padded lengths.

Every new padded shape costs oneDNN (cuDNN on a GPU) a new primitive, and
with hundreds of distinct sequence lengths most batches, length buckets and
inference tiles have a shape of their own. ``sktap.config_context(
shape_rounding=True)`` (the default) pads them up to a small grid of sizes
instead (``round_up_length`` in ``sktap/_thresholds.py``); padding is exact,
so the distances and the trained weights are the same up to float
summation order.

Two fits of the default :class:`sktap.TAPMetricLearner` with the same
``random_state`` run interleaved in one process (off, on, off, on, ...), on

(a) generated data of many distinct lengths
    (``make_warped_sequences(n_classes=5, n_per_class=100,
    length_range=(100, 1500), random_state=0)``, subsampled with
    ``--n-sequences``); ``downsample="auto"`` divides lengths by the stride
    of the longest, so the network sees far fewer distinct lengths than the
    raw data has;
(b) 270 sequences of 7-29 steps and 12 features (the regime of
    JapaneseVowels), where rounding to multiples of 8 pads the most;
(c) 200 sequences of one length (40 steps), where rounding must cost
    nothing (no shape changes: a batch is never padded beyond the width the
    sequences are stored at).

Printed per fit: the first epoch's seconds, the spread (max / min) of the
later epochs, the whole fit, the distinct input shapes of the convolutions
(frame encoder: Conv1d; alignment network: Conv2d, counting the batch of
pairs) and the number of Conv2d calls, and the seconds of
``pairwise_distances`` of the fitted learner on the training set (inference
tiles; these are rounded only on the device types of
``ROUNDED_TILE_DEVICES`` in ``sktap/_thresholds.py``, or everywhere with
``--round-tiles``). The final weights of the two settings are compared
too. An untimed warm-up fit comes first: the first fit of a process is
slower whatever its setting.

Run from the repository root::

    python benchmarks/bench_shapes.py                      # a few minutes
    python benchmarks/bench_shapes.py --n-sequences 500 --epochs 4 --repeats 3
    python benchmarks/bench_shapes.py --round-tiles   # inference tiles too
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import machine_info

import sktap
from sktap import TAPMetricLearner, _thresholds
from sktap._validation import check_sequences
from sktap.core import choose_stride
from sktap.datasets import make_warped_sequences


class ShapeCounter:
    """Distinct input shapes of the Conv1d and Conv2d calls while active,
    and the number of Conv2d calls."""

    def __init__(self):
        self.shapes = {"Conv1d": set(), "Conv2d": set()}
        self.conv2d_calls = 0
        self._handle = None

    def _hook(self, module, args):
        kind = type(module).__name__
        if kind in self.shapes:
            self.shapes[kind].add((id(module), tuple(args[0].shape)))
            self.conv2d_calls += kind == "Conv2d"

    def __enter__(self):
        self._handle = nn.modules.module.register_module_forward_pre_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()

    def counts(self):
        return {
            **{kind: len(s) for kind, s in self.shapes.items()},
            "Conv2d calls": self.conv2d_calls,
        }


def _variable_data(n_sequences):
    X, y = make_warped_sequences(
        n_classes=5, n_per_class=100, length_range=(100, 1500), random_state=0
    )
    keep = np.sort(np.random.RandomState(0).permutation(len(X))[:n_sequences])
    return X[keep], y[keep]


def _short_data():
    return make_warped_sequences(
        n_classes=9,
        n_per_class=30,
        length_range=(7, 29),
        n_features=12,
        random_state=0,
    )


def _fixed_data(n_sequences, length):
    return make_warped_sequences(
        n_classes=5,
        n_per_class=n_sequences // 5,
        length_range=(length, length),
        random_state=0,
    )


def _warm_up(device):
    """One short untimed fit, so that the first timed one does not pay what
    any first fit in a process pays (thread pools, allocator, first JIT)."""
    X, y = make_warped_sequences(
        n_classes=2, n_per_class=10, length_range=(30, 300), random_state=1
    )
    TAPMetricLearner(random_state=0, max_epochs=1, device=device).fit(X, y)


def _run(X, y, epochs, rounding, device):
    """One fit and one inference under ``shape_rounding=rounding``."""
    est = TAPMetricLearner(random_state=0, max_epochs=epochs, device=device)
    with sktap.config_context(shape_rounding=rounding), ShapeCounter() as counter:
        start = time.perf_counter()
        est.fit(X, y)
        fit_seconds = time.perf_counter() - start
        shapes = counter.counts()
        start = time.perf_counter()
        dist = est.pairwise_distances(X)
        infer_seconds = time.perf_counter() - start
    return {
        "epochs": [h["seconds"] for h in est.history_],
        "mined": [h.get("mined_fraction") for h in est.history_],
        "fit": fit_seconds,
        "infer": infer_seconds,
        "shapes": shapes,
        "weights": {k: v.clone() for k, v in est.model_.state_dict().items()},
        "dist": dist,
    }


def _row(name, rounding, r):
    first, later = r["epochs"][0], r["epochs"][1:]
    spread = (
        f"{min(later):.1f}-{max(later):.1f} ({max(later) / min(later):.2f}x)"
        if later
        else "-"
    )
    return (
        f"| {name} | {'on' if rounding else 'off'} | {first:.1f} | {spread} | "
        f"{max(r['epochs']) / min(r['epochs']):.2f}x | {r['fit']:.1f} | "
        f"{r['infer']:.1f} | {r['shapes']['Conv1d']} / {r['shapes']['Conv2d']} | "
        f"{r['shapes']['Conv2d calls']} |"
    )


def _fractions(values):
    return [None if v is None else round(float(v), 2) for v in values]


def _compare(results):
    """Largest differences between the last fits of the two settings."""
    off, on = results[False][-1], results[True][-1]
    weights = max(
        float((off["weights"][k] - on["weights"][k]).abs().max())
        for k in off["weights"]
    )
    dist = float(np.abs(off["dist"] - on["dist"]).max())
    return weights, dist


def _bench(name, X, y, epochs, repeats, device):
    lengths = check_sequences(X).lengths
    print(
        f"\n{name}: {len(X)} sequences, lengths {lengths.min()}-{lengths.max()} "
        f"({len(np.unique(lengths))} distinct), {epochs} epochs, "
        f"{repeats} fits per setting, interleaved",
        flush=True,
    )
    stride = choose_stride(int(lengths.max()), 64)  # downsample="auto"
    encoded = -(-lengths // stride)
    print(
        f"  downsample='auto': stride {stride}, encoded lengths "
        f"{encoded.min()}-{encoded.max()} ({len(np.unique(encoded))} distinct)"
    )
    results = {False: [], True: []}
    for rep in range(repeats):
        for rounding in (False, True):
            r = _run(X, y, epochs, rounding, device)
            results[rounding].append(r)
            print(
                f"  fit {rep + 1}, rounding {'on ' if rounding else 'off'}: "
                f"epochs {[round(s, 1) for s in r['epochs']]}, fit "
                f"{r['fit']:.1f} s, pairwise {r['infer']:.1f} s, shapes "
                f"{r['shapes']}, mined fraction {_fractions(r['mined'])}",
                flush=True,
            )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sequences", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--fixed-length", type=int, default=40)
    parser.add_argument("--fixed-n", type=int, default=200)
    parser.add_argument("--fixed-epochs", type=int, default=3)
    parser.add_argument("--short-epochs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--round-tiles",
        action="store_true",
        help="round inference tiles on this device too (ROUNDED_TILE_DEVICES)",
    )
    args = parser.parse_args(argv)
    if args.round_tiles:
        device_type = args.device.split(":")[0]
        _thresholds.ROUNDED_TILE_DEVICES = (device_type,)
    info = machine_info()
    print(
        f"{info['processor']}, {info['cpu_count']} cores, torch threads "
        f"{info['torch_threads']}, load average {info['load_average']}, "
        f"torch {info['torch']}"
    )
    sets = [
        ("variable 100-1500", *_variable_data(args.n_sequences), args.epochs),
        ("short 7-29", *_short_data(), args.short_epochs),
        (
            f"fixed {args.fixed_length}",
            *_fixed_data(args.fixed_n, args.fixed_length),
            args.fixed_epochs,
        ),
    ]
    print(
        f"device {args.device}; inference tiles rounded on "
        f"{_thresholds.ROUNDED_TILE_DEVICES or 'no device'}"
    )
    _warm_up(args.device)
    rows = []
    for name, X, y, epochs in sets:
        results = _bench(name, X, y, epochs, args.repeats, args.device)
        for rep in range(args.repeats):
            for rounding in (False, True):
                rows.append(_row(name, rounding, results[rounding][rep]))
        weights, dist = _compare(results)
        print(
            f"  off vs on (last fits): weights differ by at most {weights:.2e}, "
            f"pairwise distances by {dist:.2e}"
        )
    print(
        "\n| data | rounding | first epoch (s) | later epochs (s), max/min | "
        "all epochs max/min | fit (s) | pairwise (s) | shapes Conv1d / Conv2d | "
        "Conv2d calls |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nload average after: {machine_info()['load_average']}")


if __name__ == "__main__":
    main()
