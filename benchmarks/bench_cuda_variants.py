"""Variants of the accelerator path of ``cdist_tap``, timed side by side.

One call of ``cdist_tap`` (default ``TAPNet``, d = 13, all lengths 40,
``--n-x`` x ``--n-y`` pairs) in float32 and bfloat16 under three variants:

- ``cdist``: frame distances by ``torch.cdist``, last layer a convolution;
- ``by-channel``: frame distances summed one channel at a time
  (``sktap.core._tap._cdist_by_channel``), last layer a convolution;
- ``by-channel+rows``: the same, last layer by kernel rows and a strided
  sum (``sktap.core._nets._single_output_rows``; before 2026-12-01 this
  variant was ``by-channel+maps``, k*k 1 x 1 maps and shifted adds).

Then the frame distances alone, ``torch.cdist`` against the channel sums,
for several frame widths d (which sets
``sktap._thresholds.BY_CHANNEL_MAX_D``). Timings are
CUDA-synchronised, best of ``--repeats`` after a warm-up call. TF32 is as
PyTorch leaves it (printed). Run from the repository root::

    python benchmarks/bench_cuda_variants.py --device cuda
    python benchmarks/bench_cuda_variants.py --device cpu --n-x 16 --n-y 16
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sktap import TAPNet, _thresholds
from sktap.core import _tap
from sktap.metrics import cdist_tap


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_time(fn, device, repeats):
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


VARIANTS = {
    "cdist": dict(max_d=-1, rows=()),
    "by-channel": dict(max_d=64, rows=()),
    "by-channel+rows": dict(max_d=64, rows=("cuda", "cpu")),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n-x", type=int, default=1024)
    parser.add_argument("--n-y", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
        + f", cuDNN TF32 {torch.backends.cudnn.allow_tf32}"
    )
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n_x, 40, 13)).astype(np.float32)
    Y = rng.normal(size=(args.n_y, 40, 13)).astype(np.float32)
    torch.manual_seed(0)
    net = TAPNet()
    saved = _thresholds.BY_CHANNEL_MAX_D, _thresholds.PADDED_LAST_LAYER_BY_ROWS
    pairs = args.n_x * args.n_y
    print(f"\ncdist_tap, {args.n_x} x {args.n_y} pairs, L = 40, d = 13")
    print("| variant | dtype | s | pairs/s | max rel. diff. to cdist float32 |")
    print("|---|---|---:|---:|---:|")
    ref = None
    try:
        for name, v in VARIANTS.items():
            _thresholds.BY_CHANNEL_MAX_D, _thresholds.PADDED_LAST_LAYER_BY_ROWS = (
                v["max_d"],
                v["rows"],
            )
            for dtype in (torch.float32, torch.bfloat16):
                out = {}

                def call(dtype=dtype, out=out):
                    out["D"] = cdist_tap(X, Y, net=net, device=device, dtype=dtype)

                s = best_time(call, device, args.repeats)
                if ref is None:
                    ref = out["D"]
                diff = np.max(np.abs(out["D"] - ref) / np.abs(ref))
                print(
                    f"| {name} | {str(dtype)[6:]} | {s:.3f} | {pairs / s:,.0f} "
                    f"| {diff:.2e} |",
                    flush=True,
                )
    finally:
        _thresholds.BY_CHANNEL_MAX_D, _thresholds.PADDED_LAST_LAYER_BY_ROWS = saved

    n = 65536 if device.type == "cuda" else 256
    print(f"\nframe distances alone, {n} pairs of 40 x 40 frames, float32")
    print("| d | torch.cdist s | by channel s | ratio |")
    print("|---:|---:|---:|---:|")
    for d in (13, 32, 64, 128, 256):
        x = torch.randn(n, 40, d, device=device)
        y = torch.randn(n, 40, d, device=device)
        with torch.inference_mode():
            a = best_time(
                lambda x=x, y=y: torch.cdist(
                    x, y, compute_mode="donot_use_mm_for_euclid_dist"
                ),
                device,
                args.repeats,
            )
            b = best_time(
                lambda x=x, y=y: _tap._cdist_by_channel(x, y), device, args.repeats
            )
        print(f"| {d} | {a:.4f} | {b:.4f} | {a / b:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
