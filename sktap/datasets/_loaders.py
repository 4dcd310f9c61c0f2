"""Readers for downloaded sequence datasets: ``.ts``, UCI Arabic digits, TAP ``.mat``.

Every reader returns ``(X, y)`` with ``X`` in tslearn format: a float64 array
``(n_ts, max_len, d)`` with NaN after each series' end. Readers parse numbers
only (no pickle, no eval) and check declared sizes against the data actually
present before allocating anything of that size.
"""

from __future__ import annotations

import math
import numbers
import os
import struct
import zlib

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

__all__ = ["load_spoken_arabic_digits", "load_tap_mat", "load_ts_file"]

_MISSING = frozenset({"?", "nan"})
# Padding guard: a few very long series among many short ones can make the
# padded array far larger than the file. Refuse only when it is both big
# (over 1 GiB of float64) and mostly padding, which real datasets never are.
_GUARD_MIN_CELLS = 2**27
_GUARD_MAX_PADDING_RATIO = 64

# ---------------------------------------------------------------- shared parts


def _lines(path):
    """Yield ``(line number, stripped text)`` of a UTF-8 text file, one at a time."""
    # Binary reading and decoding per line keeps line numbers exact in errors.
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{path}, line {lineno}: not UTF-8 text") from None
            yield lineno, text.strip()


def _parse_token(token: str, position: int, where: str) -> float:
    token = token.strip()
    if token.lower() in _MISSING:
        return math.nan
    try:
        return float(token)
    except ValueError:
        raise ValueError(
            f"{where}: value {position + 1} is not a number: {token!r}"
        ) from None


def _parse_floats(tokens: list[str], where: str) -> np.ndarray:
    """Floats of text tokens; the missing markers ``?`` and ``NaN`` become NaN."""
    try:  # fast path: numpy parses a whole list of clean tokens at once
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        return np.array([_parse_token(t, j, where) for j, t in enumerate(tokens)])


def _valid_length(values: np.ndarray, where: str) -> int:
    """Number of values before the trailing missing ones; no other may be missing."""
    missing = np.isnan(values)
    if missing.all():
        raise ValueError(f"{where}: no values (all are missing)")
    n_valid = len(values) - int(np.argmin(missing[::-1]))
    inner = np.flatnonzero(missing[:n_valid])
    if inner.size:
        raise ValueError(
            f"{where}: value {inner[0] + 1} is missing but values follow it; "
            "missing values ('?') are allowed only as trailing padding"
        )
    infinite = np.flatnonzero(np.isinf(values))
    if infinite.size:
        raise ValueError(f"{where}: value {infinite[0] + 1} is infinite")
    return n_valid


def _check_padding(shape: tuple[int, int, int], n_values: int, source: str) -> None:
    n_cells = math.prod(shape)
    if n_cells > max(_GUARD_MIN_CELLS, _GUARD_MAX_PADDING_RATIO * n_values):
        raise ValueError(
            f"{source}: padding {shape[0]} series to the longest one "
            f"({shape[1]} steps) would take {n_cells * 8 / 2**30:.1f} GiB, "
            f"almost all padding for {n_values} values; remove the outlier series"
        )


def _pad(arrays: list[np.ndarray], source: str) -> np.ndarray:
    """Stack ``(L_i, d)`` arrays into ``(n, max_len, d)`` with trailing NaN."""
    lengths = [len(a) for a in arrays]
    shape = (len(arrays), max(lengths), arrays[0].shape[1])
    _check_padding(shape, sum(lengths) * shape[2], source)
    X = np.full(shape, np.nan)
    for i, a in enumerate(arrays):
        X[i, : len(a)] = a
    return X


# ------------------------------------------------------------------ .ts files

_TS_FLAGS = {
    "@timestamps": "timestamps",
    "@univariate": "univariate",
    "@equallength": "equal_length",
    "@missing": "missing",
    "@targetlabel": "target",
}
_TS_COUNTS = {"@serieslength": "series_length", "@dimensions": "dimensions"}


def _ts_bool(args: list[str], tag: str, where: str) -> bool:
    if not args or args[0].lower() not in ("true", "false"):
        got = args[0] if args else "nothing"
        raise ValueError(f"{where}: {tag} expects true or false; got {got!r}")
    return args[0].lower() == "true"


