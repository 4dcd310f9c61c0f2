"""Readers for downloaded sequence datasets: ``.ts``, UCI Arabic digits, TAP ``.mat``.

Every reader returns ``(X, y)`` with ``X`` in tslearn format: a float64 array
``(n_ts, max_len, d)`` with NaN after each series' end. Readers parse numbers
only (no pickle, no eval) and check declared sizes against the data actually
present before allocating anything of that size.
"""

from ._arabic import load_spoken_arabic_digits
from ._mat import load_tap_mat
from ._ts import load_ts_file

__all__ = ["load_spoken_arabic_digits", "load_tap_mat", "load_ts_file"]
