"""Learned TAP against learned soft-DTW per metric loss (TAP paper, Table 1).

The paper's Table 1 protocol run with today's library defaults on the seven
real sets of ``benchmarks/_datasets.py`` (each with its official UCR/UEA
train/test split, nothing subsampled):

- For each data set, each loss in ("triplet", "lifted", "binomial"), each
  seed (``--seeds``, default 0 1) and each learner,
  ``TAPMetricLearner(loss, random_state=seed, device=--device)`` and
  ``SoftDTWMetricLearner(loss, random_state=seed, device=--device)``
  (library defaults otherwise: the same conv frame encoder, input scaling,
  downsampling, optimiser, batch size and 40 epochs; TAP without the
  self-supervised term, which is off by default), ``fit(X_train, y_train)``.
- ``D = learner.pairwise_distances(X_test, X_train)``; 1-NN accuracy is
  ``mean(y_train[argmin(D, axis=1)] == y_test)``, MAP is
  ``sktap.metrics.mean_average_precision(D, y_test, y_train)`` (each test
  sequence queries the training set), exactly as ``bench_accuracy.py``
  computes its MAP, so the numbers compare with its DTW rows.
- ``fit s``: seconds of ``fit``; ``predict s``: seconds of that
  ``pairwise_distances`` call. Torch and tslearn's numba kernels are warmed
  up on tiny input first, so compilation is not counted.
- DTW 1-NN accuracy / MAP (tslearn, full window, no learning, so one value
  per data set) come from ``bench_accuracy.py``'s baselines cache
  (``--baselines-cache``, default ``benchmarks/results/baselines.json``);
  a set missing there is computed here as ``bench_accuracy`` does
  (``cdist_dtw`` and ``KNeighborsTimeSeriesClassifier(metric="dtw")``) and
  kept in this script's JSON, not written to the cache.

The paper's Table 4 (alignment MSE against a known ground truth) is no
longer here: it lives in ``bench_alignment.py``. The former generated-data
and Trace-resampled-to-32-steps protocol is gone.

Output: after every single fit the result is merged into the JSON ``--out``
(default ``benchmarks/results/metric_learning.json``), keyed by (data set,
loss, learner, seed); a rerun skips the keys already there (``--force``
refits them, ``--retry-failed`` refits those that raised), so the run can
be stopped and resumed in chunks. The JSON also keeps, per invocation, the
command, the arguments and ``machine_info()``, and, per data set, the DTW
numbers used. At the end (or with ``--summary-only``, which reads the JSON
and fits nothing) markdown is printed over everything in the JSON: per
loss, a table of data sets (all of them, whether TAP wins or loses) with
DTW, learned TAP and learned soft-DTW accuracy and MAP (mean over seeds,
``(min-max)`` when there are several) and the verdict "TAP MAP >= soft-DTW
MAP?" on the seed means; then per loss how many sets TAP's mean MAP >=
learned soft-DTW's, and on how many TAP's mean accuracy and mean MAP are
both >= DTW's; then the mean fit and predict seconds.

Run from the repository root (with ``pip install --no-deps aeon==1.6.0``
for the data, see ``_datasets.py``)::

    python benchmarks/bench_metric_learning.py --quick   # smoke run, ~15 s
    python benchmarks/bench_metric_learning.py           # everything, resumable
    python benchmarks/bench_metric_learning.py --datasets GunPoint Trace \\
        --losses triplet --seeds 0
    python benchmarks/bench_metric_learning.py --summary-only

``--quick``: ItalyPowerDemand only (unless ``--datasets``), subsampled
(stratified, seeded) to 40 training and 40 test series as in
``bench_accuracy --quick``, the first seed, ``max_epochs=2``, DTW computed
on that subsample, and no JSON unless ``--out`` names one.

Runtime on the 2-core CPU (torch 2 threads, ``NUMBA_NUM_THREADS=1``, set
by the script; the three losses cost about the same): ItalyPowerDemand and
JapaneseVowels, one seed, all three losses took 468 s (2026-11-30, load
about 2.5): learned TAP fit 4-5 s and 18 s, learned soft-DTW 17-19 s and
65-67 s, soft-DTW's ``pairwise_distances`` 32-38 s on ItalyPowerDemand's
1029 x 67 pairs. On the long sets ``bench_accuracy``'s triplet fits at the
same defaults took 6-25 s for TAP and 31-274 s for soft-DTW (Trace the
longest). All seven sets, three losses, two seeds: about 1.5-2 hours; run
it in chunks (``--datasets``, ``--losses``, ``--seeds``), the JSON
accumulates.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import traceback

# tslearn's soft-DTW loss (the learned soft-DTW) runs numba kernels whose
# threads fight torch's for the cores: one thread is ~10x faster here.
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import machine_info, subsample, timed
from _datasets import DATASETS, STANDARD
from bench_accuracy import DTW, cache_key, read_json, warm_up_tslearn, write_json
from bench_accuracy import tslearn_row as dtw_like_bench_accuracy
from tslearn.metrics import cdist_dtw

import sktap
from sktap import TAPMetricLearner
from sktap.baselines import SoftDTWMetricLearner
from sktap.metrics import mean_average_precision

LOSSES = ("triplet", "lifted", "binomial")
LEARNERS = {"TAP": TAPMetricLearner, "soft-DTW": SoftDTWMetricLearner}
QUICK_SIZE = 40  # --quick: at most this many training and test series
QUICK_DATASET = "ItalyPowerDemand"
DEFAULT_OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results", "metric_learning.json"
)
DEFAULT_CACHE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results", "baselines.json"
)


# -- data ----------------------------------------------------------------------
def load(name, seed, quick):
    """``(X_train, y_train, X_test, y_test)`` and the subsample's name."""
    X_train, y_train, X_test, y_test = DATASETS[name]()
    if quick:
        X_train, y_train = subsample(X_train, y_train, QUICK_SIZE, seed)
        X_test, y_test = subsample(X_test, y_test, QUICK_SIZE, seed)
    data = (X_train, np.asarray(y_train), X_test, np.asarray(y_test))
    return data, subsample_name(quick)


