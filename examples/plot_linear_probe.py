"""
Linear probe of learned frame features
======================================

The TAP paper (appendix A.9) also judges the learned per-frame features on
their own, with a *linear probe*: freeze the frame network ``h``, average its
output over the valid frames of each sequence, and fit a linear classifier on
these averages. Whatever the alignment network contributes is left out, and so
is temporal order.

In sktap this is one scikit-learn :class:`~sklearn.pipeline.Pipeline`:

1. :class:`sktap.TAPMetricLearner` learns ``h`` and, as a transformer,
   returns the frame features ``h(x)`` in tslearn's format (NaN after each
   sequence's end);
2. a :class:`~sklearn.preprocessing.FunctionTransformer` mean-pools them over
   the valid frames (``numpy.nanmean`` skips the NaN padding);
3. :class:`~sklearn.linear_model.LogisticRegression` is the linear probe.

Fitting the pipeline trains the metric learner on the labels first, then the
probe on its frozen features.
"""

# %%
# Data whose classes differ in frame content
# ------------------------------------------
# Each call of :func:`sktap.datasets.make_warped_sequences` draws its own bank
# of motifs, so sequences from four calls form four classes with different
# frame values (and random time warps, lengths and noise).
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from tslearn.utils import to_time_series_dataset

from sktap import TAPMetricLearner
from sktap.datasets import make_warped_sequences

n_classes, n_per_class = 4, 16
sequences = []
for c in range(n_classes):
    Xc, _ = make_warped_sequences(
        n_classes=1,
        n_per_class=n_per_class,
        length_range=(20, 30),
        noise=0.3,
        random_state=c,
    )
    sequences.extend(Xc)
X = to_time_series_dataset(sequences)  # (n_ts, max_len, 2), NaN-padded
y = np.repeat(np.arange(n_classes), n_per_class)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)


# %%
# The pipeline
# ------------
# The pooling function is a named module-level function (not a lambda), so
# the fitted pipeline can be pickled.
def mean_pool(Z):
    """Mean over the valid frames: (n_ts, max_len, d) -> (n_ts, d)."""
    return np.nanmean(Z, axis=1)


probe = make_pipeline(
    TAPMetricLearner(
        hidden_layer_sizes=(64,),
        n_components=16,
        tap_channels=(8,),
        tap_kernel_sizes=(5, 3),
        augment=False,
        batch_size=16,
        max_epochs=8,
        learning_rate=3e-3,
        random_state=0,
    ),
    FunctionTransformer(mean_pool),
    LogisticRegression(max_iter=1000),
)
probe.fit(X_train, y_train)

# %%
# Two references: the same probe on the raw frames, and 1-NN with the learned
# TAP distance, which uses the alignment (and so temporal order) as well.
raw_probe = make_pipeline(
    FunctionTransformer(mean_pool), LogisticRegression(max_iter=1000)
).fit(X_train, y_train)
learner = probe[0]
D = learner.pairwise_distances(X_test, X_train)  # (n_test, n_train)
scores = {
    "linear probe, raw frames": raw_probe.score(X_test, y_test),
    "linear probe, learned frames": probe.score(X_test, y_test),
    "1-NN, learned TAP distance": np.mean(y_train[D.argmin(axis=1)] == y_test),
}
for name, score in scores.items():
    print(f"{name:<30}{score:>6.2f}")

# %%
# The learned frames were trained for the TAP distance (and are L2-normalised
# per frame), not for being averaged, so a probe on them need not beat the
# raw frames, whose means already differ between these classes. The probe is
# a diagnostic of what the frame features carry by themselves; the learned
# distance, which also aligns frames in time, is the classifier to use.

# %%
# The pooled features
# -------------------
# The first two coordinates of the pooled learned features, one point per
# test sequence. A probe does well when the classes form linearly separable
# groups here (in all 16 dimensions, not only these two).
pooled = probe[:-1].transform(X_test)  # (n_test, 16)
fig, ax = plt.subplots(figsize=(5, 4))
scatter = ax.scatter(pooled[:, 0], pooled[:, 1], c=y_test, cmap="tab10", s=25)
ax.legend(*scatter.legend_elements(), title="class", fontsize="small")
ax.set_xlabel("pooled feature 0")
ax.set_ylabel("pooled feature 1")
ax.set_title("Mean-pooled learned frame features")
fig.tight_layout()

if plt.get_backend().lower() != "agg":  # a script run headless must not block
    plt.show()
