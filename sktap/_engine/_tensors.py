"""The one place where validated sequences become torch tensors."""

from __future__ import annotations

import numpy as np
import torch

from ..core._bucketed import padded_length

__all__ = ["TensorSequences", "build_seeded", "generator_from", "init_parameters"]


class TensorSequences:
    """Padded sequences held once on a device, sliced into batches.

    Parameters
    ----------
    seqs : Sequences or TensorSequences
        Output of :func:`sktap._validation.check_sequences` (or sequences
        already on some device).
    device : torch.device
    dtype : torch.dtype, default=torch.float32

    Attributes
    ----------
    data : Tensor of shape (n_ts, max_len, d)
    lengths : Tensor of shape (n_ts,), on the device
    host_lengths : ndarray of shape (n_ts,)
        The same lengths on the host, for planning without a device sync.
    """

    def __init__(self, seqs, device, dtype=torch.float32):
        if isinstance(seqs, TensorSequences):
            host = seqs.host_lengths
        else:
            host = np.asarray(seqs.lengths)
        self.data = torch.as_tensor(seqs.data, dtype=dtype).to(device)
        self.lengths = torch.as_tensor(seqs.lengths, dtype=torch.long).to(device)
        self.host_lengths = host

    @property
    def n_features(self) -> int:
        return self.data.shape[2]

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, item):
        """``(data, lengths)`` of a slice or index array, untrimmed."""
        return self.data[item], self.lengths[item]

    def rows(self, indices, max_len):
        """``(data (n, max_len, d), lengths (n,))`` of ``indices`` (repeats allowed)."""
        idx = torch.as_tensor(
            np.asarray(indices, dtype=np.int64), device=self.data.device
        )
        return self.data[idx, :max_len], self.lengths[idx]

    def padded_width(self, max_len) -> int:
        """The width of a batch whose longest sequence has ``max_len``
        frames: :func:`~sktap.core._bucketed.padded_length`, i.e. rounded up
        to a grid of sizes (so that shapes repeat), never beyond the width
        the sequences are stored at."""
        return padded_length(max_len, self.data.shape[1])

    def batch(self, indices):
        """``(data (b, L_b, d), lengths (b,))`` trimmed to the longest
        selected, padded to :meth:`padded_width`."""
        indices = np.asarray(indices, dtype=np.int64)
        return self.rows(indices, self.padded_width(self.host_lengths[indices].max()))

    def take(self, indices, *, width=None) -> TensorSequences:
        """Subset on the device, trimmed to its longest sequence (as
        :meth:`Sequences.take <sktap.Sequences.take>`), or to ``width``."""
        indices = np.asarray(indices, dtype=np.int64)
        host = self.host_lengths[indices]
        if width is None:
            width = int(host.max()) if len(host) else 0
        out = object.__new__(TensorSequences)
        out.data, out.lengths = self.rows(indices, width)
        out.host_lengths = host
        return out


def generator_from(
    random_state: np.random.RandomState, device="cpu"
) -> torch.Generator:
    """A local torch generator seeded from a numpy ``RandomState``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(random_state.randint(0, 2**31 - 1)))
    return gen


def init_parameters(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Re-draw weights like PyTorch's defaults, but from a local generator.

    Module constructors draw from the global RNG; sktap never seeds that, so
    every trainable layer is re-initialised here from ``generator`` instead.
    """
    with torch.no_grad():
        for layer in module.modules():
            weight = getattr(layer, "weight", None)
            if not isinstance(
                layer, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv1d)
            ):
                continue
            fan_in = weight[0].numel()
            bound = 1.0 / np.sqrt(
                fan_in
            )  # kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in))
            weight.uniform_(-bound, bound, generator=generator)
            if layer.bias is not None:
                layer.bias.uniform_(-bound, bound, generator=generator)


def build_seeded(factory, generator: torch.Generator) -> torch.nn.Module:
    """``factory()`` with weights drawn from ``generator`` only.

    Module constructors draw their default initialisation from torch's global
    RNG; building under ``fork_rng`` leaves the user's global stream exactly
    where it was, and :func:`init_parameters` then redraws from ``generator``.
    """
    with torch.random.fork_rng(devices=[]):
        module = factory()
    init_parameters(module, generator)
    return module