def _ts_count(args: list[str], tag: str, where: str, file_size: int) -> int:
    try:
        value = int(args[0])
    except (IndexError, ValueError):
        value = 0
    if value < 1:
        got = " ".join(args) or "nothing"
        raise ValueError(f"{where}: {tag} expects a positive integer; got {got!r}")
    # Each value takes at least two bytes (a digit and a separator), so a
    # larger count cannot be what the file holds.
    if value > file_size // 2:
        raise ValueError(
            f"{where}: {tag} {value} is more than a file of {file_size} bytes can hold"
        )
    return value


def _ts_header_line(line: str, where: str, header: dict, file_size: int) -> None:
    name, *args = line.split()  # name as written, for messages
    tag = name.lower()
    if tag == "@classlabel":
        header["class_label"] = _ts_bool(args, name, where)
        header["class_labels"] = args[1:]
        if header["class_label"] and not args[1:]:
            raise ValueError(f"{where}: {name} true must list the class labels")
    elif tag in _TS_FLAGS:
        header[_TS_FLAGS[tag]] = _ts_bool(args, name, where)
    elif tag in _TS_COUNTS:
        header[_TS_COUNTS[tag]] = _ts_count(args, name, where, file_size)
    # Other tags (@problemName, ...) name the data without changing how to read it.
    if header["timestamps"]:
        raise ValueError(
            f"{where}: @timeStamps true is not supported; only files with "
            "@timeStamps false can be read"
        )


def _ts_records(path):
    """Yield ``(where, line)`` for each line that is neither blank nor a comment."""
    for lineno, line in _lines(path):
        if line and not line.startswith("#"):
            yield f"{path}, line {lineno}", line


def _read_ts_header(records, path, file_size: int) -> dict:
    header = dict.fromkeys(["univariate", "equal_length", "missing", "class_label"])
    header.update(dict.fromkeys(["series_length", "dimensions"]))
    header.update(timestamps=False, target=False, class_labels=[])
    empty = True
    for where, line in records:
        empty = False
        if not line.startswith("@"):
            raise ValueError(f"{where}: data found before the @data line")
        if line.split()[0].lower() == "@data":
            if header["class_label"] is None and not header["target"]:
                raise ValueError(
                    f"{where}: no @classLabel line before @data; declare "
                    "'@classLabel true <labels>' or '@classLabel false'"
                )
            return header
        _ts_header_line(line, where, header, file_size)
    raise ValueError(f"{path}: file is empty" if empty else f"{path}: no @data line")


def _ts_label(fields: list[str], where: str, header: dict):
    """Remove and return the label, the last ``:``-field of a case."""
    if len(fields) < 2 or "," in fields[-1] or not fields[-1].strip():
        raise ValueError(
            f"{where}: missing label (expected as the last ':'-separated field)"
        )
    label = fields.pop().strip()
    if header["target"] and not header["class_label"]:
        try:
            return float(label)
        except ValueError:
            raise ValueError(f"{where}: target {label!r} is not a number") from None
    if label not in header["class_labels"]:
        declared = " ".join(header["class_labels"])
        raise ValueError(
            f"{where}: class label {label!r} is not declared by @classLabel "
            f"({declared})"
        )
    return label


def _ts_case(line: str, where: str, header: dict):
    """One case as ``(values (L, d), label, values per dimension incl. missing)``."""
    fields = line.split(":")
    label = None
    if header["class_label"] or header["target"]:
        label = _ts_label(fields, where, header)
    dims = [
        _parse_floats(f.split(","), f"{where}, dimension {k + 1}")
        for k, f in enumerate(fields)
    ]
    lengths = [
        _valid_length(v, f"{where}, dimension {k + 1}") for k, v in enumerate(dims)
    ]
    if len(set(lengths)) > 1:
        raise ValueError(
            f"{where}: the dimensions of this case have different lengths "
            f"{lengths}; all dimensions of a case must have the same length"
        )
    values = np.stack([v[: lengths[0]] for v in dims], axis=1)  # (L, d)
    return values, label, max(len(v) for v in dims)


