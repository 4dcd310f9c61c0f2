"""Differentiable, tensor-level TAP (the layer the estimators train through).

These functions take padded torch tensors plus lengths, keep their device and
dtype, and support autograd; see :mod:`sktap.metrics` for numpy input.
"""

from .core import frame_distances, tap_paired, tap_pairwise

__all__ = ["frame_distances", "tap_paired", "tap_pairwise"]