def subsample_name(quick):
    return f"quick{QUICK_SIZE}" if quick else "full"


def dtw_key(name, sub, seed):
    """Key of the DTW numbers in this script's JSON (full sets: seed-free)."""
    return f"{name}|full" if sub == "full" else f"{name}|{sub}|seed={seed}"


def dtw_from_cache(cache, name, sub, seed):
    """The DTW 1-NN row of ``bench_accuracy``'s cache, or None.

    At full size DTW does not depend on the seed, so any seed's row will do.
    """
    keys = [cache_key(name, seed, sub)]
    if sub == "full":
        keys += sorted(
            k for k in cache if k.startswith(f"{name}|seed=") and k.endswith("|full")
        )
    for key in keys:
        for row in cache.get(key, []):
            if row.get("method") == DTW and row.get("accuracy") is not None:
                return key, row
    return None, None


def dtw_numbers(store, args, name, sub, seed, data):
    """DTW 1-NN accuracy / MAP of a set: from the JSON, the cache, or computed."""
    key = dtw_key(name, sub, seed)
    if key in store["dtw"]:
        return store["dtw"][key]
    cache_name, row = dtw_from_cache(
        read_json(args.baselines_cache, {}), name, sub, seed
    )
    if row is not None:
        entry = {"source": f"{args.baselines_cache} [{cache_name}]"}
    else:
        print(f"  DTW 1-NN for {name} ({sub}) not in the cache: computing it")
        warm_up_tslearn()
        ctx = {"dataset": name, "subsample": sub, "seed": seed}
        row = dtw_like_bench_accuracy("dtw", cdist_dtw, DTW, data, ctx)
        entry = {"source": "computed (tslearn cdist_dtw, as bench_accuracy)"}
    entry.update(
        dataset=name,
        subsample=sub,
        accuracy=row["accuracy"],
        map=row["map"],
        fit_s=row.get("fit_s"),
        predict_s=row.get("predict_s"),
    )
    store["dtw"][key] = entry
    return entry


# -- learners --------------------------------------------------------------------
def learner_params(args, loss, seed):
    """Keyword arguments of one learner: only what differs from the defaults."""
    params = {"loss": loss, "random_state": seed, "device": args.device}
    if args.max_epochs is not None:
        params["max_epochs"] = args.max_epochs
    return params


def setup_of(params, sub):
    """What must match for an existing result to count as this run's."""
    return {
        "subsample": sub,
        **{
            k: v
            for k, v in params.items()
            if k not in ("loss", "random_state", "device")
        },
    }