class _TsShape:
    """Dimension count and (with @equalLength true) length every case must share."""

    def __init__(self, header: dict):
        self.dims = header["dimensions"] or (1 if header["univariate"] else None)
        self.dims_from = "the header"
        self.length = header["series_length"] if header["equal_length"] else None
        self.length_from = "@seriesLength"
        self.equal_length = bool(header["equal_length"])

    def check(self, values: np.ndarray, n_raw: int, where: str) -> None:
        if self.dims is None:
            self.dims, self.dims_from = values.shape[1], where
        elif values.shape[1] != self.dims:
            raise ValueError(
                f"{where}: case has {values.shape[1]} dimensions, but "
                f"{self.dims_from} has {self.dims}"
            )
        if not self.equal_length:
            return
        if self.length is None:
            self.length, self.length_from = n_raw, where
        elif n_raw != self.length:
            raise ValueError(
                f"{where}: case has {n_raw} values per dimension, but "
                f"{self.length_from} has {self.length} (@equalLength true)"
            )


def _read_ts_cases(records, path, header: dict):
    shape = _TsShape(header)
    cases, labels = [], []
    for where, line in records:
        if line.startswith("@"):
            raise ValueError(f"{where}: header line {line.split()[0]!r} after @data")
        values, label, n_raw = _ts_case(line, where, header)
        shape.check(values, n_raw, where)
        cases.append(values)
        labels.append(label)
    if not cases:
        raise ValueError(f"{path}: no cases after the @data line")
    return cases, labels


def load_ts_file(path):
    """Read a sktime / UEA / UCR ``.ts`` file.

    The header holds ``@``-lines (``@problemName``, ``@timeStamps false``,
    ``@missing``, ``@univariate``, ``@dimensions``, ``@equalLength``,
    ``@seriesLength``, ``@classLabel true <labels>`` or ``@targetLabel true``)
    and ends at ``@data``; ``#`` starts a comment line. Then each line is a
    case: dimensions separated by ``:``, values by ``,``, the label last.
    Cases may have different lengths; inside a case every dimension has the
    same length, possibly padded at the end with missing values ``?`` (or
    ``NaN``), which become NaN padding.

    Parameters
    ----------
    path : str or path-like
        The ``.ts`` file (UTF-8 text).

    Returns
    -------
    X : ndarray of shape (n_ts, max_len, d)
        Float64, NaN after each series' end (tslearn format).
    y : ndarray of shape (n_ts,) or None
        Class labels as strings (as in sktime and tslearn) with
        ``@classLabel true``; float targets with ``@targetLabel true``;
        None with ``@classLabel false``.

    Raises
    ------
    ValueError
        Naming the file and line, for a malformed file: empty, no ``@data``,
        ``@timeStamps true`` (not supported), a non-numeric value, a missing
        label or one not declared, cases with different numbers of
        dimensions, a case whose dimensions differ in length, a missing value
        followed by values, or a declared size the file cannot hold.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sktap.datasets import load_ts_file
    >>> text = "@classLabel true a b\\n@data\\n1,2,3:4,5,6:a\\n7,8,?:9,0,?:b\\n"
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.ts"
    >>> _ = path.write_text(text)
    >>> X, y = load_ts_file(path)
    >>> X.shape, y.tolist()
    ((2, 3, 2), ['a', 'b'])
    >>> X[1].tolist()
    [[7.0, 9.0], [8.0, 0.0], [nan, nan]]
    """
    path = os.fspath(path)
    file_size = os.path.getsize(path)
    records = _ts_records(path)
    header = _read_ts_header(records, path, file_size)
    cases, labels = _read_ts_cases(records, path, header)
    X = _pad(cases, path)
    if header["class_label"]:
        return X, np.array(labels, dtype=str)
    if header["target"]:
        return X, np.array(labels, dtype=np.float64)
    return X, None


# ------------------------------------------------------- UCI Spoken Arabic Digit


