"""Tests of sktap.datasets: the generator and the file readers."""

import numpy as np
import pytest
import scipy.io
from hypothesis import given, settings
from hypothesis import strategies as st

import sktap
from sktap._validation import check_sequences
from sktap.datasets import (
    _common,
    load_spoken_arabic_digits,
    load_tap_mat,
    load_ts_file,
    make_warped_sequences,
)

# ------------------------------------------------------------------ generator


def test_generator_shapes_labels_and_padding():
    X, y, warps = make_warped_sequences(
        n_classes=3,
        n_per_class=4,
        length_range=(5, 9),
        n_features=3,
        return_warps=True,
        random_state=0,
    )
    seqs = check_sequences(X)
    assert X.shape == (12, seqs.lengths.max(), 3)
    assert X.dtype == np.float64
    assert ((seqs.lengths >= 5) & (seqs.lengths <= 9)).all()
    assert np.bincount(y).tolist() == [4, 4, 4]
    assert y.dtype == np.int64
    assert [len(w) for w in warps] == seqs.lengths.tolist()
    assert all(((w >= 0) & (w <= 1)).all() for w in warps)


def test_generator_same_seed_same_output_and_shuffled():
    a = make_warped_sequences(n_per_class=5, return_warps=True, random_state=3)
    b = make_warped_sequences(n_per_class=5, return_warps=True, random_state=3)
    c = make_warped_sequences(n_per_class=5, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for wa, wb in zip(a[2], b[2]):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a[0], c[0], equal_nan=True)
    assert not np.array_equal(a[1], np.sort(a[1]))


def test_generator_no_warp_is_linear_and_noise_free_is_exact():
    X, y, warps = make_warped_sequences(
        n_classes=2,
        n_per_class=3,
        length_range=(7, 7),
        warp_strength=0.0,
        noise=0.0,
        return_warps=True,
        random_state=0,
    )
    for w in warps:
        np.testing.assert_array_equal(w, np.linspace(0, 1, 7))
    for label in (0, 1):
        same = X[y == label]
        np.testing.assert_allclose(same, np.broadcast_to(same[0], same.shape))


def test_generator_warps_are_the_template_times():
    # Noise-free samples of one class lie on the same curve g(warp time).
    X, _, warps = make_warped_sequences(
        n_classes=1,
        n_per_class=2,
        length_range=(400, 400),
        n_features=1,
        noise=0.0,
        return_warps=True,
        random_state=0,
    )
    order = np.argsort(warps[0])
    resampled = np.interp(warps[1], warps[0][order], X[0, order, 0])
    np.testing.assert_allclose(resampled, X[1, :, 0], atol=1e-2)


def test_generator_classes_differ_by_order_not_by_values():
    # 41 evenly spaced times put the same 10 points in each of the 4 motifs,
    # so every class has the same multiset of frames, in a different order.
    X, _ = make_warped_sequences(
        n_classes=3,
        n_per_class=1,
        length_range=(41, 41),
        warp_strength=0.0,
        noise=0.0,
        random_state=0,
    )
    frames = [np.sort(X[i], axis=0) for i in range(3)]
    for i in (1, 2):
        np.testing.assert_allclose(frames[i], frames[0], atol=1e-12)
        assert np.abs(X[i] - X[0]).max() > 0.1


def test_generator_warps_reorder_only_locally():
    _, _, warps = make_warped_sequences(
        n_classes=1,
        n_per_class=10,
        length_range=(60, 60),
        warp_strength=1.0,
        return_warps=True,
        random_state=0,
    )
    assert any((np.diff(w) < 0).any() for w in warps)  # some reorders happened
    for w in warps:
        np.testing.assert_allclose(np.sort(w)[[0, -1]], [0, 1])
        # A swapped segment has at most 60 // 10 steps: no time moves far.
        assert np.abs(np.argsort(np.argsort(w)) - np.arange(60)).max() <= 6


