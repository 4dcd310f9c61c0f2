"""k-nearest-neighbour classification and retrieval under a learned distance."""

from ._classifier import TAPKNeighborsClassifier

__all__ = ["TAPKNeighborsClassifier"]
