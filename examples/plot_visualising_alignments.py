"""
Visualising alignments
======================

TAP's distance is the sum of frame distances weighted by a soft alignment
``T`` that a network predicts. Looking at ``T`` shows what the distance
matched with what. This example draws alignments the way the paper's Fig. 2
does, with :func:`sktap.plotting.plot_alignment`, and compares TAP's
alignment with soft-DTW's with :func:`sktap.plotting.plot_alignment_comparison`,
on a pair of sequences whose true alignment is known.
"""

# %%
# A warped pair with a known alignment
# ------------------------------------
# With ``return_warps=True``, :func:`sktap.datasets.make_warped_sequences`
# also returns, for every frame, the time of the class template it was read
# at. Two sequences of one class are then truly aligned where their template
# times agree: frame ``i`` of ``x`` matches the frame ``j`` of ``y`` whose
# template time is nearest.
import matplotlib.pyplot as plt
import numpy as np

from sktap import TAPMetricLearner
from sktap.datasets import make_warped_sequences
from sktap.metrics import tap_alignment
from sktap.plotting import plot_alignment, plot_alignment_comparison

X, _, warps = make_warped_sequences(
    n_classes=1,
    n_per_class=16,
    length_range=(25, 40),
    warp_strength=1.0,
    noise=0.05,
    return_warps=True,
    random_state=3,
)
lengths = [len(w) for w in warps]
x, y = X[0, : lengths[0]], X[1, : lengths[1]]  # drop the NaN padding
wx, wy = warps[0], warps[1]  # (Lx,), (Ly,) template times in [0, 1]

T_true = np.zeros((len(x), len(y)))
T_true[np.arange(len(x)), np.abs(wx[:, None] - wy[None, :]).argmin(axis=1)] = 1
T_true /= len(x)  # TAP's normalisation: rows sum to 1 / Lx
plot_alignment(x, y, T_true, title="true alignment (from the warps)")


# %%
# How far an alignment is from the truth
# --------------------------------------
# Row ``i`` of ``Lx * T`` is a distribution over the frames of ``y``; the
# template time it expects is ``sum_j Lx * T[i, j] * wy[j]``, and
# ``|expected - wx[i]|`` is how far (as a fraction of the template) the
# alignment of frame ``i`` is off.
def time_error(T):
    expected = len(x) * T @ wy  # (Lx,)
    return float(np.mean(np.abs(expected - wx)))


print(f"true alignment:         {time_error(T_true):.3f}")

# %%
# The parameter-free TAP alignment
# --------------------------------
# Without a network, each frame of ``x`` spreads its weight over the frames of
# ``y`` that look like it, wherever they are in time: here, every motif
# appears once per sequence, but similar values recur, so the alignment is
# blurred and has off-diagonal modes.
T_free = tap_alignment(x, y)
print(f"parameter-free TAP:     {time_error(T_free):.3f}")

# %%
# A learned alignment network
# ---------------------------
# Fitted without labels, :class:`sktap.TAPMetricLearner` trains the alignment
# network alone with the paper's self-supervised objective: each sequence is
# aligned with a randomly blurred or merged copy of itself, whose true
# alignment is known. The network sees frame distances *and* relative
# positions, so it can learn to favour matches at similar relative times.
# Tiny sizes and a high learning rate keep this to seconds on a CPU.
learner = TAPMetricLearner(
    tap_channels=(8,),
    tap_kernel_sizes=(5, 3),
    batch_size=16,
    max_epochs=12,
    learning_rate=1e-2,
    random_state=0,
).fit(X)
print(f"self-supervised TAP:    {time_error(learner.alignment(x, y)):.3f}")

# %%
# Side by side with soft-DTW
# --------------------------
# Soft-DTW's expected alignment (tslearn's ``soft_dtw_alignment``) is
# monotone by construction; it is row-normalised and divided by ``Lx`` here
# so that both panels share TAP's scale. The learned alignment is
# *predicted* in one forward pass and need not be monotone; soft-DTW solves a
# dynamic program per pair. (For a learner, soft-DTW is run on the same
# transformed frames that TAP compares; unsupervised fits leave them as is.)
from tslearn.metrics import soft_dtw_alignment

A, _ = soft_dtw_alignment(x, y, gamma=0.1)  # rows sum to >= 1
T_sdtw = A / A.sum(axis=1, keepdims=True) / len(x)  # TAP's normalisation
print(f"soft-DTW:               {time_error(T_sdtw):.3f}")
fig = plot_alignment_comparison(x, y, learner=learner, gamma=0.1)

if plt.get_backend().lower() != "agg":  # a script run headless must not block
    plt.show()