@settings(max_examples=15, deadline=None)
@given(
    n_classes=st.integers(1, 30),
    low=st.integers(1, 6),
    extra=st.integers(0, 4),
    strength=st.floats(0, 1),
    seed=st.integers(0, 2**31 - 1),
)
def test_generator_output_is_a_valid_dataset(n_classes, low, extra, strength, seed):
    X, y = make_warped_sequences(
        n_classes=n_classes,
        n_per_class=1,
        length_range=(low, low + extra),
        warp_strength=strength,
        random_state=seed,
    )
    seqs = check_sequences(X)
    assert sorted(y.tolist()) == list(range(n_classes))
    assert seqs.lengths.min() >= low and seqs.lengths.max() <= low + extra


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_classes": 0}, r"n_classes must be an integer >= 1; got 0"),
        ({"n_per_class": 1.5}, r"n_per_class must be an integer >= 1; got 1.5"),
        ({"n_features": True}, r"n_features must be an integer >= 1; got True"),
        ({"length_range": 5}, r"length_range must be a pair \(low, high\)"),
        ({"length_range": (0, 3)}, r"length_range\[0\] must be an integer >= 1"),
        ({"length_range": (4, 3)}, r"must satisfy 1 <= low <= high; got \(4, 3\)"),
        ({"warp_strength": 1.5}, r"warp_strength must be a finite real number in"),
        ({"noise": -0.1}, r"noise must be a finite real number >= 0; got -0.1"),
        ({"noise": float("inf")}, r"noise must be a finite real number >= 0"),
    ],
)
def test_generator_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_warped_sequences(**kwargs)


# ----------------------------------------------------------------- .ts reader

TS_HEADER = """# a comment
@problemName toy
@timeStamps false
@missing true
@univariate false
@equalLength false
@classLabel true up down
@data
"""