def warm_up(device):
    """Start torch (and its device) and compile tslearn's soft-DTW loss
    outside the timings: one epoch of each learner on 8 tiny series."""
    rng = np.random.RandomState(0)
    X = [rng.randn(int(n), 2) for n in rng.randint(6, 12, size=8)]
    y = np.arange(8) % 2
    for cls in LEARNERS.values():
        est = cls(max_epochs=1, device=device, random_state=0).fit(X, y)
        est.pairwise_distances(X[:3], X)


def fit_one(name, loss, learner, seed, params, data):
    """Fit one learner and score it; a failure is returned as ``error``."""
    X_train, y_train, X_test, y_test = data
    est = LEARNERS[learner](**params)
    try:
        _, fit_s = timed(est.fit, X_train, y_train)
        D, predict_s = timed(est.pairwise_distances, X_test, X_train)
        D = np.asarray(D)
        acc = float(np.mean(y_train[np.argmin(D, axis=1)] == y_test))
        ap = float(mean_average_precision(D, y_test, y_train))
    except Exception as exc:  # keep the other fits going (e.g. out of memory)
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}
    history = list(getattr(est, "history_", []))
    return {
        "accuracy": acc,
        "map": ap,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "epochs": len(history),
        "median_epoch_s": float(np.median([h["seconds"] for h in history]))
        if history
        else None,
        "loss_history": [h.get("loss") for h in history],
    }


# -- the JSON ----------------------------------------------------------------------
def result_key(name, loss, learner, seed):
    return f"{name}|{loss}|{learner}|seed={seed}"


def empty_store():
    return {
        "benchmark": "bench_metric_learning.py (TAP paper Table 1 protocol)",
        "runs": {},
        "dtw": {},
        "results": {},
    }


def read_store(path):
    store = read_json(path, None) if path else None
    return store if store is not None else empty_store()


def save(path, store, run_id):
    """Merge this run's entries into the file (re-read first) and write it."""
    if not path:
        return
    disk = read_store(path)
    disk["runs"][run_id] = store["runs"][run_id]
    disk["dtw"].update(store["dtw"])
    mine = {k: r for k, r in store["results"].items() if r.get("run") == run_id}
    disk["results"].update(mine)
    write_json(path, disk)
    store.update(disk)


# -- summary -----------------------------------------------------------------------
def fmt(value, spec=".3f"):
    return "-" if value is None else format(value, spec)


def spread(values):
    """``mean`` or ``mean (min-max)`` of the values, ``-`` when none."""
    if not values:
        return "-"
    mean = fmt(float(np.mean(values)))
    if len(values) == 1:
        return mean
    return f"{mean} ({fmt(min(values))}-{fmt(max(values))})"


def collect(store, datasets=None, losses=None):
    """``{(dataset, loss, learner): [result, ...]}`` over seeds, in order."""
    groups = {}
    for r in store["results"].values():
        if datasets and r["dataset"] not in datasets:
            continue
        if losses and r["loss"] not in losses:
            continue
        groups.setdefault((r["dataset"], r["loss"], r["learner"]), []).append(r)
    for rows in groups.values():
        rows.sort(key=lambda r: r["seed"])
    return groups


def dtw_for(store, name, rows):
    subs = {r["setup"]["subsample"] for r in rows}
    seeds = {r["seed"] for r in rows}
    for sub in sorted(subs):
        for seed in sorted(seeds):
            entry = store["dtw"].get(dtw_key(name, sub, seed))
            if entry is not None:
                return entry
    return None


def ok(rows):
    return [r for r in rows if r.get("error") is None]


