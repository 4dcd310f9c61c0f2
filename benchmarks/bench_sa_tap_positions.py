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

sys.path.insert(0, str(Path(__file__).parent))

import bench_few_shot_defaults as defaults

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
    for name, row in results.items():
        one, five = row["1shot"], row["5shot"]
        print(
            f"{name:32s} {row['fit_seconds']:5.0f} s  1-shot {one[0]:.3f} ± "
            f"{one[1]:.3f}  5-shot {five[0]:.3f} ± {five[1]:.3f}"
        )


if __name__ == "__main__":
    main()
