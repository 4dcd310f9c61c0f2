"""The same frame MLP and losses as TAPMetricLearner, over soft-DTW distances."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._device import resolve_device
from .._metric_learner import TAPMetricLearner
from .._modules import FrameMLP, mask_frames
from .._torch_data import TensorSequences

__all__ = ["SoftDTWMetricLearner"]


class LearnedSoftDTW(nn.Module):
    """Frame MLP ``h`` then the length-normalised soft-DTW divergence.

    tslearn's ``SoftDTWLossPyTorch`` needs equal lengths within a call, so
    pairs are grouped by their (Lx, Ly) and each group is one call.
    """

    def __init__(self, frame, gamma):
        super().__init__()
        self.frame = frame
        self.align = None
        self.gamma = gamma

    def transform(self, x, lengths):
        return mask_frames(self.frame(x), lengths)

    def forward(self, x, x_lengths, y=None, y_lengths=None, *, symmetric=False):
        from tslearn.metrics import SoftDTWLossPyTorch

        sdtw = SoftDTWLossPyTorch(gamma=self.gamma, normalize=True)
        zx = self.transform(x, x_lengths)
        zy, y_lengths = (
            (zx, x_lengths) if y is None else (self.transform(y, y_lengths), y_lengths)
        )
        lx, ly = x_lengths.tolist(), y_lengths.tolist()
        out = torch.zeros(len(lx), len(ly), dtype=zx.dtype, device=zx.device)
        for a in sorted(set(lx)):
            rows = [i for i, L in enumerate(lx) if L == a]
            for b in sorted(set(ly)):
                cols = [j for j, L in enumerate(ly) if L == b]
                xi = zx[rows, :a].repeat_interleave(len(cols), 0)  # (r*c, a, d)
                yj = zy[cols, :b].repeat(len(rows), 1, 1)  # (r*c, b, d)
                vals = sdtw(xi, yj) / ((a + b) / 2)  # per step, like TAP's scale
                out[np.ix_(rows, cols)] = vals.view(len(rows), len(cols))
        return out


class SoftDTWMetricLearner(TAPMetricLearner):
    """Per-frame MLP learned with a metric loss over soft-DTW distances.

    The baseline of the TAP paper's Table 1: everything as in
    :class:`sktap.TAPMetricLearner` (frame MLP, losses, optimiser, loop)
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
    hidden_layer_sizes, n_components, margin, alpha, beta, batch_size, \
    max_epochs, learning_rate, weight_decay, validation_fraction, \
    n_iter_no_change, device, random_state, verbose, callback, warm_start, \
    checkpoint_path
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

    augment = False
    self_supervised_weight = 0.0

    _parameter_constraints = {
        **{
            k: v
            for k, v in TAPMetricLearner._parameter_constraints.items()
            if k
            not in (
                "tap_channels",
                "tap_kernel_sizes",
                "augment",
                "self_supervised_weight",
            )
        },
        "gamma": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        loss="triplet",
        *,
        hidden_layer_sizes=(1024, 1024),
        n_components=None,
        gamma=0.1,
        margin=0.1,
        alpha=40.0,
        beta=2.0,
        batch_size=64,
        max_epochs=50,
        learning_rate=1e-4,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.gamma = gamma
        self.margin = margin
        self.alpha = alpha
        self.beta = beta
        self.batch_size = batch_size
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

    def _build_model(self, n_features, supervised):
        hidden = tuple(self.hidden_layer_sizes)
        frame = FrameMLP(n_features, hidden, self._n_components(n_features))
        return LearnedSoftDTW(frame, self.gamma)

    def fit(self, X, y=None):
        """Learn the frame MLP from labelled sequences (labels are required)."""
        if y is None:
            raise ValueError("SoftDTWMetricLearner.fit needs labels y")
        return super().fit(X, y)

    def pairwise_distances(self, X, Y=None, *, symmetric=False, batch_size=64):
        """Learned soft-DTW distances (n_x, n_y) between transformed sequences.

        The soft-DTW divergence is symmetric, so ``symmetric`` changes nothing;
        it is accepted for the same signature as TAPMetricLearner.
        """
        check_is_fitted(self, "model_")
        Zx = self._transform_seqs(X, "X")
        Zy = Zx if Y is None else self._transform_seqs(Y, "Y")
        device = resolve_device(self.device)
        out = np.empty((len(Zx), len(Zy)))
        model = _Identity(self.model_.gamma)
        with torch.no_grad():
            for i in range(0, len(Zx), batch_size):
                xi = TensorSequences(
                    Zx.take(np.arange(i, min(i + batch_size, len(Zx)))), device
                )
                for j in range(0, len(Zy), batch_size):
                    stop = min(j + batch_size, len(Zy))
                    yj = TensorSequences(Zy.take(np.arange(j, stop)), device)
                    block = model(xi.data, xi.lengths, yj.data, yj.lengths)
                    out[i : i + batch_size, j : j + batch_size] = block.cpu().numpy()
        return out

    def tap_alignment(self, x, y):
        """The soft-DTW alignment (Lx, Ly) of the learned frames of ``x`` and ``y``.

        tslearn's expected alignment matrix, each row scaled to sum to
        ``1 / Lx`` like a TAP alignment so the two can be compared.
        """
        from tslearn.metrics import soft_dtw_alignment

        check_is_fitted(self, "model_")
        zx, zy = (
            self._transform_seqs([s], name).data[0] for s, name in ((x, "x"), (y, "y"))
        )
        A, _ = soft_dtw_alignment(zx, zy, gamma=self.gamma)
        return A / np.maximum(A.sum(axis=1, keepdims=True), 1e-300) / len(zx)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class _Identity(LearnedSoftDTW):
    """Soft-DTW on already transformed frames."""

    def __init__(self, gamma):
        super().__init__(nn.Identity(), gamma)

    def transform(self, x, lengths):
        return x
