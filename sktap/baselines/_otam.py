"""The OTAM distance (Cao et al., CVPR 2020) on padded torch batches.

OTAM aligns two sequences by a soft-min dynamic program over their
frame-distance grid, ordered like DTW but free at both ends along one of the
two sequences. Write ``C`` for a grid of ``n`` rows and ``m`` columns. It is
padded with a zero column before the first and after the last, giving
columns ``0 .. m + 1``, and the cumulative cost is

.. code-block:: text

    R(0, 0) = 0
    R(i, j) = C'(i, j) + softmin_gamma{R(i - 1, j - 1), R(i, j - 1),
                                       R(i - 1, j) if j in (0, m + 1)}

with ``C'`` the padded grid, a predecessor outside the grid left out, and
``softmin_gamma(a) = -gamma * log(sum(exp(-a / gamma)))``. The path cost is
``R(n - 1, m + 1)``. Inside the grid a path moves one column right at every
step (diagonally or not), so it matches every column exactly once. Its rows
never decrease. The vertical moves along the two zero columns let it enter
the rows anywhere and leave them anywhere at no cost. The soft-min sums over
all such paths; as ``gamma -> 0`` it tends to the cheapest one.

``otam(x, y)`` puts the frames of ``x`` on the columns, so every frame of
``x`` is matched, and ``y`` on the rows, which may be entered and left
anywhere (as TAP's source ``x``). The distance is the path cost divided by
``Lx``, the number of matched cells on every path: a mean frame distance,
comparable across lengths. Frames are compared by the cosine distance
``1 - cos``, as in the paper.

The program runs over anti-diagonals (``i + j`` constant) so that every step
is one vectorised operation over a batch of grids of different sizes. Each
grid's result depends only on its own block (the DP reads up and to the
left only), so padding changes nothing.
"""

from __future__ import annotations

import numpy as np
import torch

from .._engine import PairKernel, TensorSequences
from ..core import frame_mask

__all__ = ["OTAMKernel", "cosine_distances", "otam_pairwise", "otam_path_cost"]

_LOW = (torch.bfloat16, torch.float16)


def _layout(n_rows, width, device):
    """The skewed layout: diagonal ``k`` holds the cells ``(i, k - i)``.

    Returns ``(inside, flat)``, both (K, n_rows) with ``K = n_rows + width -
    1``: whether the cell lies in the grid, and its index in the flattened
    (n_rows, width) grid (clamped when it does not).
    """
    rows = torch.arange(n_rows, device=device)
    cols = torch.arange(n_rows + width - 1, device=device)[:, None] - rows[None, :]
    inside = (cols >= 0) & (cols < width)
    return inside, rows[None, :] * width + cols.clamp(0, width - 1)


def _shift_down(t, fill):
    """``t[:, i - 1]`` at row ``i`` of (P, N), ``fill`` at row 0."""
    return torch.cat([t.new_full((t.shape[0], 1), fill), t[:, :-1]], dim=1)


def _shift_up(t, fill):
    """``t[:, i + 1]`` at row ``i`` of (P, N), ``fill`` at the last row."""
    return torch.cat([t[:, 1:], t.new_full((t.shape[0], 1), fill)], dim=1)


def _cumulative(cost, can_rise, inside, gamma):
    """The table ``R`` (P, K, N) of the recurrence, diagonal by diagonal."""
    inf = float("inf")
    R = torch.full_like(cost, inf)
    R[:, 0, 0] = 0.0  # the start, a zero cell
    for k in range(1, cost.shape[1]):
        prev = R[:, k - 1]  # R(i, j - 1) at row i
        before = R[:, k - 2] if k >= 2 else torch.full_like(prev, inf)
        up = torch.where(can_rise[:, k], _shift_down(prev, inf), inf)  # R(i - 1, j)
        corner = _shift_down(before, inf)  # R(i - 1, j - 1)
        cand = torch.stack([corner, prev, up], dim=-1)
        soft = -gamma * torch.logsumexp(-cand / gamma, dim=-1)
        R[:, k] = torch.where(inside[k], cost[:, k] + soft, inf)
    return R


