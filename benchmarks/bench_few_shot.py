"""Few-shot accuracy of TAP and SA-TAP against training-free baselines.

Data: ``sktap.datasets.make_warped_sequences`` with 40 classes of 20
sequences (lengths 15-25, d = 2). Its classes share the same motifs and
differ only by their order, under smooth time warps with local reorders
(``warp_strength=1``, the generator's strongest) and noise 0.1. The classes
are split into 24 to train, 8 to validate (held out inside ``fit`` by
``validation_fraction=0.25`` of the 32 non-test classes, picking the best
round) and 8 to test, never seen in training.

For 5-way 1-shot and 5-way 5-shot, a ``TAPFewShotClassifier`` (TAP, and
SA-TAP with ``self_attention=True``) is trained on episodes of that setting,
then every method runs ``evaluate_episodes`` on the same test episodes
(one query per class, the same seed): mean accuracy with its 95% interval.
Baselines: ``PrototypeFewShotClassifier`` (mean frame, nearest prototype)
and ``DTWFewShotClassifier`` with DTW and soft-DTW, rules 1-NN and class
mean (identical in 1-shot). The table also gives training episodes per
second (validation excluded) on this machine.

CPU budget choices (the library defaults are the paper's): TAPNet channels
(32, 32) instead of (64, 64); ``n_query`` 2 (1-shot) and 1 (5-shot) in
training; 600 (1-shot) and 400 (5-shot) training episodes in 5 rounds
(about 11 minutes in all on a shared 2-core machine);
learning rate 3e-3 (better than the default 1e-3 on the *validation*
classes after 300 1-shot episodes; the test classes played no part). On a
shared 2-core machine ``--threads 1`` is much faster than two contended
threads. Run from the repository root::

    python benchmarks/bench_few_shot.py --threads 1   # full run, < 15 min
    python benchmarks/bench_few_shot.py --quick       # pipeline check, ~3 min
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
import warnings
from dataclasses import dataclass

import torch

import sktap
from sktap import TAPFewShotClassifier
from sktap.baselines import DTWFewShotClassifier, PrototypeFewShotClassifier
from sktap.datasets import make_warped_sequences

N_CLASSES, N_TRAIN, N_VAL = 40, 24, 8  # the rest (8) are test classes
DATA = dict(length_range=(15, 25), n_features=2, warp_strength=1.0, noise=0.1)


@dataclass
class Result:
    method: str
    mean: float
    half: float
    eval_seconds: float
    train_episodes: int | None = None
    train_seconds: float | None = None
    episodes_per_second: float | None = None


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small run to check it works")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    p.add_argument("--episodes-1shot", type=int, default=None, help="training episodes")
    p.add_argument("--episodes-5shot", type=int, default=None, help="training episodes")
    p.add_argument("--test-episodes", type=int, default=None)
    args = p.parse_args()
    quick = {"episodes_1shot": 40, "episodes_5shot": 20, "test_episodes": 200}
    full = {"episodes_1shot": 600, "episodes_5shot": 400, "test_episodes": 2000}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def load_data(seed, n_per_class=20):
    X, y = make_warped_sequences(N_CLASSES, n_per_class, random_state=seed, **DATA)
    fit_mask = y < N_TRAIN + N_VAL  # classes are random motif orders: split by id
    return (X[fit_mask], y[fit_mask]), (X[~fit_mask], y[~fit_mask])


def tap_model(k_shot, episodes, self_attention, args):
    interval = -(-episodes // 5)  # five validation rounds
    return TAPFewShotClassifier(
        n_way=5,
        k_shot=k_shot,
        n_query=2 if k_shot == 1 else 1,
        n_episodes=episodes,
        self_attention=self_attention,
        tap_channels=(32, 32),
        learning_rate=3e-3,
        validation_fraction=N_VAL / (N_TRAIN + N_VAL),
        validation_interval=interval,
        n_validation_episodes=50,
        device=args.device,
        random_state=args.seed,
    )


def evaluate(name, clf, test, k_shot, args, **train_info):
    start = time.perf_counter()
    mean, half = clf.evaluate_episodes(
        *test,
        n_way=5,
        k_shot=k_shot,
        n_query=1,
        n_episodes=args.test_episodes,
        random_state=args.seed,  # the same episodes for every method
    )
    return Result(name, mean, half, time.perf_counter() - start, **train_info)


def run_tap(name, k_shot, episodes, self_attention, fit_data, test, args):
    clf = tap_model(k_shot, episodes, self_attention, args)
    start = time.perf_counter()
    clf.fit(*fit_data)
    seconds = time.perf_counter() - start
    rounds = clf.history_
    trained = len(rounds) * clf.validation_interval
    train_only = sum(r["seconds"] - r.get("val_seconds", 0.0) for r in rounds)
    best = max(range(len(rounds)), key=lambda i: -rounds[i]["val_loss"])
    print(
        f"  {name}: {trained} episodes in {seconds:.0f} s; validation accuracy "
        + ", ".join(f"{1 - r['val_loss']:.3f}" for r in rounds)
        + f" (kept round {best + 1})",
        flush=True,
    )
    return evaluate(
        name,
        clf,
        test,
        k_shot,
        args,
        train_episodes=trained,
        train_seconds=seconds,
        episodes_per_second=trained / train_only,
    )


def baselines(k_shot):
    yield "Prototype (mean frame)", PrototypeFewShotClassifier()
    for metric in ("dtw", "softdtw"):
        rules = ("1nn",) if k_shot == 1 else ("1nn", "class_mean")
        for rule in rules:
            yield f"{metric} {rule}", DTWFewShotClassifier(metric, rule=rule)


def run_setting(k_shot, episodes, fit_data, test, args):
    print(f"5-way {k_shot}-shot: training", flush=True)
    results = [
        run_tap(name, k_shot, episodes, sa, fit_data, test, args)
        for name, sa in (("TAP", False), ("SA-TAP", True))
    ]
    results += [evaluate(n, clf, test, k_shot, args) for n, clf in baselines(k_shot)]
    return results


def fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def print_table(k_shot, results):
    print(f"\n5-way {k_shot}-shot accuracy on the same test episodes (95% interval)")
    head = f"{'method':<24}{'accuracy':>18}{'train eps':>11}{'train s':>9}"
    print(head + f"{'eps/s':>8}{'eval s':>8}")
    for r in results:
        acc = f"{r.mean:.4f} ± {r.half:.4f}"
        print(
            f"{r.method:<24}{acc:>18}{fmt(r.train_episodes, 'd'):>11}"
            f"{fmt(r.train_seconds, '.0f'):>9}{fmt(r.episodes_per_second, '.2f'):>8}"
            f"{r.eval_seconds:>8.1f}"
        )


def verdict(k_shot, results):
    by = {r.method: r for r in results}
    base = [r for r in results if r.method not in ("TAP", "SA-TAP")]
    best = max(base, key=lambda r: r.mean)
    lines = []
    for name in ("TAP", "SA-TAP"):
        r = by[name]
        met = all(r.mean > b.mean for b in base)
        separated = r.mean - r.half > best.mean + best.half
        lines.append(
            f"5-way {k_shot}-shot: {name} {r.mean:.4f} vs best baseline "
            f"{best.method} {best.mean:.4f}: {'MET' if met else 'NOT MET'}"
            + (" (intervals disjoint)" if met and separated else "")
            + (" (intervals overlap)" if met and not separated else "")
        )
    return lines


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    start = time.perf_counter()
    print(
        f"sktap {sktap.__version__}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, device {args.device}, "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}"
    )
    print(
        f"data: {N_CLASSES} classes x 20, {DATA}; classes {N_TRAIN} train / "
        f"{N_VAL} validation / {N_CLASSES - N_TRAIN - N_VAL} test; "
        f"{args.test_episodes} test episodes per setting"
        + (" [--quick]" if args.quick else "")
    )
    fit_data, test = load_data(args.seed)
    verdicts = []
    for k_shot, episodes in ((1, args.episodes_1shot), (5, args.episodes_5shot)):
        results = run_setting(k_shot, episodes, fit_data, test, args)
        print_table(k_shot, results)
        verdicts += verdict(k_shot, results)
        print(flush=True)
    print("Target: TAP beats every baseline in both settings")
    print("\n".join(verdicts))
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
