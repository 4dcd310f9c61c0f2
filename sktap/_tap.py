"""The TAP distance on padded torch batches (differentiable, device-agnostic).

Shapes: ``x`` (a, Lx, d) and ``y`` (b, Ly, d) are zero-padded sequences
with true lengths ``x_lengths`` (a,) and ``y_lengths`` (b,). The functions
keep the device and dtype of their inputs and know nothing of estimators.

Padded batches reproduce the per-pair result exactly: ``D`` and ``P`` are
zero outside each pair's ``Lx x Ly`` block, the network zeroes activations
there after every hidden layer (reproducing the zero padding of an unpadded
convolution), the softmax ignores padded target frames and the L1 step
divides by the true ``Lx``.
"""

from __future__ import annotations

import torch

__all__ = ["frame_distances", "tap_paired", "tap_pairwise"]


def frame_distances(x, y, *, paired: bool = False):
    """Euclidean distances between frames.

    Returns ``(a, b, Lx, Ly)``, or ``(n, Lx, Ly)`` with ``paired=True``
    (``x`` and ``y`` then hold ``n`` pairs).
    """
    # Direct differences, not the |x|^2 + |y|^2 - 2xy expansion: near-equal
    # frames lose all precision there (sqrt amplifies the cancellation), and
    # this is O(Lx Ly d), small next to the network's convolutions.
    mode = "donot_use_mm_for_euclid_dist"
    if paired:
        return torch.cdist(x, y, compute_mode=mode)
    a, Lx, d = x.shape
    b, Ly, _ = y.shape
    D = torch.cdist(x.reshape(a * Lx, d), y.reshape(b * Ly, d), compute_mode=mode)
    return D.view(a, Lx, b, Ly).permute(0, 2, 1, 3)


def _as_lengths(lengths, n, max_len, device):
    lengths = torch.as_tensor(lengths, device=device).long()
    if lengths.shape != (n,):
        raise ValueError(f"lengths must have shape ({n},); got {tuple(lengths.shape)}")
    return lengths


def _positions(lengths, max_len, dtype):
    # (n, max_len): (i + 1) / L for valid i, 0 beyond the end
    idx = torch.arange(1, max_len + 1, device=lengths.device, dtype=dtype)
    pos = idx[None, :] / lengths[:, None].to(dtype)
    return pos * (idx[None, :] <= lengths[:, None])


def _align(D, P, mask, row_mask, col_mask, x_len, net, x, y):
    """Alignment T and distance from D (n, Lx, Ly); masks may be None."""
    if net is None:
        S = -D
    else:
        S = net(x, y, D, P, mask)
    if col_mask is not None:
        S = S.masked_fill(~col_mask, float("-inf"))
    A = torch.softmax(S, dim=-1)  # each source frame spreads mass 1
    if row_mask is not None:
        A = A * row_mask
    T = A / x_len.to(A.dtype)[:, None, None]
    return T, (T * D).sum(dim=(1, 2))


def _needs_frames(net) -> bool:
    return net is not None and getattr(net, "needs_frames", False)


def tap_paired(x, x_lengths, y, y_lengths, net=None, *, return_alignment=False):
    """TAP distance of ``n`` pairs ``(x[k], y[k])``, x as the source.

    Parameters
    ----------
    x : Tensor of shape (n, Lx, d)
    x_lengths : Tensor or array of shape (n,)
    y : Tensor of shape (n, Ly, d)
    y_lengths : Tensor or array of shape (n,)
    net : torch.nn.Module or None
        Alignment network (``None``: the parameter-free soft nearest-frame
        distance, ``g = 0``).
    return_alignment : bool, default=False
        Also return the alignments ``T`` of shape (n, Lx, Ly).

    Returns
    -------
    dist : Tensor of shape (n,)
    T : Tensor of shape (n, Lx, Ly), only if ``return_alignment``
    """
    n, Lx, _ = x.shape
    Ly = y.shape[1]
    lx = _as_lengths(x_lengths, n, Lx, x.device)
    ly = _as_lengths(y_lengths, n, Ly, x.device)
    D = frame_distances(x, y, paired=True)
    P_x, P_y = _positions(lx, Lx, D.dtype), _positions(ly, Ly, D.dtype)
    row = torch.arange(Lx, device=x.device)[None, :] < lx[:, None]  # (n, Lx)
    col = torch.arange(Ly, device=x.device)[None, :] < ly[:, None]  # (n, Ly)
    valid = row[:, :, None] & col[:, None, :]  # (n, Lx, Ly)
    full = bool(valid.all())
    P = (P_x[:, :, None] - P_y[:, None, :]).abs() * valid
    if full:
        mask = row_mask = col_mask = None
    else:
        D = D * valid
        mask = valid[:, None].to(D.dtype)
        row_mask = row[:, :, None].to(D.dtype)
        col_mask = col[:, None, :]
    T, dist = _align(D, P, mask, row_mask, col_mask, lx, net, x, y)
    return (dist, T) if return_alignment else dist


