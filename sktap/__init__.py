"""sktap: learnable sequence distances with Temporal Alignment Prediction."""

from ._metric_learner import TAPMetricLearner
from ._nets import TAPNet, TAPTransNet
from ._persistence import load

__version__ = "0.1.0.dev0"

__all__ = ["TAPMetricLearner", "TAPNet", "TAPTransNet", "__version__", "load"]


def _estimators_registry():
    """Estimator classes that ``sktap.load`` may rebuild, by name."""
    return {cls.__name__: cls for cls in (TAPMetricLearner,)}
