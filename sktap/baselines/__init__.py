"""Baselines trained with sktap's protocol, for side-by-side comparisons."""

from ._soft_dtw import SoftDTWMetricLearner

__all__ = ["SoftDTWMetricLearner"]
