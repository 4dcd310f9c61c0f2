"""The machinery every estimator shares (private: not part of the public API).

Device and dtype decisions with the inference contexts that put fitted
networks on a device, the one place where sequences become tensors,
label checks, the one training loop, safe persistence with its registry, and
the tiling executor behind ``cdist_tap``, the learners' pairwise distances
and the k-NN search.
"""

from ._device import (
    InferenceCache,
    InferenceContext,
    inference_net,
    inference_scope,
    resolve_device,
    resolve_dtype,
    same_device,
)
from ._kernels import TAPKernel, check_net
from ._labels import check_labels, common_train_params, split_validation
from ._persistence import (
    SaveMixin,
    classes_from_state,
    classes_state,
    estimator_state,
    load,
    register,
    restore_estimator,
)
from ._tensors import TensorSequences, build_seeded, generator_from, init_parameters
from ._tiling import (
    PairKernel,
    check_form,
    check_n_jobs,
    check_working_memory,
    iter_pairs,
    iter_tiles,
    length_chunks,
    progress,
    run_form,
    run_tiles,
    self_distances,
    to_divergence,
)
from ._topk import mean_pool, merge_topk, sorted_topk
from ._trainable import (
    FrameEncoderMixin,
    TrainableMixin,
    alignment_network,
    alignment_params,
    check_hidden_sizes,
    frame_encoder_params,
    frame_width,
    refuse_code_params,
)
from ._training import (
    ClassBalancedBatches,
    Episodes,
    EpochBatches,
    auto_samples_per_class,
)

__all__ = [
    "ClassBalancedBatches",
    "Episodes",
    "EpochBatches",
    "FrameEncoderMixin",
    "InferenceCache",
    "InferenceContext",
    "PairKernel",
    "SaveMixin",
    "TAPKernel",
    "TensorSequences",
    "TrainableMixin",
    "alignment_network",
    "alignment_params",
    "auto_samples_per_class",
    "build_seeded",
    "check_form",
    "check_hidden_sizes",
    "check_labels",
    "check_n_jobs",
    "check_net",
    "check_working_memory",
    "classes_from_state",
    "classes_state",
    "common_train_params",
    "estimator_state",
    "frame_encoder_params",
    "frame_width",
    "generator_from",
    "inference_net",
    "inference_scope",
    "init_parameters",
    "iter_pairs",
    "iter_tiles",
    "length_chunks",
    "load",
    "mean_pool",
    "merge_topk",
    "progress",
    "refuse_code_params",
    "register",
    "resolve_device",
    "resolve_dtype",
    "restore_estimator",
    "run_form",
    "run_tiles",
    "same_device",
    "self_distances",
    "sorted_topk",
    "split_validation",
    "to_divergence",
]
