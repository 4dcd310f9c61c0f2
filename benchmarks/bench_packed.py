"""Packed grids against length buckets, and the mined pairs' shared calls.

Two measurements behind ``PACKED_CALL_CELLS`` and ``PAIRS_CALL_CELLS`` in
``sktap/_thresholds.py``, on encoded-frame batches like a training step's
(L2-normalised frames of 32 dimensions, the default network: one hidden
layer of 8 channels):

* ``all-pairs``: the B x B distances of a batch, with
  :func:`sktap.core.tap_pairwise_bucketed` and with
  :func:`sktap.core.tap_pairwise_packed`, without autograd (the mining
  pass) and with it (forward and backward), for spread and equal lengths,
  beside the choice of :func:`sktap.core._packed.packing_pays`;
* ``pairs``: :func:`sktap.core.tap_pairs` with autograd on 1-30% of a
  batch's pairs drawn at random, with each per-call allowance;
* ``tiles``: behind ``PACKED_MAX_TARGETS`` and ``PACKED_TILE_NARROW_MACS``:
  :func:`sktap.metrics.cdist_tap` of a set against itself (inference
  tiles), each tile through :func:`sktap.core.tap_pairwise` (packing off),
  packed, and as :func:`sktap.core._packed.packing_beats_shapes` chooses,
  for four networks and four length ranges; then the packed tiles with
  each target group size;
* ``predict``: end to end, :class:`sktap.TAPKNeighborsClassifier` (a
  default learner, 2 epochs: timings do not depend on training) predicting
  the test sets of JapaneseVowels, PickupGestureWiimoteZ and PLAID with
  packed tiles off and on, twice, interleaved;
* ``recompute``: behind ``MINING_PAYS_BELOW`` and
  :func:`sktap.core._packed.pairs_packing_pays`: with autograd (forward and
  backward), a fraction of a batch's pairs drawn at random through
  :func:`sktap.core.tap_pairs` (buckets) and
  :func:`sktap.core._packed.tap_pairs_packed` (one image), against all
  pairs as the training step computes them (packed or bucketed, as
  ``packing_pays`` chooses). Each timing follows one untimed call, so
  shapes seen once are cached: a first epoch, which meets its shapes for
  the first time, gains more (``bench_fit_time.py``).

Run from the repository root, alone on the machine::

    python benchmarks/bench_packed.py              # about 3 minutes on 2 cores
    python benchmarks/bench_packed.py --part pairs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import machine_info

from sktap import _thresholds
from sktap.core import TAPNet, tap_pairs, tap_pairwise_bucketed, tap_pairwise_packed
from sktap.core._bucketed import padding_ratio
from sktap.core._packed import (
    packed_cells,
    packing_pays,
    pairs_packing_pays,
    tap_pairs_packed,
)

CASES = {
    "spread 7-94": (7, 94),
    "spread 7-29": (7, 29),
    "spread 50-94": (50, 94),
    "one length 64": (64, 64),
    "one length 20": (20, 20),
    "one length 94": (94, 94),
}


def _ms(n, fn, *args, backward=False):
    """Milliseconds per call of ``fn(*args)`` (and its backward)."""

    def call():
        out = fn(*args)
        if backward:
            out.sum().backward()

    call()  # warm-up: new shapes, new primitives
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e3


def _frames(gen, B, lo, hi):
    lengths = torch.randint(lo, hi + 1, (B,), generator=gen)
    lengths[0] = hi
    z = torch.nn.functional.normalize(torch.randn(B, hi, 32, generator=gen), dim=-1)
    return z * (torch.arange(hi)[None, :, None] < lengths[:, None, None]), lengths


def all_pairs(net, repeats):
    print(
        "| batch | B | no autograd: buckets / packed (ms) | with autograd: "
        "buckets / packed (ms) | packing_pays | cells / true: buckets, packed |"
    )
    print("|---|---:|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    for name, (lo, hi) in CASES.items():
        for B in (16, 32):
            z, lz = _frames(gen, B, lo, hi)
            args = (z, lz, z, lz, net)
            with torch.no_grad():
                nb = _ms(repeats, tap_pairwise_bucketed, *args)
                npk = _ms(repeats, tap_pairwise_packed, *args)
            zg = z.clone().requires_grad_()
            args, half = (zg, lz, zg, lz, net), max(1, repeats // 2)
            gb = _ms(half, tap_pairwise_bucketed, *args, backward=True)
            gp = _ms(half, tap_pairwise_packed, *args, backward=True)
            true = float(lz.sum()) ** 2
            print(
                f"| {name} | {B} | {nb:.1f} / {npk:.1f} ({nb / npk:.2f}x) | "
                f"{gb:.1f} / {gp:.1f} ({gb / gp:.2f}x) | "
                f"{'packed' if packing_pays(lz, lz, net) else 'buckets'} | "
                f"{padding_ratio(lz):.2f}, {packed_cells(lz, lz, net) / true:.2f} |",
                flush=True,
            )


def pairs(net, repeats, draws):
    allowances = (0, 10_000, 25_000, 50_000)
    fractions = (0.01, 0.02, 0.05, 0.1, 0.3)
    print(
        "\ntap_pairs with autograd, 16 sequences of 7-94 frames, ms for "
        "allowances " + " / ".join(map(str, allowances))
    )
    print("| draw | " + " | ".join(f"{f:.0%} of pairs" for f in fractions) + " |")
    print("|---:|" + "---|" * len(fractions))
    gen = torch.Generator().manual_seed(1)
    saved = _thresholds.PAIRS_CALL_CELLS
    ratios = []
    try:
        for draw in range(draws):
            z, lz = _frames(gen, 16, 7, 94)
            z.requires_grad_()
            cells = []
            for f in fractions:
                pick = torch.randperm(256, generator=gen)[: max(1, int(f * 256))]
                rows, cols = pick // 16, pick % 16
                times = []
                for allowance in allowances:
                    _thresholds.PAIRS_CALL_CELLS = allowance
                    args = (z, lz, rows, cols, net)
                    times.append(_ms(repeats, tap_pairs, *args, backward=True))
                ratios.append(times[0] / times[allowances.index(saved)])
                cells.append(" / ".join(f"{t:.1f}" for t in times))
            print(f"| {draw} | " + " | ".join(cells) + " |", flush=True)
    finally:
        _thresholds.PAIRS_CALL_CELLS = saved
    ratios.sort()
    print(
        f"\nallowance {saved} against 0: {ratios[0]:.2f}-{ratios[-1]:.2f}x faster, "
        f"median {ratios[len(ratios) // 2]:.2f}x over {len(ratios)} cases"
    )


TILE_CASES = {
    "spread 7-94": (7, 94),
    "20-30": (20, 30),
    "60-64": (60, 64),
    "one length 64": (64, 64),
}
TILE_NETS = {
    "None": None,
    "(8,), (5, 3): default": ((8,), (5, 3)),
    "(30,), (5, 3)": ((30,), (5, 3)),
    "(30, 30), (5, 5, 3)": ((30, 30), (5, 5, 3)),
}


def _cdist_seconds(X, net, mode):
    """Seconds of ``cdist_tap(X, net=net)`` with its tiles' path forced
    (``mode`` "tiles" or "packed") or chosen ("chooser")."""
    import sktap
    from sktap._engine import _kernels
    from sktap.metrics import cdist_tap

    saved = _kernels.packing_beats_shapes
    if mode != "chooser":
        _kernels.packing_beats_shapes = lambda *a: mode == "packed"
    try:
        with sktap.config_context(layout="time_first"):
            start = time.perf_counter()
            out = cdist_tap(X, net=net)
            return time.perf_counter() - start, out
    finally:
        _kernels.packing_beats_shapes = saved


def tiles(n_sequences):
    import numpy as np

    print(
        f"\ncdist_tap of {n_sequences} sequences against themselves (32-d "
        "frames), seconds: tiles unpacked / packed / as chosen"
    )
    print("| network | " + " | ".join(TILE_CASES) + " |")
    print("|---|" + "---|" * len(TILE_CASES))
    rng = np.random.default_rng(0)
    for name, layers in TILE_NETS.items():
        torch.manual_seed(0)
        net = None if layers is None else TAPNet(*layers).eval()
        n = n_sequences // (2 if layers and len(layers[0]) > 1 else 1)
        cells = []
        for lo, hi in TILE_CASES.values():
            X = [
                rng.standard_normal((length, 32)).astype("float32")
                for length in rng.integers(lo, hi + 1, n)
            ]
            t_tile, plain = _cdist_seconds(X, net, "tiles")
            t_packed, packed = _cdist_seconds(X, net, "packed")
            t_chosen, _ = _cdist_seconds(X, net, "chooser")
            assert np.allclose(plain, packed, rtol=1e-5, atol=1e-5)
            cells.append(
                f"{t_tile:.2f} / {t_packed:.2f} / {t_chosen:.2f} "
                f"({t_tile / t_chosen:.2f}x)"
            )
        print(f"| {name} (n={n}) | " + " | ".join(cells) + " |", flush=True)
    saved = _thresholds.PACKED_MAX_TARGETS
    print("\npacked, seconds with target groups of 16 / 32 / 64 / all")
    try:
        for name in ("None", "(8,), (5, 3): default"):
            layers = TILE_NETS[name]
            net = None if layers is None else TAPNet(*layers).eval()
            for lo, hi in list(TILE_CASES.values())[:2]:
                X = [
                    rng.standard_normal((length, 32)).astype("float32")
                    for length in rng.integers(lo, hi + 1, n_sequences)
                ]
                times = []
                for group in (16, 32, 64, n_sequences):
                    _thresholds.PACKED_MAX_TARGETS = group
                    times.append(_cdist_seconds(X, net, "packed")[0])
                print(
                    f"| {name}, {lo}-{hi} | "
                    + " / ".join(f"{t:.2f}" for t in times)
                    + " |",
                    flush=True,
                )
    finally:
        _thresholds.PACKED_MAX_TARGETS = saved


def predict(repeats):
    import numpy as np
    from _datasets import DATASETS

    from sktap import TAPKNeighborsClassifier, TAPMetricLearner
    from sktap._engine import _kernels

    chooser = _kernels.packing_beats_shapes
    print(
        "\nTAPKNeighborsClassifier.predict, seconds with packed tiles off / on, "
        "per repeat"
    )
    print("| data set | test x train | off / on | faster | same predictions |")
    print("|---|---|---|---:|---:|")
    for name in ("JapaneseVowels", "PickupGestureWiimoteZ", "PLAID"):
        X_train, y_train, X_test, _ = DATASETS[name]()
        learner = TAPMetricLearner(max_epochs=2, random_state=0)
        knn = TAPKNeighborsClassifier(metric_learner=learner).fit(X_train, y_train)
        times, preds = {False: [], True: []}, {}
        try:
            for _ in range(repeats):
                for packed in (False, True):
                    _kernels.packing_beats_shapes = (
                        chooser if packed else (lambda *a: False)
                    )
                    start = time.perf_counter()
                    preds[packed] = knn.predict(X_test)
                    times[packed].append(time.perf_counter() - start)
        finally:
            _kernels.packing_beats_shapes = chooser
        off, on = min(times[False]), min(times[True])
        same = float(np.mean(preds[False] == preds[True]))
        print(
            f"| {name} | {len(X_test)} x {len(X_train)} | "
            f"{' '.join(f'{t:.1f}' for t in times[False])} / "
            f"{' '.join(f'{t:.1f}' for t in times[True])} | {off / on:.2f}x | "
            f"{same:.3f} |",
            flush=True,
        )


def recompute(net, repeats, draws):
    from sktap.metric_learning._steps import _all_pairs

    fractions = (0.02, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
    print(
        "\nwith autograd, 16 sequences of 7-94 frames: all pairs, then mined "
        "pairs recomputed bucketed / packed (ms; their ratio to all pairs), "
        "and what pairs_packing_pays picks"
    )
    print(
        "| draw | all pairs | " + " | ".join(f"{f:.0%} mined" for f in fractions) + " |"
    )
    print("|---:|---:|" + "---|" * len(fractions))
    gen = torch.Generator().manual_seed(2)
    for draw in range(draws):
        z, lz = _frames(gen, 16, 7, 94)
        z.requires_grad_()
        every = _ms(repeats, _all_pairs, z, lz, net, backward=True)
        cells = []
        for f in fractions:
            pick = torch.randperm(256, generator=gen)[: int(f * 256)].sort().values
            rows, cols = pick // 16, pick % 16
            t = _ms(repeats, tap_pairs, z, lz, rows, cols, net, backward=True)
            p = _ms(repeats, tap_pairs_packed, z, lz, rows, cols, net, backward=True)
            pays = "packed" if pairs_packing_pays(lz, rows, cols, net) else "buckets"
            cells.append(
                f"{t:.1f} / {p:.1f} ({t / every:.2f} / {p / every:.2f}) {pays}"
            )
        print(f"| {draw} | {every:.1f} | " + " | ".join(cells) + " |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part",
        choices=["all-pairs", "pairs", "recompute", "tiles", "predict", "both"],
        default="both",
    )
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--n-sequences", type=int, default=200, help="part tiles")
    args = parser.parse_args(argv)
    info = machine_info()
    print(
        f"{info['processor']}, {info['cpu_count']} cores, torch threads "
        f"{info['torch_threads']}, load average {info['load_average']}\n"
    )
    torch.manual_seed(0)
    net = TAPNet((8,), (5, 3))
    if args.part in ("all-pairs", "both"):
        all_pairs(net, args.repeats)
    if args.part in ("pairs", "both"):
        pairs(net, args.repeats, args.draws)
    if args.part == "recompute":
        recompute(net, args.repeats, args.draws)
    if args.part == "tiles":
        tiles(args.n_sequences)
    if args.part == "predict":
        predict(max(2, args.repeats // 4))
    print(f"\nload average after: {machine_info()['load_average']}")


if __name__ == "__main__":
    main()
