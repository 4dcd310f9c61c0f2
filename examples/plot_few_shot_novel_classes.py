"""
Few-shot classification of novel classes
========================================

Few-shot learning asks a model trained on some classes to recognise *new*
classes from a handful of examples each, without retraining.
:class:`sktap.TAPFewShotClassifier` follows the paper's section 3.3: it is
trained on episodes (``n_way`` classes, ``k_shot`` support and ``n_query``
query sequences each) and scores a query against a class by the TAP
distances, in both directions, to that class's support sequences.

This example trains on six classes, then

1. gives the classifier one example of each of four *novel* classes with
   ``set_support`` and classifies the other sequences of those classes;
2. runs the few-shot test protocol, ``evaluate_episodes``: the mean accuracy
   over random 4-way 1-shot episodes drawn from the novel classes,

with two untrained baselines from :mod:`sktap.few_shot` for reference.
"""

# %%
# Base and novel classes
# ----------------------
# :func:`sktap.datasets.make_warped_sequences` builds classes from the same
# motifs in different orders. Classes 0-5 are for training; classes 6-9 are
# never seen until test time.
import matplotlib.pyplot as plt
import numpy as np

from sktap import TAPFewShotClassifier
from sktap.baselines import DTWFewShotClassifier, PrototypeFewShotClassifier
from sktap.datasets import make_warped_sequences
from sktap.plotting import plot_training_history

X, y = make_warped_sequences(
    n_classes=10, n_per_class=8, length_range=(15, 25), random_state=0
)
base = y < 6
X_base, y_base = X[base], y[base]
X_novel, y_novel = X[~base], y[~base]

# %%
# Episodic training
# -----------------
# Tiny networks and 80 episodes keep this to seconds on a CPU; the paper
# trains for many thousands of episodes with 64-channel alignment networks.
clf = TAPFewShotClassifier(
    n_way=4,
    k_shot=1,
    n_query=3,
    n_episodes=80,
    validation_interval=20,
    hidden_layer_sizes=(64,),
    tap_channels=(8,),
    tap_kernel_sizes=(5, 3),
    learning_rate=3e-3,
    random_state=0,
).fit(X_base, y_base)

# %%
# One example per novel class
# ---------------------------
# ``set_support`` swaps the support set for the first sequence of each novel
# class; the classifier then predicts among those classes only.
first = np.array([np.flatnonzero(y_novel == c)[0] for c in np.unique(y_novel)])
rest = np.setdiff1d(np.arange(len(y_novel)), first)
clf.set_support(X_novel[first], y_novel[first])
accuracy = np.mean(clf.predict(X_novel[rest]) == y_novel[rest])
print(f"classes after set_support: {clf.classes_.tolist()}")
print(f"accuracy on the other {len(rest)} novel sequences: {accuracy:.2f}")

# %%
# The few-shot test protocol
# --------------------------
# ``evaluate_episodes`` draws random 4-way 1-shot episodes from the novel
# classes and returns the mean accuracy with a 95% confidence half-width. The
# baselines need no training: one classifies by DTW to the support
# sequences (tslearn compiles DTW with numba on first use, a few seconds),
# the other by the nearest mean frame (blind to temporal order;
# chance is 0.25).
models = {
    "TAP (trained on base classes)": clf,
    "DTW, 1-NN": DTWFewShotClassifier(),
    "mean-frame prototypes": PrototypeFewShotClassifier(),
}
print(f"{'model':<32}{'4-way 1-shot accuracy':>24}")
for name, model in models.items():
    mean, half_width = model.evaluate_episodes(
        X_novel,
        y_novel,
        n_way=4,
        k_shot=1,
        n_query=3,
        n_episodes=200,
        random_state=0,
    )
    print(f"{name:<32}{mean:>16.2f} +/- {half_width:.2f}")

# %%
# Training curve
# --------------
# One point per round of ``validation_interval`` episodes: the mean
# cross-entropy of the episodes' queries.
ax = plot_training_history(clf, keys=["loss"])
ax.set_xlabel("round (20 episodes each)")
ax.set_title("Episodic training on the base classes")

if plt.get_backend().lower() != "agg":  # a script run headless must not block
    plt.show()
