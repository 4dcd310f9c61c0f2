"""1-NN accuracy and retrieval MAP of learned TAP on real data sets, against DTW.

Seven real labelled time-series classification sets that ship inside PyPI
packages (see ``benchmarks/_datasets.py``), each with its official
train/test split:

=====================  ==============  =====  ====  =======  ========  ======
data set               source          train  test  classes  channels  length
=====================  ==============  =====  ====  =======  ========  ======
ItalyPowerDemand       aeon 1.6.0         67  1029        2         1  24
JapaneseVowels         aeon 1.6.0        270   370        9        12  7-29
BasicMotions           aeon 1.6.0         40    40        4         6  100
GunPoint               aeon 1.6.0         50   150        2         1  150
PickupGestureWiimoteZ  aeon 1.6.0         50    50       10         1  29-361
ArrowHead              aeon 1.6.0         36   175        3         1  251
Trace                  tslearn 0.10.0    100   100        4         1  275
=====================  ==============  =====  ====  =======  ========  ======

Install the data with ``pip install --no-deps aeon==1.6.0`` (only its
bundled ``.ts`` files are read; see ``_datasets.py`` for why ``--no-deps``).

Methods, all 1-NN, one run per data set in one process:

- tslearn's DTW and soft-DTW (gamma = 1) 1-NN: the label at the smallest
  distance of one ``cdist_dtw`` / ``cdist_soft_dtw`` matrix, which is what
  its ``KNeighborsTimeSeriesClassifier`` predicts (rows cached before
  2026-11-30 ran that classifier and the matrix separately). Soft-DTW is
  skipped where the matrix exceeds ``SOFTDTW_MAX_CELLS`` (the long sets of
  ``--hard``: hours without pruning);
- Euclidean 1-NN (scikit-learn, flattened series), only where all series
  have the same length;
- ``TAPKNeighborsClassifier(metric_learner=TAPMetricLearner(**tap_params))``,
  ``tap_params`` the library defaults unless ``--tap-params`` gives JSON;
- ``TAPKNeighborsClassifier(metric_learner=SoftDTWMetricLearner(**sdtw_params))``
  likewise with ``--sdtw-params`` (``--no-sdtw-learner`` skips it).

The learners get ``random_state=--seed`` (0) unless their params set it.

Columns: test accuracy; MAP of the test queries ranking the training set
(``sktap.metrics.mean_average_precision`` on the test x train distance
matrix: ``cdist_dtw`` / ``cdist_soft_dtw`` for tslearn, Euclidean distances,
``knn.metric_learner_.pairwise_distances(X_test, X_train)`` for sktap);
fit seconds; predict seconds (the classifier's ``predict`` on the test set;
the MAP matrix is computed separately, its seconds in the ``MAP s`` column).
Timings are single runs after a warm-up of numba (tslearn) and torch on tiny
input, so compilation is not counted.

Targets, per data set, MET / NOT MET:

1. learned TAP's accuracy >= DTW's;
2. learned TAP's MAP >= DTW's;
3. on sets of at most 50 steps, TAP (fit + predict) <= 3x DTW (fit +
   predict); on longer sets the ratio is printed, not judged.

Run from the repository root::

    python benchmarks/bench_accuracy.py                   # all sets, full size
    python benchmarks/bench_accuracy.py --quick           # smoke run
    python benchmarks/bench_accuracy.py --datasets GunPoint,Trace \\
        --tap-params '{"max_epochs": 10}' --out results.json \\
        --baselines-cache benchmarks/results/baselines.json

``--quick`` subsamples (stratified, seeded) each set to at most 40 training
and 40 test series and passes ``max_epochs=2`` to both learners (unless
their params set it). ``--baselines-only`` runs only the tslearn,
Euclidean and MiniRocket rows. ``--baselines-cache FILE`` reuses those rows from FILE
(keyed by data set, seed and subsample) and stores new ones there.
The MiniRocket row is a reference, not a distance: aeon's
``MiniRocketClassifier`` (random dilated convolutions, pooled features, a
ridge classifier; ``random_state`` the seed, one thread), whose dilations
reach across the whole series, and the MAP of its ``MiniRocket`` features
under Euclidean distance. Unequal lengths are zero-padded to the longest
series (MiniRocket needs one length). A cache without the row gains it.
``--max-test N`` caps each test set at N series (stratified, seeded; the
output says so).

Runtime on 2 CPU cores with ``OMP_NUM_THREADS=1``: the DTW, soft-DTW and
Euclidean baselines on all seven full sets take about 5 minutes (each
classifier's predict plus the MAP matrix; soft-DTW on the long sets is most
of it). DTW 1-NN takes at most about 12 s per set (JapaneseVowels, whose
370 x 270 pairs of short series are dominated by tslearn's per-pair
overhead; Trace 7 s), so no test set needs capping: ``--max-test`` is off by
default and no row here used it. The learned rows take longer, as set by
``tap_params`` (library defaults: 50 epochs) and by sequence length (TAP's
work grows with the square of the length). ``--quick`` with both learners
takes about 30 s per short set and up to 3 minutes on a long one (the
learned soft-DTW on PickupGestureWiimoteZ, up to 361 steps).

Baselines at full size (seed 0, one run, 2-core x86-64 CPU, tslearn 0.10.0,
``OMP_NUM_THREADS=1``; ``benchmarks/results/baselines.json``), accuracy /
MAP, and DTW 1-NN fit + predict seconds:

=====================  =============  =============  =============  =====
data set               DTW            soft-DTW       Euclidean      DTW s
=====================  =============  =============  =============  =====
ItalyPowerDemand       0.950 / 0.733  0.947 / 0.761  0.955 / 0.801    1.1
JapaneseVowels         0.949 / 0.784  0.865 / 0.743  -               11.7
BasicMotions           0.975 / 0.827  0.975 / 0.827  0.600 / 0.499    0.1
GunPoint               0.907 / 0.627  0.980 / 0.682  0.913 / 0.636    1.4
PickupGestureWiimoteZ  0.700 / 0.625  0.160 / 0.301  -                3.9
ArrowHead              0.703 / 0.565  0.760 / 0.597  0.800 / 0.619    1.9
Trace                  1.000 / 0.862  0.940 / 0.800  0.760 / 0.556    7.1
=====================  =============  =============  =============  =====

DTW and Euclidean on ItalyPowerDemand, GunPoint, ArrowHead and Trace match
the UCR archive's published 1-NN accuracies (full-window DTW), and DTW on
JapaneseVowels and BasicMotions matches the UEA archive's DTW_D. tslearn's
soft-DTW (gamma = 1) is not a divergence: its value falls with the number of
alignment paths, so on a variable-length set (PickupGestureWiimoteZ) the
longest training series are near every query and its 1-NN collapses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

# tslearn's soft-DTW loss (the learned soft-DTW row) runs numba kernels whose
# threads fight torch's for the 2 cores: one thread is ~10x faster here.
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier
from tslearn.metrics import cdist_dtw, cdist_soft_dtw
from tslearn.neighbors import KNeighborsTimeSeriesClassifier
from tslearn.utils import to_time_series_dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import machine_info, subsample, timed
from _datasets import DATASETS, HARD, STANDARD, describe, length_range, markdown_table

from sktap import TAPKNeighborsClassifier, TAPMetricLearner, _thresholds
from sktap.baselines import SoftDTWMetricLearner
from sktap.metrics import mean_average_precision

DTW, SOFTDTW, EUCLIDEAN = "DTW 1-NN", "soft-DTW 1-NN", "Euclidean 1-NN"
TAP, SDTW_LEARNER = "learned TAP 1-NN", "learned soft-DTW 1-NN"
MINIROCKET = "MiniRocket (reference)"
BASELINES = (DTW, SOFTDTW, EUCLIDEAN)
QUICK_SIZE = 40  # --quick: at most this many training and test series
SHORT = 50  # steps: the time target applies to sets this short
TIME_FACTOR = 3.0


# -- data ----------------------------------------------------------------------
def load(name, args):
    """The data set, subsampled as asked, and a key naming the subsample."""
    X_train, y_train, X_test, y_test = DATASETS[name]()
    full = (len(X_train), len(X_test))
    parts = []
    if args.quick:
        X_train, y_train = subsample(X_train, y_train, QUICK_SIZE, args.seed)
        X_test, y_test = subsample(X_test, y_test, QUICK_SIZE, args.seed)
        parts.append(f"quick{QUICK_SIZE}")
    if args.max_test is not None and len(X_test) > args.max_test:
        X_test, y_test = subsample(X_test, y_test, args.max_test, args.seed)
        parts.append(f"test<={args.max_test}")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    return (X_train, y_train, X_test, y_test), "+".join(parts) or "full", full


def equal_length(*sets):
    return len({len(x) for X in sets for x in X}) == 1


# -- helpers ---------------------------------------------------------------------
def warm_up_torch(tap_params):
    """Start torch (and its device, e.g. CUDA) outside the timings: one epoch
    of the learner on 8 tiny random series."""
    rng = np.random.RandomState(0)
    X = [rng.randn(int(n), 2) for n in rng.randint(6, 12, size=8)]
    TAPMetricLearner(**{**tap_params, "max_epochs": 1}).fit(X, np.arange(8) % 2)


def warm_up_tslearn():
    """Compile tslearn's numba kernels outside the timings."""
    a = to_time_series_dataset([np.zeros((5, 2)), np.ones((4, 2))])
    b = np.ones((1, 3, 2))
    for metric, cdist in (("dtw", cdist_dtw), ("softdtw", cdist_soft_dtw)):
        cdist(b, a)
        KNeighborsTimeSeriesClassifier(1, metric=metric).fit(a, [0, 1]).predict(b)


