"""The same frame encoder and losses as TAPMetricLearner, over soft-DTW distances."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch

from .._engine import PairKernel, register, resolve_device
from .._sklearn_compat import Interval
from ..core import SequenceDistanceModel
from ..metric_learning import TorchMetricLearner

__all__ = ["SoftDTWMetricLearner"]


class SoftDTWModel(SequenceDistanceModel):
    """Frame encoder ``h`` then the length-normalised soft-DTW divergence.

    tslearn's ``SoftDTWLossPyTorch`` needs equal lengths within a call, so
    pairs are grouped by their (Lx, Ly) and each group is one call.
    """

    def __init__(self, frame, gamma, scaler=None):
        super().__init__(frame, scaler)
        self.gamma = gamma

    def pairwise(self, zx, x_lengths, zy, y_lengths, *, symmetric=False):
        """Soft-DTW divergences (a, b): symmetric already, whatever ``symmetric``."""
        return soft_dtw_pairwise(zx, x_lengths, zy, y_lengths, self.gamma)


def soft_dtw_plan(x, y, gamma):
    """tslearn's expected soft-DTW alignment of ``x`` (Lx, d) onto ``y`` (Ly, d),
    each row scaled to sum ``1 / Lx`` like TAP's ``T`` (shape (Lx, Ly)).

    Every row of the expected alignment holds at least one cell of the
    path, so its sum is positive; the guard only keeps an underflowed row
    from dividing 0 by 0.
    """
    from tslearn.metrics import soft_dtw_alignment

    A, _ = soft_dtw_alignment(x, y, gamma=gamma)  # (Lx, Ly), rows sum to >= 1
    return A / np.maximum(A.sum(axis=1, keepdims=True), 1e-300) / len(x)


def soft_dtw_pairwise(zx, x_lengths, zy, y_lengths, gamma):
    """Length-normalised soft-DTW divergences (a, b) between padded frames."""
    from tslearn.metrics import SoftDTWLossPyTorch

    sdtw = SoftDTWLossPyTorch(gamma=gamma, normalize=True)
    lx, ly = x_lengths.tolist(), y_lengths.tolist()
    out = torch.zeros(len(lx), len(ly), dtype=zx.dtype, device=zx.device)
    # tslearn needs equal lengths within a call: one call per (Lx, Ly)
    for a in sorted(set(lx)):
        rows = [i for i, L in enumerate(lx) if L == a]
        for b in sorted(set(ly)):
            cols = [j for j, L in enumerate(ly) if L == b]
            xi = zx[rows, :a].repeat_interleave(len(cols), 0)  # (r*c, a, d)
            yj = zy[cols, :b].repeat(len(rows), 1, 1)  # (r*c, b, d)
            vals = sdtw(xi, yj) / ((a + b) / 2)  # per step, like TAP's scale
            out[np.ix_(rows, cols)] = vals.view(len(rows), len(cols))
    return out


class SoftDTWKernel(PairKernel):
    """Learned soft-DTW between encoded sequences, as a tile kernel."""

    def __init__(self, gamma, device):
        self.gamma = gamma
        self.device = device
        self.parallel = device.type == "cpu"
        self.bytes_per_cell = 64  # tslearn's DP tables and their gradients

    def _tensors(self, x, lx, y, ly):
        return (
            torch.as_tensor(x, dtype=torch.float32).to(self.device),
            torch.as_tensor(lx).to(self.device),
            torch.as_tensor(y, dtype=torch.float32).to(self.device),
            torch.as_tensor(ly).to(self.device),
        )

    def block(self, x, x_lengths, y, y_lengths):
        with torch.no_grad():
            out = soft_dtw_pairwise(
                *self._tensors(x, x_lengths, y, y_lengths), self.gamma
            )
        return out.cpu().numpy().astype(np.float32)


@register
class SoftDTWMetricLearner(TorchMetricLearner):
    """A frame encoder learned with a metric loss over soft-DTW distances.

    The baseline of the TAP paper's Table 1: everything as in
    :class:`sktap.TAPMetricLearner` (frame encoder and its defaults, input
    scaling, downsampling, losses, optimiser, loop)
    except the distance, which is the soft-DTW divergence (Blondel et al.,
    2021; tslearn's ``SoftDTWLossPyTorch(normalize=True)``) divided by
    ``(Lx + Ly) / 2`` so that margins apply at a per-step scale like TAP's.
    There is no self-supervised term (it is specific to TAP) and ``fit``
    needs labels.

    Parameters
    ----------
    loss : {"triplet", "lifted", "binomial"}, default="triplet"
    gamma : float, default=0.1
        Soft-DTW smoothing.

    Other Parameters
    ----------------
    encoder, hidden_layer_sizes, n_components, encoder_kernel_size, \
    downsample, scale, precision, margin, alpha, beta, batch_size, \
    samples_per_class, max_epochs, learning_rate, weight_decay, \
    validation_fraction, n_iter_no_change, device, random_state, verbose, \
    callback, warm_start, checkpoint_path
        As in :class:`sktap.TAPMetricLearner`.

    References
    ----------
    .. [1] F. Su and J. Wen, "Temporal Alignment Prediction for Supervised
       Representation Learning and Few-Shot Sequence Classification",
       ICLR 2022, Table 1.
    .. [2] M. Blondel, A. Mensch and J.-P. Vert, "Differentiable Divergences
       Between Time Series", AISTATS 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sktap.baselines import SoftDTWMetricLearner
    >>> rng = np.random.RandomState(0)
    >>> X = [rng.randn(rng.randint(4, 6), 2) + (i % 2) for i in range(6)]
    >>> est = SoftDTWMetricLearner(
    ...     hidden_layer_sizes=(8,), max_epochs=1, device="cpu", random_state=0
    ... ).fit(X, [i % 2 for i in range(6)])
    >>> est.pairwise_distances(X).shape
    (6, 6)
    """

    _requires_labels = True

    def _metric_path(self, device):
        # soft-DTW has no alignment network to bucket or mine through: every
        # minibatch scores all its pairs (grouped by length in the loss)
        return "all_pairs"

    _parameter_constraints = {
        **TorchMetricLearner._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        loss="triplet",
        *,
        encoder="conv",
        hidden_layer_sizes=(64, 64, 64),
        n_components=32,
        encoder_kernel_size=5,
        downsample="auto",
        scale=True,
        precision="float32",
        gamma=0.1,
        margin=0.1,
        alpha=40.0,
        beta=2.0,
        batch_size=16,
        samples_per_class="auto",
        max_epochs=40,
        learning_rate=3e-3,
        weight_decay=1e-4,
        validation_fraction=0.0,
        n_iter_no_change=None,
        device="auto",
        random_state=None,
        verbose=0,
        callback=None,
        warm_start=False,
        checkpoint_path=None,
    ):
        self.loss = loss
        self.encoder = encoder
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.encoder_kernel_size = encoder_kernel_size
        self.downsample = downsample
        self.scale = scale
        self.precision = precision
        self.gamma = gamma
        self.margin = margin
        self.alpha = alpha
        self.beta = beta
        self.batch_size = batch_size
        self.samples_per_class = samples_per_class
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback
        self.warm_start = warm_start
        self.checkpoint_path = checkpoint_path

    def _build_model(self, n_features, kind):
        frame, _ = self._build_frame(n_features, kind["stride"], kind.get("frames"))
        return SoftDTWModel(frame, self.gamma, self._scaler(n_features))

    def distance_kernel(self, *, symmetric=False):
        """Learned soft-DTW between encoded sequences (symmetric already)."""
        return SoftDTWKernel(self.gamma, resolve_device(self.device))

    def _pair_alignment(self, zx, zy):
        """tslearn's expected soft-DTW alignment, rows scaled to sum to ``1 / Lx``.

        Scaled like a TAP alignment so that the two can be compared.
        """
        return soft_dtw_plan(zx, zy, self.gamma)
