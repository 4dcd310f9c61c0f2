"""The machinery every estimator shares.

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

__all__ = [
    "InferenceCache",
    "InferenceContext",
    "PairKernel",
    "TAPKernel",
    "TensorSequences",
    "build_seeded",
    "check_form",
    "check_labels",
    "check_n_jobs",
    "check_net",
    "check_working_memory",
    "common_train_params",
    "generator_from",
    "inference_net",
    "inference_scope",
    "init_parameters",
    "iter_pairs",
    "iter_tiles",
    "length_chunks",
    "progress",
    "resolve_device",
    "resolve_dtype",
    "run_form",
    "run_tiles",
    "same_device",
    "self_distances",
    "split_validation",
    "to_divergence",
]