def _read_blocks(path) -> list[np.ndarray]:
    """Blocks of numeric lines separated by blank lines, each as ``(L, d)``."""
    blocks, current = [], []
    n_features = first = None
    for lineno, line in _lines(path):
        if not line:
            if current:
                blocks.append(np.array(current))
                current = []
            continue
        where = f"{path}, line {lineno}"
        row = _parse_floats(line.split(), where)
        bad = np.flatnonzero(~np.isfinite(row))
        if bad.size:
            raise ValueError(f"{where}: value {bad[0] + 1} is missing or infinite")
        if n_features is None:
            n_features, first = len(row), lineno
        elif len(row) != n_features:
            raise ValueError(
                f"{where}: {len(row)} values, but line {first} has {n_features} "
                "(every frame must have the same number of coefficients)"
            )
        current.append(row)
    if current:
        blocks.append(np.array(current))
    if not blocks:
        raise ValueError(f"{path}: file is empty (no utterances)")
    return blocks


def _block_labels(n_blocks: int, n_classes: int, labels, path) -> np.ndarray:
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n_blocks,):
            raise ValueError(
                f"labels must have shape ({n_blocks},), one per utterance in "
                f"{path}; got shape {labels.shape}"
            )
        return labels
    if n_blocks % n_classes:
        raise ValueError(
            f"{path}: {n_blocks} utterances cannot be split into {n_classes} "
            "classes of consecutive blocks of equal size; pass labels="
        )
    return np.arange(n_blocks, dtype=np.int64) // (n_blocks // n_classes)


def load_spoken_arabic_digits(path, *, n_classes=10, labels=None):
    """Read a UCI "Spoken Arabic Digit" file such as ``Train_Arabic_Digit.txt``.

    Each line holds the space-separated MFCC coefficients of one frame (13 in
    the original data); utterances are blocks of lines separated by blank
    lines. Labels are implied by order: the file holds ``n_classes``
    consecutive runs of equally many utterances (train: 10 x 660, test:
    10 x 220), so utterance ``i`` has label ``i // (n_blocks // n_classes)``.

    Parameters
    ----------
    path : str or path-like
        The text file.
    n_classes : int, default=10
        Number of consecutive equal runs of utterances (the digits 0 .. 9).
    labels : array-like of shape (n_blocks,), optional
        Explicit labels, one per utterance, instead of those implied by order.

    Returns
    -------
    X : ndarray of shape (n_blocks, max_len, n_coefficients)
        Float64, NaN after each utterance's end (tslearn format).
    y : ndarray of shape (n_blocks,)
        Labels ``0 .. n_classes - 1`` as int64, or ``labels`` if given.

    Raises
    ------
    ValueError
        Naming the file and line for a non-numeric value or a frame with a
        different number of coefficients; or if the file is empty, or its
        number of utterances is not a multiple of ``n_classes``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sktap.datasets import load_spoken_arabic_digits
    >>> text = "\\n1 2\\n3 4\\n\\n5 6\\n"
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "digits.txt"
    >>> _ = path.write_text(text)
    >>> X, y = load_spoken_arabic_digits(path, n_classes=2)
    >>> X.shape, y.tolist()
    ((2, 2, 2), [0, 1])
    """
    if not isinstance(n_classes, numbers.Integral) or n_classes < 1:
        raise ValueError(f"n_classes must be an integer >= 1; got {n_classes!r}")
    path = os.fspath(path)
    blocks = _read_blocks(path)
    y = _block_labels(len(blocks), int(n_classes), labels, path)
    return _pad(blocks, path), y


# ------------------------------------------------------------- TAP .mat files

_MAT_NUMERIC = frozenset(
    {"double", "single", "logical"}
    | {f"{s}int{b}" for s in ("", "u") for b in (8, 16, 32, 64)}
)


