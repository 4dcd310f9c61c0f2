"""
Tuning a TAP k-NN classifier with GridSearchCV
==============================================

:class:`sktap.TAPKNeighborsClassifier` is a scikit-learn classifier, so it
composes with the rest of the ecosystem. Here it sits in a
:class:`~sklearn.pipeline.Pipeline` after tslearn's
:class:`~tslearn.preprocessing.TimeSeriesScalerMeanVariance`, with a
:class:`sktap.TAPMetricLearner` as its ``metric_learner``, and
:class:`~sklearn.model_selection.GridSearchCV` picks both the number of
neighbours and the metric-learning loss by cross-validation.

Every fit of the pipeline scales the training sequences and fits a fresh
clone of the metric learner on them, so no information leaks from the
validation folds into the learned distance.
"""

# %%
# Data
# ----
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from tslearn.preprocessing import TimeSeriesScalerMeanVariance

from sktap import TAPKNeighborsClassifier, TAPMetricLearner
from sktap.datasets import make_warped_sequences

X, y = make_warped_sequences(
    n_classes=3, n_per_class=12, length_range=(15, 25), random_state=2
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# The pipeline
# ------------
# Per-sequence z-normalisation (tslearn keeps the NaN padding of shorter
# sequences), then k-NN under a learned TAP distance. The learner is tiny so
# that the search below takes seconds on a CPU.
pipe = make_pipeline(
    TimeSeriesScalerMeanVariance(),
    TAPKNeighborsClassifier(
        metric_learner=TAPMetricLearner(
            hidden_layer_sizes=(32,),
            tap_channels=(8,),
            tap_kernel_sizes=(5, 3),
            augment=False,
            batch_size=16,
            max_epochs=6,
            learning_rate=3e-3,
            random_state=0,
        ),
    ),
)
print(pipe)

# %%
# The search
# ----------
# Nested parameters use scikit-learn's double-underscore paths: the pipeline
# step, then ``metric_learner``, then the learner's own parameter.
param_grid = {
    "tapkneighborsclassifier__n_neighbors": [1, 3],
    "tapkneighborsclassifier__metric_learner__loss": ["triplet", "binomial"],
}
search = GridSearchCV(
    pipe, param_grid, cv=StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
)
search.fit(X_train, y_train)

results = search.cv_results_
for params, mean, std in zip(
    results["params"], results["mean_test_score"], results["std_test_score"]
):
    k = params["tapkneighborsclassifier__n_neighbors"]
    loss = params["tapkneighborsclassifier__metric_learner__loss"]
    print(f"n_neighbors={k}, loss={loss:<9} accuracy {mean:.2f} +/- {std:.2f}")
print(f"best: {search.best_params_}")
print(
    f"test accuracy of the refitted best pipeline: {search.score(X_test, y_test):.2f}"
)

# %%
# Cross-validated accuracy of each setting
# ----------------------------------------
fig, ax = plt.subplots(figsize=(5, 3.5))
for loss in param_grid["tapkneighborsclassifier__metric_learner__loss"]:
    mask = np.array(
        [
            p["tapkneighborsclassifier__metric_learner__loss"] == loss
            for p in results["params"]
        ]
    )
    ax.errorbar(
        np.array(param_grid["tapkneighborsclassifier__n_neighbors"]),
        results["mean_test_score"][mask],
        yerr=results["std_test_score"][mask],
        marker="o",
        capsize=3,
        label=loss,
    )
ax.set_xticks(param_grid["tapkneighborsclassifier__n_neighbors"])
ax.set_xlabel("n_neighbors")
ax.set_ylabel("cross-validated accuracy")
ax.legend(title="loss")
fig.tight_layout()

if plt.get_backend().lower() != "agg":  # a script run headless must not block
    plt.show()