def _pairwise_one_way(D, lx, ly, net, x, y):
    a, b, Lx, Ly = D.shape
    row = torch.arange(Lx, device=D.device)[None, :] < lx[:, None]  # (a, Lx)
    col = torch.arange(Ly, device=D.device)[None, :] < ly[:, None]  # (b, Ly)
    P_x, P_y = _positions(lx, Lx, D.dtype), _positions(ly, Ly, D.dtype)
    P = (P_x[:, None, :, None] - P_y[None, :, None, :]).abs()  # (a, b, Lx, Ly)
    full = bool(row.all()) and bool(col.all())
    D = D.reshape(a * b, Lx, Ly)
    P = P.reshape(a * b, Lx, Ly)
    if full:
        mask = row_mask = col_mask = None
    else:
        valid = (row[:, None, :, None] & col[None, :, None, :]).reshape(a * b, Lx, Ly)
        D = D * valid
        P = P * valid
        mask = valid[:, None].to(D.dtype)
        row_mask = row[:, None, :, None].expand(a, b, Lx, 1).reshape(a * b, Lx, 1)
        row_mask = row_mask.to(D.dtype)
        col_mask = col[None, :, None, :].expand(a, b, 1, Ly).reshape(a * b, 1, Ly)
    if _needs_frames(net):
        x = x[:, None].expand(a, b, Lx, x.shape[-1]).reshape(a * b, Lx, -1)
        y = y[None, :].expand(a, b, Ly, y.shape[-1]).reshape(a * b, Ly, -1)
    else:
        x = y = None
    lx_pairs = lx[:, None].expand(a, b).reshape(a * b)
    T, dist = _align(D, P, mask, row_mask, col_mask, lx_pairs, net, x, y)
    return dist.view(a, b), T.view(a, b, Lx, Ly)


def tap_pairwise(
    x,
    x_lengths,
    y,
    y_lengths,
    net=None,
    *,
    symmetric: bool = False,
    return_alignment: bool = False,
):
    """TAP distances between every ``x[i]`` (source) and every ``y[j]``.

    All ``a * b`` pairs go through the network in one batched call.

    Parameters
    ----------
    x : Tensor of shape (a, Lx, d)
    x_lengths : Tensor or array of shape (a,)
    y : Tensor of shape (b, Ly, d)
    y_lengths : Tensor or array of shape (b,)
    net : torch.nn.Module or None
        Alignment network; ``None`` means ``g = 0``.
    symmetric : bool, default=False
        Average ``tap(x, y)`` and ``tap(y, x)``.
    return_alignment : bool, default=False
        Also return the alignments ``T`` (a, b, Lx, Ly) of ``x`` onto ``y``
        (not available with ``symmetric=True``).

    Returns
    -------
    dist : Tensor of shape (a, b)
    T : Tensor of shape (a, b, Lx, Ly), only if ``return_alignment``

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(3, 6, 2)
    >>> tap_pairwise(x, [6, 4, 2], x[:2], [6, 5]).shape
    torch.Size([3, 2])
    """
    if symmetric and return_alignment:
        raise ValueError("return_alignment is not available with symmetric=True")
    a, Lx, _ = x.shape
    b, Ly, _ = y.shape
    lx = _as_lengths(x_lengths, a, Lx, x.device)
    ly = _as_lengths(y_lengths, b, Ly, x.device)
    D = frame_distances(x, y)  # (a, b, Lx, Ly)
    dist, T = _pairwise_one_way(D, lx, ly, net, x, y)
    if symmetric:
        back, _ = _pairwise_one_way(D.permute(1, 0, 3, 2), ly, lx, net, y, x)
        dist = (dist + back.T) / 2
    return (dist, T) if return_alignment else dist