def make_row(name, method, params, acc, ap, fit_s, predict_s, map_s, ctx):
    return {
        "dataset": name,
        "method": method,
        "params": params,
        "accuracy": acc,
        "map": ap,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "map_s": map_s,
        **ctx,
    }


# -- methods ---------------------------------------------------------------------
def tslearn_row(metric, cdist, method, data, ctx):
    """1-NN and MAP from one tslearn distance matrix (test x train).

    The 1-NN label is the training label at each row's smallest distance
    (the first on ties), which is what tslearn's
    ``KNeighborsTimeSeriesClassifier(n_neighbors=1)`` predicts from the same
    matrix; computing it once halves the time of the long sets. Its seconds
    are reported as the predict time, and the MAP time is 0.
    """
    X_train, y_train, X_test, y_test = data
    Xtr, Xte = to_time_series_dataset(X_train), to_time_series_dataset(X_test)
    D, predict_s = timed(cdist, Xte, Xtr)
    pred = np.asarray(y_train)[D.argmin(axis=1)]
    ap = mean_average_precision(D, y_test, y_train)
    acc = float(np.mean(pred == y_test))
    params = {"metric": metric, **({"gamma": 1.0} if metric == "softdtw" else {})}
    return make_row(ctx["dataset"], method, params, acc, ap, 0.0, predict_s, 0.0, ctx)