def summarize(store, datasets=None, losses=None):
    groups = collect(store, datasets, losses)
    if not groups:
        print("no results to summarise")
        return
    order = {name: i for i, name in enumerate(DATASETS)}
    setups = {
        json.dumps(r["setup"], sort_keys=True) for g in groups.values() for r in g
    }
    if len(setups) > 1:
        print(f"NOTE: the results mix setups: {sorted(setups)}\n")
    counts = []
    for loss in LOSSES:
        names = sorted(
            {n for n, lo, _ in groups if lo == loss}, key=lambda n: order.get(n, 99)
        )
        if not names:
            continue
        print(f"\n### {loss} loss: 1-NN accuracy and MAP on the test set\n")
        print(
            "| data set | seeds | DTW acc | DTW MAP | TAP acc | TAP MAP "
            "| soft-DTW acc | soft-DTW MAP | TAP MAP >= soft-DTW MAP? |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---|")
        n_map = n_vs_sdtw = n_dtw = n_vs_dtw = 0
        for name in names:
            tap = groups.get((name, loss, "TAP"), [])
            sdtw = groups.get((name, loss, "soft-DTW"), [])
            dtw = dtw_for(store, name, tap + sdtw)
            cells = [
                fmt(dtw and dtw["accuracy"]),
                fmt(dtw and dtw["map"]),
            ]
            for rows in (tap, sdtw):
                good = ok(rows)
                failed = len(rows) - len(good)
                note = f" ({failed} failed)" if failed else ""
                cells.append(spread([r["accuracy"] for r in good]) + note)
                cells.append(spread([r["map"] for r in good]))
            tap_map = np.mean([r["map"] for r in ok(tap)]) if ok(tap) else None
            sdtw_map = np.mean([r["map"] for r in ok(sdtw)]) if ok(sdtw) else None
            tap_acc = np.mean([r["accuracy"] for r in ok(tap)]) if ok(tap) else None
            if tap_map is None or sdtw_map is None:
                verdict = "-"
            else:
                n_vs_sdtw += 1
                n_map += int(tap_map >= sdtw_map)
                verdict = "yes" if tap_map >= sdtw_map else "no"
            if tap_map is not None and dtw is not None:
                n_vs_dtw += 1
                n_dtw += int(tap_acc >= dtw["accuracy"] and tap_map >= dtw["map"])
            seeds = f"{len(ok(tap))}/{len(ok(sdtw))}"
            print(f"| {name} | {seeds} | " + " | ".join(cells) + f" | {verdict} |")
        print(
            "\n(seeds: successful TAP / soft-DTW fits; mean over seeds, "
            "(min-max) when several; verdict on the seed means)"
        )
        counts.append((loss, n_map, n_vs_sdtw, n_dtw, n_vs_dtw))
    print("\n### Counts\n")
    for loss, n_map, n_vs_sdtw, n_dtw, n_vs_dtw in counts:
        print(
            f"- {loss}: TAP mean MAP >= learned soft-DTW mean MAP on {n_map} of "
            f"{n_vs_sdtw} sets; TAP mean accuracy and mean MAP both >= DTW 1-NN "
            f"on {n_dtw} of {n_vs_dtw} sets"
        )
    print("\n### Seconds (mean over seeds)\n")
    print(
        "| data set | loss | TAP fit s | TAP predict s | soft-DTW fit s "
        "| soft-DTW predict s | device |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for name, loss in sorted(
        {(n, lo) for n, lo, _ in groups},
        key=lambda k: (order.get(k[0], 99), LOSSES.index(k[1])),
    ):
        cells, devices = [], set()
        for learner in LEARNERS:
            good = ok(groups.get((name, loss, learner), []))
            devices |= {r["device"] for r in good}
            for key in ("fit_s", "predict_s"):
                cells.append(
                    fmt(float(np.mean([r[key] for r in good])), ".1f") if good else "-"
                )
        print(
            f"| {name} | {loss} | "
            + " | ".join(cells)
            + f" | {', '.join(sorted(devices))} |"
        )


