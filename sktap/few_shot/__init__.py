"""Few-shot sequence classification: episodes, TAP / SA-TAP, and baselines."""

from ._baselines import DTWFewShotClassifier, PrototypeFewShotClassifier
from ._classifier import TAPFewShotClassifier
from ._model import FrameSelfAttention
from ._sampler import Episode, EpisodeSampler

__all__ = [
    "DTWFewShotClassifier",
    "Episode",
    "EpisodeSampler",
    "FrameSelfAttention",
    "PrototypeFewShotClassifier",
    "TAPFewShotClassifier",
]