#: tslearn's soft-DTW 1-NN runs only where the test x train matrix has at
#: most this many cells (sum of Lx * Ly): it has no pruning, and Trace's
#: 0.75e9 cells took 59 s, so PLAID (3e10) or PigCVP (8.6e10) would take
#: hours on the 2-core machine.
SOFTDTW_MAX_CELLS = 5e9


def matrix_cells(data):
    """Cells of the test x train distance matrix: sum of Lx * Ly."""
    X_train, _, X_test, _ = data
    return float(sum(len(x) for x in X_test) * sum(len(x) for x in X_train))


def euclidean_row(data, ctx):
    X_train, y_train, X_test, y_test = data
    Xtr = np.stack([x.ravel() for x in X_train])
    Xte = np.stack([x.ravel() for x in X_test])
    clf = KNeighborsClassifier(n_neighbors=1)
    _, fit_s = timed(clf.fit, Xtr, y_train)
    pred, predict_s = timed(clf.predict, Xte)
    D, map_s = timed(pairwise_distances, Xte, Xtr)
    ap = mean_average_precision(D, y_test, y_train)
    acc = float(np.mean(pred == y_test))
    return make_row(
        ctx["dataset"], EUCLIDEAN, {}, acc, ap, fit_s, predict_s, map_s, ctx
    )


def _padded_channels_first(X, length):
    """(n, d, length), zeros after each series' end: MiniRocket needs one length."""
    out = np.zeros((len(X), X[0].shape[1], length))
    for i, x in enumerate(X):
        out[i, :, : len(x)] = x.T
    return out


