"""Fuzzing the public entry points with malformed input.

Every malformed input must end in a ValueError or TypeError whose message
names the problem, never another exception, a hang, a NaN result or a change
to the caller's arrays.
"""

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sktap import TAPFewShotClassifier, TAPKNeighborsClassifier, TAPMetricLearner
from sktap.datasets import load_spoken_arabic_digits, load_ts_file
from sktap.metrics import cdist_tap, tap_alignment, tap_distance

from .conftest import TINY_FEW_SHOT, TINY_LEARNER

GOOD = [np.arange(8.0).reshape(4, 2), np.ones((3, 2))]


def _bad_sequence_sets():
    """(description keyword, malformed X) pairs, drawn by hypothesis."""
    lengths = st.integers(1, 6)

    @st.composite
    def one_bad(draw):
        kind = draw(
            st.sampled_from(
                [
                    "empty",
                    "all_nan",
                    "nan_hole",
                    "partial_nan",
                    "inf",
                    "strings",
                    "complex",
                    "objects",
                    "ndim",
                    "features",
                    "no_sequences",
                    "scalar",
                ]
            )
        )
        n = draw(st.integers(1, 4))
        seqs = [
            np.random.default_rng(i).normal(size=(draw(lengths), 2)) for i in range(n)
        ]
        k = draw(st.integers(0, n - 1))
        if kind == "empty":
            seqs[k] = np.zeros((0, 2))
            return "empty", seqs
        if kind == "all_nan":
            seqs[k] = np.full_like(seqs[k], np.nan)
            return "only NaN", seqs
        if kind == "nan_hole":
            seqs[k] = np.vstack([np.full((1, 2), np.nan), seqs[k]])
            return "NaN", seqs
        if kind == "partial_nan":
            seqs[k] = seqs[k].copy()
            seqs[k][-1, 0] = np.nan
            return "NaN in some channels", seqs
        if kind == "inf":
            seqs[k] = seqs[k].copy()
            seqs[k][0, draw(st.integers(0, 1))] = draw(
                st.sampled_from([np.inf, -np.inf])
            )
            return "infinite", seqs
        if kind == "strings":
            seqs[k] = seqs[k].astype(str)
            return "non-numeric", seqs
        if kind == "complex":
            seqs[k] = seqs[k] + 1j
            return "complex", seqs
        if kind == "objects":
            arr = np.empty((2, 2), dtype=object)
            arr[:] = draw(st.sampled_from([{}, "a", None]))
            seqs[k] = arr
            return "non-numeric", seqs
        if kind == "ndim":
            seqs[k] = np.zeros((2, 2, 2))
            return "must be 1-D", seqs
        if kind == "features":
            seqs[k] = np.zeros((3, 3))
            return "features" if n > 1 else None, seqs
        if kind == "no_sequences":
            return "no sequences", []
        return "must be", draw(st.sampled_from([3.0, "abc", b"raw"]))

    return one_bad()


