"""Training losses: metric losses on TAP distance matrices, self-supervision."""

from ._metric import (
    BatchHardTripletLoss,
    BinomialDevianceLoss,
    LiftedStructureLoss,
    batch_hard_triplet_loss,
    binomial_deviance_loss,
    get_metric_loss,
    lifted_structure_loss,
)
from ._mining import loss_from_pairs, mined_pairs, mining_fraction
from ._self_supervised import (
    SelfSupervisedAlignmentLoss,
    ground_truth_alignments,
    self_supervised_loss,
)

__all__ = [
    "BatchHardTripletLoss",
    "BinomialDevianceLoss",
    "LiftedStructureLoss",
    "SelfSupervisedAlignmentLoss",
    "batch_hard_triplet_loss",
    "binomial_deviance_loss",
    "get_metric_loss",
    "ground_truth_alignments",
    "lifted_structure_loss",
    "loss_from_pairs",
    "mined_pairs",
    "mining_fraction",
    "self_supervised_loss",
]
