"""mean_average_precision against scikit-learn's average_precision_score."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from sktap.metrics import mean_average_precision


def _reference_map(D, yq, yr):
    aps = [
        average_precision_score(yr == label, -row)
        for row, label in zip(D, yq)
        if (yr == label).any()
    ]
    return float(np.mean(aps))


@st.composite
def retrieval_cases(draw):
    n_query = draw(st.integers(1, 6))
    n_ref = draw(st.integers(1, 12))
    n_classes = draw(st.integers(1, 4))
    yr = np.array(
        draw(st.lists(st.integers(0, n_classes - 1), min_size=n_ref, max_size=n_ref))
    )
    yq = np.array(
        draw(st.lists(st.sampled_from(yr.tolist()), min_size=n_query, max_size=n_query))
    )
    # distinct distances in each row: no ties, where the two tie rules differ
    rows = [draw(st.permutations(range(n_ref))) for _ in range(n_query)]
    scale = draw(st.floats(0.01, 100.0))
    return np.array(rows, dtype=float) * scale, yq, yr


@settings(max_examples=60, deadline=None)
@given(retrieval_cases())
def test_matches_sklearn_average_precision(case):
    D, yq, yr = case
    assert mean_average_precision(D, yq, yr) == pytest.approx(
        _reference_map(D, yq, yr), rel=1e-12
    )


def test_queries_without_relevant_reference_are_left_out():
    D = np.array([[0.1, 0.2], [0.3, 0.1]])
    # query 1 (label 2) has no relevant reference; query 0 ranks its match 2nd
    assert mean_average_precision(D, [1, 2], [0, 1]) == pytest.approx(0.5)


def test_ties_follow_reference_order():
    D = np.array([[1.0, 1.0, 1.0]])
    assert mean_average_precision(D, [0], [0, 1, 1]) == 1.0
    assert mean_average_precision(D, [0], [1, 1, 0]) == pytest.approx(1 / 3)
    assert mean_average_precision([[0.0, np.inf]], ["a"], ["b", "a"]) == 0.5


def test_string_labels_and_perfect_ranking():
    D = np.array([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 0.5, 0.1]])
    assert mean_average_precision(D, ["x", "y"], ["x", "x", "y", "y"]) == 1.0


@pytest.mark.parametrize(
    ("D", "yq", "yr", "match"),
    [
        (np.zeros(3), [0], [0, 1, 2], r"distances must be a 2-D array .* shape \(3,\)"),
        (
            np.zeros((2, 3)),
            [0],
            [0, 1, 2],
            "y_query has 1 labels but distances has 2 rows",
        ),
        (
            np.zeros((2, 3)),
            [0, 1],
            [0, 1],
            "y_reference has 2 labels but distances has 3 columns",
        ),
        (np.zeros((1, 2)), [[0]], [0, 1], r"y_query must be 1-D; got shape \(1, 1\)"),
        ([[np.nan, 1.0]], [0], [0, 1], "distances contains NaN"),
        (np.zeros((1, 2)), [5], [0, 1], "no query has a relevant reference"),
    ],
)
def test_bad_input(D, yq, yr, match):
    with pytest.raises(ValueError, match=match):
        mean_average_precision(D, yq, yr)
