"""sktap: learnable sequence distances with Temporal Alignment Prediction."""

from ._metric_learner import TAPMetricLearner
from ._neighbors import TAPKNeighborsClassifier
from ._nets import TAPNet, TAPTransNet
from ._persistence import load
from .few_shot import TAPFewShotClassifier

__version__ = "0.1.0.dev0"

__all__ = [
    "TAPFewShotClassifier",
    "TAPKNeighborsClassifier",
    "TAPMetricLearner",
    "TAPNet",
    "TAPTransNet",
    "__version__",
    "load",
]


def _estimators_registry():
    """Estimator classes that ``sktap.load`` may rebuild, by name."""
    from .baselines import SoftDTWMetricLearner

    return {SoftDTWMetricLearner.__name__: SoftDTWMetricLearner} | {
        cls.__name__: cls
        for cls in (TAPFewShotClassifier, TAPKNeighborsClassifier, TAPMetricLearner)
    }
