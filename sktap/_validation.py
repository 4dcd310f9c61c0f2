"""The one input contract of sktap.

Every public entry point calls :func:`check_sequences` (or
:func:`check_sequence` for a single series) first. Accepted inputs:

* a tslearn dataset, a 3-D array ``(n_ts, sz, d)`` whose shorter series are
  padded at the end with time steps that are NaN in every channel;
* a 2-D array ``(n_ts, sz)``: a set of univariate series (trailing NaN padding
  allowed as above);
* a list (or tuple) of array-likes ``(L_i, d)`` or ``(L_i,)``.

Under ``sktap.config_context(layout="channels_first")`` 3-D arrays are
``(n_ts, d, sz)`` and each 2-D series ``(d, L_i)`` (aeon's and sktime's
layout); with the default ``layout="auto"`` sequences with more channels
than time steps are read time first with a :class:`~sktap.LayoutWarning`.

The result is a zero-padded float array plus the true length of each series.
The caller's data is never modified: the padded array is always a new one.
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np

from ._config import LayoutWarning, get_config

__all__ = [
    "SequenceTagsMixin",
    "Sequences",
    "as_output",
    "check_sequence",
    "check_sequences",
    "concat_sequences",
    "pad_sequences",
    "padding_mask",
    "sequence_output",
    "to_output",
    "to_tslearn",
]


class Sequences(NamedTuple):
    """A set of variable-length sequences, zero-padded, with their lengths.

    What sktap works on inside: every public entry point validates its input
    into one, and :meth:`SequenceMetricLearner.encode
    <sktap.metric_learning.SequenceMetricLearner.encode>` returns the encoded
    frames as one. A named tuple, so ``data, lengths = seqs`` unpacks it.
    sktap's functions accept it as it is (it is not validated again). Its
    padding is zero, where tslearn's format (what ``transform`` returns)
    pads with NaN.

    Attributes
    ----------
    data : ndarray of shape (n_ts, max_len, d)
        Sequence ``i`` in ``data[i, :lengths[i]]``, time first, zero beyond;
        ``max_len`` is the longest length. float64 after validation,
        float32 out of a learned frame encoder.
    lengths : ndarray of shape (n_ts,), dtype int64
        True length of each sequence (>= 1).
    n_features : int
        ``d``, the features per time step (a property).

    Notes
    -----
    ``len(seqs)`` is the number of sequences ``n_ts`` (not the number of
    fields, as for other tuples); :meth:`take` selects a subset.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap import Sequences
    >>> seqs = Sequences(np.zeros((3, 4, 2)), np.array([4, 1, 2]))
    >>> len(seqs), seqs.n_features
    (3, 2)
    >>> seqs.take([1, 2]).data.shape
    (2, 2, 2)
    """

    data: np.ndarray
    lengths: np.ndarray

    @property
    def n_features(self) -> int:
        """``d``, the features per time step."""
        return self.data.shape[2]

    def __len__(self) -> int:  # number of series, not of fields
        return self.data.shape[0]

    def take(self, indices) -> Sequences:
        """The sequences at ``indices``, padding trimmed to the longest of them.

        Parameters
        ----------
        indices : array-like of int, shape (n,)
            Positions to select, in order (repeats allowed).

        Returns
        -------
        Sequences
            ``(n, max(lengths[indices]), d)``.
        """
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        max_len = int(lengths.max()) if len(lengths) else 0
        return Sequences(self.data[indices, :max_len], lengths)


class SequenceTagsMixin:
    """scikit-learn tags of an estimator whose input is sequences.

    What :func:`check_sequences` accepts, said once for every estimator:
    3-D arrays, and NaN (the trailing padding of shorter series). Put it
    before ``BaseEstimator`` among the bases.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # trailing NaN pads variable lengths
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags


def padding_mask(lengths: np.ndarray, max_len: int) -> np.ndarray:
    """Padding of a batch: ``mask[k, t] = t >= lengths[k]``, shape (n, max_len)."""
    return np.arange(max_len)[None, :] >= lengths[:, None]


def pad_sequences(seqs, *, fill=0.0, dtype=np.float64):
    """Stack sequences of different lengths into one padded array.

    Parameters
    ----------
    seqs : non-empty list of ndarray of shape (L_i, d)
        Time first, every ``L_i >= 1`` and the same ``d``.
    fill : float, default=0.0
        Value of the padding: 0 for sktap's tensors, NaN for tslearn's format.
    dtype : numpy dtype, default=np.float64
        Of the result; the sequences are cast to it.

    Returns
    -------
    data : ndarray of shape (n, max(L_i), d)
        Sequence ``i`` in ``data[i, :L_i]``, ``fill`` beyond.
    lengths : ndarray of shape (n,), dtype int64
        The ``L_i``.
    """
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    shape = (len(seqs), int(lengths.max()), seqs[0].shape[1])
    data = np.full(shape, fill, dtype=dtype)
    for i, s in enumerate(seqs):
        data[i, : len(s)] = s
    return data, lengths