def write(tmp_path, text, name="data.ts"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ts_round_trip_variable_lengths_multivariate_and_missing(tmp_path):
    body = "1,2,3:4,5,6:up\n\n7.5,-8e-1,?:9,10,?:down\n0.5:0.25:up\n"
    X, y = load_ts_file(write(tmp_path, TS_HEADER + body))
    expected = np.full((3, 3, 2), np.nan)
    expected[0] = [[1, 4], [2, 5], [3, 6]]
    expected[1, :2] = [[7.5, 9], [-0.8, 10]]
    expected[2, :1] = [[0.5, 0.25]]
    np.testing.assert_array_equal(X, expected)
    assert y.tolist() == ["up", "down", "up"]
    assert y.dtype.kind == "U"


def test_ts_univariate_equal_length_and_targets(tmp_path):
    text = (
        "@univariate true\n@equalLength true\n@seriesLength 2\n"
        "@targetLabel true\n@data\n1,2:0.5\n3,4:-1\n"
    )
    X, y = load_ts_file(write(tmp_path, text))
    np.testing.assert_array_equal(X[:, :, 0], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, [0.5, -1.0])


def test_ts_rejects_non_numeric_target(tmp_path):
    text = "@targetLabel true\n@data\n1,2:high\n"
    with pytest.raises(ValueError, match=r"line 3: target 'high' is not a number"):
        load_ts_file(write(tmp_path, text))


def test_ts_without_labels_returns_none(tmp_path):
    X, y = load_ts_file(write(tmp_path, "@classLabel false\n@data\n1,2:3,4\n"))
    assert X.shape == (1, 2, 2) and y is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"data\.ts: file is empty"),
        ("# only a comment\n\n", r"file is empty"),
        ("@classLabel true a\n1,2:a\n", r"line 2: data found before the @data"),
        ("@classLabel true a\n", r"data\.ts: no @data line"),
        ("@data\n1,2\n", r"line 1: no @classLabel line before @data"),
        ("@timeStamps true\n@data\n", r"line 1: @timeStamps true is not supported"),
        ("@seriesLength 1000000000000\n", r"line 1: @seriesLength 1000000000000 is"),
        ("@seriesLength -3\n", r"line 1: @seriesLength expects a positive integer"),
        ("@missing maybe\n", r"line 1: @missing expects true or false; got 'maybe'"),
        ("@classLabel true\n", r"line 1: @classLabel true must list the class"),
    ],
)
def test_ts_rejects_malformed_headers(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_ts_file(write(tmp_path, text))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1,2:3,x:up\n", r"line 9, dimension 2: value 2 is not a number: 'x'"),
        ("1,,2:3,4,5:up\n", r"line 9, dimension 1: value 2 is not a number: ''"),
        ("1,2:3,4:up\n1,2:down\n", r"line 10: case has 1 dimensions, but .*line 9"),
        ("1,2,3:4,5:up\n", r"line 9: the dimensions of this case have different"),
        ("1,2,3:4,5,?:up\n", r"line 9: the dimensions of this case have different"),
        ("1,?,3:4,5,6:up\n", r"line 9, dimension 1: value 2 is missing but values"),
        ("?,?:?,?:up\n", r"line 9, dimension 1: no values"),
        ("1,inf:3,4:up\n", r"line 9, dimension 1: value 2 is infinite"),
        ("1,2:3,4\n", r"line 9: missing label"),
        ("1,2:3,4:\n", r"line 9: missing label"),
        ("1,2:3,4:left\n", r"line 9: class label 'left' is not declared"),
        ("1,2:3,4:up\n@data\n", r"line 10: header line '@data' after @data"),
        ("", r"data\.ts: no cases after the @data line"),
    ],
)
def test_ts_rejects_malformed_cases(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        load_ts_file(write(tmp_path, TS_HEADER + body))


def test_ts_equal_length_is_enforced(tmp_path):
    text = "@equalLength true\n@seriesLength 3\n@classLabel false\n@data\n1,2\n"
    with pytest.raises(ValueError, match=r"line 5: case has 2 values per dim.*3"):
        load_ts_file(write(tmp_path, text))


def test_ts_rejects_non_utf8(tmp_path):
    path = tmp_path / "bin.ts"
    path.write_bytes(b"@classLabel false\n@data\n\xff\xfe\n")
    with pytest.raises(ValueError, match=r"bin\.ts, line 3: not UTF-8 text"):
        load_ts_file(path)


def test_padding_guard_refuses_mostly_padding(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "_GUARD_MIN_CELLS", 10)
    monkeypatch.setattr(_common, "_GUARD_MAX_PADDING_RATIO", 2)
    body = "1:up\n" * 4 + ",".join(["1"] * 20) + ":up\n"
    with pytest.raises(ValueError, match=r"padding 5 series to the longest one"):
        load_ts_file(write(tmp_path, TS_HEADER + body))


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_ts_file(tmp_path / "absent.ts")


# ------------------------------------------------------ Spoken Arabic Digits


def write_digits(tmp_path, blocks, leading="\n", name="Train_Arabic_Digit.txt"):
    texts = ["\n".join(" ".join(map(str, row.tolist())) for row in b) for b in blocks]
    return write(tmp_path, leading + "\n\n".join(texts) + "\n", name)


def test_arabic_digits_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(int(rng.integers(2, 6)), 13)) for _ in range(20)]
    X, y = load_spoken_arabic_digits(write_digits(tmp_path, blocks, "  \n\n"))
    assert X.shape == (20, max(len(b) for b in blocks), 13)
    for i, b in enumerate(blocks):
        np.testing.assert_array_equal(X[i, : len(b)], b)
        assert np.isnan(X[i, len(b) :]).all()
    assert y.tolist() == [i // 2 for i in range(20)]


def test_arabic_digits_explicit_labels_and_class_count(tmp_path):
    path = write_digits(tmp_path, [np.ones((2, 3))] * 3)
    with pytest.raises(ValueError, match=r"3 utterances cannot be split into 10"):
        load_spoken_arabic_digits(path)
    _, y = load_spoken_arabic_digits(path, n_classes=3)
    assert y.tolist() == [0, 1, 2]
    _, y = load_spoken_arabic_digits(path, labels=["a", "b", "a"])
    assert y.tolist() == ["a", "b", "a"]
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        load_spoken_arabic_digits(path, labels=[1, 2])
    with pytest.raises(ValueError, match=r"n_classes must be an integer >= 1"):
        load_spoken_arabic_digits(path, n_classes=0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"digits\.txt: file is empty"),
        ("\n  \n", r"digits\.txt: file is empty"),
        ("\n1 2\n3 a\n", r"digits\.txt, line 3: value 2 is not a number: 'a'"),
        ("\n1 2\n\n3 4 5\n", r"line 4: 3 values, but line 2 has 2"),
        ("1 2\n? 4\n", r"line 2: value 1 is missing or infinite"),
    ],
)
def test_arabic_digits_rejects_malformed(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_spoken_arabic_digits(write(tmp_path, text, "digits.txt"), n_classes=1)


# --------------------------------------------------------------- TAP .mat


def tap_sequences():
    rng = np.random.default_rng(0)
    lengths = [4, 2, 3]
    return [rng.normal(size=(n, 2)) for n in lengths], lengths


def padded(seqs, max_len):
    out = np.zeros((len(seqs), max_len, seqs[0].shape[1]))
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def write_mat(tmp_path, data, lengths, labels, subset="train"):
    path = tmp_path / f"{subset}seqfull.mat"
    scipy.io.savemat(
        path,
        {
            f"{subset}seqfull": data,
            f"{subset}lengthseqfull": lengths,
            f"{subset}labelseqfull": labels,
        },
    )
    return path


def expected_tslearn(seqs):
    out = np.full((len(seqs), max(len(s) for s in seqs), seqs[0].shape[1]), np.nan)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


@pytest.mark.parametrize(
    "layout", ["N,T,d", "N,d,T", "N,T+pad,d", "stacked", "stacked.T"]
)
@pytest.mark.parametrize("vector", ["N,1", "1,N", "N"])
def test_tap_mat_layouts_round_trip(tmp_path, layout, vector):
    seqs, lengths = tap_sequences()
    data = {
        "N,T,d": padded(seqs, 4),
        "N,d,T": padded(seqs, 4).transpose(0, 2, 1),
        "N,T+pad,d": padded(seqs, 6),
        "stacked": np.concatenate(seqs),
        "stacked.T": np.concatenate(seqs).T,
    }[layout]
    shape = {"N,1": (-1, 1), "1,N": (1, -1), "N": (-1,)}[vector]
    lengths = np.reshape(np.array(lengths, dtype=float), shape)
    labels = np.reshape([3.0, 1.0, 3.0], shape)
    X, y = load_tap_mat(write_mat(tmp_path, data, lengths, labels))
    np.testing.assert_array_equal(X, expected_tslearn(seqs))
    assert y.tolist() == [3, 1, 3] and y.dtype == np.int64


def test_tap_mat_test_subset_univariate_and_text_labels(tmp_path):
    data = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]])  # (N, T), d dropped
    path = write_mat(tmp_path, data, [2, 3], np.array(["ab", "c "]), "test")
    X, y = load_tap_mat(path, subset="test")
    np.testing.assert_array_equal(X[:, :, 0], [[1, 2, np.nan], [3, 4, 5]])
    assert y.tolist() == ["ab", "c"]


