"""The TAP maths and networks: plain torch functions and modules, no estimator state.

Everything here takes padded tensors plus lengths, keeps their device and
dtype, and supports autograd. :mod:`sktap.functional` is its public face.
"""

from ._modules import FrameMLP, LearnedTAP, encode_frames, mask_frames
from ._nets import TAPNet, TAPTransNet
from ._tap import frame_distances, tap_paired, tap_pairwise

__all__ = [
    "FrameMLP",
    "LearnedTAP",
    "TAPNet",
    "TAPTransNet",
    "encode_frames",
    "frame_distances",
    "mask_frames",
    "tap_paired",
    "tap_pairwise",
]
