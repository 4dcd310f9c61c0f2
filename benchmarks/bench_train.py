"""Seconds per training epoch: the mined, bucketed step against all pairs.

For the default :class:`sktap.TAPMetricLearner` (triplet loss) on two real
data sets (``benchmarks/_datasets.py``; ``pip install --no-deps aeon==1.6.0``):

(a) JapaneseVowels: 270 training sequences of 7-29 steps, 12 channels
    (variable length);
(b) BasicMotions: 40 training sequences of 100 steps, 6 channels (fixed
    length; the default encoder downsamples it 2x, to 50 frames).

Two learners with the same ``random_state`` (hence the same weights and the
same minibatches) train side by side, in one process: the default step
(frames encoded once, distances in length buckets, and once classes
separate only the pairs that hard mining keeps recomputed with autograd;
a batch with too little work for that takes the all-pairs computation on
the encoded frames, and its mined fraction reads "-")
and the all-pairs step (every pair padded to the batch's longest sequence,
all with autograd; ``sktap.config_context(training_path="all_pairs")``). Printed per
epoch: seconds of each, their ratio, the fraction of pairs mining keeps,
and both loss curves (they agree to float32 rounding: same minibatches).
Also the padding ratio (cells computed / true cells) of one batch.

Run from the repository root::

    python benchmarks/bench_train.py                 # 5 epochs, CPU
    python benchmarks/bench_train.py --device cuda --compare-cpu --cpu-threads 2
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _datasets import DATASETS

import sktap
from sktap import TAPMetricLearner
from sktap.core import padding_ratio
from sktap.metric_learning._steps import training_path


def _fit(X, y, epochs, device, path, seed):
    est = TAPMetricLearner(max_epochs=epochs, device=device, random_state=seed)
    start = time.perf_counter()
    with sktap.config_context(training_path=path):
        est.fit(X, y)
    return est, time.perf_counter() - start


def _fraction(entry):
    """The epoch's mined fraction, "-" where every batch was too small to
    mine (see ``MINED_MIN_MACS`` in ``sktap/_thresholds.py``)."""
    value = entry.get("mined_fraction")
    return "-" if value is None else f"{value:.3f}"


def _batch_padding(lengths, batch_size, seed):
    lengths = np.asarray(lengths)
    idx = np.random.RandomState(seed).permutation(len(lengths))[:batch_size]
    lx = torch.as_tensor(lengths[idx])
    return padding_ratio(lx, bucketed=False), padding_ratio(lx, bucketed=True)


def run(name, epochs, device, seed):
    X, y, _, _ = DATASETS[name]()
    print(
        f"\n## {name}: {len(X)} sequences, lengths {min(map(len, X))}-"
        f"{max(map(len, X))}, {np.asarray(X[0]).reshape(len(X[0]), -1).shape[1]} "
        f"channels, device {device}\n"
    )
    warm = np.random.RandomState(seed).permutation(len(X))[:32]
    for path in ("mined", "all_pairs"):  # warm-up: oneDNN builds its kernels once
        _fit([X[i] for i in warm], np.asarray(y)[warm], 1, device, path, seed)
    fast, t_fast = _fit(X, y, epochs, device, "mined", seed)
    slow, t_slow = _fit(X, y, epochs, device, "all_pairs", seed)
    print(
        "| epoch | all-pairs s | default step s | speed-up | mined fraction "
        "| loss all-pairs | loss mined |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for a, b in zip(slow.history_, fast.history_):
        print(
            f"| {a['epoch']} | {a['seconds']:.2f} | {b['seconds']:.2f} | "
            f"{a['seconds'] / b['seconds']:.1f}x | {_fraction(b)} "
            f"| {a['metric_loss']:.6f} | {b['metric_loss']:.6f} |"
        )
    per_slow = np.mean([h["seconds"] for h in slow.history_])
    per_fast = np.mean([h["seconds"] for h in fast.history_])
    curves = np.array([[h["metric_loss"] for h in m.history_] for m in (slow, fast)])
    gap = np.max(np.abs(curves[0] - curves[1]) / np.maximum(np.abs(curves[0]), 1e-6))
    stride = fast.stride_
    enc = [len(range(0, len(x), stride)) for x in X]
    before, after = _batch_padding(enc, 32, seed)
    print(
        f"\nmean s/epoch: all-pairs {per_slow:.2f}, default step {per_fast:.2f} "
        f"-> {per_slow / per_fast:.1f}x (fit totals {t_slow:.1f} s vs {t_fast:.1f} s)"
    )
    print(f"loss curves: largest relative difference {gap:.2e}")
    print(
        f"padding (cells computed / true cells, one batch of 32 encoded "
        f"sequences): {before:.2f} padded to the longest, {after:.2f} bucketed"
    )
    return per_slow / per_fast, {"mined": per_fast, "all_pairs": per_slow}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--datasets", default="JapaneseVowels,BasicMotions", help="comma-separated"
    )
    parser.add_argument(
        "--compare-cpu",
        action="store_true",
        help="also time the mined step on the CPU and print the device's speed-up",
    )
    parser.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        help="torch threads for the --compare-cpu run (default: torch's own)",
    )
    args = parser.parse_args(argv)
    print(
        f"# bench_train: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    for name in args.datasets.split(","):
        _, per_path = run(name, args.epochs, args.device, args.seed)
        if args.compare_cpu and args.device != "cpu":
            # each device with the path the estimators choose there
            path = training_path("auto", args.device)
            per_epoch = per_path[path]
            X, y, _, _ = DATASETS[name]()
            threads = torch.get_num_threads()
            if args.cpu_threads:
                torch.set_num_threads(args.cpu_threads)
            try:
                warm = np.random.RandomState(args.seed).permutation(len(X))[:32]
                _fit([X[i] for i in warm], np.asarray(y)[warm], 1, "cpu", "mined", 0)
                cpu, _ = _fit(X, y, args.epochs, "cpu", "mined", args.seed)
            finally:
                torch.set_num_threads(threads)
            per_cpu = np.mean([h["seconds"] for h in cpu.history_])
            print(
                f"{name}: {args.device} ({path}) {per_epoch:.3f} s/epoch vs cpu "
                f"(mined, "
                f"{args.cpu_threads or threads} threads) {per_cpu:.3f} s/epoch "
                f"-> {per_cpu / per_epoch:.1f}x"
            )


if __name__ == "__main__":
    main()
