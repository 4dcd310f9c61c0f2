"""Plots of TAP alignments and training curves (needs the ``plot`` extra).

matplotlib is imported only when a function runs, so ``import sktap.plotting``
works without it; install it with ``pip install 'sktap[plot]'``.
"""

from ._plots import (
    AlignmentAxes,
    plot_alignment,
    plot_alignment_comparison,
    plot_training_history,
)

__all__ = [
    "AlignmentAxes",
    "plot_alignment",
    "plot_alignment_comparison",
    "plot_training_history",
]