def _occupancy(R, cost, can_rise, inside, ends, grad, gamma):
    """``d R(end) / d cost`` (P, K, N): how much of the soft path uses each cell.

    Backwards over the diagonals, each cell collects the occupancy of its
    successors times the soft-min weight it had in theirs,
    ``exp((R(s) - cost(s) - R(p)) / gamma)`` (Cuturi and Blondel's
    soft-DTW gradient, for OTAM's moves).
    """
    P, K, _ = R.shape
    ninf = float("-inf")
    A = torch.where(inside, R - cost, ninf)  # the soft-min part of each cell
    A_up = torch.where(can_rise, A, ninf)  # reached by a vertical move
    E = torch.zeros_like(R)
    E[torch.arange(P, device=R.device), ends[0], ends[1]] = grad
    for k in range(K - 2, -1, -1):
        Rk = R[:, k]
        # successors: (i, j + 1) and (i + 1, j) on diagonal k + 1, (i + 1, j + 1)
        # on k + 2; cells outside the grid have A = -inf, hence weight 0
        acc = E[:, k + 1] * torch.exp((A[:, k + 1] - Rk) / gamma)
        w_up = torch.exp((_shift_up(A_up[:, k + 1], ninf) - Rk) / gamma)
        acc = acc + _shift_up(E[:, k + 1], 0.0) * w_up
        if k + 2 < K:
            w_corner = torch.exp((_shift_up(A[:, k + 2], ninf) - Rk) / gamma)
            acc = acc + _shift_up(E[:, k + 2], 0.0) * w_corner
        E[:, k] += torch.where(inside[k], acc, 0.0)
    return E


class _PathCost(torch.autograd.Function):
    """``R(end)`` of zero-padded grids, with the gradient of :func:`_occupancy`."""

    @staticmethod
    def forward(ctx, padded, vertical, ends, gamma):
        P, N, width = padded.shape
        inside, flat = _layout(N, width, padded.device)
        cost = torch.where(inside, padded.reshape(P, N * width)[:, flat], 0.0)
        can_rise = vertical[:, flat % width] & inside  # (P, K, N)
        R = _cumulative(cost, can_rise, inside, gamma)
        ctx.save_for_backward(R, cost, can_rise, ends)
        ctx.gamma, ctx.shape = gamma, (P, N, width)
        return R[torch.arange(P, device=R.device), ends[0], ends[1]]

    @staticmethod
    def backward(ctx, grad):
        R, cost, can_rise, ends = ctx.saved_tensors
        P, N, width = ctx.shape
        inside, flat = _layout(N, width, R.device)
        E = _occupancy(R, cost, can_rise, inside, ends, grad, ctx.gamma)
        out = R.new_zeros(P, N * width)
        out[:, flat[inside]] = E[:, inside]  # every grid cell once
        return out.view(P, N, width), None, None, None


def otam_path_cost(C, n_rows, n_cols, gamma):
    """Soft-min cost of OTAM's ordered paths through each grid (module doc).

    Parameters
    ----------
    C : torch.Tensor of shape (P, N, M)
        Frame-distance grids; grid ``p`` is the block ``C[p, :n_rows[p],
        :n_cols[p]]``, the rest is ignored.
    n_rows, n_cols : torch.LongTensor of shape (P,)
        At least 1 each.
    gamma : float
        Smoothing, > 0.

    Returns
    -------
    torch.Tensor of shape (P,)
        ``R(n_rows - 1, n_cols + 1)`` of each grid, differentiable in ``C``
        (the backward pass runs the same wavefront in reverse rather than
        recording every step).
    """
    _, N, M = C.shape
    dev = C.device
    n_rows = torch.as_tensor(n_rows, device=dev)
    n_cols = torch.as_tensor(n_cols, device=dev)
    real = frame_mask(n_rows, N)[:, :, None] & frame_mask(n_cols, M)[:, None, :]
    # a grid's last zero column is at n_cols + 1, beyond its real columns
    padded = torch.nn.functional.pad(torch.where(real, C, 0.0), (1, 1))
    col = torch.arange(M + 2, device=dev)
    vertical = (col == 0) | (col[None, :] == n_cols[:, None] + 1)  # (P, M + 2)
    end_row = n_rows - 1
    ends = torch.stack([end_row + n_cols + 1, end_row])  # (diagonal, row)
    return _PathCost.apply(padded, vertical, ends, float(gamma))