def concat_sequences(parts) -> Sequences:
    """Concatenate padded sets of sequences, widening each to the longest.

    Not :func:`pad_sequences`: each part is already padded, so whole blocks
    are copied rather than one series at a time.

    Parameters
    ----------
    parts : non-empty list of Sequences
        Zero-padded sets ``(n_k, L_k, d)``, all with the same ``d``.

    Returns
    -------
    Sequences
        ``(sum n_k, max L_k, d)``, the parts in order, in their own dtype.
    """
    width = max(p.data.shape[1] for p in parts)
    data = [
        np.pad(p.data, ((0, 0), (0, width - p.data.shape[1]), (0, 0))) for p in parts
    ]
    return Sequences(np.concatenate(data), np.concatenate([p.lengths for p in parts]))


def _as_numeric(a, name: str, where: str) -> np.ndarray:
    """Convert to a float64 array, refusing non-numeric and complex data."""
    try:
        arr = np.asarray(a)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(
            f"{name}: {where} could not be read as an array ({exc}); "
            "pass variable-length series as a list of arrays"
        ) from None
    if arr.dtype.kind == "c":
        raise ValueError(
            f"{name}: {where} has complex values. Complex data not supported; "
            "sktap needs real numbers"
        )
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "O":
            if any(v is None for v in arr.flat):
                raise TypeError(f"{name}: {where} has non-numeric values (None)")
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"{name}: {where} has non-numeric values (dtype object): {exc}"
                ) from None
        else:
            raise TypeError(
                f"{name}: {where} has non-numeric values (dtype {arr.dtype})"
            )
    return arr.astype(np.float64, copy=False)


def _is_sparse(X) -> bool:
    try:
        from scipy.sparse import issparse
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        return False
    return issparse(X)


def _valid_length(seq: np.ndarray, name: str, index: int) -> int:
    """Length of a (sz, d) series after stripping trailing all-NaN time steps."""
    if seq.shape[0] == 0:
        raise ValueError(f"{name}: sequence {index} is empty (zero time steps)")
    if seq.shape[1] == 0:
        raise ValueError(f"{name}: sequence {index} has zero features")
    nan = np.isnan(seq)  # (sz, d)
    step_nan = nan.all(axis=1)
    if step_nan.all():
        raise ValueError(f"{name}: sequence {index} contains only NaN values")
    length = int(seq.shape[0] - np.argmin(step_nan[::-1]))
    partial = nan[:length].any(axis=1)
    if partial.any():
        t = int(np.argmax(partial))
        kind = "in some channels of" if not nan[t].all() else "at"
        raise ValueError(
            f"{name}: sequence {index} has NaN {kind} time step {t}; NaN is "
            "allowed only as trailing padding of whole time steps"
        )
    if not np.isfinite(seq[:length]).all():
        raise ValueError(f"{name}: sequence {index} contains infinite values")
    return length


def _layout() -> str:
    return get_config()["layout"]


def _warn_ambiguous(name: str, n_steps: int, n_channels: int, what: str) -> None:
    warnings.warn(
        f"{name}: {what} has {n_steps} time step{'s' if n_steps != 1 else ''} "
        f"and {n_channels} channels if read time first, as sktap reads it "
        "(tslearn's layout). If it is channels-first data (aeon, sktime: "
        "n_cases, n_channels, n_timepoints), pass it inside "
        "sktap.config_context(layout='channels_first'); if it is time first "
        "(for example frame embeddings with more features than frames), say "
        "so with layout='time_first' to silence this warning",
        LayoutWarning,
        stacklevel=4,
    )