def _entry_points():
    fitted = TAPMetricLearner(**TINY_LEARNER).fit(GOOD * 2, [0, 1, 0, 1])
    knn = TAPKNeighborsClassifier(device="cpu").fit(GOOD * 2, [0, 1, 0, 1])
    few = TAPFewShotClassifier(
        **dict(TINY_FEW_SHOT, n_way=2, n_episodes=2, validation_interval=1)
    ).fit(GOOD * 2, [0, 1, 0, 1])
    return {
        "knn.predict": knn.predict,
        "knn.kneighbors": lambda X: knn.kneighbors(X, n_neighbors=1)[0],
        "knn.fit": lambda X: TAPKNeighborsClassifier(device="cpu").fit(X, [0] * _n(X)),
        "few_shot.predict_proba": few.predict_proba,
        "few_shot.set_support": lambda X: copy.deepcopy(few).set_support(
            X, [0, 1] * (_n(X) // 2) + [0] * (_n(X) % 2)
        ),
        "cdist_tap(X)": lambda X: cdist_tap(X),
        "cdist_tap(good, Y)": lambda X: cdist_tap(GOOD, X),
        "tap_distance": lambda X: tap_distance(
            X[0] if isinstance(X, list) and X else X, GOOD[0]
        ),
        "tap_alignment": lambda X: tap_alignment(
            GOOD[0], X[0] if isinstance(X, list) and X else X
        ),
        "learner.transform": fitted.transform,
        "learner.pairwise_distances": fitted.pairwise_distances,
        "learner.fit": lambda X: TAPMetricLearner(max_epochs=1, device="cpu").fit(X),
    }


def _n(X):
    return len(X) if isinstance(X, list) else 1


ENTRY_POINTS = _entry_points()


# hypothesis may run fewer than max_examples (a settings profile, a strategy
# that runs dry): each fuzz test asserts that it tried at least this many
MIN_CASES = 30


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_malformed_sequences_raise_clear_errors(name):
    tried = []

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(case=_bad_sequence_sets())
    def run(case):
        tried.append(case)
        _check_malformed(name, *case)

    run()
    print(f"{name}: {len(tried)} malformed inputs tried")
    assert len(tried) >= MIN_CASES


def _check_malformed(name, keyword, X):
    before = copy.deepcopy(X)
    single = name.startswith("tap_")
    try:
        out = ENTRY_POINTS[name](X)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert msg, "empty error message"
        if keyword is not None and not single:
            assert keyword in msg, (keyword, msg)
    else:
        # only inputs whose bad part is not looked at may pass (e.g. the
        # single-sequence functions read only the first sequence)
        assert single or keyword is None, f"{name} accepted a bad input ({keyword})"
        if isinstance(out, np.ndarray) and out.dtype.kind == "f":
            # NaN only as tslearn padding of transformed output, never in distances
            assert name == "learner.transform" or np.isfinite(out).all()
    _assert_unchanged(before, X)


def _assert_unchanged(before, after):
    if isinstance(before, list):
        assert len(before) == len(after)
        for b, a in zip(before, after):
            np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"working_memory": 0}, "working_memory"),
        ({"working_memory": float("nan")}, "working_memory"),
        ({"device": "quantum"}, "device"),
        ({"dtype": "int32"}, "dtype"),
        ({"n_jobs": 1.5}, "n_jobs"),
        ({"net": 3}, "net"),
    ],
)
def test_absurd_parameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cdist_tap(GOOD, **kwargs)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"batch_size": -1}, "batch_size"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"device": "quantum"}, "device"),
        ({"validation_fraction": 1.5}, "validation_fraction"),
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
        ({"tap_kernel_sizes": (2, 2, 2)}, "kernel_sizes"),
    ],
)
def test_absurd_learner_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TAPMetricLearner(**{"max_epochs": 1, "device": "cpu", **params}).fit(
            GOOD * 2, [0, 1, 0, 1]
        )


@pytest.mark.parametrize(
    ("y", "exc", "match"),
    [
        ([0, 1, 0], ValueError, "inconsistent numbers of samples"),
        ([0, 0, 0, 0], ValueError, "1 class"),
        ([0, 1, np.nan, 1], ValueError, "NaN"),
        (np.array([0, "a", 1.5, 0], dtype=object), TypeError, "mixes label types"),
        ([[0, 1], [1, 0], [0, 1], [1, 0]], ValueError, "1-D"),
    ],
)
def test_bad_labels(y, exc, match):
    with pytest.raises(exc, match=match):
        TAPMetricLearner(max_epochs=1, device="cpu").fit(GOOD * 2, y)


def test_column_vector_labels_warn_and_are_ravelled():
    from sklearn.exceptions import DataConversionWarning

    with pytest.warns(DataConversionWarning, match="column-vector y"):
        col = TAPMetricLearner(**TINY_LEARNER).fit(GOOD * 2, [[0], [1], [0], [1]])
    flat = TAPMetricLearner(**TINY_LEARNER).fit(GOOD * 2, [0, 1, 0, 1])
    np.testing.assert_array_equal(
        col.pairwise_distances(GOOD), flat.pairwise_distances(GOOD)
    )


def test_readers_on_random_text(tmp_path):
    tried = []

    @settings(max_examples=60, deadline=None)
    @given(text=st.text(alphabet="@#:,?.-0123456789 abcdefgnrstu\n", max_size=300))
    def run(text):
        tried.append(text)
        path = tmp_path / "data.txt"
        path.write_text(text)
        for reader in (load_ts_file, load_spoken_arabic_digits):
            try:
                X, _ = reader(path)
            except ValueError as exc:
                assert str(exc)
            else:
                assert np.isfinite(X[~np.isnan(X)]).all()

    run()
    print(f"{len(tried)} random texts tried")
    assert len(tried) >= MIN_CASES
