"""TAP distances and retrieval metrics on numpy input.

:class:`PairKernel` is the interface through which the tiling executor
scores blocks of encoded sequences; a metric learner with a new distance
returns its own subclass from ``distance_kernel()``.
"""

from .._engine import PairKernel
from ._pairwise import cdist_tap, tap_alignment, tap_distance
from ._retrieval import mean_average_precision

__all__ = [
    "PairKernel",
    "cdist_tap",
    "mean_average_precision",
    "tap_alignment",
    "tap_distance",
]
