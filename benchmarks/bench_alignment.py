"""Alignment quality against a known ground truth (TAP paper, Table 4 protocol).

For each test sequence ``x`` an augmentation ``(x_aug, G)`` is drawn, random
blur or random merge with equal probability (:mod:`sktap.augment`, seeded),
whose alignment to ``x`` is known. ``G`` has shape ``(Lx, L_aug)``,
``x_aug = G.T @ x``, and its *columns* sum to 1 (column j: the weights with
which the frames of ``x`` make augmented frame j). The ground-truth alignment
of ``x`` (source) onto ``x_aug`` (target), normalised like TAP's ``T`` (each
row sums to ``1 / Lx``), is the one the self-supervised loss trains towards
(``sktap.losses.ground_truth_alignments``, forward direction)::

    T*[i, j] = G[i, j] / sum_k G[i, k] / Lx

A row of ``G`` that is all zero (trailing frames a strided blur never reads)
stays an all-zero row of ``T*``; every prediction below spreads ``1 / Lx``
on such a row, so no method reaches MSE 0 on a blur that drops frames.

Methods, each giving an ``(Lx, L_aug)`` alignment with rows summing to
``1 / Lx``:

- ``diagonal (no data)``: each row puts ``1 / Lx`` on the column of the same
  relative position, ``round((i + 0.5) L_aug / Lx - 0.5)``; a reference.
- ``TAP untrained``: :func:`sktap.metrics.tap_alignment` (``net=None``) on
  the raw frames.
- ``TAP self-supervised (defaults)``: ``TAPMetricLearner().fit(X_train)``
  without labels, library defaults (the self-supervised term of Eq. 10
  alone trains the alignment network; ``h`` is the identity after
  per-channel standardisation, so frames stay 1:1 with time steps), then
  ``learner.alignment(x, x_aug)``.
- ``TAP self-supervised (TAPNet 30x30, 200 ep)``: the same with the
  paper's alignment network size, ``tap_channels`` ``--tap-channels``
  (30 30), and ``max_epochs`` ``--epochs`` (200).
- ``soft-DTW (gamma=g)``: tslearn's ``soft_dtw_alignment`` (expected
  alignment) on the raw frames, each row divided by its sum and by ``Lx``
  (``sktap.baselines._soft_dtw_learner.soft_dtw_plan``, as the plots).
- ``TAP supervised`` (unless ``--no-supervised``):
  ``TAPMetricLearner(downsample=1).fit(X_train, y_train)`` (library defaults
  otherwise: conv encoder, triplet loss, self-supervised term off;
  ``--supervised-epochs`` 20), its ``alignment``
  between encoded frames (stride 1 keeps ``Lx`` frames), against
  ``soft-DTW on h(x)``: soft-DTW's alignment between the same learned
  encoder's frames (``learner.transform``).
- ``TAP supervised + self-supervised``: the same learner with
  ``augment=True`` (the paper's supervised objective: metric loss plus
  Eq. 10 on encoded frames).

Metrics, per data set, averaged over the test sequences:

- ``MSE``: mean over the ``Lx x L_aug`` cells of ``(T - T*)**2``, then mean
  over sequences (also split by augmentation kind); ``/sDTW``: ratio to the
  MSE of soft-DTW with gamma 1 on the raw frames (the paper reports 0.38 for
  self-supervised TAP on its data).
- ``argmax``: fraction of source rows (with a non-zero ground-truth row)
  whose argmax column is one of the ground-truth row's maximal columns
  (a blur with a symmetric kernel can tie two columns). Scale free.
- ``row L1``: mean over those rows of ``sum_j |Lx T[i, j] - Lx T*[i, j]|``,
  both rows normalised to sum 1; in [0, 2], 0 is perfect. Scale free.

Data: generated warped sequences (``sktap.datasets.make_warped_sequences``),
and JapaneseVowels, BasicMotions and GunPoint as bundled in aeon's wheel
(see ``_datasets.py``); sequences longer than ``--max-length`` are resampled
to that length by linear interpolation (GunPoint 150 -> 64, BasicMotions
100 -> 64 by default) to keep the run in minutes on a CPU.

Each seed (``--seeds``, default 0 1 2) redraws the training/test subsample,
the augmentations and the learners' initialisation; one table per data set
and seed is printed (``fit s``: training seconds of the learner behind the
row, repeated for soft-DTW on ``h(x)``; ``align s``: seconds to predict all
test alignments, soft-DTW's first call includes numba compilation), then a
summary of the MSE ratio to soft-DTW (gamma=1), of argmax agreement and of
row L1, each as mean (min-max) over seeds.

Run: ``python benchmarks/bench_alignment.py`` (``--quick`` for a smoke run:
one seed, 30 train / 15 test sequences, 3 epochs; ``--out`` writes the
JSON, default ``benchmarks/results/alignment.json``, ``''`` to skip).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import machine_info, subsample, timed
from _datasets import DATASETS

import sktap
from sktap import TAPMetricLearner
from sktap.augment import random_blur, random_merge
from sktap.baselines._soft_dtw_learner import soft_dtw_plan
from sktap.datasets import make_warped_sequences
from sktap.metrics import tap_alignment

REFERENCE = "soft-DTW (gamma=1)"


# -- data --------------------------------------------------------------------
def _unpad(z):
    """tslearn format (NaN after the end) -> the valid frames."""
    return z[~np.isnan(z).all(axis=1)]


def _resample(x, length):
    """Linear interpolation of each channel to ``length`` steps."""
    if len(x) <= length:
        return x
    old = np.linspace(0.0, 1.0, len(x))
    new = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(new, old, x[:, c]) for c in range(x.shape[1])], 1)


def _datasets(args):
    n_train, n_test = (30, 15) if args.quick else (args.n_train, args.n_test)
    X, y = make_warped_sequences(
        n_classes=4,
        n_per_class=(n_train + n_test) // 4 + 1,
        length_range=(30, 50),
        n_features=3,
        warp_strength=0.6,
        noise=0.2,
        random_state=args.seed,
    )
    perm = np.random.RandomState(args.seed).permutation(len(X))
    X, y = [_unpad(X[i]) for i in perm], np.asarray(y)[perm]  # NaN-padded
    yield "warped (L 30-50, d 3)", X[:n_train], y[:n_train], X[n_train:][:n_test]
    for name in args.datasets:
        Xtr, ytr, Xte, yte = DATASETS[name]()
        Xtr, ytr = subsample(Xtr, ytr, n_train, args.seed)
        Xte, _ = subsample(Xte, yte, n_test, args.seed)
        Xtr = [_resample(x, args.max_length) for x in Xtr]
        Xte = [_resample(x, args.max_length) for x in Xte]
        lengths = [len(x) for x in (*Xtr, *Xte)]
        lo, hi = min(lengths), max(lengths)
        span = str(lo) if lo == hi else f"{lo}-{hi}"
        yield f"{name} (L {span}, d {Xtr[0].shape[1]})", Xtr, ytr, Xte


def _augmentations(X_test, seed):
    """One seeded (kind, x_aug, G) per test sequence, shared by all methods."""
    rng = np.random.RandomState(seed)
    out = []
    for x in X_test:
        kind = "blur" if rng.rand() < 0.5 else "merge"
        x_aug, G = (random_blur if kind == "blur" else random_merge)(x, rng)
        out.append((kind, np.asarray(x_aug, dtype=np.float64), G))
    return out


def ground_truth(G):
    """``T*`` (Lx, L_aug): rows of ``G`` normalised to sum 1, divided by Lx."""
    total = G.sum(axis=1, keepdims=True)
    rows = np.divide(G, total, out=np.zeros_like(G), where=total > 0)
    return rows / len(G)


# -- methods -----------------------------------------------------------------
def _diagonal(x, y):
    lx, ly = len(x), len(y)
    cols = np.clip(np.round((np.arange(lx) + 0.5) * ly / lx - 0.5), 0, ly - 1)
    T = np.zeros((lx, ly))
    T[np.arange(lx), cols.astype(int)] = 1.0 / lx
    return T


def _soft_dtw(x, y, gamma):
    return soft_dtw_plan(x, y, gamma)  # (Lx, Ly), rows sum to 1 / Lx


def _methods(args, X_train, y_train):
    """``[(name, fit_seconds, align(x, x_aug) -> T)]``."""
    methods = [
        ("diagonal (no data)", 0.0, _diagonal),
        ("TAP untrained (net=None)", 0.0, tap_alignment),
    ]
    for name, params in (
        ("TAP self-supervised (defaults)", {}),
        (
            "TAP self-supervised (TAPNet 30x30, 200 ep)",
            {"tap_channels": tuple(args.tap_channels), "max_epochs": args.epochs},
        ),
    ):
        if name.endswith("200 ep)") and args.epochs != 200:
            name = name.replace("200 ep", f"{args.epochs} ep")
        if args.quick:  # a smoke run: every learner trains a few epochs
            params = {**params, "max_epochs": args.epochs}
        ssl = TAPMetricLearner(device="cpu", random_state=args.seed, **params)
        ssl, sec = timed(ssl.fit, X_train)
        methods.append((name, sec, ssl.alignment))
    for gamma in args.gammas:
        methods.append(
            (
                f"soft-DTW (gamma={gamma:g})",
                0.0,
                lambda x, y, g=gamma: _soft_dtw(x, y, g),
            )
        )
    if args.supervised:
        common = {
            "downsample": 1,
            "max_epochs": args.supervised_epochs,
            "device": "cpu",
            "random_state": args.seed,
        }
        sup, sec = timed(TAPMetricLearner(**common).fit, X_train, y_train)
        methods.append(("TAP supervised (learned h)", sec, sup.alignment))

        def sdtw_h(x, y, learner=sup):
            hx, hy = (_unpad(z) for z in learner.transform([x, y]))
            return _soft_dtw(hx, hy, 1.0)

        methods.append(("soft-DTW on h(x) (gamma=1)", sec, sdtw_h))
        both = TAPMetricLearner(augment=True, **common)
        both, sec = timed(both.fit, X_train, y_train)
        methods.append(("TAP supervised + self-supervised", sec, both.alignment))
    return methods


# -- metrics -----------------------------------------------------------------
def _scores(T, target):
    """``(mse, n_rows, n_argmax_hits, l1_sum)`` of one prediction."""
    if T.shape != target.shape:
        raise ValueError(f"alignment shape {T.shape} != ground truth {target.shape}")
    mse = float(np.mean((T - target) ** 2))
    keep = target.sum(axis=1) > 0
    P = T[keep] / T[keep].sum(axis=1, keepdims=True)
    Q = target[keep] / target[keep].sum(axis=1, keepdims=True)
    best = Q >= Q.max(axis=1, keepdims=True) - 1e-12
    hits = int(best[np.arange(len(P)), P.argmax(axis=1)].sum())
    return mse, int(keep.sum()), hits, float(np.abs(P - Q).sum())


def evaluate(methods, X_test, augs):
    rows = []
    for name, fit_s, align in methods:
        mse = {"blur": [], "merge": []}
        n_rows = hits = 0
        l1 = 0.0
        start = time.perf_counter()
        for x, (kind, x_aug, G) in zip(X_test, augs):
            m, n, h, d = _scores(np.asarray(align(x, x_aug)), ground_truth(G))
            mse[kind].append(m)
            n_rows, hits, l1 = n_rows + n, hits + h, l1 + d
        every = mse["blur"] + mse["merge"]
        rows.append(
            {
                "method": name,
                "mse": float(np.mean(every)),
                "mse_blur": float(np.mean(mse["blur"])) if mse["blur"] else None,
                "mse_merge": float(np.mean(mse["merge"])) if mse["merge"] else None,
                "argmax_agreement": hits / n_rows,
                "row_l1": l1 / n_rows,
                "fit_seconds": fit_s,
                "align_seconds": time.perf_counter() - start,
            }
        )
    ref = next(r["mse"] for r in rows if r["method"] == REFERENCE)
    for r in rows:
        r["mse_ratio_to_soft_dtw"] = r["mse"] / ref
    return rows


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def markdown(rows):
    lines = [
        "| method | MSE | /sDTW | MSE blur | MSE merge | argmax | row L1 "
        "| fit s | align s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['mse']:.3e} | {r['mse_ratio_to_soft_dtw']:.2f} "
            f"| {_fmt(r['mse_blur'], '.3e')} | {_fmt(r['mse_merge'], '.3e')} "
            f"| {r['argmax_agreement']:.3f} | {r['row_l1']:.3f} "
            f"| {r['fit_seconds']:.1f} | {r['align_seconds']:.1f} |"
        )
    return "\n".join(lines)


def summary(results, key="mse_ratio_to_soft_dtw"):
    """Markdown table: methods x data sets, ``key`` over seeds."""
    names = list(dict.fromkeys(r["dataset"].split(" (")[0] for r in results))
    methods = list(dict.fromkeys(row["method"] for r in results for row in r["rows"]))
    lines = [
        "| method | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for m in methods:
        cells = []
        for n in names:
            v = [
                row[key]
                for r in results
                if r["dataset"].split(" (")[0] == n
                for row in r["rows"]
                if row["method"] == m
            ]
            cells.append(f"{np.mean(v):.2f} ({min(v):.2f}-{max(v):.2f})")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _run_one(args, title, Xtr, ytr, Xte):
    print(f"\n## {title}: {len(Xtr)} train, {len(Xte)} test sequences\n")
    augs = _augmentations(Xte, args.seed)
    rows = evaluate(_methods(args, Xtr, ytr), Xte, augs)
    print(markdown(rows), flush=True)
    n_blur = sum(kind == "blur" for kind, _, _ in augs)
    return {
        "dataset": title,
        "n_train": len(Xtr),
        "n_test": len(Xte),
        "n_blur": n_blur,
        "n_merge": len(augs) - n_blur,
        "rows": rows,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer of all")
    p.add_argument(
        "--datasets",
        nargs="*",
        default=["JapaneseVowels", "BasicMotions", "GunPoint"],
        choices=sorted(DATASETS),
    )
    p.add_argument("--n-train", type=int, default=60)
    p.add_argument("--n-test", type=int, default=40)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--epochs", type=int, default=None, help="default 200 (quick 3)")
    p.add_argument(
        "--supervised-epochs", type=int, default=None, help="default 20 (quick 3)"
    )
    p.add_argument("--tap-channels", type=int, nargs="+", default=[30, 30])
    p.add_argument("--gammas", type=float, nargs="+", default=[1.0, 0.1])
    p.add_argument("--no-supervised", dest="supervised", action="store_false")
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="one full run per seed (data subsample, augmentations, training)",
    )
    p.add_argument("--out", default=None, help="JSON path ('' to skip)")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = args.seeds[:1]
    args.epochs = args.epochs or (3 if args.quick else 200)
    args.supervised_epochs = args.supervised_epochs or (3 if args.quick else 20)
    if 1.0 not in args.gammas:
        args.gammas = [1.0, *args.gammas]
    if args.out is None:
        here = os.path.dirname(os.path.abspath(__file__))
        args.out = os.path.join(here, "results", "alignment.json")
    t0 = time.perf_counter()
    results = []
    # every array here is time first, even a short one with many channels
    with sktap.config_context(layout="time_first"):
        for seed in args.seeds:
            args.seed = seed
            print(f"\n# seed {seed}")
            for title, Xtr, ytr, Xte in _datasets(args):
                results.append({"seed": seed, **_run_one(args, title, Xtr, ytr, Xte)})
    del args.seed
    print(f"\n# MSE / soft-DTW (gamma=1) MSE: mean (min-max) over seeds {args.seeds}\n")
    print(summary(results))
    print(f"\n# argmax agreement: mean (min-max) over seeds {args.seeds}\n")
    print(summary(results, "argmax_agreement"))
    print(f"\n# row L1: mean (min-max) over seeds {args.seeds}\n")
    print(summary(results, "row_l1"))
    total = time.perf_counter() - t0
    print(f"\ntotal {total:.0f}s")
    if args.out:
        record = {
            "command": " ".join(["python", *sys.argv]),
            "args": vars(args),
            "machine": machine_info(),
            "total_seconds": total,
            "results": results,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(record, f, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
