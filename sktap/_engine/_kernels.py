"""The TAP distance as a :class:`~sktap._engine._tiling.PairKernel`."""

from __future__ import annotations

import numpy as np
import torch

from ..core import tap_paired, tap_pairwise, tap_pairwise_packed
from ..core._packed import packing_beats_shapes
from ._device import inference_net, same_device
from ._tensors import TensorSequences
from ._tiling import PairKernel

__all__ = ["TAPKernel", "check_net"]


def check_net(net):
    if net is not None and not isinstance(net, torch.nn.Module):
        raise TypeError(
            "net must be None (parameter-free TAP) or a torch.nn.Module such as "
            f"sktap.TAPNet; got {type(net).__name__}"
        )
    return net


def _net_width(net) -> int:
    if net is None:
        return 0
    channels = getattr(net, "channels", None)
    return max(channels) if channels else 64


class TAPKernel(PairKernel):
    """TAP of padded blocks with alignment network ``net`` (or none).

    The network runs in eval mode in ``dtype`` on ``device`` as given by
    :func:`~sktap._engine.inference_net`: the caller's module itself when it
    already is so (read-only, under :func:`torch.inference_mode`), else a
    private copy, made once per inference context; the caller's module is
    never moved nor mutated. Frame distances and the softmax stay in
    float32 for the low-precision types, and results come back as float32
    (float64 when ``dtype`` is float64). Sets are uploaded to ``device``
    once per call (:meth:`upload`), in that float type.
    """

    def __init__(self, net, device, dtype=torch.float32, symmetric=False):
        net = check_net(net)
        self.net = inference_net(net, device, dtype)
        self.device = device
        self.dtype = dtype
        self.dist_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        self.symmetric = symmetric
        self.parallel = device.type == "cpu"
        self.result_dtype = np.float64 if dtype == torch.float64 else np.float32
        net_item = torch.empty((), dtype=dtype).element_size()
        dist_item = torch.empty((), dtype=self.dist_dtype).element_size()
        self.bytes_per_cell = net_item * (2 * _net_width(net) + 4) + dist_item * 12

    def upload(self, seqs) -> TensorSequences:
        """``seqs`` on the device in the distance dtype (as they are if already)."""
        if (
            isinstance(seqs, TensorSequences)
            and seqs.data.dtype == self.dist_dtype
            and same_device(seqs.data.device, self.device)
        ):
            return seqs
        return TensorSequences(seqs, self.device, self.dist_dtype)

    def _tensors(self, x, lx, y, ly):
        # no copy for blocks sliced from uploaded sets (already on the device)
        return (
            torch.as_tensor(x, dtype=self.dist_dtype, device=self.device),
            torch.as_tensor(lx, device=self.device),
            torch.as_tensor(y, dtype=self.dist_dtype, device=self.device),
            torch.as_tensor(ly, device=self.device),
        )

    def block(self, x, x_lengths, y, y_lengths):
        with torch.inference_mode():
            xt, lxt, yt, lyt = self._tensors(x, x_lengths, y, y_lengths)
            return self._pairwise(xt, lxt, yt, lyt).to("cpu", self.dist_dtype).numpy()

    def _pairwise(self, x, lx, y, ly):
        """The block's distances: on the CPU its grids packed
        (:func:`~sktap.core.tap_pairwise_packed`) where
        :func:`~sktap.core._packed.packing_beats_shapes` says that costs less
        (lengths that differ), else :func:`~sktap.core.tap_pairwise`. Both
        are exact."""
        if self.device.type != "cpu" or not packing_beats_shapes(lx, ly, self.net):
            return tap_pairwise(x, lx, y, ly, self.net, symmetric=self.symmetric)
        out = tap_pairwise_packed(x, lx, y, ly, self.net)
        if self.symmetric:
            out = (out + tap_pairwise_packed(y, ly, x, lx, self.net).T) / 2
        return out

    def paired(self, x, x_lengths, y, y_lengths):
        with torch.inference_mode():
            xt, lxt, yt, lyt = self._tensors(x, x_lengths, y, y_lengths)
            out = tap_paired(xt, lxt, yt, lyt, self.net)
            if self.symmetric:
                out = (out + tap_paired(yt, lyt, xt, lxt, self.net)) / 2
            return out.to("cpu", self.dist_dtype).numpy()
