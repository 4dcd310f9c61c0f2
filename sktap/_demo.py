"""The demo behind ``python -m sktap demo``."""

from __future__ import annotations

import time

import numpy as np

from .metrics import cdist_tap


def _trace(quick):
    from tslearn.datasets import CachedDatasets

    X_train, y_train, X_test, y_test = CachedDatasets().load_dataset("Trace")
    if quick:
        X_train, y_train, X_test, y_test = (
            X_train[:40],
            y_train[:40],
            X_test[:40],
            y_test[:40],
        )
    return X_train, y_train, X_test, y_test


def _one_nn(name, dist_fn, X_train, y_train, X_test, y_test):
    t0 = time.perf_counter()
    D = dist_fn(X_test, X_train)
    seconds = time.perf_counter() - t0
    acc = float(np.mean(y_train[np.argmin(D, axis=1)] == y_test))
    return name, acc, seconds


def run_demo(*, dataset="all", device="auto", quick=False, out="sktap_demo_output"):
    from tslearn.metrics import cdist_dtw, cdist_soft_dtw

    X_train, y_train, X_test, y_test = _trace(quick)
    rows = [
        _one_nn(
            "TAP (parameter-free)",
            lambda a, b: cdist_tap(a, b, device=device),
            X_train,
            y_train,
            X_test,
            y_test,
        ),
        _one_nn("DTW", cdist_dtw, X_train, y_train, X_test, y_test),
        _one_nn("soft-DTW", cdist_soft_dtw, X_train, y_train, X_test, y_test),
    ]
    print(f"Trace: {len(X_train)} train / {len(X_test)} test series, 1-NN")
    print(f"{'method':<24}{'accuracy':>10}{'seconds':>10}")
    for name, acc, sec in rows:
        print(f"{name:<24}{acc:>10.3f}{sec:>10.2f}")
