"""Retrieval quality of a distance matrix."""

from __future__ import annotations

import numpy as np

__all__ = ["mean_average_precision"]


def _check_retrieval_input(distances, y_query, y_reference):
    D = np.asarray(distances)
    if D.ndim != 2:
        raise ValueError(
            f"distances must be a 2-D array (n_query, n_reference); got shape {D.shape}"
        )
    if D.dtype.kind not in "biuf":
        raise TypeError(f"distances must be real numbers; got dtype {D.dtype}")
    if np.isnan(D).any():
        raise ValueError("distances contains NaN")
    yq, yr = np.asarray(y_query), np.asarray(y_reference)
    for name, y, n, axis in (
        ("y_query", yq, D.shape[0], "rows"),
        ("y_reference", yr, D.shape[1], "columns"),
    ):
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D; got shape {y.shape}")
        if len(y) != n:
            raise ValueError(f"{name} has {len(y)} labels but distances has {n} {axis}")
    return D, yq, yr


def mean_average_precision(distances, y_query, y_reference):
    """Mean average precision (MAP) of retrieval by ascending distance.

    Each query ranks all references from nearest to farthest; its average
    precision is the mean, over the references sharing its label, of the
    precision at their ranks. MAP averages this over the queries that have
    at least one such reference (the others are left out).

    Ties are broken by reference order (a stable sort): of two references at
    the same distance, the one with the lower index ranks first. Scikit-learn's
    ``average_precision_score`` (with scores ``-distances``) instead treats
    tied scores as one threshold; both agree when a query's distances are
    distinct.

    Parameters
    ----------
    distances : array-like of shape (n_query, n_reference)
        ``distances[i, j]`` from query ``i`` to reference ``j``; ``+inf``
        ranks last, NaN is refused.
    y_query : array-like of shape (n_query,)
        Labels of the queries.
    y_reference : array-like of shape (n_reference,)
        Labels of the references.

    Returns
    -------
    float
        In (0, 1]; 1 when every query ranks all its relevant references
        first.

    Raises
    ------
    ValueError
        On inconsistent shapes, NaN distances, or when no query has a
        relevant reference.

    Examples
    --------
    >>> from sktap.metrics import mean_average_precision
    >>> D = [[0.1, 0.5, 0.3], [0.2, 0.9, 0.4]]
    >>> round(mean_average_precision(D, [0, 1], [0, 1, 0]), 4)
    0.6667
    """
    D, yq, yr = _check_retrieval_input(distances, y_query, y_reference)
    order = np.argsort(D, axis=1, kind="stable")  # (n_query, n_reference)
    relevant = yr[order] == yq[:, None]
    n_relevant = relevant.sum(axis=1)
    keep = n_relevant > 0
    if not keep.any():
        raise ValueError(
            "no query has a relevant reference (a reference with its label); "
            "mean average precision is undefined"
        )
    relevant, n_relevant = relevant[keep], n_relevant[keep]
    ranks = np.arange(1, D.shape[1] + 1)
    precision = np.cumsum(relevant, axis=1) / ranks  # precision at each rank
    ap = (precision * relevant).sum(axis=1) / n_relevant
    return float(ap.mean())
