"""Reader for the UCI Spoken Arabic Digit text files."""

from __future__ import annotations

import numbers
import os

import numpy as np

from ._common import (
    _lines,
    _pad,
    _parse_floats,
)

__all__ = ["load_spoken_arabic_digits"]


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