def _from_array(arr: np.ndarray, name: str):
    if arr.ndim == 3:
        layout = _layout()
        if layout == "channels_first":
            arr = arr.transpose(0, 2, 1)  # (n_ts, d, sz) -> (n_ts, sz, d)
        elif layout == "auto" and arr.shape[2] > arr.shape[1] > 0:
            _warn_ambiguous(name, arr.shape[1], arr.shape[2], f"shape {arr.shape}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        hint = ""
        if arr.ndim == 1:
            hint = (
                ". Reshape your data: one univariate series is x.reshape(1, -1), "
                "or pass a list of sequences"
            )
        raise ValueError(
            f"{name} must be a 2-D array (n_ts, sz), a 3-D array (n_ts, sz, d) "
            f"or a list of (L_i, d) arrays; got an array with {arr.ndim} "
            f"dimension{'s' if arr.ndim != 1 else ''}{hint}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} contains no sequences")
    if arr.shape[1] == 0:
        shape = arr.shape[:2] if arr.shape[2:] == (1,) else arr.shape
        raise ValueError(
            f"{name}: every sequence is empty: 0 feature(s) (shape={shape}) "
            "while a minimum of 1 is required (time steps)"
        )
    lengths = np.array(
        [_valid_length(arr[i], name, i) for i in range(arr.shape[0])], dtype=np.int64
    )
    data = arr[:, : int(lengths.max())].copy()
    data[padding_mask(lengths, data.shape[1])] = 0.0
    return data, lengths


def _list_hint(first: np.ndarray, a: np.ndarray) -> str:
    """A pointer to the layout setting when ``a`` looks channels first."""
    if _layout() == "channels_first" or a.shape[0] != first.shape[0]:
        return ""
    return (
        "; every sequence has the same number of rows, so they may be "
        "channels first (aeon, sktime: (n_channels, L_i)): pass them inside "
        "sktap.config_context(layout='channels_first')"
    )


def _from_list(seqs, name: str):
    if len(seqs) == 0:
        raise ValueError(f"{name} contains no sequences")
    channels_first = _layout() == "channels_first"
    arrays, raw = [], []
    n_features = None
    for i, s in enumerate(seqs):
        a = _as_numeric(s, name, f"sequence {i}")
        if a.ndim == 1:
            a = a[:, None]
        elif a.ndim != 2:
            shape = "(d, L)" if channels_first else "(L, d)"
            raise ValueError(
                f"{name}: sequence {i} must be 1-D (L,) or 2-D {shape}; got "
                f"{a.ndim} dimension{'s' if a.ndim != 1 else ''}"
            )
        elif channels_first:
            a = a.T  # (d, L) -> (L, d)
        if n_features is None:
            n_features = a.shape[1]
        elif a.shape[1] != n_features:
            raise ValueError(
                f"{name}: sequence {i} has {a.shape[1]} features, expected "
                f"{n_features} (as sequence 0){_list_hint(raw[0], a)}"
            )
        raw.append(a)
        arrays.append(a[: _valid_length(a, name, i)])
    if _layout() == "auto" and all(len(a) < n_features for a in raw):
        what = "every sequence" if len(raw) > 1 else "the sequence"
        _warn_ambiguous(name, len(raw[0]), n_features, what)
    return pad_sequences(arrays)


def check_sequences(X, *, name: str = "X", n_features: int | None = None) -> Sequences:
    """Validate a set of sequences and return them zero-padded with lengths.

    Parameters
    ----------
    X : array-like of shape (n_ts, sz, d) or (n_ts, sz), or list of array-like
        The sequences; see the module docstring for the accepted forms.
    name : str, default="X"
        Name used in error messages.
    n_features : int, optional
        Expected number of features ``d`` (for example the one seen in
        ``fit``); a mismatch raises ``ValueError``.

    Returns
    -------
    Sequences
        ``(data, lengths)`` with ``data`` of shape (n_ts, max_len, d), float64.

    Examples
    --------
    >>> import numpy as np
    >>> seqs = check_sequences([np.zeros((3, 2)), np.ones((1, 2))])
    >>> seqs.data.shape, seqs.lengths.tolist()
    ((2, 3, 2), [3, 1])
    """
    if isinstance(X, Sequences):
        seqs = X
    else:
        if isinstance(X, (str, bytes)) or X is None or isinstance(X, numbers.Number):
            raise TypeError(
                f"{name} must be an array or a list of sequences; got "
                f"{type(X).__name__}"
            )
        if _is_sparse(X):
            raise TypeError(
                f"{name} is a sparse matrix; sparse input is not supported, "
                "pass a dense array (X.toarray())"
            )
        if isinstance(X, (list, tuple)):
            data, lengths = _from_list(X, name)
        else:
            data, lengths = _from_array(_as_numeric(X, name, "the input"), name)
        seqs = Sequences(data, lengths)
    if n_features is not None and seqs.n_features != n_features:
        hint = ""
        if _layout() != "channels_first" and seqs.data.shape[1] == n_features:
            hint = (
                "; its time steps match the expected features, so it may be "
                "channels first (aeon, sktime): pass it inside "
                "sktap.config_context(layout='channels_first')"
            )
        raise ValueError(
            f"{name} has {seqs.n_features} features per time step, but "
            f"{n_features} were expected (as seen in fit){hint}"
        )
    return seqs


def check_sequence(x, *, name: str = "x", n_features: int | None = None) -> np.ndarray:
    """Validate one sequence ``(L, d)`` or ``(L,)`` and return it as ``(L, d)``.

    Examples
    --------
    >>> check_sequence([1.0, 2.0, 3.0]).shape
    (3, 1)
    """
    if isinstance(x, (str, bytes)) or x is None or isinstance(x, numbers.Number):
        raise TypeError(f"{name} must be an array of shape (L, d) or (L,)")
    seqs = check_sequences([x], name=name, n_features=n_features)
    return seqs.data[0]


def to_tslearn(seqs: Sequences) -> np.ndarray:
    """Return ``(n_ts, max_len, d)``, NaN after each series ends (tslearn format)."""
    data = seqs.data.copy()
    data[padding_mask(seqs.lengths, data.shape[1])] = np.nan
    return data


def as_output(X: np.ndarray) -> np.ndarray:
    """A time-first ``(n_ts, sz, d)`` array in the configured layout."""
    if _layout() == "channels_first":
        return np.ascontiguousarray(X.transpose(0, 2, 1))
    return X


def sequence_output(x: np.ndarray) -> np.ndarray:
    """One time-first ``(L, d)`` sequence in the configured layout."""
    return np.ascontiguousarray(x.T) if _layout() == "channels_first" else x


def to_output(seqs: Sequences) -> np.ndarray:
    """Sequences given back to a user: NaN-padded, in the configured layout."""
    return as_output(to_tslearn(seqs))
