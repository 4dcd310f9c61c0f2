"""The demo behind ``python -m sktap demo``.

Trains a TAP k-NN classifier with a learned metric (the library's defaults)
on tslearn's Trace and on generated warped sequences, runs tslearn's DTW and
soft-DTW 1-NN beside it, prints one table and writes an alignment picture.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ._engine import resolve_device


def _trace(quick):
    from tslearn.datasets import CachedDatasets

    X_train, y_train, X_test, y_test = CachedDatasets().load_dataset("Trace")
    if quick:
        return X_train[:40], y_train[:40], X_test[:40], y_test[:40]
    # all 275 steps: the learner's encoder downsamples long series itself
    return X_train, y_train, X_test, y_test


def _warped(quick):
    from .datasets import make_warped_sequences

    n = 6 if quick else 15
    X, y = make_warped_sequences(
        n_classes=4,
        n_per_class=2 * n,
        length_range=(20, 40),
        n_features=3,
        warp_strength=0.6,
        noise=0.2,
        random_state=0,
    )
    half = len(X) // 2
    return X[:half], y[:half], X[half:], y[half:]


def _learned_tap(device, quick):
    from . import TAPKNeighborsClassifier, TAPMetricLearner

    # The defaults, exactly as a user gets them (only fewer epochs in --quick)
    extra = {"max_epochs": 3} if quick else {}
    learner = TAPMetricLearner(device=device, random_state=0, verbose=1, **extra)
    return TAPKNeighborsClassifier(n_neighbors=1, metric_learner=learner, device=device)


def _evaluate(name, fit, predict, distances, data):
    """Fit and predict timed; MAP from the full distance matrix (not timed)."""
    from .metrics import mean_average_precision

    X_train, y_train, X_test, y_test = data
    t0 = time.perf_counter()
    fit(X_train, y_train)
    t1 = time.perf_counter()
    y_pred = predict(X_test)
    t2 = time.perf_counter()
    acc = float(np.mean(y_pred == y_test))
    ap = float(mean_average_precision(distances(X_test, X_train), y_test, y_train))
    return name, acc, ap, t1 - t0, t2 - t1


def _evaluate_matrix(name, dist_fn, data):
    """A 1-NN baseline: one timed test x train matrix gives predictions and MAP."""
    from .metrics import mean_average_precision

    X_train, y_train, X_test, y_test = data
    t0 = time.perf_counter()
    D = dist_fn(X_test, X_train)
    y_pred = y_train[np.argmin(D, axis=1)]
    seconds = time.perf_counter() - t0
    acc = float(np.mean(y_pred == y_test))
    return name, acc, float(mean_average_precision(D, y_test, y_train)), 0.0, seconds


def _rows(data, device, quick):
    from tslearn.metrics import cdist_dtw, cdist_soft_dtw

    X_train = data[0]
    knn = _learned_tap(device, quick)
    for fn in (cdist_dtw, cdist_soft_dtw):  # compile tslearn's kernels untimed
        fn(X_train[:2], X_train[:2])

    def learned(a, b):
        return knn.metric_learner_.pairwise_distances(a, b)

    rows = [_evaluate("TAP, learned (defaults)", knn.fit, knn.predict, learned, data)]
    # Parameter-free TAP (net=None) is not shown: on raw features at unit
    # scale its softmax over -D is nearly flat, so it ranks near chance; it
    # is the method's untrained starting point, not a baseline.
    for name, fn in (
        ("DTW (tslearn)", cdist_dtw),
        ("soft-DTW (tslearn)", cdist_soft_dtw),
    ):
        rows.append(_evaluate_matrix(name, fn, data))
    return knn, rows


def _picture(knn, out, quick):
    try:
        import matplotlib

        matplotlib.use("Agg")
        from .plotting import plot_alignment_comparison
    except ImportError:
        return None
    from . import TAPMetricLearner
    from .augment import random_merge

    # The classifier's metric loss alone does not ask for faithful
    # alignments; the self-supervised objective (paper Eq. 10) does. It is
    # trained here as bench_alignment.py trains it, with the paper's
    # alignment network size: on the short generated sequences that takes
    # seconds, since each sequence is compared with one copy of itself.
    data = _warped(quick)
    aligner = TAPMetricLearner(
        tap_channels=(30, 30),
        max_epochs=20 if quick else 200,
        device=knn.device,
        random_state=0,
    ).fit(data[0])
    # A test sequence and a copy of it with runs of frames merged: the true
    # alignment is known (a staircase), so both methods can be read against it
    x = data[2][0][~np.isnan(data[2][0]).all(axis=1)]
    y, G = random_merge(x, rng=0)
    fig = plot_alignment_comparison(x, y, learner=aligner, ground_truth=G)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "alignment.png")
    fig.savefig(path, dpi=100)
    return path


def run_demo(*, dataset="all", device="auto", quick=False, out="sktap_demo_output"):
    """Run the demo and print its table; returns the table rows."""
    device = str(resolve_device(device))
    sets = {
        "trace": ("Trace (275 steps)", _trace),
        "warped": ("generated warped sequences", _warped),
    }
    chosen = list(sets) if dataset == "all" else [dataset]
    table, picture = [], None
    for key in chosen:
        title, load = sets[key]
        data = load(quick)
        print(f"\n{title}: {len(data[0])} train / {len(data[2])} test, device {device}")
        knn, rows = _rows(data, device, quick)
        table += [(title, *r) for r in rows]
        if picture is None:
            picture = _picture(knn, out, quick)
    head = ("data", "method", "1-NN acc", "MAP", "fit s", "predict s")
    print("\n{:<32}{:<26}{:>9}{:>7}{:>8}{:>10}".format(*head))
    for title, name, acc, ap, fit_s, pred_s in table:
        print(f"{title:<32}{name:<26}{acc:>9.3f}{ap:>7.3f}{fit_s:>8.1f}{pred_s:>10.2f}")
    if picture:
        print(
            "\nalignment picture (a test sequence against a copy with runs of "
            "frames merged: TAP trained with the self-supervised loss, soft-DTW, "
            f"and the true alignment): {os.path.abspath(picture)}"
        )
    else:
        print("\n(no picture: install the plot extra, pip install 'sktap[plot]')")
    return table
