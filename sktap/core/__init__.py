"""The TAP maths and networks: plain torch functions and modules, no estimator state.

Everything here takes padded tensors plus lengths, keeps their device and
dtype, and supports autograd. :mod:`sktap.functional` is its public face.
"""

from ._bucketed import padding_ratio, tap_pairs, tap_pairwise_bucketed
from ._encoders import ConvFrameEncoder, choose_stride, pool_frames
from ._masks import cell_mask, frame_mask, mask_frames
from ._modules import (
    ChannelScaler,
    FrameMLP,
    SequenceDistanceModel,
    SequenceScaler,
    TAPModel,
    encode_frames,
)
from ._nets import TAPNet, TAPTransNet
from ._packed import tap_pairs_packed, tap_pairwise_packed
from ._tap import frame_distances, tap_paired, tap_pairwise

__all__ = [
    "ChannelScaler",
    "ConvFrameEncoder",
    "FrameMLP",
    "SequenceDistanceModel",
    "SequenceScaler",
    "TAPModel",
    "TAPNet",
    "TAPTransNet",
    "cell_mask",
    "choose_stride",
    "encode_frames",
    "frame_distances",
    "frame_mask",
    "mask_frames",
    "padding_ratio",
    "pool_frames",
    "tap_paired",
    "tap_pairs",
    "tap_pairs_packed",
    "tap_pairwise",
    "tap_pairwise_bucketed",
    "tap_pairwise_packed",
]
