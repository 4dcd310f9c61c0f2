"""Reader for the TAP paper's MATLAB feature files."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from .._validation import as_output, pad_sequences, padding_mask
from ._common import _check_padding

__all__ = ["load_tap_mat"]

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
    bad = ~padding_mask(lengths, X.shape[1]) & ~np.isfinite(X).all(axis=2)  # (N, T)
    if bad.any():
        i, t = np.argwhere(bad)[0]
        raise ValueError(
            f"{where}: sequence {i} has a NaN or infinite value at time step {t}, "
            f"within its length {lengths[i]}"
        )


def _mat_sequences(data, lengths, layout, where: str) -> np.ndarray:
    """The sequences in the configured output layout, NaN-padded.

    ``layout`` is the file's storage layout (from :func:`_mat_layout`), fixed
    by the file whatever sktap's layout setting: the frames are parsed and
    checked time first, ``(N, max_len, d)``, and converted only at the end.
    """
    kind, axis = layout
    data = np.asarray(data, dtype=np.float64)
    if kind == "stacked":
        frames = data if axis == 0 else data.T  # (sum L, d)
        shape = (len(lengths), int(lengths.max()), frames.shape[1])
        _check_padding(shape, frames.size, where)  # before allocating
        X, _ = pad_sequences(np.split(frames, np.cumsum(lengths)[:-1]), fill=np.nan)
    else:
        if data.ndim == 2:
            data = data[:, :, None]  # (N, T) univariate
        elif axis == 2:
            data = data.transpose(0, 2, 1)
        X = data[:, : lengths.max()].copy()  # (N, max_len, d)
        X[padding_mask(lengths, X.shape[1])] = np.nan
    _check_finite(X, lengths, where)  # X is time first here
    return as_output(X)


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

    Values beyond each length are ignored. The file is read this way whatever
    sktap's ``layout`` setting, which only decides the layout of ``X``.

    Parameters
    ----------
    path : str or path-like
        A MATLAB v4 to v7 ``.mat`` file (v7.3 / HDF5 is not supported).
    subset : {"train", "test"}, default="train"
        Which variables to read.

    Returns
    -------
    X : ndarray of shape (N, max_len, d)
        Float64, NaN after each sequence's end (tslearn format); of shape
        ``(N, d, max_len)`` under ``sktap.config_context(layout="channels_first")``.
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
