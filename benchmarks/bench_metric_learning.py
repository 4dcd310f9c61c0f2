"""Metric learning with TAP against the same protocol over soft-DTW (paper Table 1).

For each dataset (generated warped sequences, tslearn's Trace resampled to a
fixed length so that CPU training stays in minutes), trains the frame MLP with
each loss (triplet, lifted, binomial) once with TAP (+ the self-supervised
term) and once with soft-DTW, same MLP, same epochs and batch size, and
reports 1-NN accuracy, MAP (each test sequence queries the training set) and
seconds per epoch, beside untrained TAP, DTW and soft-DTW 1-NN.

A second table follows the paper's Table 4 protocol: the mean squared error
between predicted alignments and the known ground truth of augmented test
sequences, TAP learned with the self-supervised loss alone against
tslearn's ``soft_dtw_alignment``.

Run: ``python benchmarks/bench_metric_learning.py`` (``--quick`` for a smoke
run). Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from tslearn.datasets import CachedDatasets
from tslearn.metrics import cdist_dtw, cdist_soft_dtw, soft_dtw_alignment
from tslearn.preprocessing import TimeSeriesResampler, TimeSeriesScalerMeanVariance

from sktap import TAPMetricLearner
from sktap.augment import random_blur, random_merge
from sktap.baselines import SoftDTWMetricLearner
from sktap.datasets import make_warped_sequences
from sktap.metrics import cdist_tap, mean_average_precision, tap_alignment


def _datasets(quick, seed):
    n_per = 5 if quick else 10
    X, y = make_warped_sequences(
        n_classes=4,
        n_per_class=2 * n_per,
        length_range=(30, 50),
        n_features=3,
        warp_strength=0.6,
        noise=0.2,
        random_state=seed,
    )
    half = len(X) // 2
    yield "warped (4 classes, L 30-50, d 3)", X[:half], y[:half], X[half:], y[half:]
    Xtr, ytr, Xte, yte = CachedDatasets().load_dataset("Trace")
    size = 32
    prep = TimeSeriesResampler(sz=size)
    scale = TimeSeriesScalerMeanVariance()
    if quick:
        Xtr, ytr, Xte, yte = Xtr[:40], ytr[:40], Xte[:40], yte[:40]
    yield (
        f"Trace (resampled to L={size})",
        scale.fit_transform(prep.fit_transform(Xtr)),
        ytr,
        scale.fit_transform(prep.fit_transform(Xte)),
        yte,
    )


def _scores(D, y_train, y_test):
    acc = float(np.mean(y_train[np.argmin(D, axis=1)] == y_test))
    return acc, float(mean_average_precision(D, y_test, y_train))


def _learned_rows(args, Xtr, ytr, Xte, yte):
    common = dict(
        hidden_layer_sizes=tuple(args.hidden),
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        learning_rate=args.learning_rate,
        device=args.device,
        random_state=args.seed,
    )
    rows = []
    for loss in ("triplet", "lifted", "binomial"):
        for name, est in (
            (
                "TAP",
                TAPMetricLearner(loss, tap_channels=tuple(args.tap_channels), **common),
            ),
            ("SoftDTW", SoftDTWMetricLearner(loss, **common)),
        ):
            est.fit(Xtr, ytr)
            per_epoch = np.median([h["seconds"] for h in est.history_])
            acc, ap = _scores(est.pairwise_distances(Xte, Xtr), ytr, yte)
            rows.append((f"{name} learned, {loss}", acc, ap, per_epoch))
    return rows


def _baseline_rows(Xtr, ytr, Xte, yte):
    rows = []
    for name, fn in (
        ("TAP untrained (net=None)", lambda a, b: cdist_tap(a, b, device="cpu")),
        ("DTW", cdist_dtw),
        ("soft-DTW (gamma=1)", cdist_soft_dtw),
    ):
        acc, ap = _scores(fn(Xte, Xtr), ytr, yte)
        rows.append((name, acc, ap, float("nan")))
    return rows


def _alignment_mse(args, X_train, X_test, rng):
    """Paper Table 4: MSE to the known alignment of augmented test sequences."""
    est = TAPMetricLearner(
        tap_channels=tuple(args.tap_channels),
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        learning_rate=args.learning_rate * 10,
        device=args.device,
        random_state=args.seed,
    ).fit(X_train)
    errs = {
        "TAP (self-supervised)": [],
        "soft-DTW alignment (gamma=1)": [],
        "TAP untrained (net=None)": [],
    }
    for x in X_test:
        x = x[~np.isnan(x).all(axis=1)]
        aug, G = (random_blur if rng.rand() < 0.5 else random_merge)(x, rng)
        target = G / np.maximum(G.sum(axis=1, keepdims=True), 1e-12) / len(x)
        errs["TAP (self-supervised)"].append(
            np.mean((est.tap_alignment(x, aug) - target) ** 2)
        )
        errs["TAP untrained (net=None)"].append(
            np.mean((tap_alignment(x, aug) - target) ** 2)
        )
        A, _ = soft_dtw_alignment(x, aug, gamma=1.0)
        A = A / np.maximum(A.sum(axis=1, keepdims=True), 1e-12) / len(x)
        errs["soft-DTW alignment (gamma=1)"].append(np.mean((A - target) ** 2))
    return {k: float(np.mean(v)) for k, v in errs.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--hidden", type=int, nargs="+", default=[128])
    p.add_argument("--tap-channels", type=int, nargs="+", default=[8, 8])
    p.add_argument("--learning-rate", type=float, default=3e-3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.epochs = args.epochs or (2 if args.quick else 8)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, device {args.device}"
    )
    print(
        f"epochs {args.epochs}, batch {args.batch_size}, MLP hidden {args.hidden}, "
        f"TAPNet channels {args.tap_channels}, lr {args.learning_rate}"
    )
    rng = np.random.RandomState(args.seed)
    for title, Xtr, ytr, Xte, yte in _datasets(args.quick, args.seed):
        print(f"\n## {title}: {len(Xtr)} train / {len(Xte)} test")
        print(f"{'method':<30}{'1-NN acc':>10}{'MAP':>8}{'s/epoch':>10}")
        start = time.perf_counter()
        rows = _baseline_rows(Xtr, ytr, Xte, yte) + _learned_rows(
            args, Xtr, ytr, Xte, yte
        )
        for name, acc, ap, sec in rows:
            sec_s = "-" if np.isnan(sec) else f"{sec:.2f}"
            print(f"{name:<30}{acc:>10.3f}{ap:>8.3f}{sec_s:>10}")
        dtw_acc, dtw_map = rows[1][1], rows[1][2]
        best = max(
            (r for r in rows if r[0].startswith("TAP learned")), key=lambda r: r[1]
        )
        met = best[1] > dtw_acc and best[2] > dtw_map
        print(
            f"target learned TAP > DTW: best {best[0]} acc {best[1]:.3f} vs "
            f"{dtw_acc:.3f}, MAP {best[2]:.3f} vs {dtw_map:.3f}: "
            f"{'MET' if met else 'NOT MET'}"
        )
        for loss in ("triplet", "lifted", "binomial"):
            tap = next(r for r in rows if r[0] == f"TAP learned, {loss}")[3]
            sdtw = next(r for r in rows if r[0] == f"SoftDTW learned, {loss}")[3]
            status = "MET" if tap <= 1.5 * sdtw else "NOT MET"
            print(
                f"target TAP epoch <= 1.5x SoftDTW epoch ({loss}): {tap:.2f}s vs "
                f"{sdtw:.2f}s, ratio {tap / sdtw:.2f}: {status}"
            )
        mse = _alignment_mse(args, Xtr, Xte, rng)
        print("alignment MSE to ground truth (Table 4 protocol, lower is better):")
        for k, v in mse.items():
            print(f"  {k:<32}{v:.3e}")
        print(f"(dataset total {time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