def test_tap_mat_ambiguous_square_is_n_t_d(tmp_path):
    data = np.arange(2 * 3 * 3, dtype=float).reshape(2, 3, 3)
    X, _ = load_tap_mat(write_mat(tmp_path, data, [3, 3], [1, 2]))
    np.testing.assert_array_equal(X, data)


@pytest.mark.parametrize(
    ("data", "lengths", "labels", "message"),
    [
        (np.ones((5, 2)), [4, 3], [1, 2], r"trainseqfull has shape \(5, 2\), but the"),
        (np.ones((2, 4, 2)), [4, -1], [1, 2], r"entry 1 is -1\.0; lengths must be"),
        (np.ones((2, 4, 2)), [4, 1e12], [1, 2], r"entry 1 is 1000000000000\.0; len"),
        (np.ones((2, 4, 2)), [4, 2.5], [1, 2], r"trainlengthseqfull: entry 1 is 2\.5"),
        (np.ones((2, 4, 2)), [4, np.nan], [1, 2], r"entry 1 is nan"),
        (np.ones((2, 4, 2)), [[4, 3], [1, 1]], [1, 2], r"must be a vector of shape"),
        (np.ones((3, 4, 2)), [4, 3], [1, 2], r"but the lengths give 2 sequences"),
        (np.ones((2, 4, 2)), [4, 3], [1, 2, 3], r"has 3 labels for 2 sequences"),
        (np.ones((2, 2, 2)), [2, 2], [1, 2], None),
        (np.ones((2, 3, 3)), [2, 3], [1, 2], None),
    ],
)
def test_tap_mat_rejects_inconsistent_sizes(tmp_path, data, lengths, labels, message):
    path = write_mat(tmp_path, data, np.array(lengths, dtype=float), labels)
    if message is None:  # consistent controls: these load
        load_tap_mat(path)
        return
    with pytest.raises(ValueError, match=message):
        load_tap_mat(path)


def test_tap_mat_sizes_checked_before_loading_frames(tmp_path, monkeypatch):
    path = write_mat(tmp_path, np.ones((4, 2)), [3.0, 3.0], [1, 2])
    loaded = []
    real = scipy.io.loadmat
    monkeypatch.setattr(
        scipy.io, "loadmat", lambda p, **kw: loaded.append(kw) or real(p, **kw)
    )
    with pytest.raises(ValueError, match=r"the lengths sum to 6 frames"):
        load_tap_mat(path)
    assert all("trainseqfull" not in kw["variable_names"] for kw in loaded)


