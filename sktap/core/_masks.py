"""Which frames and cells of a padded batch are real: the one place that says so.

Every tensor in sktap is zero-padded to the longest sequence of its batch,
with the true lengths beside it; these helpers turn lengths into masks and
reset padding to zero.
"""

from __future__ import annotations

import torch

__all__ = ["cell_mask", "frame_mask", "mask_frames", "sum_dtype"]


def sum_dtype(device) -> torch.dtype:
    """The dtype for long sums over a sequence's frames (running sums,
    per-sequence statistics): float64, or float32 on Apple's MPS, which has
    no float64."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def frame_mask(lengths, max_len):
    """Valid frames of a padded batch: ``mask[k, t] = t < lengths[k]``.

    Parameters
    ----------
    lengths : LongTensor of shape (n,)
        True length of each sequence.
    max_len : int
        Padded length ``L``.

    Returns
    -------
    mask : BoolTensor of shape (n, max_len)
        On the device of ``lengths``.
    """
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def cell_mask(x_lengths, y_lengths, Lx, Ly):
    """Valid cells of a batch of ``Lx x Ly`` grids: row and column both real.

    Parameters
    ----------
    x_lengths, y_lengths : LongTensor of shape (n,)
        Lengths of the row (source) and column (target) sequence of each pair.
    Lx, Ly : int
        Padded grid size.

    Returns
    -------
    mask : BoolTensor of shape (n, Lx, Ly)
    """
    rows = frame_mask(x_lengths, Lx)  # (n, Lx)
    cols = frame_mask(y_lengths, Ly)  # (n, Ly)
    return rows[:, :, None] & cols[:, None, :]


def mask_frames(z, lengths, *, time_dim=1):
    """Zero the frames of ``z`` beyond each sequence's length.

    ``where`` rather than a product, so that non-finite values in the
    padding (an encoder's output there, or the caller's) cannot leak.

    Parameters
    ----------
    z : Tensor of shape (n, L, d), or (n, d, L) with ``time_dim=-1``
        A padded batch; ``time_dim=-1`` is the channels-first layout of
        ``Conv1d`` activations.
    lengths : LongTensor of shape (n,)
        Valid frames of each sequence, on the device of ``z``.
    time_dim : {1, -1}, default=1
        The time axis of ``z``.

    Returns
    -------
    Tensor of the shape, dtype and device of ``z``
        ``z`` on the valid frames, exactly ``0`` beyond.
    """
    valid = frame_mask(lengths, z.shape[time_dim])  # (n, L)
    valid = valid[:, :, None] if time_dim == 1 else valid[:, None, :]
    return torch.where(valid, z, z.new_zeros(()))
