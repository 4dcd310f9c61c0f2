"""The learned distance inside other libraries: batched adapters against per-pair calls.

At ``--n`` x ``--n`` sequences (200 x 200 by default; generated warped
sequences, 3 channels, lengths 30-50, unequal), one fitted
``TAPMetricLearner`` with sktap's defaults (trained for 2 epochs: the
timings do not depend on the training), the same distance matrix is
computed by every route a user has:

batched (one call for the whole matrix, tiled):

- ``learner.pairwise_distances(X, Y)``, the reference;
- ``sktap.interop.TAPDistanceTransformer`` (``fit(Y).transform(X)``),
  scikit-learn's ``metric="precomputed"`` route, and so tslearn's;
- ``sktap.interop.TAPPairwiseTransformerPanel.transform(X, Y)``, sktime's
  ``distance=`` (on sktime's ``df-list``, unequal lengths);

one Python call per pair:

- ``learner.get_metric()`` in a double loop, what a callable ``metric=``
  costs in scikit-learn (timed on the first ``--callable-rows`` rows and
  scaled to the whole matrix: the full loop would take about 20 minutes);
- ``sktap.interop.aeon_distance(learner, symmetric=False)`` through aeon's
  own ``pairwise_distance`` (aeon's layout, a list of ``(n_channels, L_i)``).

Every route's matrix is checked against the reference (1e-5 relative).
Columns: seconds (one run each, after a warm-up call of every route on a
few pairs), and the slowdown against the reference. Target: each batched
adapter is 20x or more faster than the per-pair callable ``get_metric()``.
Run from the repository root (aeon and sktime come with the test extra)::

    python benchmarks/bench_interop.py            # 200 x 200, a few minutes on 2 cores
    python benchmarks/bench_interop.py --n 50     # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # aeon's numba threads only cost here

import numpy as np
import pandas as pd
import torch

import sktap
from sktap import TAPMetricLearner
from sktap.datasets import make_warped_sequences
from sktap.interop import (
    TAPDistanceTransformer,
    TAPPairwiseTransformerPanel,
    aeon_distance,
)

RESULTS = Path(__file__).parent / "results" / "interop.json"


def _data(n, seed):
    X, y = make_warped_sequences(
        n_classes=4, n_per_class=n // 2, n_features=3, random_state=seed
    )
    seqs = [x[~np.isnan(x).all(axis=1)] for x in X]  # (L_i, 3), unequal
    return seqs[:n], y[:n], seqs[n : 2 * n]


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, np.asarray(out, dtype=np.float64)


def _per_pair(metric, X, Y):
    return [[metric(x, y) for y in Y] for x in X]


def _routes(learner, X, Y, callable_rows):
    from aeon.distances import pairwise_distance

    metric = learner.get_metric()
    panel = TAPPairwiseTransformerPanel(metric_learner=learner)
    aeon_metric = aeon_distance(learner, symmetric=False)
    X_df, Y_df = ([pd.DataFrame(s) for s in S] for S in (X, Y))
    X_aeon, Y_aeon = ([s.T for s in S] for S in (X, Y))
    return {
        "learner.pairwise_distances (reference)": (
            "batched",
            lambda: learner.pairwise_distances(X, Y),
        ),
        "TAPDistanceTransformer (scikit-learn, tslearn)": (
            "batched",
            lambda: (
                TAPDistanceTransformer(learner, refit_metric=False).fit(Y).transform(X)
            ),
        ),
        "TAPPairwiseTransformerPanel (sktime, df-list)": (
            "batched",
            lambda: panel.transform(X_df, Y_df),
        ),
        "get_metric() per pair (scikit-learn callable)": (
            "per pair",
            lambda: _per_pair(metric, X[:callable_rows], Y),
        ),
        "aeon_distance via aeon.distances.pairwise_distance": (
            "per pair",
            lambda: pairwise_distance(X_aeon, Y_aeon, method=aeon_metric),
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--callable-rows", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    X, y, Y = _data(args.n, args.seed)
    learner = TAPMetricLearner(max_epochs=2, device="cpu", random_state=0).fit(X, y)
    rows_timed = min(args.callable_rows, args.n)
    routes = _routes(learner, X, Y, rows_timed)
    # warm-up: numba, oneDNN primitives, aeon's input checks
    for _, fn in _routes(learner, X[:3], Y[:3], 3).values():
        fn()

    rows, reference = [], None
    for name, (kind, fn) in routes.items():
        seconds, D = _timed(fn)
        if reference is None:
            reference, ref_seconds = D, seconds
        np.testing.assert_allclose(D, reference[: len(D)], rtol=1e-5, atol=1e-7)
        if len(D) < len(reference):  # the per-pair callable's sample of rows
            seconds *= len(reference) / len(D)
            name += f" (first {len(D)} rows, scaled)"
        rows.append(
            {
                "route": name,
                "kind": kind,
                "seconds": seconds,
                "x_reference": seconds / ref_seconds,
            }
        )
        print(f"{name}: {seconds:.2f} s", flush=True)

    slowest_batched = max(r["seconds"] for r in rows if r["kind"] == "batched")
    speedup = rows[3]["seconds"] / slowest_batched  # get_metric() per pair
    lengths = [len(s) for s in X + Y]
    print()
    print(
        f"{args.n} x {args.n} sequences, 3 channels, lengths "
        f"{min(lengths)}-{max(lengths)}; all matrices equal within 1e-5"
    )
    print()
    print("| route | kind | seconds | x reference |")
    print("| --- | --- | ---: | ---: |")
    for r in rows:
        cells = [
            r["route"],
            r["kind"],
            f"{r['seconds']:.2f}",
            f"{r['x_reference']:.1f}",
        ]
        print("| " + " | ".join(cells) + " |")
    verdict = "MET" if speedup >= 20 else "NOT MET"
    print()
    print(
        f"slowest batched adapter vs the get_metric() callable: {speedup:.1f}x "
        f"(target 20x): {verdict}"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": "python benchmarks/bench_interop.py "
                f"--n {args.n} --callable-rows {args.callable_rows}",
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                    "sktap": sktap.__version__,
                },
                "n": args.n,
                "rows": rows,
                "speedup": speedup,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
