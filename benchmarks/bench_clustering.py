"""Clustering held-out sequences with learned TAP, parameter-free TAP and DTW.

Protocol, per real data set (official UCR/UEA splits, shipped inside PyPI
packages; see ``benchmarks/_datasets.py``):

- **seen classes**: fit ``TAPMetricLearner(random_state=seed)`` (library
  defaults, as a user gets it) on the training split, then cluster the
  *test* split, which the learner never saw;
- **novel classes** (sets with at least 4 classes): the sorted class labels
  are cut in two; the learner is fitted on the training sequences of the
  first half (rounded up) and the test sequences of the *other* half are
  clustered, so neither those sequences nor their classes were seen.

Every distance is a precomputed ``(n, n)`` matrix of the sequences to
cluster, all clustered the same way:
``AgglomerativeClustering(n_clusters=<number of classes clustered>,
metric="precomputed", linkage="average")``, scored by the adjusted Rand
index (ARI) against the true labels.

- learned TAP: ``learner.pairwise_distances(X, symmetric="divergence")``,
  one learner per seed (``--seeds``, default 0,1,2): mean, spread
  (standard deviation) and every seed's ARI are reported;
- parameter-free TAP: ``sktap.metrics.cdist_tap(X, symmetric="divergence")``
  (deterministic, one run);
- DTW: tslearn's ``cdist_dtw`` (full window; deterministic, one run).

The "divergence" form ``max(0, s(x, y) - (s(x, x) + s(y, y)) / 2)`` of the
two-sided TAP average ``s`` is symmetric, non-negative and zero on the
diagonal, which is what a precomputed clustering expects; TAP's own
self-distance is not zero.

Timings (seconds, single runs after a warm-up of numba and torch): the
learner's fit and each distance matrix. They are wall-clock on a machine
that may be shared, so read them as orders of magnitude.

"best" is the method with the highest ARI, with ties within 0.01 or the
learner's seed spread; "none" where no method reaches ARI 0.1.

Results (library defaults, seeds 0, 1, 2; 2-core x86-64 CPU, torch 2.13
CPU, tslearn 0.10.0, ``NUMBA_NUM_THREADS=1``; 520 s in all, of which about
230 s were lost to another process sharing the cores during GunPoint;
``benchmarks/results/clustering.json``):

==============  =======  =======  ==============  ========  ======
data set        setting  k (n)    learned TAP     free TAP  DTW
==============  =======  =======  ==============  ========  ======
JapaneseVowels  seen     9 (370)  0.968 ± 0.010   0.688     0.690
JapaneseVowels  novel    4 (143)  0.203 ± 0.103   0.677     0.682
BasicMotions    seen     4 (40)   1.000 ± 0.000   0.321     0.321
BasicMotions    novel    2 (20)   1.000 ± 0.000   1.000     0.000
Trace           seen     4 (100)  1.000 ± 0.000   0.067     0.732
Trace           novel    2 (47)   0.039 ± 0.010   0.031     -0.009
ArrowHead       seen     3 (175)  -0.003 ± 0.004  -0.001    -0.002
GunPoint        seen     2 (150)  0.116 ± 0.061   0.033     -0.005
==============  =======  =======  ==============  ========  ======

(k: clusters; n: test sequences clustered.) The learned
distance wins clearly on held-out sequences of the classes it was trained
on. On novel classes it does not transfer on JapaneseVowels (speakers
1-5 -> 6-9: far below both untrained distances, and seed-dependent); on
BasicMotions (Badminton, Running -> Standing, Walking) it ties the
parameter-free TAP. On ArrowHead, GunPoint and Trace's novel pair no
distance recovers the classes by average linkage (ARI at most 0.18 for
any seed; DTW's two GunPoint clusters hold 70 and 80 sequences, so this is
not just outliers split off). Training is not bitwise reproducible from
run to run on the CPU: an earlier run on a busier machine differed by up
to 0.02 ARI on single seeds of two rows (Trace novel, ArrowHead).

Run from the repository root::

    NUMBA_NUM_THREADS=1 python benchmarks/bench_clustering.py
    python benchmarks/bench_clustering.py --datasets Trace --seeds 0
    python benchmarks/bench_clustering.py --quick        # smoke run

``--quick`` subsamples (stratified, seeded) each split to at most 40
sequences and passes ``max_epochs=2``; its output is not a result.
``--tap-params`` (JSON) overrides learner parameters. Results go to
``--out`` (default ``benchmarks/results/clustering.json``) with the machine
and the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import traceback

# tslearn's cdist_dtw runs numba kernels whose threads fight torch's for the
# cores (see tests/conftest.py); one numba thread is faster here.
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score
from tslearn.metrics import cdist_dtw
from tslearn.utils import to_time_series_dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import machine_info, subsample, timed
from _datasets import DATASETS, describe, length_range

from sktap import TAPMetricLearner
from sktap.metrics import cdist_tap

DEFAULT_DATASETS = ("JapaneseVowels", "BasicMotions", "Trace", "ArrowHead", "GunPoint")
DEFAULT_OUT = os.path.join(os.path.dirname(__file__), "results", "clustering.json")
NOVEL_MIN_CLASSES = 4
QUICK_SIZE = 40
LEARNED, FREE, DTW = "learned TAP", "parameter-free TAP", "DTW"
MEANINGFUL = 0.1  # best ARI below this: no method recovers the classes
TIE = 0.01  # ARIs this close (or within the seed spread) tie


# -- data ----------------------------------------------------------------------
def select(X, y, classes):
    mask = np.isin(y, classes)
    return [x for x, m in zip(X, mask) if m], y[mask]


def settings(data):
    """``(setting, learn (X, y), cluster (X, y), seen classes)`` of one set."""
    X_train, y_train, X_test, y_test = data
    classes = np.unique(np.concatenate([y_train, y_test]))
    out = [("seen classes", (X_train, y_train), (X_test, y_test), classes)]
    if len(classes) >= NOVEL_MIN_CLASSES:
        # Rounded up: the learner gets the larger half of the classes.
        seen, novel = (
            classes[: (len(classes) + 1) // 2],
            classes[(len(classes) + 1) // 2 :],
        )
        out.append(
            (
                "novel classes",
                select(X_train, y_train, seen),
                select(X_test, y_test, novel),
                seen,
            )
        )
    return out


# -- helpers ---------------------------------------------------------------------
def cluster_ari(D, y):
    model = AgglomerativeClustering(
        n_clusters=len(np.unique(y)), metric="precomputed", linkage="average"
    )
    return float(adjusted_rand_score(y, model.fit_predict(D)))


def warm_up(tap_params):
    """Compile tslearn's numba kernels and start torch outside the timings."""
    rng = np.random.RandomState(0)
    X = [rng.randn(int(n), 2) for n in rng.randint(6, 12, size=8)]
    cdist_dtw(to_time_series_dataset(X))
    cdist_tap(X, symmetric="divergence")
    learner = TAPMetricLearner(**{**tap_params, "max_epochs": 1})
    learner.fit(X, np.arange(8) % 2).pairwise_distances(X, symmetric="divergence")


