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

Then (``--replays``, 5 by default) epochs 1, 2 and the last of one more
default fit are each replayed through the public resume API (a checkpoint
and ``warm_start=True``), interleaved, and epoch 1's time is compared with
the last epoch's replay by replay: a shared host's noise then falls on all
of them alike.

Printed per fit: every epoch's seconds and mean mined fraction (the share
of a batch's pairs that the hard-mined losses recompute with autograd; none
for the lifted loss, which reads every pair), the first epoch's seconds, the
max / min over all epochs and over the later ones, the whole fit and its
ratio to the ``before`` fit of the same repeat, and how many frames the TAP
grids had.

Run from the repository root::

    python benchmarks/bench_fit_time.py                          # ~20 min
    python benchmarks/bench_fit_time.py --epochs 5 --n-sequences 200
    python benchmarks/bench_fit_time.py --variant 'p={"downsample": "per_sequence"}'
    # a control whose every batch does the same work (all pairs, autograd)
    python benchmarks/bench_fit_time.py --variant 'lifted={"loss": "lifted"}'
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import shutil
import sys
import tempfile
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
        # the hard-mined losses recompute their mined pairs with autograd,
        # so an epoch's work grows with the fraction it mines
        "mined": [h.get("mined_fraction") for h in est.history_],
        "fit": seconds,
        "frames": (int(frames.min()), int(frames.max()), float(frames.mean())),
    }


def _stop_after_one(estimator, epoch, logs):
    """A callback that ends a fit after its first epoch."""
    return True


def _replayed_epochs(X, y, epochs, replays, device):
    """Epoch 1, epoch 2 and the last epoch of one default fit, each run
    ``replays`` times, interleaved, through the public resume API.

    A capture fit with ``checkpoint_path`` keeps the checkpoints written
    after epochs 1 and ``epochs - 1``. A replay of epoch 1 is a fresh fit
    stopped after its first epoch; a replay of epoch ``e > 1`` is a fresh
    estimator with ``warm_start=True`` resuming a copy of the checkpoint of
    epoch ``e - 1``, stopped after one epoch. Resume is exact on the CPU,
    so each replay does the very work of that epoch of the capture fit
    (checked on its loss and mined fraction). Interleaving the replays in
    one process spreads this shared host's noise over all three epochs
    alike, where one fit compares one sample of its first epoch with the
    fastest of its other epochs.
    """
    wanted = sorted({1, min(2, epochs), epochs})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        kept = {}

        def keep(estimator, epoch, logs):
            if epoch + 1 in wanted:
                kept[epoch + 1] = tmp / f"after_{epoch}.pt"
                shutil.copyfile(tmp / "capture.pt", kept[epoch + 1])
            return False

        capture = TAPMetricLearner(
            random_state=0,
            max_epochs=epochs,
            device=device,
            checkpoint_path=str(tmp / "capture.pt"),
            callback=keep,
        ).fit(X, y)
        seconds = {e: [] for e in wanted}
        exact = True
        for _ in range(replays):
            for e in wanted:
                params = {"random_state": 0, "max_epochs": epochs, "device": device}
                if e > 1:
                    path = tmp / "replay.pt"
                    shutil.copyfile(kept[e], path)
                    params.update(warm_start=True, checkpoint_path=str(path))
                est = TAPMetricLearner(callback=_stop_after_one, **params)
                gc.collect()
                est.fit(X, y)
                logs, want = est.history_[-1], capture.history_[e - 1]
                exact &= logs["epoch"] == e and all(
                    logs.get(k) == want.get(k) for k in ("loss", "mined_fraction")
                )
                seconds[e].append(logs["seconds"])
    first, last = np.array(seconds[1]), np.array(seconds[epochs])
    return {
        "setting": "defaults, replayed epochs",
        "replays": replays,
        "epochs": wanted,
        "epoch_seconds": {e: [round(v, 3) for v in seconds[e]] for e in wanted},
        "epoch_mined_fraction": {
            e: capture.history_[e - 1].get("mined_fraction") for e in wanted
        },
        "capture_fit_epoch_seconds": [round(h["seconds"], 2) for h in capture.history_],
        "replays_exact": bool(exact),
        "first_over_last_min": float(first.min() / last.min()),
        "first_over_last_median": float(np.median(first) / np.median(last)),
        "first_over_last_paired": sorted(float(v) for v in first / last),
    }


def _mined(row):
    """The first and last epochs' mined fractions, as printed."""
    first, last = row["epoch_mined_fraction"][0], row["epoch_mined_fraction"][-1]
    if first is None or last is None:
        return "all pairs"
    return f"{first:.1%}; {last:.1%}"


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
    parser.add_argument(
        "--replays",
        type=int,
        default=5,
        help="times epochs 1, 2 and the last of a default fit are replayed "
        "(interleaved, from checkpoints); 0: none",
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
                "epoch_mined_fraction": [
                    None if f is None else round(f, 4) for f in r["mined"]
                ],
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
        "(all; later) | mined (first; last epoch) | fit (s) | faster than before |"
    )
    print("|---|---|---:|---|---|---:|---:|")
    for r in rows:
        lo, hi, mean = r["frames_min_max_mean"]
        print(
            f"| {r['setting']} | {lo}-{hi}, {mean:.0f} | {r['first_epoch']:.1f} | "
            f"{r['all_epochs_max_over_min']:.2f}x; "
            f"{r['later_epochs_max_over_min']:.2f}x | {_mined(r)} | "
            f"{r['fit_seconds']:.0f} | "
            f"{r['speedup_vs_before']:.2f}x |"
        )
    if args.replays > 0:
        r = _replayed_epochs(X, y, epochs, args.replays, args.device)
        rows.append(r)
        print(json.dumps(r), flush=True)
        print(f"\n| epoch | mined fraction | seconds over {args.replays} replays |")
        print("|---:|---:|---|")
        for e in r["epochs"]:
            times = ", ".join(f"{v:.2f}" for v in sorted(r["epoch_seconds"][e]))
            mined = r["epoch_mined_fraction"][e]
            mined = "-" if mined is None else f"{mined:.1%}"
            print(f"| {e} | {mined} | {times} |")
        paired = ", ".join(f"{v:.2f}" for v in r["first_over_last_paired"])
        print(
            f"\nepoch 1 / epoch {epochs}: fastest/fastest "
            f"{r['first_over_last_min']:.2f}x, median/median "
            f"{r['first_over_last_median']:.2f}x, replay by replay {paired}; "
            f"replays {'exact' if r['replays_exact'] else 'NOT exact'}"
        )
    print(f"\nload average after: {machine_info()['load_average']}")
    if args.out:
        Path(args.out).write_text(
            json.dumps({"machine": info, "rows": rows}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