def minirocket_row(data, ctx):
    """aeon's MiniRocketClassifier (random dilated kernels, pooled, then a ridge
    classifier): its accuracy, and the MAP of its features under Euclidean
    distance, as a reference for what a feature classifier reaches."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.transformations.collection.convolution_based import MiniRocket

    X_train, y_train, X_test, y_test = data
    length = max(len(x) for x in (*X_train, *X_test))
    Xtr = _padded_channels_first(X_train, length)
    Xte = _padded_channels_first(X_test, length)
    clf = MiniRocketClassifier(random_state=ctx["seed"], n_jobs=1)
    _, fit_s = timed(clf.fit, Xtr, np.asarray(y_train))
    pred, predict_s = timed(clf.predict, Xte)

    def feature_distances():
        features = MiniRocket(random_state=ctx["seed"], n_jobs=1).fit(Xtr)
        return pairwise_distances(features.transform(Xte), features.transform(Xtr))

    D, map_s = timed(feature_distances)
    ap = mean_average_precision(D, y_test, y_train)
    acc = float(np.mean(pred == np.asarray(y_test)))
    params = (
        {"padding": "zeros to the longest series"}
        if any(len(x) != length for x in (*X_train, *X_test))
        else {}
    )
    return make_row(
        ctx["dataset"], MINIROCKET, params, acc, ap, fit_s, predict_s, map_s, ctx
    )


def baseline_rows(data, ctx):
    rows = []
    for metric, cdist, method in (
        ("dtw", cdist_dtw, DTW),
        ("softdtw", cdist_soft_dtw, SOFTDTW),
    ):
        if metric == "softdtw" and matrix_cells(data) > SOFTDTW_MAX_CELLS:
            print(
                f"  {method}: skipped, {matrix_cells(data):.2g} cells > "
                f"SOFTDTW_MAX_CELLS = {SOFTDTW_MAX_CELLS:.2g}"
            )
            continue
        rows.append(tslearn_row(metric, cdist, method, data, ctx))
        print(f"  {method}: {rows[-1]['fit_s'] + rows[-1]['predict_s']:.1f} s")
    if equal_length(data[0], data[2]):
        rows.append(euclidean_row(data, ctx))
    rows.append(minirocket_row(data, ctx))
    print(f"  {MINIROCKET}: {rows[-1]['fit_s'] + rows[-1]['predict_s']:.1f} s")
    return rows


def learner_row(method, learner_cls, params, data, ctx):
    X_train, y_train, X_test, y_test = data
    knn = TAPKNeighborsClassifier(n_neighbors=1, metric_learner=learner_cls(**params))
    try:
        _, fit_s = timed(knn.fit, X_train, y_train)
        pred, predict_s = timed(knn.predict, X_test)
        D, map_s = timed(knn.metric_learner_.pairwise_distances, X_test, X_train)
    except Exception as exc:  # keep the other data sets going (e.g. out of memory)
        traceback.print_exc()
        row = make_row(
            ctx["dataset"], method, params, None, None, None, None, None, ctx
        )
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    ap = mean_average_precision(D, y_test, y_train)
    acc = float(np.mean(pred == y_test))
    return make_row(
        ctx["dataset"], method, params, acc, ap, fit_s, predict_s, map_s, ctx
    )


def learner_params(user, args):
    params = dict(user)
    params.setdefault("random_state", args.seed)
    if args.quick:
        params.setdefault("max_epochs", 2)
    return params


# -- cache and output ------------------------------------------------------------
def read_json(path, default):
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return default


def write_json(path, obj):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def cache_key(name, seed, sub):
    return f"{name}|seed={seed}|{sub}"


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def print_rows(rows):
    print("| method | accuracy | MAP | fit s | predict s | MAP s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        note = " (cached)" if r.get("cached") else ""
        if r.get("error"):
            note += f" FAILED: {r['error'][:80]}"
        print(
            f"| {r['method']}{note} | {fmt(r['accuracy'], '.4f')} "
            f"| {fmt(r['map'], '.4f')} | {fmt(r['fit_s'], '.2f')} "
            f"| {fmt(r['predict_s'], '.2f')} | {fmt(r['map_s'], '.2f')} |"
        )


def total_s(row):
    if row is None or row.get("fit_s") is None:
        return None
    return row["fit_s"] + row["predict_s"]


def ratio(rows):
    tap, dtw = total_s(rows.get(TAP)), total_s(rows.get(DTW))
    return None if tap is None or not dtw else tap / dtw


def verdict(ok):
    return "MET" if ok else "NOT MET"


def targets(name, info, rows):
    """Lines of the targets for one data set (empty without a TAP row)."""
    tap, dtw = rows.get(TAP), rows.get(DTW)
    if tap is None or dtw is None:
        return []
    if tap.get("error"):
        return [f"[NOT MET] {name}: learned TAP failed ({tap['error'][:80]})"]
    rocket = rows.get(MINIROCKET)
    reference = []
    if rocket is not None and rocket.get("accuracy") is not None:
        reference.append(
            f"[info] {name}: MiniRocket accuracy {rocket['accuracy']:.4f}, MAP of "
            f"its features {rocket['map']:.4f}; learned TAP minus MiniRocket: "
            f"accuracy {tap['accuracy'] - rocket['accuracy']:+.4f}, MAP "
            f"{tap['map'] - rocket['map']:+.4f}"
        )
    lines = [
        f"[{verdict(tap['accuracy'] >= dtw['accuracy'])}] {name}: learned TAP "
        f"accuracy {tap['accuracy']:.4f} >= DTW {dtw['accuracy']:.4f}",
        f"[{verdict(tap['map'] >= dtw['map'])}] {name}: learned TAP MAP "
        f"{tap['map']:.4f} >= DTW {dtw['map']:.4f}",
    ]
    r = ratio(rows)
    if info["max_length"] <= SHORT:
        lines.append(
            f"[{verdict(r <= TIME_FACTOR)}] {name} (<= {SHORT} steps): TAP "
            f"fit+predict {total_s(tap):.2f} s <= {TIME_FACTOR:g}x DTW "
            f"{total_s(dtw):.2f} s (ratio {r:.2f})"
        )
    else:
        lines.append(
            f"[info] {name} ({length_range(info)} steps): TAP fit+predict "
            f"{total_s(tap):.2f} s / DTW {total_s(dtw):.2f} s = ratio {r:.2f}"
        )
    return lines + reference


def print_summary(results):
    methods = [
        m
        for m in (*BASELINES, TAP, SDTW_LEARNER, MINIROCKET)
        if any(m in rows for _, _, rows in results)
    ]
    head = " | ".join(f"{m} acc / MAP" for m in methods)
    print(f"| data set | length | {head} | TAP/DTW time |")
    print("|---|---|" + "---:|" * (len(methods) + 1))
    for name, info, rows in results:
        cells = []
        for m in methods:
            r = rows.get(m)
            cells.append(
                "-"
                if r is None
                else f"{fmt(r['accuracy'], '.3f')} / {fmt(r['map'], '.3f')}"
            )
        r = ratio(rows)
        print(
            f"| {name} | {length_range(info)} | {' | '.join(cells)} | {fmt(r, '.2f')} |"
        )


# -- main ------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        default=",".join(STANDARD),
        help=f"comma-separated subset of {','.join(DATASETS)} (default: the "
        "seven standard sets; --hard: the three sets of the hard regimes)",
    )
    parser.add_argument(
        "--hard", action="store_true", help=f"run {','.join(HARD)} instead"
    )
    parser.add_argument(
        "--auto-target-length",
        type=int,
        default=None,
        help="frames that downsample='auto' aims at for the longest training "
        "series (sktap._thresholds.AUTO_TARGET_LENGTH)",
    )
    parser.add_argument(
        "--auto-max-stride",
        type=int,
        default=None,
        help="largest stride of downsample='auto' (sktap._thresholds.AUTO_MAX_STRIDE)",
    )
    parser.add_argument("--quick", action="store_true", help="40/40 series, 2 epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tap-params", type=json.loads, default={}, help="JSON")
    parser.add_argument("--sdtw-params", type=json.loads, default={}, help="JSON")
    parser.add_argument("--no-sdtw-learner", action="store_true")
    parser.add_argument(
        "--baselines-only", action="store_true", help="skip the learned rows"
    )
    parser.add_argument("--max-test", type=int, default=None, help="cap test sets")
    parser.add_argument("--out", help="append rows (JSON list of dicts) to this file")
    parser.add_argument("--baselines-cache", help="JSON file of reusable baselines")
    args = parser.parse_args(argv)
    for opt in ("tap_params", "sdtw_params"):
        if not isinstance(getattr(args, opt), dict):
            parser.error(f"--{opt.replace('_', '-')} must be a JSON object")
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if args.hard:
        args.datasets = list(HARD)
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {list(DATASETS)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.auto_target_length is not None:  # measured thresholds, re-measured
        _thresholds.AUTO_TARGET_LENGTH = args.auto_target_length
    if args.auto_max_stride is not None:
        _thresholds.AUTO_MAX_STRIDE = args.auto_max_stride
    machine = machine_info()
    tap_params = learner_params(args.tap_params, args)
    sdtw_params = learner_params(args.sdtw_params, args)
    print(
        "bench_accuracy: "
        + ", ".join(f"{k}={v}" for k, v in machine.items())
        + f"; seed={args.seed}"
        + (" (--quick)" if args.quick else "")
    )
    if not args.baselines_only:
        print(f"TAPMetricLearner params: {tap_params} (others: library defaults)")
        if not args.no_sdtw_learner:
            print(f"SoftDTWMetricLearner params: {sdtw_params}")
    t_start = time.perf_counter()
    if not args.baselines_only:
        warm_up_torch(tap_params)
    tslearn_warm = False  # compiled before the first baseline not in the cache
    cache = read_json(args.baselines_cache, {})
    results, all_rows = [], []
    for name in args.datasets:
        data, sub, full = load(name, args)
        info = describe(name, data)
        print(f"\n## {name}\n")
        print(markdown_table([info]))
        if sub != "full":
            print(
                f"\nsubsample {sub}: {info['n_train']} of {full[0]} training and "
                f"{info['n_test']} of {full[1]} test series"
            )
        if args.max_test is not None and full[1] > args.max_test:
            print(f"NOTE: test set capped at {args.max_test} of {full[1]} series")
        ctx = {
            "dataset": name,
            "source": info["source"],
            "subsample": sub,
            "n_train": info["n_train"],
            "n_test": info["n_test"],
            "seed": args.seed,
            "machine": machine,
        }
        key = cache_key(name, args.seed, sub)
        if args.baselines_cache and key in cache:
            rows = [{**r, "cached": True} for r in cache[key]]
            print(f"\nbaselines from {args.baselines_cache} ({key})")
            if not any(r["method"] == MINIROCKET for r in rows):
                # caches from before the reference row: add it to them
                rows.append(minirocket_row(data, ctx))
                cache = read_json(args.baselines_cache, {})
                cache[key] = [
                    {k: v for k, v in r.items() if k != "cached"} for r in rows
                ]
                write_json(args.baselines_cache, cache)
        else:
            if not tslearn_warm:
                warm_up_tslearn()
                tslearn_warm = True
            rows = baseline_rows(data, ctx)
            if args.baselines_cache:
                cache = read_json(args.baselines_cache, {})  # others may write too
                cache[key] = rows
                write_json(args.baselines_cache, cache)
        if not args.baselines_only:
            rows.append(learner_row(TAP, TAPMetricLearner, tap_params, data, ctx))
            print(f"  {TAP}: {fmt(total_s(rows[-1]), '.1f')} s")
            if not args.no_sdtw_learner:
                rows.append(
                    learner_row(
                        SDTW_LEARNER, SoftDTWMetricLearner, sdtw_params, data, ctx
                    )
                )
                print(f"  {SDTW_LEARNER}: {fmt(total_s(rows[-1]), '.1f')} s")
        print()
        print_rows(rows)
        by_method = {r["method"]: r for r in rows}
        r = ratio(by_method)
        if r is not None:
            print(f"\n(TAP fit+predict) / (DTW fit+predict) = {r:.2f}")
        results.append((name, info, by_method))
        all_rows += rows
        if args.out:
            write_json(args.out, read_json(args.out, []) + rows)

    print("\n## Summary\n")
    print(markdown_table([info for _, info, _ in results]))
    print()
    print_summary(results)
    lines = [line for name, info, rows in results for line in targets(name, info, rows)]
    if lines:
        print("\n## Targets\n")
        for line in lines:
            print(f"- {line}")
        met = sum(line.startswith("[MET]") for line in lines)
        judged = sum(not line.startswith("[info]") for line in lines)
        print(f"\n{met} of {judged} targets met")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return all_rows


if __name__ == "__main__":
    main()
