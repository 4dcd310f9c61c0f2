"""TAP distances and retrieval metrics on numpy input."""

from ._pairwise import cdist_tap, tap_alignment, tap_distance
from ._retrieval import mean_average_precision

__all__ = ["cdist_tap", "mean_average_precision", "tap_alignment", "tap_distance"]