def write_json(path, obj):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


# -- one setting -------------------------------------------------------------------
def learned_runs(learn, X, y, tap_params, seeds):
    runs = []
    for seed in seeds:
        params = {"random_state": seed, **tap_params}
        try:
            learner, fit_s = timed(TAPMetricLearner(**params).fit, *learn)
            D, dist_s = timed(learner.pairwise_distances, X, symmetric="divergence")
        except Exception as exc:  # keep the other seeds and sets going
            traceback.print_exc()
            runs.append({"seed": seed, "error": f"{type(exc).__name__}: {exc}"})
            continue
        runs.append(
            {"seed": seed, "ari": cluster_ari(D, y), "fit_s": fit_s, "dist_s": dist_s}
        )
        print(
            f"    {LEARNED} seed {seed}: ARI {runs[-1]['ari']:.3f} "
            f"(fit {fit_s:.1f} s, distances {dist_s:.1f} s)",
            flush=True,
        )
    return runs


def summarise(runs):
    aris = [r["ari"] for r in runs if "ari" in r]
    if not aris:
        return {"ari": None, "ari_std": None, "fit_s": None, "dist_s": None}
    ok = [r for r in runs if "ari" in r]
    return {
        "ari": float(np.mean(aris)),
        "ari_std": float(np.std(aris)),
        "ari_min": float(np.min(aris)),
        "ari_max": float(np.max(aris)),
        "fit_s": float(np.mean([r["fit_s"] for r in ok])),
        "dist_s": float(np.mean([r["dist_s"] for r in ok])),
    }


def run_setting(name, setting, learn, clus, seen, tap_params, seeds):
    X, y = clus
    print(
        f"\n### {name}, {setting}: learn on {len(learn[0])} training sequences of "
        f"{len(seen)} classes, cluster {len(X)} test sequences of "
        f"{len(np.unique(y))} classes",
        flush=True,
    )
    D_dtw, dtw_s = timed(cdist_dtw, to_time_series_dataset(X))
    D_free, free_s = timed(cdist_tap, X, symmetric="divergence")
    baselines = {
        DTW: {"ari": cluster_ari(D_dtw, y), "dist_s": dtw_s},
        FREE: {"ari": cluster_ari(D_free, y), "dist_s": free_s},
    }
    for method, r in baselines.items():
        print(f"    {method}: ARI {r['ari']:.3f} ({r['dist_s']:.1f} s)", flush=True)
    runs = learned_runs(learn, X, y, tap_params, seeds)
    return {
        "dataset": name,
        "setting": setting,
        "learn_classes": [str(c) for c in seen],
        "cluster_classes": [str(c) for c in np.unique(y)],
        "n_learn": len(learn[0]),
        "n_cluster": len(X),
        "n_clusters": len(np.unique(y)),
        LEARNED: {**summarise(runs), "runs": runs},
        **baselines,
    }


