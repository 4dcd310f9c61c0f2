"""Neighbour search at scale: trained candidates against the exact search.

Two parts, each with the default ``TAPMetricLearner`` (``random_state=0``):

``generated``
    ``sktap.datasets.make_warped_sequences`` (20 classes, 3 features,
    lengths 30-50, the generator's default warps and noise). The learner is
    fitted on 600 sequences (30 per class); 10,000 and 100,000 other
    sequences of the same classes are the references, and held-out
    sequences the queries (50 and 10 of them). For each size, one run:

    - the exact search (``TAPNearestNeighbors``, ``n_candidates=None``):
      query time;
    - the trained candidates (``n_candidates`` = 0.5%, 1%, 2%, 5% of the
      references; one ranker, trained in ``fit``, serves every budget): the
      index's shortlist of ten times the budget re-ranked by the
      nearest-frame score, then exact TAP on the budget; recall@1 and
      recall@10 of the exact neighbours, query time and the speed-up over
      the exact search, side by side in the same process;
    - the recall the ranking vectors alone would give at the same budgets
      (their nearest references, without the nearest-frame re-ranking);
    - the same budgets with faiss's HNSW graph as the candidate index
      (``FaissIndex``) where faiss is installed;
    - the recall of the mean-frame prefilter the candidates replace (the
      nearest references by Euclidean distance between mean encoded
      frames), at the same budgets (recall only: its cost is the index's);
    - ``fit`` time: encoding the references, training the ranker (and the
      pairs it scores with TAP), building the index.

``real``
    The seven packaged sets of ``bench_accuracy.py`` (``_datasets.py``),
    official splits: 1-NN accuracy of the exact search against candidates
    at 2%, 5%, 10% and 20% of the training set, with the recall@1 of the
    exact nearest neighbour and the speed-up of ``predict``. (2% of these
    training sets is one to five sequences.)

Results go to ``benchmarks/results/search.json`` as they come (a rerun
skips what is there; ``--summary-only`` prints the tables from it). Run
from the repository root::

    python benchmarks/bench_search.py --part generated   # ~15 minutes on 2 cores
    python benchmarks/bench_search.py --part real        # ~20 minutes
    python benchmarks/bench_search.py --quick            # 2,000 references, 1 epoch
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import NearestNeighbors

sys.path.insert(0, str(Path(__file__).parent))

from _bench import machine_info
from _datasets import DATASETS

from sktap import TAPKNeighborsClassifier, TAPMetricLearner, TAPNearestNeighbors
from sktap.datasets import make_warped_sequences

RESULTS = Path(__file__).parent / "results" / "search.json"
BUDGETS = (0.005, 0.01, 0.02, 0.05)
REAL_BUDGETS = (0.02, 0.05, 0.1, 0.2)


def _load():
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def _save(results):
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True))


def _recall(approx, exact, k):
    return float(
        np.mean([len(set(a[:k]) & set(e[:k])) / k for a, e in zip(approx, exact)])
    )


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _mean_frames(seqs):
    return seqs.data.sum(axis=1, dtype=np.float64) / seqs.lengths[:, None]


def _faiss_index():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return None
    from sktap.neighbors import FaissIndex

    return FaissIndex()


def generated(args, results):
    sizes = [2000] if args.quick else args.sizes
    n_train, n_queries = 600, {10000: 50, 100000: 10, 2000: 20}
    n_pool = max(sizes) + n_train + max(n_queries[s] for s in sizes)
    n_classes = 20
    X, y = make_warped_sequences(
        n_classes,
        -(-n_pool // n_classes),
        length_range=(30, 50),
        n_features=3,
        random_state=0,
    )
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    train, rest = order[:n_train], order[n_train:]
    queries_pool, refs_pool = rest[:100], rest[100:]
    learner = TAPMetricLearner(
        random_state=0, **({"max_epochs": 1} if args.quick else {})
    )
    _, t_fit = _timed(learner.fit, [X[i] for i in train], y[train])
    print(f"learner fitted on {n_train} sequences in {t_fit:.0f} s", flush=True)
    frozen = FrozenEstimator(learner)
    for size in sizes:
        key = f"generated/{size}" + ("/quick" if args.quick else "")
        if key in results:
            print(f"{key}: done, skipped")
            continue
        refs = [X[i] for i in refs_pool[:size]]
        Q = [X[i] for i in queries_pool[: n_queries[size]]]
        row = {"n_references": size, "n_queries": len(Q), "learner_fit_s": t_fit}
        exact = TAPNearestNeighbors(10, metric_learner=frozen)
        _, row["exact_fit_s"] = _timed(exact.fit, refs)
        (_, i_ex), t_exact = _timed(exact.kneighbors, Q)
        row["exact_query_s"] = t_exact / len(Q)
        print(f"{key}: exact {row['exact_query_s']:.2f} s/query", flush=True)
        indexes = {"sklearn": None, "faiss-hnsw": _faiss_index()}
        for name, index in indexes.items():
            if name != "sklearn" and index is None:
                continue
            nn = TAPNearestNeighbors(
                10,
                metric_learner=frozen,
                n_candidates=BUDGETS[0],
                candidate_index=index,
                random_state=0,
            )
            _, t = _timed(nn.fit, refs)
            row[f"{name}/fit_s"] = t
            row[f"{name}/teacher_pairs"] = nn.ranker_.n_teacher_pairs_
            row[f"{name}/position_weight"] = nn.ranker_.position_weight_
            if name == "sklearn":
                vectors = nn.ranker_.embed(learner.encode(Q))
                for budget in BUDGETS:
                    m = int(np.ceil(budget * size))
                    cand = nn.candidate_index_.kneighbors(vectors, m, False)
                    hit1 = np.mean([e[0] in set(c) for c, e in zip(cand, i_ex)])
                    hit10 = np.mean(
                        [len(set(c) & set(e)) / 10 for c, e in zip(cand, i_ex)]
                    )
                    row[f"vectors/{budget}"] = {"recall@1": hit1, "recall@10": hit10}
            for budget in BUDGETS:
                nn.set_params(n_candidates=budget)
                (_, i), t = _timed(nn.kneighbors, Q)
                row[f"{name}/{budget}"] = {
                    "recall@1": _recall(i, i_ex, 1),
                    "recall@10": _recall(i, i_ex, 10),
                    "query_s": t / len(Q),
                    "speedup": t_exact / t,
                }
                print(f"{key} {name} {budget}: {row[f'{name}/{budget}']}", flush=True)
        Zr, Zq = exact.train_sequences_, learner.encode(Q)
        pooled = NearestNeighbors(algorithm="brute").fit(_mean_frames(Zr))
        for budget in BUDGETS:
            m = int(np.ceil(budget * size))
            cand = pooled.kneighbors(_mean_frames(Zq), m, return_distance=False)
            # the best a prefilter keeping these m can do: exact TAP among them
            hit1 = np.mean([e[0] in set(c) for c, e in zip(cand, i_ex)])
            hit10 = np.mean([len(set(c) & set(e)) / 10 for c, e in zip(cand, i_ex)])
            row[f"mean-frame/{budget}"] = {"recall@1": hit1, "recall@10": hit10}
        row["machine"] = machine_info()
        results[key] = row
        _save(results)


def real(args, results):
    for name, load in DATASETS.items():
        key = f"real/{name}" + ("/quick" if args.quick else "")
        if key in results:
            print(f"{key}: done, skipped")
            continue
        X_train, y_train, X_test, y_test = load()
        kw = {"max_epochs": 1} if args.quick else {}
        clf = TAPKNeighborsClassifier(
            metric_learner=TAPMetricLearner(random_state=0, **kw), random_state=0
        )
        _, t_fit = _timed(clf.fit, X_train, y_train)
        (_, i_ex), t_exact = _timed(clf.kneighbors, X_test)
        acc_exact = float(np.mean(clf.classes_[clf._y[i_ex[:, 0]]] == y_test))
        row = {
            "n_train": len(X_train),
            "n_test": len(X_test),
            "fit_s": t_fit,
            "exact_accuracy": acc_exact,
            "exact_predict_s": t_exact,
        }
        frozen = FrozenEstimator(clf.metric_learner_)
        approx = TAPKNeighborsClassifier(
            metric_learner=frozen, n_candidates=REAL_BUDGETS[0], random_state=0
        )
        _, row["candidates_fit_s"] = _timed(approx.fit, X_train, y_train)
        for budget in REAL_BUDGETS:
            approx.set_params(n_candidates=budget)
            (_, i), t = _timed(approx.kneighbors, X_test)
            acc = float(np.mean(approx.classes_[approx._y[i[:, 0]]] == y_test))
            row[str(budget)] = {
                "n_candidates": int(np.ceil(budget * len(X_train))),
                "accuracy": acc,
                "d_accuracy_points": 100 * (acc - acc_exact),
                "recall@1": _recall(i, i_ex, 1),
                "speedup": t_exact / t,
            }
        print(key, json.dumps(row), flush=True)
        row["machine"] = machine_info()
        results[key] = row
        _save(results)


def _table_row(*cells):
    print("| " + " | ".join(str(c) for c in cells) + " |")


def summary(results):
    print("\n### Generated references\n")
    _table_row(
        "references",
        "index",
        "budget",
        "recall@1",
        "recall@10",
        "s/query",
        "speed-up",
        "vectors alone recall@10",
        "mean-frame recall@10",
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, row in results.items():
        if not key.startswith("generated/"):
            continue
        n = f"{row['n_references']:,}"
        _table_row(n, "exact", "all", 1, 1, f"{row['exact_query_s']:.2f}", 1, "", "")
        for name in ("sklearn", "faiss-hnsw"):
            for budget in BUDGETS:
                r = row.get(f"{name}/{budget}")
                if r is None:
                    continue
                mf = row[f"mean-frame/{budget}"]["recall@10"]
                vec = row[f"vectors/{budget}"]["recall@10"]
                _table_row(
                    n,
                    name,
                    f"{budget:.1%}",
                    f"{r['recall@1']:.2f}",
                    f"{r['recall@10']:.3f}",
                    f"{r['query_s']:.3f}",
                    f"{r['speedup']:.0f}x",
                    f"{vec:.3f}" if name == "sklearn" else "",
                    f"{mf:.2f}" if name == "sklearn" else "",
                )
        fits = ", ".join(
            f"{m} {row[m + '/fit_s']:.0f} s ({row[m + '/teacher_pairs']:,} pairs, "
            f"position weight {row[m + '/position_weight']})"
            for m in ("sklearn", "faiss-hnsw")
            if m + "/fit_s" in row
        )
        print(f"\nfit at {n}: exact {row['exact_fit_s']:.0f} s; candidates {fits}\n")
    print("\n### Real sets (1-NN, official splits)\n")
    _table_row(
        "set",
        "train",
        "exact acc",
        "budget",
        "candidates",
        "acc",
        "d acc (points)",
        "recall@1",
        "speed-up",
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, row in results.items():
        if not key.startswith("real/"):
            continue
        for budget in REAL_BUDGETS:
            r = row[str(budget)]
            _table_row(
                key.split("/")[1],
                row["n_train"],
                f"{row['exact_accuracy']:.3f}",
                f"{budget:.0%}",
                r["n_candidates"],
                f"{r['accuracy']:.3f}",
                f"{r['d_accuracy_points']:+.1f}",
                f"{r['recall@1']:.2f}",
                f"{r['speedup']:.1f}x",
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["generated", "real", "all"], default="all")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    results = _load()
    if not args.summary_only:
        if args.part in ("generated", "all"):
            generated(args, results)
        if args.part in ("real", "all"):
            real(args, results)
    summary(results)


if __name__ == "__main__":
    main()