def _mat_call(func, path, **kwargs):
    """Call a scipy.io MATLAB reader, turning its failures into ValueError."""
    try:
        return func(path, **kwargs)
    except NotImplementedError:
        raise ValueError(
            f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7"
        ) from None
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    # scipy reports corrupt or truncated files through all of these.
    except (OSError, ValueError, MatReadError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({exc})") from None
    except (TypeError, IndexError, KeyError, struct.error) as exc:
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({exc})") from None


def _mat_shapes(path, names: dict[str, str]) -> tuple[int, ...]:
    """Check the variables exist with usable classes; return the data's shape."""
    found = {n: (s, c) for n, s, c in _mat_call(scipy.io.whosmat, path)}
    missing = [n for n in names.values() if n not in found]
    if missing:
        raise ValueError(
            f"{path}: variable(s) {missing} not found; the file holds {sorted(found)}"
        )
    for role, name in names.items():
        cls = found[name][1]
        if cls not in _MAT_NUMERIC and not (role == "labels" and cls == "char"):
            raise ValueError(f"{path}: {name} is a MATLAB {cls}, not a numeric array")
    return tuple(found[names["data"]][0])


def _mat_vector(raw, where: str) -> np.ndarray:
    a = np.asarray(raw)
    if a.ndim > 2 or (a.ndim == 2 and min(a.shape) > 1):
        raise ValueError(
            f"{where} must be a vector of shape (N,), (1, N) or (N, 1); got "
            f"shape {a.shape}"
        )
    return a.ravel()


def _mat_lengths(raw, where: str, max_frames: int) -> np.ndarray:
    """Validated lengths, each at most ``max_frames`` (the data's longest axis)."""
    lengths = _mat_vector(raw, where)
    if lengths.dtype.kind not in "biuf" or lengths.size == 0:
        raise ValueError(f"{where} must be a non-empty numeric vector")
    values = lengths.astype(np.float64)  # compared as floats: no int overflow
    bad = ~np.isfinite(values) | (values < 1) | (values != np.round(values))
    bad |= values > max_frames
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{where}: entry {i} is {lengths[i]}; lengths must be whole numbers "
            f"from 1 to {max_frames} (the longest axis of the data)"
        )
    return values.astype(np.int64)


def _mat_labels(raw, where: str, n: int) -> np.ndarray:
    labels = _mat_vector(raw, where)
    if labels.shape != (n,):
        raise ValueError(f"{where} has {labels.size} labels for {n} sequences")
    if labels.dtype.kind == "U":
        return np.char.rstrip(labels)  # MATLAB pads char rows with spaces
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"{where} must hold numbers or text")
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)):
        if np.array_equal(labels, np.round(labels)):
            return labels.astype(np.int64)  # MATLAB stores class ids as double
    return labels


def _time_axis(shape: tuple[int, ...], max_len: int, where: str) -> int:
    """Time axis of a 3-D padded array, (N, T, d) -> 1 or (N, d, T) -> 2."""
    fits = [shape[1] >= max_len, shape[2] >= max_len]
    if all(fits):
        # Padding normally stops at the longest sequence; ties go to (N, T, d),
        # the layout the TAP code writes.
        return 2 if shape[2] == max_len != shape[1] else 1
    if any(fits):
        return 1 if fits[0] else 2
    raise ValueError(
        f"{where} has shape {shape}: no axis holds the longest sequence "
        f"({max_len} frames)"
    )


def _mat_layout(shape: tuple[int, ...], lengths: np.ndarray, where: str):
    """Decide the layout from the declared shape: ``(kind, time axis)``."""
    n, total, max_len = len(lengths), int(lengths.sum()), int(lengths.max())
    if len(shape) == 3:
        if shape[0] != n:
            raise ValueError(
                f"{where} has shape {shape}, but the lengths give {n} sequences "
                "(expected as the first axis)"
            )
        return "padded", _time_axis(shape, max_len, where)
    if len(shape) == 2:
        if shape[0] == total:
            return "stacked", 0
        if shape[1] == total:
            return "stacked", 1
        if shape[0] == n and shape[1] >= max_len:
            return "padded", 1
    raise ValueError(
        f"{where} has shape {shape}, but the lengths sum to {total} frames: "
        f"expected stacked frames ({total}, d) or (d, {total}), or padded "
        f"({n}, T, d), ({n}, d, T) or ({n}, T) with T >= {max_len}"
    )


def _check_finite(X: np.ndarray, lengths: np.ndarray, where: str) -> None:
    valid = np.arange(X.shape[1])[None, :] < lengths[:, None]  # (N, T)
    bad = valid & ~np.isfinite(X).all(axis=2)
    if bad.any():
        i, t = np.argwhere(bad)[0]
        raise ValueError(
            f"{where}: sequence {i} has a NaN or infinite value at time step {t}, "
            f"within its length {lengths[i]}"
        )


