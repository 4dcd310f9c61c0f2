"""
Quickstart: TAP distances and a learned TAP metric
==================================================

This example walks through the three ways of using Temporal Alignment
Prediction (TAP) in sktap:

1. the parameter-free TAP distance between two sequences
   (:func:`sktap.metrics.tap_distance`);
2. all pairwise distances between two sets of sequences
   (:func:`sktap.metrics.cdist_tap`, named like tslearn's ``cdist_dtw``);
3. a learned TAP distance (:class:`sktap.TAPMetricLearner`), trained briefly
   on labelled sequences.

Each distance is judged by the accuracy of a 1-nearest-neighbour classifier,
next to tslearn's DTW.
"""

# %%
# Variable-length sequences
# -------------------------
# :func:`sktap.datasets.make_warped_sequences` generates classes of randomly
# time-warped 2-D sequences of different lengths. All classes are made of the
# same motifs in a different order, so a distance has to respect temporal
# order to tell them apart. The data comes in tslearn's format: an array
# ``(n_ts, sz, d)`` where shorter sequences end with NaN time steps.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sktap import TAPMetricLearner
from sktap.datasets import make_warped_sequences
from sktap.metrics import cdist_tap, tap_distance

X, y = make_warped_sequences(
    n_classes=3, n_per_class=20, length_range=(20, 30), random_state=0
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
lengths = (~np.isnan(X[:, :, 0])).sum(axis=1)
print(
    f"{len(X)} sequences of {X.shape[2]} features, lengths {lengths.min()}-"
    f"{lengths.max()}"
)


def one_nn_accuracy(D):
    """Accuracy of 1-NN from a (n_test, n_train) distance matrix."""
    return float(np.mean(y_train[np.argmin(D, axis=1)] == y_test))


# %%
# The parameter-free TAP distance
# -------------------------------
# Without a learned network, TAP is a soft nearest-frame distance: each frame
# of the source ``x`` spreads its weight over the frames of the target ``y``
# by a softmax of minus their distances. It is asymmetric (``x`` is the
# source) and needs no training.
x0, x1 = X_test[0], X_test[1]
print(
    f"tap(x0, x1) = {tap_distance(x0, x1):.3f}, "
    f"tap(x1, x0) = {tap_distance(x1, x0):.3f}"
)

# %%
# ``cdist_tap`` computes every distance from ``X_test[i]`` to ``X_train[j]``
# in batched tiles (on a GPU when there is one).
results = {}
start = time.perf_counter()
D_tap = cdist_tap(X_test, X_train)
results["TAP, parameter-free"] = (one_nn_accuracy(D_tap), time.perf_counter() - start)

# %%
# DTW, for comparison
# -------------------
# The parameter-free TAP ignores time, so it cannot separate classes that
# differ only by the order of their motifs; DTW can. (tslearn compiles its
# DTW with numba on the first call, which takes a few seconds.)
from tslearn.metrics import cdist_dtw

start = time.perf_counter()
D_dtw = cdist_dtw(X_test, X_train)
results["DTW (tslearn)"] = (one_nn_accuracy(D_dtw), time.perf_counter() - start)

# %%
# A learned TAP distance
# ----------------------
# :class:`sktap.TAPMetricLearner` learns a per-frame network ``h`` and the
# alignment network that predicts ``T`` from the frame distances and their
# relative positions, with a batch-hard triplet loss. The sizes here are tiny
# so that the example runs in seconds on a CPU; the paper's defaults
# (1024-unit layers, 50 epochs) are the estimator's defaults. The
# self-supervised term (``augment=True``, the default) is switched off to
# keep the run short.
learner = TAPMetricLearner(
    hidden_layer_sizes=(64,),
    tap_channels=(8,),
    tap_kernel_sizes=(5, 3),
    augment=False,
    batch_size=16,
    max_epochs=10,
    learning_rate=3e-3,
    random_state=0,
)
start = time.perf_counter()
learner.fit(X_train, y_train)
D_learned = learner.pairwise_distances(X_test, X_train)
results["TAP, learned"] = (one_nn_accuracy(D_learned), time.perf_counter() - start)

print(f"{'distance':<22}{'1-NN accuracy':>14}{'seconds':>9}")
for name, (acc, sec) in results.items():
    print(f"{name:<22}{acc:>14.2f}{sec:>9.1f}")

# %%
# The learned distance matrix
# ---------------------------
# Sorting the test and training sequences by class shows the block structure
# that 1-NN relies on: small distances (dark) within a class.
order_test, order_train = np.argsort(y_test), np.argsort(y_train)
fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
for ax, D, name in zip(axes, (D_tap, D_learned), ("parameter-free", "learned")):
    image = ax.imshow(D[np.ix_(order_test, order_train)], cmap="magma")
    ax.set_title(f"TAP, {name}")
    ax.set_xlabel("training sequence (by class)")
    fig.colorbar(image, ax=ax, shrink=0.8)
axes[0].set_ylabel("test sequence (by class)")
fig.tight_layout()

if plt.get_backend().lower() != "agg":  # a script run headless must not block
    plt.show()
