"""Reader for sktime/UEA/UCR ``.ts`` files."""

from __future__ import annotations

import os

import numpy as np

from ._common import (
    _lines,
    _pad,
    _parse_floats,
    _valid_length,
)

__all__ = ["load_ts_file"]


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
