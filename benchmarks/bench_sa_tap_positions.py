"""Why SA-TAP trailed TAP: the scale of its position embedding.

SA-TAP adds sinusoidal positions to the encoded frames before its
self-attention (paper Eqs. 12-13). The frames are L2-normalised (norm 1);
the transformer's sinusoidal embedding has norm ``sqrt(d / 2)``, 4 for the
32-dim frames of the few-shot defaults, so the positions swamp the frames.
This study fits ``TAPFewShotClassifier(self_attention=True)`` with the
defaults chosen in ``bench_few_shot_defaults.py`` ("base3, 500 episodes")
on the same data and test episodes, with the attention layer's forward
replaced by each variant:

- "paper positions": ``z = x + PE`` (what sktap did before);
- "paper positions + L2 output": the same, the output L2-normalised;
- "unit positions + L2 output": ``PE * sqrt(2 / d)``, output normalised;
- "no positions + L2 output": no positions at all, output normalised.

"unit positions" alone (``PE * sqrt(2 / d)``, LayerNorm output) is what
:class:`sktap.few_shot.FrameSelfAttention` now does; its row is
"base3, 500 episodes, self_attention" of ``bench_few_shot_defaults.py``.

Then the other suspects, each a module put in place of the attention
layer (unit positions unless said otherwise):

- "learned positions": a trainable position table, initialised to the
  unit sinusoids;
- "gated residual, zero init": ``out = x + g * attention(z)`` with a
  learned scalar ``g`` starting at 0 and no LayerNorm, so SA-TAP starts as
  plain TAP and keeps only as much attention as training asks for;
- "pre-LayerNorm": ``out = z + attention(LayerNorm(z))``;
- "wide query/key": query and key projections of width ``4 d``;

and, to size the noise of one fit, plain TAP and the shipped SA-TAP again
with ``random_state=1`` (same data and test episodes).

Results go to ``benchmarks/results/sa_tap_positions.json`` (a rerun skips
what is there). About a minute per row on 2 cores::

    python benchmarks/bench_sa_tap_positions.py
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

import bench_few_shot_defaults as defaults

import sktap.few_shot._classifier as few_shot_classifier
from sktap.few_shot import FrameSelfAttention
from sktap.few_shot._model import (
    frame_mask,
    mask_frames,
    sinusoidal_positions,
)

RESULTS = Path(__file__).parent / "results" / "sa_tap_positions.json"
VARIANTS = {
    "paper positions": ("paper", False),
    "paper positions + L2 output": ("paper", True),
    "unit positions + L2 output": ("unit", True),
    "no positions + L2 output": ("none", True),
}


def variant_forward(positions, l2_output):
    """FrameSelfAttention's forward with the positions and output varied."""

    def forward(self, x, lengths):
        _, L, d = x.shape
        pe = sinusoidal_positions(L, d, device=x.device, dtype=x.dtype)[None]
        scale = {"paper": 1.0, "unit": math.sqrt(2.0 / d), "none": 0.0}[positions]
        z = x + pe * scale
        logits = self.query(z) @ self.key(z).transpose(1, 2) / math.sqrt(d)
        logits = logits.masked_fill(~frame_mask(lengths, L)[:, None, :], -math.inf)
        out = self.norm(z + torch.softmax(logits, dim=-1) @ self.value(z))
        if l2_output:
            out = torch.nn.functional.normalize(out, dim=-1)
        return mask_frames(out, lengths)

    return forward


def _attend(layer, z, lengths):
    """``softmax(q k^T / sqrt(d)) v`` of ``layer``'s projections of ``z``."""
    L, d = z.shape[1], layer.n_features
    logits = layer.query(z) @ layer.key(z).transpose(1, 2) / math.sqrt(d)
    logits = logits.masked_fill(~frame_mask(lengths, L)[:, None, :], -math.inf)
    return torch.softmax(logits, dim=-1) @ layer.value(z)


def _unit_positions(x):
    _, L, d = x.shape
    pe = sinusoidal_positions(L, d, device=x.device, dtype=x.dtype)[None]
    return pe * math.sqrt(2.0 / d)


class LearnedPositions(FrameSelfAttention):
    MAX_FRAMES = 512

    def __init__(self, n_features):
        super().__init__(n_features)
        table = sinusoidal_positions(self.MAX_FRAMES, n_features)
        self.positions = nn.Parameter(table * math.sqrt(2.0 / n_features))

    def forward(self, x, lengths):
        z = x + self.positions[None, : x.shape[1]].to(x.dtype)
        return mask_frames(self.norm(z + _attend(self, z, lengths)), lengths)


class GatedResidual(FrameSelfAttention):
    def __init__(self, n_features):
        super().__init__(n_features)
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x, lengths):
        z = x + _unit_positions(x)
        return mask_frames(x + self.gate * _attend(self, z, lengths), lengths)


class PreNorm(FrameSelfAttention):
    def forward(self, x, lengths):
        z = x + _unit_positions(x)
        return mask_frames(z + _attend(self, self.norm(z), lengths), lengths)


class WideQueryKey(FrameSelfAttention):
    def __init__(self, n_features):
        super().__init__(n_features)
        self.query = nn.Linear(n_features, 4 * n_features, bias=False)
        self.key = nn.Linear(n_features, 4 * n_features, bias=False)

    def forward(self, x, lengths):
        z = x + _unit_positions(x)
        return mask_frames(self.norm(z + _attend(self, z, lengths)), lengths)


# name: (attention module class, self_attention, random_state)
MODULES = {
    "learned positions": (LearnedPositions, True, 0),
    "gated residual, zero init": (GatedResidual, True, 0),
    "pre-LayerNorm": (PreNorm, True, 0),
    "wide query/key (4d)": (WideQueryKey, True, 0),
    "TAP (no attention), random_state=1": (FrameSelfAttention, False, 1),
    "unit positions (sktap now), random_state=1": (FrameSelfAttention, True, 1),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test-episodes", type=int, default=2000)
    cli = parser.parse_args()
    args = argparse.Namespace(
        quick=False, max_fit_seconds=1e9, test_episodes=cli.test_episodes
    )
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    fit_data, test = defaults.load_data()
    params = {**defaults.CANDIDATES["base3, 500 episodes"], "self_attention": True}
    original = FrameSelfAttention.forward
    try:
        for name, variant in VARIANTS.items():
            if name in results:
                continue
            FrameSelfAttention.forward = variant_forward(*variant)
            results[name] = defaults.run_candidate(name, params, fit_data, test, args)
            RESULTS.write_text(json.dumps(results, indent=1))
    finally:
        FrameSelfAttention.forward = original
    try:
        for name, (module, attention, seed) in MODULES.items():
            if name in results:
                continue
            few_shot_classifier.FrameSelfAttention = module
            row_params = {**params, "self_attention": attention}
            results[name] = defaults.run_candidate(
                name, row_params, fit_data, test, args, seed=seed
            )
            results[name]["random_state"] = seed
            RESULTS.write_text(json.dumps(results, indent=1))
    finally:
        few_shot_classifier.FrameSelfAttention = FrameSelfAttention
    for name, row in results.items():
        one, five = row["1shot"], row["5shot"]
        print(
            f"{name:32s} {row['fit_seconds']:5.0f} s  1-shot {one[0]:.3f} ± "
            f"{one[1]:.3f}  5-shot {five[0]:.3f} ± {five[1]:.3f}"
        )


if __name__ == "__main__":
    main()
