"""sktap: learnable sequence distances with Temporal Alignment Prediction."""

from ._nets import TAPNet, TAPTransNet

__version__ = "0.1.0.dev0"

__all__ = ["TAPNet", "TAPTransNet", "__version__"]