def _mat_sequences(data, lengths, layout, where: str) -> np.ndarray:
    kind, axis = layout
    data = np.asarray(data, dtype=np.float64)
    if kind == "stacked":
        frames = data if axis == 0 else data.T  # (sum L, d)
        X = _pad(np.split(frames, np.cumsum(lengths)[:-1]), where)
    else:
        if data.ndim == 2:
            data = data[:, :, None]  # (N, T) univariate
        elif axis == 2:
            data = data.transpose(0, 2, 1)
        X = data[:, : lengths.max()].copy()  # (N, max_len, d)
        X[np.arange(X.shape[1])[None, :] >= lengths[:, None]] = np.nan
    _check_finite(X, lengths, where)
    return X


def load_tap_mat(path, *, subset="train"):
    """Read the MATLAB feature files of the TAP paper (``trainseqfull.mat`` ...).

    The file holds ``<subset>seqfull`` (the frames), ``<subset>lengthseqfull``
    (lengths, shape (N,), (1, N) or (N, 1)) and ``<subset>labelseqfull``
    (labels, same shapes) with ``subset`` "train" or "test". The lengths
    decide the layout of the frames, so no guess is made from values:

    * 3-D ``(N, T, d)`` padded (as the TAP code writes) or ``(N, d, T)``: the
      first axis must count the N sequences; the time axis is the one that can
      hold the longest sequence; if both can, the one exactly as long as it
      (ties: ``(N, T, d)``);
    * 2-D frames stacked in order, ``(sum L_i, d)`` or ``(d, sum L_i)``,
      recognised by the sum of the lengths (rows tried first);
    * 2-D ``(N, T)`` padded univariate (MATLAB drops a trailing ``d = 1``).

    Values beyond each length are ignored.

    Parameters
    ----------
    path : str or path-like
        A MATLAB v4 to v7 ``.mat`` file (v7.3 / HDF5 is not supported).
    subset : {"train", "test"}, default="train"
        Which variables to read.

    Returns
    -------
    X : ndarray of shape (N, max_len, d)
        Float64, NaN after each sequence's end (tslearn format).
    y : ndarray of shape (N,)
        Labels: int64 when numeric and whole (MATLAB stores them as double),
        else as stored; text labels as str.

    Raises
    ------
    ValueError
        Naming the file and variable: not a .mat file, a missing variable,
        lengths that are not whole numbers >= 1, longer than the data or
        summing to more frames than present (checked before the frames are
        loaded), a label count that differs from the sequence count, or
        NaN / infinite values inside a sequence.

    Notes
    -----
    Parsing is scipy's: ``scipy.io.loadmat`` (up to at least 1.17) can crash
    the interpreter on a corrupt or crafted file whose element type code is
    out of range (scipy pull requests 25349, 25829), so read ``.mat`` files
    only from sources you trust.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np, scipy.io
    >>> from sktap.datasets import load_tap_mat
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "trainseqfull.mat"
    >>> scipy.io.savemat(
    ...     path,
    ...     {
    ...         "trainseqfull": np.ones((2, 4, 3)),
    ...         "trainlengthseqfull": [[4.0], [2.0]],
    ...         "trainlabelseqfull": [[1.0], [2.0]],
    ...     },
    ... )
    >>> X, y = load_tap_mat(path)
    >>> X.shape, y.tolist(), bool(np.isnan(X[1, 2:]).all())
    ((2, 4, 3), [1, 2], True)
    """
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test'; got {subset!r}")
    path = os.fspath(path)
    names = {
        "data": f"{subset}seqfull",
        "lengths": f"{subset}lengthseqfull",
        "labels": f"{subset}labelseqfull",
    }
    shape = _mat_shapes(path, names)
    where = {role: f"{path}: {name}" for role, name in names.items()}
    small = _mat_call(
        scipy.io.loadmat, path, variable_names=[names["lengths"], names["labels"]]
    )
    lengths = _mat_lengths(small[names["lengths"]], where["lengths"], max(shape))
    y = _mat_labels(small[names["labels"]], where["labels"], len(lengths))
    layout = _mat_layout(shape, lengths, where["data"])
    data = _mat_call(scipy.io.loadmat, path, variable_names=[names["data"]])
    return _mat_sequences(data[names["data"]], lengths, layout, where["data"]), y
