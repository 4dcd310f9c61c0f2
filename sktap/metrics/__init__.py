"""TAP distances and retrieval metrics on numpy input."""

from ._pairwise import cdist_tap, tap_alignment, tap_distance

__all__ = ["cdist_tap", "tap_alignment", "tap_distance"]