# -- main --------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--datasets",
        nargs="+",
        choices=list(DATASETS),
        default=None,
        help="data sets (default: all seven; --quick: ItalyPowerDemand)",
    )
    p.add_argument("--losses", nargs="+", choices=LOSSES, default=list(LOSSES))
    p.add_argument(
        "--learners", nargs="+", choices=list(LEARNERS), default=list(LEARNERS)
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--device", default="cpu", help="the learners' device (cpu)")
    p.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="override the library default (40) for both learners (--quick: 2)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    p.add_argument(
        "--out",
        default=None,
        help=f"results JSON ('' for none; default {os.path.relpath(DEFAULT_OUT)}, "
        "--quick: none)",
    )
    p.add_argument(
        "--baselines-cache",
        default=DEFAULT_CACHE,
        help="bench_accuracy's baselines JSON, read for the DTW 1-NN numbers",
    )
    p.add_argument("--force", action="store_true", help="refit keys already done")
    p.add_argument(
        "--retry-failed", action="store_true", help="refit keys whose fit raised"
    )
    p.add_argument(
        "--summary-only", action="store_true", help="print the JSON's tables, no fit"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.datasets = args.datasets or [QUICK_DATASET]
        args.seeds = args.seeds[:1]
        if args.max_epochs is None:
            args.max_epochs = 2
        if args.out is None:
            args.out = ""
    if args.out is None:
        args.out = DEFAULT_OUT
    if args.summary_only and not args.out:
        p.error("--summary-only needs a results JSON (--out)")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.summary_only:
        if not os.path.exists(args.out):
            sys.exit(f"{args.out}: no such file")
        summarize(read_store(args.out), args.datasets, args.losses)
        return
    datasets = args.datasets or list(STANDARD)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    run_id = f"{started} pid {os.getpid()}"
    machine = machine_info()
    store = read_store(args.out)
    store["runs"][run_id] = {
        "command": " ".join(["python", *sys.argv]),
        "args": vars(args),
        "machine": machine,
        "started": started,
    }
    print(
        "bench_metric_learning: "
        + ", ".join(f"{k}={v}" for k, v in machine.items())
        + f"\ndata sets {datasets}, losses {args.losses}, learners {args.learners}, "
        f"seeds {args.seeds}, device {args.device}, "
        f"max_epochs {args.max_epochs or 'library default'}, "
        f"out {args.out or '(none)'}",
        flush=True,
    )
    t0 = time.perf_counter()
    warmed = False
    n_fits = 0
    # every array here is time first, even a short one with many channels
    with sktap.config_context(layout="time_first"):
        for name in datasets:
            for seed in args.seeds:
                data = sub = None
                for loss in args.losses:
                    for learner in args.learners:
                        key = result_key(name, loss, learner, seed)
                        params = learner_params(args, loss, seed)
                        setup = setup_of(params, subsample_name(args.quick))
                        old = store["results"].get(key)
                        if old is not None and not args.force:
                            if old["setup"] != setup:
                                sys.exit(
                                    f"{key} is in {args.out} with setup "
                                    f"{old['setup']}, not {setup}: use another "
                                    "--out, or --force to replace it"
                                )
                            if old.get("error") is None or not args.retry_failed:
                                print(f"{key}: done already, skipped")
                                continue
                        if data is None:
                            data, sub = load(name, seed, args.quick)
                            dtw = dtw_numbers(store, args, name, sub, seed, data)
                            print(
                                f"\n## {name} seed {seed}: {len(data[0])} train, "
                                f"{len(data[2])} test; DTW 1-NN acc "
                                f"{dtw['accuracy']:.3f} MAP {dtw['map']:.3f} "
                                f"({dtw['source']})",
                                flush=True,
                            )
                        if not warmed:
                            warm_up(args.device)
                            warmed = True
                        row = fit_one(name, loss, learner, seed, params, data)
                        store["results"][key] = {
                            "dataset": name,
                            "loss": loss,
                            "learner": learner,
                            "seed": seed,
                            "device": args.device,
                            "params": params,
                            "setup": setup,
                            "n_train": len(data[0]),
                            "n_test": len(data[2]),
                            **row,
                            "load_average": os.getloadavg(),
                            "finished": datetime.datetime.now()
                            .astimezone()
                            .isoformat(timespec="seconds"),
                            "run": run_id,
                        }
                        n_fits += 1
                        store["runs"][run_id]["fits"] = n_fits
                        store["runs"][run_id]["seconds"] = time.perf_counter() - t0
                        save(args.out, store, run_id)
                        if "error" in row:
                            print(f"{key}: FAILED {row['error'][:200]}", flush=True)
                        else:
                            print(
                                f"{key}: acc {row['accuracy']:.4f} MAP "
                                f"{row['map']:.4f}, fit {row['fit_s']:.1f} s "
                                f"({row['epochs']} epochs), predict "
                                f"{row['predict_s']:.1f} s",
                                flush=True,
                            )
    print(f"\n{n_fits} fits in {time.perf_counter() - t0:.0f} s")
    if args.out:
        print(f"results in {args.out}; summary over everything in it:")
    summarize(store)


if __name__ == "__main__":
    main()
