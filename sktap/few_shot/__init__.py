"""Few-shot sequence classification: episodes, TAP and SA-TAP.

The DTW and prototype baselines live in :mod:`sktap.baselines`.
"""

from ._base import EpisodicClassifier
from ._classifier import TAPFewShotClassifier
from ._model import FrameSelfAttention
from ._sampler import Episode, EpisodeSampler

__all__ = [
    "Episode",
    "EpisodeSampler",
    "EpisodicClassifier",
    "FrameSelfAttention",
    "TAPFewShotClassifier",
]
