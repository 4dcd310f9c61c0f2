"""sktap: learnable sequence distances with Temporal Alignment Prediction."""

from . import baselines  # registers the baseline estimators with sktap.load
from ._config import LayoutWarning, config_context, get_config, set_config
from ._engine import load
from ._validation import Sequences
from .core import TAPNet, TAPTransNet
from .few_shot import TAPFewShotClassifier
from .metric_learning import TAPMetricLearner
from .neighbors import TAPKNeighborsClassifier, TAPNearestNeighbors

__version__ = "0.1.0.dev0"

__all__ = [
    "LayoutWarning",
    "Sequences",
    "TAPFewShotClassifier",
    "TAPKNeighborsClassifier",
    "TAPMetricLearner",
    "TAPNearestNeighbors",
    "TAPNet",
    "TAPTransNet",
    "__version__",
    "baselines",
    "config_context",
    "get_config",
    "load",
    "set_config",
]
