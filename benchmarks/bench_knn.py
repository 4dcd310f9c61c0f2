"""k-NN classification and retrieval with TAP against tslearn's DTW and soft-DTW.

On two data sets, all in one process:

- generated warped sequences (``sktap.datasets.make_warped_sequences``: 5
  classes told apart by the order of shared motifs, lengths 30-60, 3
  features; half for training, half for testing, stratified);
- tslearn's Trace (100 + 100 univariate series of 275 steps), resampled to
  ``--trace-length`` steps for every method alike (the learned TAP network
  would need gigabytes of activations per training batch at 275 steps on
  a CPU).

Methods (all 1-NN):

- tslearn's ``KNeighborsTimeSeriesClassifier`` with ``metric="dtw"`` and
  ``metric="softdtw"`` (gamma = 1);
- ``TAPKNeighborsClassifier`` with parameter-free TAP and with a distance
  learned by ``TAPMetricLearner`` with each loss (triplet, lifted,
  binomial), each exact and with ``n_candidates`` (trained candidates;
  until sktap replaced it, a mean-frame prefilter: the results in
  ``docs/benchmarks.md`` say which one they measured).

Columns: test accuracy; MAP of the test queries ranking the training set
(``sktap.metrics.mean_average_precision``; the prefiltered rows share the
exact rows' distance, so it is shown once); fit and predict seconds; for
the prefiltered rows the recall of the true TAP nearest neighbour (how often
the exact 1-NN survives the prefilter) and the accuracy change against exact
search. Then the targets, MET / NOT MET:

1. learned TAP beats DTW's accuracy (per loss);
2. with ``n_candidates``, TAP's predict time is at most soft-DTW's on the
   same data, with accuracy within 0.5 points of exact TAP.

Timings are single runs on a shared machine, after one warm-up call of
each library (so numba's compilation is not counted). Run from the
repository root::

    python benchmarks/bench_knn.py          # full run, about 10 minutes on 2 CPU cores
    python benchmarks/bench_knn.py --quick  # smaller data, 2 epochs, about a minute
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass

import numpy as np
import torch
import tslearn
from sklearn.model_selection import train_test_split
from tslearn.datasets import CachedDatasets
from tslearn.metrics import cdist_dtw, cdist_soft_dtw
from tslearn.neighbors import KNeighborsTimeSeriesClassifier
from tslearn.preprocessing import TimeSeriesResampler

import sktap
from sktap import TAPKNeighborsClassifier, TAPMetricLearner
from sktap.datasets import make_warped_sequences
from sktap.metrics import cdist_tap, mean_average_precision

LOSSES = ("triplet", "lifted", "binomial")


@dataclass
class Row:
    """One method on one data set."""

    data: str
    method: str
    accuracy: float
    map: float | None
    fit_s: float
    predict_s: float
    recall: float | None = None  # of the exact TAP 1-NN, prefiltered rows only
    delta: float | None = None  # accuracy change vs exact, in points


def warped_data(quick):
    X, y = make_warped_sequences(
        n_classes=5,
        n_per_class=24 if quick else 60,
        length_range=(30, 60),
        n_features=3,
        random_state=0,
    )
    return train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)


def trace_data(quick, length):
    X_train, y_train, X_test, y_test = CachedDatasets().load_dataset("Trace")
    if quick:
        X_train, y_train, X_test, y_test = (
            X_train[:40],
            y_train[:40],
            X_test[:40],
            y_test[:40],
        )
    resample = TimeSeriesResampler(sz=length)
    return (
        resample.fit_transform(X_train),
        resample.fit_transform(X_test),
        y_train,
        y_test,
    )


def learner(loss, args):
    return TAPMetricLearner(
        loss,
        hidden_layer_sizes=(128,),
        n_components=16,
        tap_channels=tuple(args.tap_channels),
        tap_kernel_sizes=(5,) * len(args.tap_channels) + (3,),
        augment=False,
        batch_size=32,
        max_epochs=args.max_epochs,
        learning_rate=args.learning_rate,
        device=args.device,
        random_state=0,
    )


def warm_up(device):
    """Compile tslearn's numba kernels and start torch, outside the timings."""
    a, b = np.zeros((2, 5, 1)), np.ones((1, 4, 1))
    cdist_dtw(a, b)
    cdist_soft_dtw(a, b)
    for metric in ("dtw", "softdtw"):
        KNeighborsTimeSeriesClassifier(1, metric=metric).fit(a, [0, 1]).predict(b)
    cdist_tap(a, b, device=device)


def timed(fn, *a):
    t0 = time.perf_counter()
    out = fn(*a)
    return out, time.perf_counter() - t0


def tslearn_rows(name, data):
    X_train, X_test, y_train, y_test = data
    rows = []
    for metric, cdist in (("dtw", cdist_dtw), ("softdtw", cdist_soft_dtw)):
        clf = KNeighborsTimeSeriesClassifier(n_neighbors=1, metric=metric)
        _, fit_s = timed(clf.fit, X_train, y_train)
        pred, predict_s = timed(clf.predict, X_test)
        ap = mean_average_precision(cdist(X_test, X_train), y_test, y_train)
        acc = float(np.mean(pred == y_test))
        rows.append(Row(name, f"tslearn {metric}", acc, ap, fit_s, predict_s))
    return rows


