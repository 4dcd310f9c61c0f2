"""Parts shared by the file readers: line reading, number parsing, padding."""

from __future__ import annotations

import math

import numpy as np

from .._validation import as_output, pad_sequences

_MISSING = frozenset({"?", "nan"})
# Padding guard: a few very long series among many short ones can make the
# padded array far larger than the file. Refuse only when it is both big
# (over 1 GiB of float64) and mostly padding, which real datasets never are.
_GUARD_MIN_CELLS = 2**27
_GUARD_MAX_PADDING_RATIO = 64


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
    """Stack ``(L_i, d)`` arrays into ``(n, max_len, d)`` with trailing NaN.

    Channels first, ``(n, d, max_len)``, under ``layout="channels_first"``.
    """
    lengths = [len(a) for a in arrays]
    shape = (len(arrays), max(lengths), arrays[0].shape[1])
    _check_padding(shape, sum(lengths) * shape[2], source)  # before allocating
    X, _ = pad_sequences(arrays, fill=np.nan)
    return as_output(X)


# ------------------------------------------------------------------ .ts files
