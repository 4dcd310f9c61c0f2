"""
Choosing a metric-learning loss
===============================

:class:`sktap.TAPMetricLearner` trains the TAP distance with one of the three
losses of the paper (section 3.2), each computed on the matrix of TAP
distances between all sequences of a batch:

``"triplet"``
    batch-hard triplet loss: for every anchor, its farthest positive should
    be closer than its nearest negative by a margin (Eq. 4);
``"lifted"``
    lifted structure loss: a smooth (log-sum-exp) version that uses every
    negative of a pair of positives (Eq. 5);
``"binomial"``
    binomial deviance with hard-pair mining: a logistic loss on each pair's
    similarity (Eqs. 6-7).

We train one learner per loss on the same generated data, compare them by
1-NN accuracy and by retrieval mean average precision (MAP), and plot their
training curves with :func:`sktap.plotting.plot_training_history`.
"""

# %%
# Data
# ----
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sktap import TAPMetricLearner
from sktap.datasets import make_warped_sequences
from sktap.metrics import mean_average_precision
from sktap.plotting import plot_training_history

X, y = make_warped_sequences(
    n_classes=3, n_per_class=16, length_range=(20, 30), random_state=1
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)

# %%
# One learner per loss
# --------------------
# Small networks and few epochs keep this quick on a CPU. A fifth of the
# training set is held out (``validation_fraction``) so that each history
# also records a validation loss; the weights of the best validation epoch
# are kept.
learners = {}
for loss in ("triplet", "lifted", "binomial"):
    learners[loss] = TAPMetricLearner(
        loss,
        hidden_layer_sizes=(64,),
        tap_channels=(8,),
        tap_kernel_sizes=(5, 3),
        augment=False,
        batch_size=16,
        max_epochs=8,
        learning_rate=3e-3,
        validation_fraction=0.2,
        random_state=0,
    ).fit(X_train, y_train)

# %%
# Accuracy and retrieval quality
# ------------------------------
# Each test sequence queries the training set: 1-NN accuracy looks at the
# nearest training sequence only, MAP at the whole ranking.
print(f"{'loss':<10}{'1-NN accuracy':>15}{'MAP':>8}")
for loss, learner in learners.items():
    D = learner.pairwise_distances(X_test, X_train)  # (n_test, n_train)
    accuracy = np.mean(y_train[np.argmin(D, axis=1)] == y_test)
    score = mean_average_precision(D, y_test, y_train)
    print(f"{loss:<10}{accuracy:>15.2f}{score:>8.2f}")

# %%
# Training curves
# ---------------
# The losses live on different scales (a triplet loss is bounded by its
# margin's order, the lifted and binomial losses are log-sum-exps), so each
# gets its own panel. ``loss`` is the training objective, ``val_loss`` the
# same objective on the held-out sequences.
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for ax, (loss, learner) in zip(axes, learners.items()):
    plot_training_history(learner, ax, keys=["loss", "val_loss"])
    ax.set_title(loss)
fig.tight_layout()

if plt.get_backend().lower() != "agg":  # a script run headless must not block
    plt.show()
