import numpy as np
import pytest

from sktap._validation import check_sequence, check_sequences, to_tslearn


def test_list_of_variable_length_sequences():
    X = [np.arange(6.0).reshape(3, 2), np.ones((1, 2))]
    seqs = check_sequences(X)
    assert seqs.data.shape == (2, 3, 2)
    assert seqs.lengths.tolist() == [3, 1]
    np.testing.assert_array_equal(seqs.data[0], X[0])
    np.testing.assert_array_equal(seqs.data[1, 1:], 0.0)


def test_univariate_list_and_2d_array():
    seqs = check_sequences([[1, 2, 3], [4, 5]])
    assert seqs.data.shape == (2, 3, 1)
    assert seqs.lengths.tolist() == [3, 2]
    seqs2 = check_sequences(np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]]))
    assert seqs2.data.shape == (2, 3, 1)
    assert seqs2.lengths.tolist() == [2, 3]


def test_tslearn_dataset_with_trailing_nan_matches_list():
    from tslearn.utils import to_time_series_dataset

    rng = np.random.default_rng(0)
    X = [rng.normal(size=(n, 3)) for n in (5, 2, 7)]
    a = check_sequences(to_time_series_dataset(X))
    b = check_sequences(X)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.lengths, b.lengths)


def test_to_tslearn_round_trip():
    X = [np.ones((2, 1)), np.zeros((4, 1))]
    out = to_tslearn(check_sequences(X))
    assert out.shape == (2, 4, 1)
    assert np.isnan(out[0, 2:]).all() and not np.isnan(out[1]).any()


def test_caller_arrays_are_not_modified():
    X = np.array([[[1.0], [np.nan]], [[2.0], [3.0]]])
    before = X.copy()
    seqs = check_sequences(X)
    seqs.data[:] = 7.0
    np.testing.assert_array_equal(X, before)
    lst = [np.array([1.0, 2.0])]
    check_sequences(lst).data[:] = 0
    assert lst[0].tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("X", "exc", "match"),
    [
        ([np.ones((2, 1)), np.zeros((0, 1))], ValueError, "sequence 1 is empty"),
        (np.full((2, 3), np.nan), ValueError, "sequence 0 contains only NaN"),
        (
            np.array([[1.0, np.nan, 2.0]]),
            ValueError,
            "sequence 0 has NaN at time step 1",
        ),
        (
            [np.ones((3, 2)), np.array([[1.0, np.nan], [1.0, 1.0]])],
            ValueError,
            "sequence 1 has NaN in some channels of time step 0",
        ),
        ([np.array([1.0, np.inf])], ValueError, "sequence 0 contains infinite"),
        (
            [np.ones((3, 2)), np.ones((3, 3))],
            ValueError,
            "sequence 1 has 3 features, expected 2",
        ),
        ([np.array(["a", "b"])], TypeError, "sequence 0 has non-numeric values"),
        (np.array([["a", "b"]]), TypeError, "non-numeric values"),
        (np.array([[1 + 1j, 2]]), ValueError, "complex values"),
        (np.ones(3), ValueError, "got an array with 1 dimension. Reshape your data"),
        (np.ones((2, 2, 2, 2)), ValueError, "got an array with 4 dimensions"),
        ([np.ones((2, 2, 2))], ValueError, "sequence 0 must be 1-D"),
        ([], ValueError, "X contains no sequences"),
        (np.ones((0, 3)), ValueError, "X contains no sequences"),
        ("abc", TypeError, "X must be an array or a list of sequences"),
        (None, TypeError, "X must be an array or a list of sequences"),
        ([[1.0, 2.0], [3.0, "x"]], TypeError, "sequence 1 has non-numeric"),
    ],
)
def test_bad_input_messages(X, exc, match):
    with pytest.raises(exc, match=match):
        check_sequences(X)


def test_feature_mismatch_with_fit():
    with pytest.raises(ValueError, match="Y has 2 features per time step, but 3"):
        check_sequences(np.ones((2, 4, 2)), name="Y", n_features=3)


def test_single_sequence():
    assert check_sequence(np.ones((4, 2))).shape == (4, 2)
    with pytest.raises(ValueError, match="x: sequence 0 is empty"):
        check_sequence([])
    with pytest.raises(TypeError, match="x must be an array"):
        check_sequence(3.0)
