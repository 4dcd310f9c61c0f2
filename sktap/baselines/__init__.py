"""Baselines run with sktap's protocol, for side-by-side comparisons."""

from ._few_shot import DTWFewShotClassifier, PrototypeFewShotClassifier
from ._otam_few_shot import OTAMFewShotClassifier
from ._soft_dtw_learner import SoftDTWMetricLearner

__all__ = [
    "DTWFewShotClassifier",
    "OTAMFewShotClassifier",
    "PrototypeFewShotClassifier",
    "SoftDTWMetricLearner",
]
