"""Why learned TAP trails DTW 1-NN on PLAID: the diagnostics behind docs/benchmarks.md.

PLAID (appliance currents, 537 / 537 series of 100-1,344 steps, 11 classes,
from sktime's wheel; see ``_datasets.py``) is the one hard-regime set where
default learned TAP stays far below DTW 1-NN (0.58 against 0.93). Each
part below measures one candidate reason; ``--parts`` picks them.

``resolution``
    DTW 1-NN (tslearn) on the series reduced two ways: the means of
    stride-16 windows (one stride for all, as ``downsample="auto"``), and
    each series pooled to 32, 64 or 128 frames of its own (as
    ``downsample="per_sequence"``). Also run on gen-spread.
``amplitude``
    The spread of the per-series standard deviations, and DTW 1-NN on the
    64-frame series z-normalised one by one, then with each series' level
    and log-scale added back as channels (weights 0.5, 1, 2), as
    ``scale="per_sequence"`` does.
``training``
    Default learned TAP after 1, 5, 20 epochs (1-NN on the test set, and
    leave-one-out on the training set), then DTW 1-NN on the learned frames
    of a 10-epoch model beside its TAP 1-NN: whether the frames or TAP's
    alignment lose the information.
``neighbours``
    Where 1-NN accuracy and MAP part: the precision at k (the share of a
    test series' k nearest training series in its class, k = 1 to 50) of
    DTW and Euclidean distance on 128 frames per series, and of learned
    TAP (defaults with ``random_state`` 0 and 1; both ``downsample`` and
    ``scale`` per sequence). Then the queries split by how close their DTW
    nearest neighbour is (its distance over the median distance to the
    query's own class, in thirds), with each method's 1-NN accuracy on
    each third: whether DTW's lead rests on near-copies in the training set.

Run from the repository root (one thread each; about 40 minutes in all)::

    OMP_NUM_THREADS=1 python benchmarks/bench_plaid_reason.py
    OMP_NUM_THREADS=1 python benchmarks/bench_plaid_reason.py --parts amplitude
    OMP_NUM_THREADS=1 python benchmarks/bench_plaid_reason.py --parts neighbours
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _datasets import DATASETS


def _frames(x):
    x = np.asarray(x, dtype=float)
    return x.reshape(len(x), -1)


def pool_stride(x, stride):
    """Means of consecutive windows of ``stride`` steps (the last may be short)."""
    n = -(-len(x) // stride)
    pad = np.full((n * stride - len(x), x.shape[1]), np.nan)
    return np.nanmean(np.vstack([x, pad]).reshape(n, stride, -1), axis=1)


def pool_fixed(x, frames):
    """``frames`` segment means (adaptive average pooling); short series as is."""
    if len(x) <= frames:
        return x
    edges = np.linspace(0, len(x), frames + 1)
    return np.stack(
        [
            x[int(np.floor(a)) : max(int(np.ceil(b)), int(np.floor(a)) + 1)].mean(0)
            for a, b in zip(edges[:-1], edges[1:])
        ]
    )


def dtw_1nn(X_train, y_train, X_test, y_test):
    from tslearn.metrics import cdist_dtw
    from tslearn.utils import to_time_series_dataset

    D = cdist_dtw(to_time_series_dataset(X_test), to_time_series_dataset(X_train))
    return float(np.mean(y_train[D.argmin(1)] == y_test))


def _load(name):
    X_train, y_train, X_test, y_test = DATASETS[name]()
    return (
        [_frames(x) for x in X_train],
        np.asarray(y_train),
        [_frames(x) for x in X_test],
        np.asarray(y_test),
    )


def _report(label, value, start):
    print(f"  {label}: {value:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)


def resolution():
    for name in ("PLAID", "gen-spread"):
        X_train, y_train, X_test, y_test = _load(name)
        print(f"{name}: DTW 1-NN on reduced series", flush=True)
        reductions = [("stride-16 means", lambda x: pool_stride(x, 16))]
        reductions += [
            (f"{F} frames per series", lambda x, F=F: pool_fixed(x, F))
            for F in (32, 64, 128)
        ]
        for label, reduce in reductions:
            start = time.perf_counter()
            acc = dtw_1nn(
                [reduce(x) for x in X_train],
                y_train,
                [reduce(x) for x in X_test],
                y_test,
            )
            _report(label, acc, start)


def amplitude():
    X_train, y_train, X_test, y_test = _load("PLAID")
    std = np.array([x.std() for x in X_train])
    quantiles = np.quantile(std, [0, 0.25, 0.5, 0.75, 1])
    everything = np.concatenate([x.ravel() for x in X_train])
    print(
        "PLAID per-series standard deviation, quantiles 0/25/50/75/100%: "
        f"{np.round(quantiles, 3).tolist()}; of all training values: "
        f"{everything.std():.3f}; below 0.0035 after dividing by it: "
        f"{np.mean(std / everything.std() < 0.0035):.2f} of the series"
    )
    P_train = [pool_fixed(x, 64) for x in X_train]
    P_test = [pool_fixed(x, 64) for x in X_test]
    log_std = np.log(np.array([x.std() for x in P_train]) + 1e-3)
    level = np.array([x.mean() for x in P_train])

    def z(x):
        return (x - x.mean(0)) / (x.std(0) + 1e-3)

    def with_stats(x, weight):
        a = (np.log(x.std() + 1e-3) - log_std.mean()) / log_std.std()
        b = (x.mean() - level.mean()) / level.std()
        stats = np.tile([a * weight, b * weight], (len(x), 1))
        return np.hstack([z(x), stats])

    print("PLAID, 64 frames per series: DTW 1-NN", flush=True)
    start = time.perf_counter()
    _report(
        "z-normalised per series",
        dtw_1nn([z(x) for x in P_train], y_train, [z(x) for x in P_test], y_test),
        start,
    )
    for weight in (0.5, 1, 2):
        start = time.perf_counter()
        acc = dtw_1nn(
            [with_stats(x, weight) for x in P_train],
            y_train,
            [with_stats(x, weight) for x in P_test],
            y_test,
        )
        _report(f"z-normalised + level and log-scale channels x{weight}", acc, start)


def training():
    import torch

    from sktap import TAPMetricLearner

    torch.set_num_threads(1)
    X_train, y_train, X_test, y_test = _load("PLAID")
    print("PLAID: default learned TAP against its number of epochs", flush=True)
    for epochs in (1, 5, 20):
        start = time.perf_counter()
        model = TAPMetricLearner(random_state=0, max_epochs=epochs).fit(
            X_train, y_train
        )
        D = model.pairwise_distances(X_test, X_train)
        D_train = model.pairwise_distances(X_train)
        np.fill_diagonal(D_train, np.inf)
        loo = np.mean(y_train[D_train.argmin(1)] == y_train)
        _report(
            f"{epochs} epochs, test 1-NN (training leave-one-out {loo:.3f}, "
            f"last loss {model.history_[-1]['loss']:.4f})",
            float(np.mean(y_train[D.argmin(1)] == y_test)),
            start,
        )
    start = time.perf_counter()
    model = TAPMetricLearner(random_state=0, max_epochs=10).fit(X_train, y_train)
    D = model.pairwise_distances(X_test, X_train)
    _report(
        "10 epochs, TAP 1-NN", float(np.mean(y_train[D.argmin(1)] == y_test)), start
    )
    start = time.perf_counter()
    from tslearn.metrics import cdist_dtw

    D = cdist_dtw(model.transform(X_test), model.transform(X_train))
    _report(
        "10 epochs, DTW 1-NN on the learned frames",
        float(np.mean(y_train[D.argmin(1)] == y_test)),
        start,
    )


def _precision_at(D, y_train, y_test, ks):
    order = np.argsort(D, axis=1, kind="stable")
    same = y_train[order] == y_test[:, None]
    return {k: float(same[:, :k].mean()) for k in ks}


def neighbours():
    import torch
    from scipy.spatial.distance import cdist
    from tslearn.metrics import cdist_dtw
    from tslearn.utils import to_time_series_dataset

    from sktap import TAPMetricLearner

    torch.set_num_threads(1)
    X_train, y_train, X_test, y_test = _load("PLAID")
    P_train = [pool_fixed(x, 128) for x in X_train]
    P_test = [pool_fixed(x, 128) for x in X_test]
    start = time.perf_counter()
    dists = {
        "DTW, 128 frames": cdist_dtw(
            to_time_series_dataset(P_test), to_time_series_dataset(P_train)
        )
    }
    # Euclidean distance needs one length: every series at 128 frames
    grid = np.linspace(0, 1, 128)
    resampled = [
        np.array([np.interp(grid, np.linspace(0, 1, len(x)), x[:, 0]) for x in P])
        for P in (P_train, P_test)
    ]
    dists["Euclidean, 128 frames"] = cdist(resampled[1], resampled[0])
    print(f"PLAID: DTW and Euclidean ({time.perf_counter() - start:.0f} s)")
    fits = {
        "learned TAP, defaults, random_state=0": {"random_state": 0},
        "learned TAP, defaults, random_state=1": {"random_state": 1},
        "learned TAP, downsample and scale per sequence": {
            "random_state": 0,
            "downsample": "per_sequence",
            "scale": "per_sequence",
        },
    }
    for label, params in fits.items():
        start = time.perf_counter()
        model = TAPMetricLearner(**params).fit(X_train, y_train)
        dists[label] = model.pairwise_distances(X_test, X_train)
        print(f"{label}: fitted ({time.perf_counter() - start:.0f} s)", flush=True)
    ks = (1, 3, 5, 10, 20, 50)
    print("\nprecision at k (share of the k nearest in the query's class)")
    print("| distance | " + " | ".join(f"k={k}" for k in ks) + " |")
    print("|---|" + "---:|" * len(ks))
    for label, D in dists.items():
        p = _precision_at(D, y_train, y_test, ks)
        print(f"| {label} | " + " | ".join(f"{p[k]:.3f}" for k in ks) + " |")
    D = dists["DTW, 128 frames"]
    own = np.array([np.median(D[i, y_train == y_test[i]]) for i in range(len(y_test))])
    ratio = D.min(1) / np.maximum(own, 1e-12)
    edges = np.quantile(ratio, [0, 1 / 3, 2 / 3, 1])
    third = np.clip(np.searchsorted(edges, ratio, side="right") - 1, 0, 2)
    print(
        "\nDTW nearest-neighbour distance / median distance to the own class, "
        f"thirds split at {edges[1]:.3f} and {edges[2]:.3f}"
    )
    print("| distance | nearest third | middle third | farthest third |")
    print("|---|---:|---:|---:|")
    for label, D in dists.items():
        correct = y_train[D.argmin(1)] == y_test
        cells = " | ".join(f"{correct[third == t].mean():.3f}" for t in range(3))
        print(f"| {label} | {cells} |")


PARTS = {
    "resolution": resolution,
    "amplitude": amplitude,
    "training": training,
    "neighbours": neighbours,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    args = parser.parse_args(argv)
    for part in args.parts:
        PARTS[part]()


if __name__ == "__main__":
    main()
