"""Whole default fits on many distinct lengths, against the earlier defaults.

The data: 500 sequences of 100-1,500 steps (``make_warped_sequences(
n_classes=5, n_per_class=100, length_range=(100, 1500), random_state=0)``,
the same set as ``bench_shapes.py``). Each setting is one whole fit of
:class:`sktap.TAPMetricLearner` (its ``max_epochs``, 40 by default) with
``random_state=0``; settings run one after the other in one process, after
an untimed warm-up fit, and ``--repeats`` interleaves them again.

Settings:

* ``before``: the defaults when the hard regimes were taken up: a stride from
  the longest series alone (``downsample=choose_stride(longest, 64)``, 24
  here), uniform batches (``samples_per_class=None``), no shape rounding
  (``config_context(shape_rounding=False)``) and a training step blind to
  the fixed cost of a network call (``"call_costs": false``: every batch's
  distances in length buckets, never packed, and every bucket of mined
  pairs within 1.2x padding, i.e. ``sktap._thresholds.PACKED_CALL_CELLS``
  set to infinity and ``PAIRS_CALL_CELLS`` to 0 for the fit);
* ``defaults``: today's defaults;
* any ``--variant NAME='{"param": value}'``: today's defaults with those
  parameters changed (``"shape_rounding": false`` is taken as the config,
  ``"call_costs": false`` as above).

Printed per fit: every epoch's seconds, the first epoch's, the max / min over
all epochs and over the later ones, the whole fit and its ratio to the
``before`` fit of the same repeat, and how many frames the TAP grids had.

Run from the repository root::

    python benchmarks/bench_fit_time.py                          # ~15 min
    python benchmarks/bench_fit_time.py --epochs 5 --n-sequences 200
    python benchmarks/bench_fit_time.py --variant 'p={"downsample": "per_sequence"}'
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import machine_info
from bench_shapes import _variable_data, _warm_up

import sktap
from sktap import TAPMetricLearner, _thresholds
from sktap._validation import check_sequences
from sktap.core import choose_stride


def _settings(X, variants):
    longest = int(check_sequences(X).lengths.max())
    before = {
        "downsample": choose_stride(longest, 64),
        "samples_per_class": None,
        "shape_rounding": False,
        "call_costs": False,
    }
    return {"before": before, "defaults": {}, **variants}


def _fit(X, y, params, epochs, device):
    params = dict(params)
    rounding = params.pop("shape_rounding", True)
    call_costs = params.pop("call_costs", True)
    est = TAPMetricLearner(random_state=0, max_epochs=epochs, device=device, **params)
    saved = _thresholds.PACKED_CALL_CELLS, _thresholds.PAIRS_CALL_CELLS
    if not call_costs:  # packing never pays; mined pairs bucketed as before
        _thresholds.PACKED_CALL_CELLS, _thresholds.PAIRS_CALL_CELLS = math.inf, 0
    try:
        with sktap.config_context(shape_rounding=rounding):
            # the garbage of the fits before this one in the process goes
            # before the clock starts: a full collection (about 0.4 M
            # objects here) took 0.16 s and could land in any epoch
            gc.collect()
            start = time.perf_counter()
            est.fit(X, y)
            seconds = time.perf_counter() - start
    finally:
        _thresholds.PACKED_CALL_CELLS, _thresholds.PAIRS_CALL_CELLS = saved
    frames = est.encode(X).lengths
    return {
        "epochs": [h["seconds"] for h in est.history_],
        "fit": seconds,
        "frames": (int(frames.min()), int(frames.max()), float(frames.mean())),
    }


def _spread(values):
    return max(values) / min(values) if values else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sequences", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=None, help="default: 40")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=JSON parameters changed from today's defaults",
    )
    parser.add_argument("--out", help="write the rows (JSON) to this file")
    args = parser.parse_args(argv)
    variants = {}
    for spec in args.variant:
        name, _, params = spec.partition("=")
        variants[name] = json.loads(params)
    epochs = args.epochs or TAPMetricLearner().max_epochs
    info = machine_info()
    print(
        f"{info['processor']} ({info.get('cpu_model')}, {info.get('cpu_mhz')} MHz, "
        f"L3 {info.get('l3_cache')}), {info['cpu_count']} cores, torch threads "
        f"{info['torch_threads']}, load average {info['load_average']}"
    )
    X, y = _variable_data(args.n_sequences)
    lengths = check_sequences(X).lengths
    print(
        f"{len(X)} sequences, lengths {lengths.min()}-{lengths.max()} "
        f"({len(np.unique(lengths))} distinct), {epochs} epochs per fit"
    )
    settings = _settings(X, variants)
    _warm_up(args.device)
    rows = []
    for rep in range(args.repeats):
        base = None
        for name, params in settings.items():
            r = _fit(X, y, params, epochs, args.device)
            base = r["fit"] if name == "before" else base
            ep = r["epochs"]
            row = {
                "setting": name,
                "params": params,
                "repeat": rep,
                "epoch_seconds": [round(s, 2) for s in ep],
                "first_epoch": ep[0],
                "all_epochs_max_over_min": _spread(ep),
                "later_epochs_max_over_min": _spread(ep[1:]),
                "fit_seconds": r["fit"],
                "speedup_vs_before": base / r["fit"],
                "frames_min_max_mean": r["frames"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        "\n| setting | frames (min-max, mean) | first epoch (s) | epochs max/min "
        "(all; later) | fit (s) | faster than before |"
    )
    print("|---|---|---:|---|---:|---:|")
    for r in rows:
        lo, hi, mean = r["frames_min_max_mean"]
        print(
            f"| {r['setting']} | {lo}-{hi}, {mean:.0f} | {r['first_epoch']:.1f} | "
            f"{r['all_epochs_max_over_min']:.2f}x; "
            f"{r['later_epochs_max_over_min']:.2f}x | {r['fit_seconds']:.0f} | "
            f"{r['speedup_vs_before']:.2f}x |"
        )
    print(f"\nload average after: {machine_info()['load_average']}")
    if args.out:
        Path(args.out).write_text(
            json.dumps({"machine": info, "rows": rows}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
