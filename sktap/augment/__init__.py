"""Self-supervised augmentations with known ground-truth alignments."""

from ._augment import augment_batch, random_blur, random_merge

__all__ = ["augment_batch", "random_blur", "random_merge"]
