"""Helpers shared by the estimators: labels, validation splits, training settings."""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets

from .._sklearn_compat import Interval

__all__ = ["check_labels", "common_train_params", "split_validation"]

common_train_params = {
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "callback": [callable, None],
    "warm_start": ["boolean"],
    "checkpoint_path": [str, os.PathLike, None],
}


def check_labels(y, n_samples, *, min_classes=2):
    """Validate class labels; return ``(classes, encoded)``.

    ``encoded`` holds indices into ``classes`` (int64).
    """
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        # scikit-learn's convention: warn, then use the column as labels
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please "
            "change the shape of y to (n_samples,), for example using ravel().",
            DataConversionWarning,
            stacklevel=3,
        )
        y_arr = y_arr.ravel()
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D (n_ts,); got shape {y_arr.shape}")
    if len(y_arr) != n_samples:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: {n_samples} "
            f"sequences but {len(y_arr)} labels"
        )
    if y_arr.dtype.kind == "f" and np.isnan(y_arr).any():
        raise ValueError("y contains NaN labels")
    if y_arr.dtype.kind == "O":
        kinds = {type(v) for v in y_arr}
        if len(kinds) > 1 and not all(issubclass(k, (int, np.integer)) for k in kinds):
            raise TypeError(
                "y mixes label types "
                f"({', '.join(sorted(k.__name__ for k in kinds))}); use one type"
            )
    check_classification_targets(y_arr)
    classes, encoded = np.unique(y_arr, return_inverse=True)
    if len(classes) < min_classes:
        raise ValueError(
            f"y has {len(classes)} class; at least {min_classes} are needed to "
            "learn from labels"
        )
    return classes, encoded.astype(np.int64)


def split_validation(n_samples, labels, fraction, rng):
    """Indices ``(train, validation)``; stratified when labels allow it."""
    all_idx = np.arange(n_samples)
    if not fraction:
        return all_idx, all_idx[:0]
    n_val = int(np.ceil(fraction * n_samples))
    if n_val < 2 or n_samples - n_val < 2:
        raise ValueError(
            f"validation_fraction={fraction} leaves too few sequences "
            f"({n_samples - n_val} to train, {n_val} to validate)"
        )
    stratify = None
    if labels is not None:
        counts = np.bincount(labels[1])
        if counts.min() >= 2 and n_val >= len(counts):
            stratify = labels[1]
    return train_test_split(
        all_idx,
        test_size=n_val,
        stratify=stratify,
        random_state=rng.randint(2**31 - 1),
    )