def tap_rows(name, label, data, metric_learner, args):
    """Exact and prefiltered rows of one TAP distance."""
    X_train, X_test, y_train, y_test = data
    exact = TAPKNeighborsClassifier(metric_learner=metric_learner, device=args.device)
    _, fit_s = timed(exact.fit, X_train, y_train)
    pred, predict_s = timed(exact.predict, X_test)
    fitted = exact.metric_learner_
    if fitted is None:
        D = cdist_tap(X_test, X_train, device=args.device)
    else:
        D = fitted.pairwise_distances(X_test, X_train)
    acc = float(np.mean(pred == y_test))
    rows = [
        Row(
            name,
            label,
            acc,
            mean_average_precision(D, y_test, y_train),
            fit_s,
            predict_s,
        )
    ]
    # the same fitted distance, prefiltered: no second training
    approx = TAPKNeighborsClassifier(
        metric_learner=fitted,
        refit_metric=False,
        n_candidates=args.n_candidates,
        device=args.device,
    )
    _, fit2_s = timed(approx.fit, X_train, y_train)
    pred, predict_s = timed(approx.predict, X_test)
    ind = approx.kneighbors(X_test, return_distance=False)[:, 0]
    recall = float(np.mean(D[np.arange(len(D)), ind] <= D.min(axis=1)))
    acc_c = float(np.mean(pred == y_test))
    rows.append(
        Row(
            name,
            f"{label} m={args.n_candidates}",
            acc_c,
            None,
            fit_s + fit2_s,
            predict_s,
            recall,
            100 * (acc_c - acc),
        )
    )
    return rows


def run_dataset(name, data, args):
    rows = tslearn_rows(name, data)
    print(f"  {name}: tslearn done", flush=True)
    rows += tap_rows(name, "TAP param-free", data, None, args)
    for loss in LOSSES:
        rows += tap_rows(name, f"TAP {loss}", data, learner(loss, args), args)
        print(f"  {name}: TAP {loss} done", flush=True)
    return rows


def fmt(value, spec, width):
    text = "-" if value is None else format(value, spec)
    return f"{text:>{width}}"


def print_table(rows):
    head = (
        f"{'data':<9}{'method':<24}{'acc':>7}{'MAP':>7}{'fit s':>8}"
        f"{'pred s':>8}{'recall':>8}{'d acc':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.data:<9}{r.method:<24}{r.accuracy:>7.3f}{fmt(r.map, '.3f', 7)}"
            f"{r.fit_s:>8.1f}{r.predict_s:>8.2f}{fmt(r.recall, '.3f', 8)}"
            f"{fmt(r.delta, '+.1f', 7)}"
        )


def verdict(ok):
    return "MET" if ok else "NOT MET"


def print_targets(rows):
    print("\nTargets")
    for data in dict.fromkeys(r.data for r in rows):
        by = {r.method: r for r in rows if r.data == data}
        dtw, soft = by["tslearn dtw"], by["tslearn softdtw"]
        for loss in LOSSES:
            tap = by[f"TAP {loss}"]
            print(
                f"  [{verdict(tap.accuracy > dtw.accuracy)}] {data}: learned TAP "
                f"({loss}) accuracy {tap.accuracy:.3f} > DTW {dtw.accuracy:.3f}"
            )
        for label in ("TAP param-free", *(f"TAP {loss}" for loss in LOSSES)):
            exact = by[label]
            approx = next(r for m, r in by.items() if m.startswith(label + " m="))
            fast = approx.predict_s <= soft.predict_s
            close = abs(approx.delta) <= 0.5
            print(
                f"  [{verdict(fast and close)}] {data}: {approx.method} predict "
                f"{approx.predict_s:.2f} s <= soft-DTW {soft.predict_s:.2f} s "
                f"({'yes' if fast else 'no'}), accuracy {approx.accuracy:.3f} "
                f"within 0.5 points of exact {exact.accuracy:.3f} "
                f"({'yes' if close else 'no'})"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, 2 epochs")
    parser.add_argument("--device", default="cpu", help="TAP device (tslearn: CPU)")
    parser.add_argument("--max-epochs", type=int, default=None, help="default 10")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--tap-channels", type=int, nargs="+", default=[8, 8])
    parser.add_argument("--n-candidates", type=int, default=10)
    parser.add_argument("--trace-length", type=int, default=32)
    args = parser.parse_args(argv)
    if args.max_epochs is None:
        args.max_epochs = 2 if args.quick else 10
    print(
        f"sktap {sktap.__version__}, torch {torch.__version__}, tslearn "
        f"{tslearn.__version__}, python {platform.python_version()}, "
        f"{torch.get_num_threads()} torch threads, device {args.device}; "
        f"max_epochs={args.max_epochs}, learning_rate={args.learning_rate}, "
        f"tap_channels={args.tap_channels}, MLP (128,), augment=False, "
        f"n_candidates={args.n_candidates}, "
        f"Trace resampled to {args.trace_length} steps"
        + (" (--quick)" if args.quick else "")
    )
    t0 = time.perf_counter()
    warm_up(args.device)
    rows = run_dataset("warped", warped_data(args.quick), args)
    rows += run_dataset("Trace", trace_data(args.quick, args.trace_length), args)
    print()
    print_table(rows)
    print_targets(rows)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