def test_tap_mat_rejects_values_inside_sequences(tmp_path):
    data = np.ones((2, 3, 1))
    data[1, 1, 0] = np.nan
    data[0, 2, 0] = np.nan  # beyond sequence 0's length: ignored
    path = write_mat(tmp_path, data, [2.0, 3.0], [1, 2])
    with pytest.raises(ValueError, match=r"sequence 1 has a NaN or infinite value"):
        load_tap_mat(path)


MAT_STORAGE = {
    "N,T,d": lambda seqs: padded(seqs, 4),
    "N,d,T": lambda seqs: padded(seqs, 4).transpose(0, 2, 1),
    "N,T+pad,d": lambda seqs: padded(seqs, 6),
    "N,T univariate": lambda seqs: padded([s[:, :1] for s in seqs], 4)[:, :, 0],
    "stacked": np.concatenate,
    "stacked.T": lambda seqs: np.concatenate(seqs).T,
}


@pytest.mark.parametrize("storage", list(MAT_STORAGE))
def test_tap_mat_output_follows_the_layout_setting(tmp_path, storage):
    # The file's storage layout is fixed by the format; the setting only
    # decides how the sequences come back.
    seqs, lengths = tap_sequences()
    if storage == "N,T univariate":
        seqs = [s[:, :1] for s in seqs]
    path = write_mat(tmp_path, MAT_STORAGE[storage](seqs), lengths, [3.0, 1.0, 3.0])
    with sktap.config_context(layout="time_first"):
        X, y = load_tap_mat(path)
    with sktap.config_context(layout="channels_first"):
        Xc, yc = load_tap_mat(path)
    np.testing.assert_array_equal(X, expected_tslearn(seqs))
    assert Xc.shape == (3, seqs[0].shape[1], 4)
    np.testing.assert_array_equal(Xc, X.transpose(0, 2, 1))
    for i, n in enumerate(lengths):  # each sequence, transposed
        np.testing.assert_array_equal(Xc[i, :, :n], seqs[i].T)
        assert np.isnan(Xc[i, :, n:]).all()
    np.testing.assert_array_equal(yc, y)
    # what the loader gives back reads back in the same layout
    with sktap.config_context(layout="channels_first"):
        assert check_sequences(Xc).lengths.tolist() == lengths


@pytest.mark.parametrize("storage", ["N,T,d", "N,d,T", "stacked", "stacked.T"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_tap_mat_refuses_bad_values_alike_in_both_layouts(tmp_path, storage, bad):
    seqs, lengths = tap_sequences()
    seqs[1][1, 0] = bad  # sequence 1 (length 2), time step 1
    path = write_mat(tmp_path, MAT_STORAGE[storage](seqs), lengths, [3.0, 1.0, 3.0])
    message = (
        "trainseqfull: sequence 1 has a NaN or infinite value at time step 1, "
        "within its length 2"
    )
    errors = []
    for layout in ("time_first", "channels_first"):
        with sktap.config_context(layout=layout):
            with pytest.raises(ValueError, match=message) as excinfo:
                load_tap_mat(path)
        errors.append(str(excinfo.value))
    assert errors[0] == errors[1]


def test_tap_mat_rejects_bad_files_and_variables(tmp_path):
    with pytest.raises(ValueError, match=r"subset must be 'train' or 'test'"):
        load_tap_mat(tmp_path / "x.mat", subset="val")
    not_mat = write(tmp_path, "hello " * 40, "bad.mat")
    with pytest.raises(ValueError, match=r"bad\.mat: not a readable MATLAB \.mat"):
        load_tap_mat(not_mat)
    path = write_mat(tmp_path, np.ones((2, 3, 1)), [3.0, 3.0], [1, 2])
    with pytest.raises(ValueError, match=r"variable\(s\) \['testseqfull', 'testlen"):
        load_tap_mat(path, subset="test")
    cell = tmp_path / "cell.mat"
    scipy.io.savemat(
        cell,
        {
            "trainseqfull": np.array([np.ones((2, 1))], dtype=object),
            "trainlengthseqfull": [2.0],
            "trainlabelseqfull": [1.0],
        },
    )
    with pytest.raises(ValueError, match=r"trainseqfull is a MATLAB cell, not a"):
        load_tap_mat(cell)
