"""Few-shot sequence classification: episodes, TAP and SA-TAP.

The DTW, prototype and OTAM baselines live in :mod:`sktap.baselines`.
"""

from ._base import EpisodicClassifier
from ._classifier import TAPFewShotClassifier
from ._model import FrameSelfAttention
from ._sampler import Episode, EpisodeSampler
from ._trained import TorchEpisodicClassifier

__all__ = [
    "Episode",
    "EpisodeSampler",
    "EpisodicClassifier",
    "FrameSelfAttention",
    "TAPFewShotClassifier",
    "TorchEpisodicClassifier",
]