def cosine_distances(x, y):
    """``1 - cos`` between the frames of every ``x[i]`` and ``y[j]``.

    ``x`` (a, Lx, d) and ``y`` (b, Ly, d) give (a, b, Lx, Ly); zero (padded)
    frames give 1.
    """
    xn = torch.nn.functional.normalize(x, dim=-1)
    yn = torch.nn.functional.normalize(y, dim=-1)
    return 1.0 - torch.einsum("aid,bjd->abij", xn, yn)


def otam_pairwise(x, x_lengths, y, y_lengths, gamma, *, symmetric=False):
    """OTAM distances (a, b) from every ``x[i]`` to every ``y[j]``.

    Parameters
    ----------
    x : torch.Tensor of shape (a, Lx, d)
    x_lengths : torch.LongTensor of shape (a,)
    y : torch.Tensor of shape (b, Ly, d)
    y_lengths : torch.LongTensor of shape (b,)
    gamma : float
    symmetric : bool, default=False
        The mean of ``otam(x, y)`` and ``otam(y, x)``.

    Returns
    -------
    torch.Tensor of shape (a, b)
        ``otam(x[i], y[j])`` (module doc), in float32 (float64 for float64
        input), differentiable.
    """
    if x.dtype in _LOW or y.dtype in _LOW:
        x, y = x.float(), y.float()
    a, b = x.shape[0], y.shape[0]
    lx = torch.as_tensor(x_lengths, device=x.device)
    ly = torch.as_tensor(y_lengths, device=x.device)
    with torch.autocast(x.device.type, enabled=False):
        D = cosine_distances(x, y)  # (a, b, Lx, Ly)
        lx_pair = lx.repeat_interleave(b)  # pair (i, j) at i * b + j
        ly_pair = ly.repeat(a)
        # x on the columns: every frame of x matched once
        grids = D.transpose(2, 3).reshape(a * b, y.shape[1], x.shape[1])
        out = otam_path_cost(grids, ly_pair, lx_pair, gamma) / lx_pair.to(D.dtype)
        if symmetric:
            grids = D.reshape(a * b, x.shape[1], y.shape[1])
            back = otam_path_cost(grids, lx_pair, ly_pair, gamma)
            out = (out + back / ly_pair.to(D.dtype)) / 2
    return out.view(a, b)


class OTAMKernel(PairKernel):
    """OTAM between encoded sequences, as a tile kernel (no network).

    Sets are uploaded to ``device`` once per call, in float32.
    """

    def __init__(self, gamma, device, symmetric=False):
        self.gamma = float(gamma)
        self.device = device
        self.symmetric = symmetric
        self.parallel = device.type == "cpu"
        # per cell of a pair's grid: its distance, the padded copy, and
        # about twice as many cells of the skewed costs, table and masks
        self.bytes_per_cell = 48

    def upload(self, seqs) -> TensorSequences:
        if isinstance(seqs, TensorSequences) and seqs.data.dtype == torch.float32:
            return seqs
        return TensorSequences(seqs, self.device, torch.float32)

    def block(self, x, x_lengths, y, y_lengths):
        with torch.inference_mode():
            out = otam_pairwise(
                torch.as_tensor(x, dtype=torch.float32, device=self.device),
                torch.as_tensor(x_lengths, device=self.device),
                torch.as_tensor(y, dtype=torch.float32, device=self.device),
                torch.as_tensor(y_lengths, device=self.device),
                self.gamma,
                symmetric=self.symmetric,
            )
            return out.cpu().numpy().astype(np.float32)
