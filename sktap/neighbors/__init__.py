"""Neighbour search, k-NN classification and retrieval under a learned distance."""

from ._classifier import TAPKNeighborsClassifier
from ._index import FaissIndex
from ._search import TAPNearestNeighbors

__all__ = ["FaissIndex", "TAPKNeighborsClassifier", "TAPNearestNeighbors"]
