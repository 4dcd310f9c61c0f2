"""Metric learning: learned sequence distances behind one contract."""

from ._base import SequenceMetricLearner
from ._tap_learner import LearnedTAPMetric, TAPMetricLearner

__all__ = ["LearnedTAPMetric", "SequenceMetricLearner", "TAPMetricLearner"]
