"""Datasets: a generator of warped sequence classes and readers for common files."""

from ._generate import make_warped_sequences
from ._loaders import load_spoken_arabic_digits, load_tap_mat, load_ts_file

__all__ = [
    "load_spoken_arabic_digits",
    "load_tap_mat",
    "load_ts_file",
    "make_warped_sequences",
]
