"""Metric learning: learned sequence distances behind one contract."""

from ._base import SequenceMetricLearner
from ._tap_learner import TAPMetricLearner
from ._trained import TorchMetricLearner

__all__ = ["SequenceMetricLearner", "TAPMetricLearner", "TorchMetricLearner"]