# -- output ------------------------------------------------------------------------
def winner(row):
    """The method(s) with the best ARI; ties within the learner's seed spread.

    "none" when no method reaches ``MEANINGFUL`` ARI: then the clusters
    follow something other than the classes whatever the distance.
    """
    scores = {m: row[m]["ari"] for m in (LEARNED, FREE, DTW)}
    scores = {m: s for m, s in scores.items() if s is not None}
    best = max(scores.values())
    if best < MEANINGFUL:
        return f"none (all < {MEANINGFUL:g})"
    tie = max(TIE, row[LEARNED].get("ari_std") or 0.0)
    return ", ".join(m for m, s in scores.items() if s >= best - tie)


def print_table(rows, infos, n_seeds):
    spread = "mean ± sd" if n_seeds > 1 else "1 seed"
    print(
        f"| data set | length | setting | learn / cluster (k) | learned TAP ARI "
        f"({spread}) | param-free TAP ARI | DTW ARI | best | fit s | "
        "learned / free / DTW dist s |"
    )
    print("|---|---|---|---|---:|---:|---:|---|---:|---|")
    for r in rows:
        lt = r[LEARNED]
        learned = fmt(lt["ari"], ".3f")
        if lt["ari"] is not None and n_seeds > 1:
            learned += f" ± {lt['ari_std']:.3f}"
        print(
            f"| {r['dataset']} | {length_range(infos[r['dataset']])} "
            f"| {r['setting']} | {r['n_learn']} / {r['n_cluster']} "
            f"({r['n_clusters']}) | {learned} | {r[FREE]['ari']:.3f} "
            f"| {r[DTW]['ari']:.3f} | {winner(r)} | {fmt(lt['fit_s'], '.1f')} "
            f"| {fmt(lt['dist_s'], '.1f')} / {r[FREE]['dist_s']:.1f} "
            f"/ {r[DTW]['dist_s']:.1f} |"
        )


def save(args, command, tap_params, machine, infos, rows, t_start):
    """Write the results so far to ``args.out``; return the seconds elapsed."""
    total = time.perf_counter() - t_start
    write_json(
        args.out,
        {
            "benchmark": "bench_clustering",
            "command": command,
            "quick": args.quick,
            "tap_params": tap_params or "library defaults",
            "seeds": args.seeds,
            "clustering": "AgglomerativeClustering(metric='precomputed', "
            "linkage='average', n_clusters=<classes clustered>)",
            "machine": machine,
            "load_average_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "datasets": infos,
            "rows": rows,
            "total_s": total,
        },
    )
    return total


# -- main ------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        default=",".join(DEFAULT_DATASETS),
        help=f"comma-separated subset of {','.join(DATASETS)}",
    )
    parser.add_argument("--seeds", default="0,1,2", help="learner seeds")
    parser.add_argument("--quick", action="store_true", help="40/40 series, 2 epochs")
    parser.add_argument("--tap-params", type=json.loads, default={}, help="JSON")
    parser.add_argument("--out", default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    if not isinstance(args.tap_params, dict):
        parser.error("--tap-params must be a JSON object")
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {list(DATASETS)}")
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    return args


def main(argv=None):
    args = parse_args(argv)
    tap_params = dict(args.tap_params)
    if args.quick:
        tap_params.setdefault("max_epochs", 2)
    command = shlex.join(["python", *sys.argv])
    machine = machine_info()
    print("bench_clustering: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
    print(f"TAPMetricLearner params: {tap_params or 'library defaults'}")
    print(f"seeds: {args.seeds}" + (" (--quick)" if args.quick else ""))
    t_start = time.perf_counter()
    warm_up(tap_params)
    rows, infos = [], {}
    for name in args.datasets:
        data = DATASETS[name]()
        if args.quick:
            X_train, y_train = subsample(data[0], data[1], QUICK_SIZE, 0)
            X_test, y_test = subsample(data[2], data[3], QUICK_SIZE, 0)
            data = (X_train, y_train, X_test, y_test)
        data = (data[0], np.asarray(data[1]), data[2], np.asarray(data[3]))
        infos[name] = describe(name, data)
        for setting, learn, clus, seen in settings(data):
            row = run_setting(name, setting, learn, clus, seen, tap_params, args.seeds)
            rows.append({**row, "source": infos[name]["source"]})
        # Written after every set so that an interrupted run keeps its rows.
        save(args, command, tap_params, machine, infos, rows, t_start)
    print("\n## Adjusted Rand index of agglomerative clustering (average linkage)\n")
    print_table(rows, infos, len(args.seeds))
    total = save(args, command, tap_params, machine, infos, rows, t_start)
    print(f"\ntotal {total:.0f} s; results in {args.out}")
    return rows


if __name__ == "__main__":
    main()
