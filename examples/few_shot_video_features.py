"""
Few-shot action recognition on per-frame video features
=======================================================

The few-shot video protocol of the TAP paper (section 4.3) represents a video
by the features of a few frames sampled uniformly, from an ImageNet
ResNet-50 with its classifier removed: a sequence of, say, 8 frames x 2048
features. ``TAPFewShotClassifier`` learns a frame encoder and TAP on such
sequences from episodes of the training classes, then classifies videos of
*novel* classes from a handful of labelled examples (``set_support``).

This script shows the whole path:

1. ``extract_features``: decode each video with torchvision, sample
   ``n_frames`` frames uniformly (the middle frame of equal segments), run
   them through ResNet-50 without its ``fc`` layer;
2. ``fit`` on the training classes, ``set_support`` with K examples of each
   novel class, ``predict`` the rest;
3. ``evaluate_episodes`` for the mean 5-way accuracy over random episodes
   of the novel classes, with its 95% interval.

With ``--video-root DIR`` it reads ``DIR/<class name>/*.mp4`` (for example
a few-shot split of Kinetics, UCF101 or HMDB51) and needs torchvision and
network access for the pretrained weights, once. Without it, random
stand-in features of the same shape show the API in a few seconds (they
are easy to tell apart: expect accuracies near 1). It is not part of the
documentation gallery (it would download weights).

Run::

    python examples/few_shot_video_features.py                   # stand-in features
    python examples/few_shot_video_features.py --video-root videos --novel 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from sktap import TAPFewShotClassifier

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov"}


def _torchvision():
    try:
        import torchvision
    except ImportError:
        raise SystemExit(
            "extracting video features needs torchvision (and a video backend "
            "such as PyAV): pip install torchvision av"
        ) from None
    return torchvision


def frame_encoder(device):
    """ImageNet ResNet-50 with the classifier removed, and its preprocessing."""
    tv = _torchvision()
    weights = tv.models.ResNet50_Weights.DEFAULT
    model = tv.models.resnet50(weights=weights)
    model.fc = torch.nn.Identity()  # keep the 2048-d pooled features
    return model.eval().to(device), weights.transforms()


def uniform_frames(n_total, n_frames):
    """Index of the middle frame of ``n_frames`` equal segments of the video."""
    return ((np.arange(n_frames) + 0.5) * n_total / n_frames).astype(int)


@torch.inference_mode()
def extract_features(paths, *, n_frames=8, device="cpu"):
    """Per-frame ResNet-50 features, array of shape (n_videos, n_frames, 2048)."""
    tv = _torchvision()
    model, preprocess = frame_encoder(device)
    out = []
    for path in paths:
        video, _, _ = tv.io.read_video(str(path), pts_unit="sec", output_format="TCHW")
        frames = video[uniform_frames(len(video), n_frames)]  # (n_frames, 3, H, W)
        out.append(model(preprocess(frames).to(device)).cpu().numpy())
    return np.stack(out)


def videos_by_class(root):
    paths, labels = [], []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for video in sorted(folder.iterdir()):
            if video.suffix.lower() in VIDEO_SUFFIXES:
                paths.append(video)
                labels.append(folder.name)
    return paths, np.array(labels)


def stand_in_features(n_classes=12, per_class=10, n_frames=8, dim=2048, seed=0):
    """Random features with a per-class sequence of frame prototypes."""
    rng = np.random.RandomState(seed)
    prototypes = rng.rand(n_classes, n_frames, dim)  # non-negative, like ReLU output
    noise = 0.5 * rng.rand(n_classes, per_class, n_frames, dim)
    X = (prototypes[:, None] + noise).reshape(-1, n_frames, dim)
    y = np.repeat([f"action_{c}" for c in range(n_classes)], per_class)
    return X.astype(np.float32), y


def split_classes(y, n_novel, seed=0):
    classes = np.random.RandomState(seed).permutation(np.unique(y))
    novel = np.isin(y, classes[:n_novel])
    return ~novel, novel


def main():
    p = argparse.ArgumentParser(description="Few-shot video classification with TAP")
    p.add_argument("--video-root", help="folder of class folders of videos")
    p.add_argument("--novel", type=int, default=5, help="classes held out as novel")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--episodes", type=int, default=200, help="training episodes")
    p.add_argument("--device", default="auto")
    args = p.parse_args()

    if args.video_root:
        paths, y = videos_by_class(args.video_root)
        device = args.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        X = extract_features(paths, n_frames=args.frames, device=device)
    else:
        X, y = stand_in_features(n_frames=args.frames)
    n, frames, dim = X.shape
    print(f"{n} videos as sequences of {frames} frames x {dim} features")

    base, novel = split_classes(y, args.novel)
    clf = TAPFewShotClassifier(
        n_way=5,
        k_shot=1,
        n_query=2,
        n_episodes=args.episodes,
        encoder="mlp",  # per-frame: CNN features carry no local time context
        hidden_layer_sizes=(1024,),
        n_components=256,  # a smaller frame embedding than the 2048-d input
        device=args.device,
        random_state=0,
    )
    clf.fit(X[base], y[base])

    # Novel classes, never seen in training: one labelled video each.
    X_new, y_new = X[novel], y[novel]
    first = np.unique(y_new, return_index=True)[1]
    rest = np.setdiff1d(np.arange(len(y_new)), first)
    clf.set_support(X_new[first], y_new[first])
    accuracy = np.mean(clf.predict(X_new[rest]) == y_new[rest])
    print(f"{len(first)}-way 1-shot accuracy on the other novel videos: {accuracy:.3f}")

    mean, half = clf.evaluate_episodes(
        X_new, y_new, n_way=min(5, len(first)), k_shot=1, n_episodes=500, random_state=0
    )
    print(f"random episodes of the novel classes: {mean:.3f} ± {half:.3f} (95%)")


if __name__ == "__main__":
    main()
