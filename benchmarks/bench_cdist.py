"""Throughput of ``sktap.metrics.cdist_tap`` against its baselines.

Table 1 times one workload, every pair between two sets of 256 random
sequences (lengths uniform in [30, 50], d = 13) under one fixed random
``TAPNet()``:

- ``cdist_tap`` in float32 and bfloat16 on ``--device``;
- a naive per-pair Python loop over ``sktap.functional.tap_pairwise`` (how
  reference code runs TAP), on a random subset of the pairs;
- tslearn's ``cdist_soft_dtw`` (gamma = 1) and ``cdist_dtw`` on a subset of
  the rows, always on the CPU;
- the roofline: the middle 30 -> 30 5x5 convolution of the net alone on a
  dense batch of 40 x 40 pairs (channels_last), in float32 and bfloat16.

It also compares the bfloat16 distances with float32 (1-NN agreement, largest
relative difference) and prints the performance targets as MET / NOT MET.

Table 2 is time versus sequence length as in appendix A.5 of the TAP paper
(d = 500): seconds per pair of ``cdist_tap`` (float32) and of tslearn's
``cdist_soft_dtw``.

Every timing is the best of ``--repeats`` runs after one warm-up, all in one
process, so ratios between rows are meaningful; absolute figures drift from
run to run. Run it from the repository root::

    python benchmarks/bench_cdist.py                # full run, ~7 min on 2 idle cores
    python benchmarks/bench_cdist.py --quick        # smaller sizes, < 1 minute
    python benchmarks/bench_cdist.py --device cuda  # tslearn rows stay on the CPU
    python benchmarks/bench_cdist.py --quick --skip-baselines --profile
    python benchmarks/bench_cdist.py --device cuda --n-x 2048 --n-y 2048 \
        --lengths 40 40 --skip-length-scan   # enough pairs for 1e6 pairs/s

``--n-x`` / ``--n-y`` set the sizes of the two sets and ``--lengths`` their
length range; ``--skip-baselines`` leaves out the per-pair loop and tslearn
(the targets that need them read n/a), ``--skip-tslearn`` tslearn alone (its
CPU rows take minutes with a large ``--n-y``); ``--profile`` adds a table of where
one ``cdist_tap`` call spends its time (each layer's convolutions, with their
GFLOP/s inside the pipeline, and the other operators), in float32 and
bfloat16. On a GPU the warm-up is a full call (every tile shape seen once) and
every timing is bracketed by ``torch.cuda.synchronize()``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import math
import os
import platform
import sys
import textwrap
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import tslearn
from tslearn.metrics import cdist_dtw, cdist_soft_dtw
from tslearn.utils import to_time_series_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import cpu_facts

import sktap
from sktap import TAPNet
from sktap.functional import tap_pairwise
from sktap.metrics import cdist_tap

CPU = torch.device("cpu")


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run (``--quick`` shrinks them)."""

    n: int  # sequences per set; table 1 times all n x n pairs (see n_x, n_y)
    loop_pairs: int  # random pairs timed in the per-pair loop
    dtw_rows: int  # rows of X timed against all of Y by tslearn
    roof_batch: int  # dense 40 x 40 pairs in the roofline convolution
    scan_lengths: tuple[int, ...]
    scan_side_short: int  # a x a pairs per length for L <= 200
    scan_side_long: int  # ... and for longer sequences
    working_memory: float | None  # MiB per cdist_tap tile; None: sklearn's


@dataclass
class Row:
    """One timed method of table 1."""

    method: str
    pairs: int
    seconds: float
    flop: float | None = None  # None for the DTW rows (no convolution)
    roofline: str | None = None  # dtype of the roofline row it is compared to


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------- setup


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Benchmark sktap's cdist_tap against a per-pair loop, "
        "tslearn DTW / soft-DTW and the convolution roofline."
    )
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (under a minute)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="best of N timed runs (default 3)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-length-scan", action="store_true")
    parser.add_argument(
        "--n-x", type=int, help="sequences in X (default 256, 48 with --quick)"
    )
    parser.add_argument("--n-y", type=int, help="sequences in Y (default: as X)")
    parser.add_argument(
        "--lengths",
        type=int,
        nargs=2,
        default=(30, 50),
        metavar=("MIN", "MAX"),
        help="sequence lengths of table 1, uniform in [MIN, MAX] (default 30 50)",
    )
    parser.add_argument(
        "--skip-baselines",
        action="store_true",
        help="leave out the per-pair loop and the tslearn rows",
    )
    parser.add_argument(
        "--skip-tslearn", action="store_true", help="leave out the tslearn rows"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="add a per-layer time breakdown of one cdist_tap call",
    )
    parser.add_argument(
        "--output-markdown", metavar="PATH", help="also write the tables here"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    for name in ("n_x", "n_y"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 1 <= args.lengths[0] <= args.lengths[1]:
        parser.error("--lengths needs 1 <= MIN <= MAX")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but CUDA is not available")
    return args


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def sizes_for(quick: bool, device: torch.device) -> Sizes:
    # On a GPU bigger tiles keep it busy: 8 GiB per tile instead of the
    # 1 GiB scikit-learn default used on the CPU.
    working_memory = 8192.0 if device.type == "cuda" else None
    roof_batch = 4096 if device.type == "cuda" else 256
    if quick:
        return Sizes(48, 200, 8, 64, (100, 200), 4, 2, working_memory)
    return Sizes(
        256, 2000, 64, roof_batch, (100, 200, 400, 700, 1000), 8, 2, working_memory
    )


def cpu_model() -> str:
    return cpu_facts().get("cpu_model") or platform.processor() or platform.machine()


def machine_facts(device: torch.device, sizes: Sizes, args) -> list[str]:
    wm = sizes.working_memory
    lines = [
        f"date            {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"versions        python {platform.python_version()}, torch "
        f"{torch.__version__}, numpy {np.__version__}, tslearn "
        f"{tslearn.__version__}, sktap {sktap.__version__}",
        f"CPU             {cpu_model()}, {os.cpu_count()} logical cores, "
        f"torch capability {torch.backends.cpu.get_cpu_capability()}",
        f"torch threads   {torch.get_num_threads()} (tslearn: one process, "
        "n_jobs=None)",
        f"device          {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "working_memory  "
        + (f"{wm:g} MiB per tile" if wm else "scikit-learn default (1024 MiB)"),
        f"timing          best of {args.repeats} after one warm-up; seed {args.seed}"
        + ("; --quick sizes" if args.quick else ""),
        f"load average    {load_average()} (1, 5, 15 min) at the start",
    ]
    return lines


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


# -------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_of(fn, repeats, device, warmup=None):
    """Best wall time of ``fn()`` after one warm-up call, and its last result."""
    (warmup or fn)()
    best, out = math.inf, None
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def conv_macs_per_cell(net: TAPNet) -> int:
    """Multiply-adds per cell of the Lx x Ly grid, summed over the convolutions.

    Cost model of /work/shared/PERFORMANCE.md: each conv does c_in * c_out *
    k * k multiply-adds per output cell, i.e. 2*30*25 + 30*30*25 + 30*9 =
    24,270 for the default net (93 % in the middle layer); frame distances
    and the softmax (O(Lx Ly d), O(Lx Ly)) are left out.
    """
    return sum(conv.weight.numel() for conv in net.convs)


def random_sequences(rng, n, low, high, d) -> list[np.ndarray]:
    lengths = rng.integers(low, high + 1, size=n)
    return [rng.standard_normal((length, d)).astype(np.float32) for length in lengths]


# ------------------------------------------------------------ table 1 parts


def cdist_call(net, device, dtype, sizes):
    """``cdist_tap`` with the benchmark's network, device, dtype and memory."""
    return partial(
        cdist_tap,
        net=net,
        device=device,
        dtype=dtype,
        working_memory=sizes.working_memory,
    )


def time_cdist_tap(net, X, Y, device, dtype, sizes, repeats):
    run = cdist_call(net, device, dtype, sizes)
    # On the CPU a warm-up on a corner of the problem builds the same oneDNN
    # kernels at a fraction of the cost of a full call. On a GPU the warm-up
    # is the full call: each new tile shape costs cuDNN a plan (and the CUDA
    # context, allocator pools and kernels load on first use), none of which
    # belongs in the timing.
    warm = None if device.type == "cuda" else partial(run, X[:64], Y[:64])
    return best_of(partial(run, X, Y), repeats, device, warmup=warm)


def per_pair_loop(net, X, Y, pairs, device) -> np.ndarray:
    """The reference way: one unpadded pair at a time through the net."""
    out = np.empty(len(pairs))
    with torch.inference_mode():
        for k, (i, j) in enumerate(pairs):
            x = torch.as_tensor(X[i], device=device)
            y = torch.as_tensor(Y[j], device=device)
            out[k] = float(tap_pairwise(x[None], [len(x)], y[None], [len(y)], net))
    return out


def time_loop(net, X, Y, pairs, device, repeats):
    loop_net = copy.deepcopy(net).to(device).eval()
    # The warm-up is the full loop: every (Lx, Ly) shape is then known to
    # oneDNN, as it would be in reference code that runs over a whole dataset.
    run = partial(per_pair_loop, loop_net, X, Y, pairs, device)
    return best_of(run, repeats, device)


def time_tslearn(fn, X, Y, rows, repeats, **kwargs):
    A = to_time_series_dataset(X[:rows])
    B = to_time_series_dataset(Y)
    # The first call JIT-compiles (numba): warm up on a few pairs.
    warm = partial(fn, A[:2], B[:2], **kwargs)
    seconds, _ = best_of(partial(fn, A, B, **kwargs), repeats, CPU, warmup=warm)
    return seconds


def time_roofline(net, dtype, batch, device, repeats) -> Row:
    """The middle convolution alone on a dense channels_last batch of 40 x 40."""
    conv = copy.deepcopy(net.convs[1]).to(device=device, dtype=dtype).eval()
    conv = conv.to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(batch, conv.in_channels, 40, 40, generator=gen)
    h = h.to(device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        seconds, _ = best_of(partial(conv, h), repeats, device)
    flop = 2 * conv.weight.numel() * batch * 40 * 40
    name = "float32" if dtype == torch.float32 else "bfloat16"
    label = f"roofline: convs[1] alone, {batch} x 40x40, {name}"
    return Row(label, batch, seconds, flop, roofline=name)


def device_label(device: torch.device) -> str:
    return "CUDA" if device.type == "cuda" else "CPU"


def tap_rows(net, X, Y, device, sizes, repeats):
    """cdist_tap in float32 and bfloat16: rows and distance matrices."""
    flop = 2 * conv_macs_per_cell(net) * sum(map(len, X)) * sum(map(len, Y))
    rows, mats = {}, {}
    for name in ("float32", "bfloat16"):
        progress(f"cdist_tap {name}")
        dtype = None if name == "float32" else name
        seconds, mats[name] = time_cdist_tap(net, X, Y, device, dtype, sizes, repeats)
        label = f"cdist_tap {name} ({device_label(device)})"
        rows[name] = Row(label, len(X) * len(Y), seconds, flop, roofline=name)
    return rows, mats


def loop_row(net, X, Y, pairs, device, repeats, d32):
    """The per-pair loop on ``pairs``, and its largest deviation from ``d32``."""
    progress("per-pair loop")
    seconds, loop_d = time_loop(net, X, Y, pairs, device, repeats)
    flop = 2 * conv_macs_per_cell(net) * sum(len(X[i]) * len(Y[j]) for i, j in pairs)
    label = f"per-pair tap_pairwise loop ({device_label(device)}, {len(pairs)} pairs)"
    row = Row(label, len(pairs), seconds, flop, roofline="float32")
    return row, float(np.max(np.abs(loop_d - d32[pairs[:, 0], pairs[:, 1]])))


def tslearn_rows(X, Y, rows, repeats):
    out = {}
    for key, fn, label, kw in (
        ("soft_dtw", cdist_soft_dtw, "tslearn cdist_soft_dtw g=1", {"gamma": 1.0}),
        ("dtw", cdist_dtw, "tslearn cdist_dtw", {}),
    ):
        progress(label)
        seconds = time_tslearn(fn, X, Y, rows, repeats, **kw)
        out[key] = Row(f"{label} (CPU, {rows} x {len(Y)})", rows * len(Y), seconds)
    return out


def measure_workload(
    net, X, Y, rng, device, sizes, repeats, baselines=True, tslearn_rows_too=True
):
    """Rows of table 1 keyed by a short name, the matrices and the loop error.

    Without ``baselines`` there is no "loop" row and the loop error is None;
    without ``tslearn_rows_too`` no tslearn rows.
    """
    rows, mats = tap_rows(net, X, Y, device, sizes, repeats)
    loop_err = None
    if baselines:
        pairs = rng.integers(0, [len(X), len(Y)], size=(sizes.loop_pairs, 2))
        rows["loop"], loop_err = loop_row(
            net, X, Y, pairs, device, repeats, mats["float32"]
        )
        if tslearn_rows_too:
            rows.update(tslearn_rows(X, Y, min(sizes.dtw_rows, len(X)), repeats))
    for dtype in (torch.float32, torch.bfloat16):
        progress(f"roofline {dtype}")
        row = time_roofline(net, dtype, sizes.roof_batch, device, repeats)
        rows[f"roof_{row.roofline}"] = row
    return rows, mats, loop_err


# ---------------------------------------------------------- table 1 report


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def gflops(row: Row) -> float | None:
    return None if row.flop is None else row.flop / row.seconds / 1e9


def format_row(key: str, r: Row, rows: dict[str, Row], loop_rate: float | None):
    """method, pairs/s, effective GFLOP/s, ratio to roofline, speed-up vs loop."""
    is_roof = key.startswith("roof_")
    g = gflops(r)
    rate = r.pairs / r.seconds
    ratio = "-"
    if g is not None and not is_roof:
        ratio = f"{g / gflops(rows[f'roof_{r.roofline}']):.2f}"
    return [
        r.method,
        fmt_rate(rate),
        "-" if g is None else f"{g:.1f}",
        ratio,
        "-" if is_roof or loop_rate is None else f"{rate / loop_rate:.2f}x",
    ]


def workload_table(rows: dict[str, Row], n_x: int, n_y: int, lengths) -> Table:
    loop = rows.get("loop")
    loop_rate = None if loop is None else loop.pairs / loop.seconds
    body = [format_row(key, r, rows, loop_rate) for key, r in rows.items()]
    notes = [
        "effective GFLOP/s = 2 * (2*30*25 + 30*30*25 + 30*9) * sum over pairs of "
        "Lx*Ly / seconds (true cells only; cost model of PERFORMANCE.md)",
        "ratio to roofline: against the roofline row of the same dtype "
        "(the loop runs float32); roofline pairs/s = dense 40x40 pairs, "
        "middle conv only",
        "cdist_tap warms up on the first 64 x 64 pairs (same kernels, less time); "
        "tslearn runs in one process (n_jobs=None), torch on all its threads",
    ]
    lo, hi = lengths
    span = f"lengths uniform in [{lo}, {hi}]" if lo < hi else f"all of length {lo}"
    title = f"Table 1: {n_x} x {n_y} pairs, {span}, d = 13"
    headers = ["method", "pairs/s", "eff. GFLOP/s", "/ roofline", "vs loop"]
    return Table(title, headers, body, notes)


def bf16_quality(mats) -> tuple[float, float]:
    d32, d16 = mats["float32"], mats["bfloat16"]
    agree = float(np.mean(d32.argmin(axis=1) == d16.argmin(axis=1)))
    rel = float(np.max(np.abs(d16 - d32) / np.abs(d32)))
    return agree, rel


def target(name: str, required: str, measured: str, ok: bool) -> list[str]:
    return [name, required, measured, "MET" if ok else "NOT MET"]


def targets_table(rows: dict[str, Row], mats, loop_err, device) -> Table:
    f32, b16 = (rows[k].pairs / rows[k].seconds for k in ("float32", "bfloat16"))
    loop = rows["loop"].pairs / rows["loop"].seconds if "loop" in rows else None
    roof = gflops(rows["float32"]) / gflops(rows["roof_float32"])
    agree, rel = bf16_quality(mats)
    best = max(f32, b16)
    cuda = target(
        "CUDA pairs/s (faster dtype)", ">= 1,000,000", fmt_rate(best), best >= 1e6
    )
    if device.type != "cuda":
        cuda[-1] = "n/a (CPU run)"
    if loop is None:
        vs_loop = ["float32 / per-pair loop", ">= 4.00x", "-", "n/a (no baselines)"]
    else:
        vs_loop = target(
            "float32 / per-pair loop", ">= 4.00x", f"{f32 / loop:.2f}x", f32 >= 4 * loop
        )
    body = [
        target("float32 / roofline", ">= 0.70", f"{roof:.2f}", roof >= 0.7),
        vs_loop,
        target(
            "bfloat16 / float32 pairs/s",
            ">= 1.60x",
            f"{b16 / f32:.2f}x",
            b16 >= 1.6 * f32,
        ),
        target("bfloat16 1-NN agreement", ">= 99%", f"{agree:.1%}", agree >= 0.99),
        cuda,
    ]
    notes = [f"bfloat16 vs float32: max relative difference of distances {rel:.2e}"]
    if loop_err is not None:
        notes.append(
            "per-pair loop vs cdist_tap float32 on the same pairs: max abs "
            f"difference {loop_err:.2e}"
        )
    return Table("Targets", ["target", "required", "measured", "status"], body, notes)


# ------------------------------------------------------------------ profile

# The operators that run a convolution (leaves of aten::convolution).
CONV_OPS = {
    "aten::mkldnn_convolution",
    "aten::cudnn_convolution",
    "aten::_slow_conv2d_forward",
    "aten::slow_conv_dilated2d",
    "aten::_nnpack_spatial_convolution",
    "aten::convolution_overrideable",
}


def conv_part(net: TAPNet, weight_shape) -> str | None:
    """Which layer a convolution with this weight shape belongs to."""
    shape = tuple(weight_shape)
    first, *hidden, last = net.convs
    if shape == tuple(first.weight.shape):
        return f"layer 1: 2 -> {first.out_channels}, {first.kernel_size[0]}x"
    if any(shape == tuple(c.weight.shape) for c in hidden):
        return "hidden layer(s): conv"
    if shape == tuple(last.weight.shape):
        return f"last layer: {last.in_channels} -> 1, {last.kernel_size[0]}x conv"
    k = last.kernel_size[0]
    if shape == (k * k, last.in_channels, 1, 1):
        return f"last layer: 1x1 {last.in_channels} -> {k * k} maps"
    return None


def profile_call(net, X, Y, device, dtype, sizes):
    """Self time (s) and FLOP of each part of one ``cdist_tap`` call."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    run = partial(cdist_call(net, device, dtype, sizes), X, Y)
    run()  # warm-up
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, record_shapes=True) as prof:
        run()
        sync(device)
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    parts: dict[str, list[float]] = {}
    for ev in prof.key_averages(group_by_input_shape=True):
        if getattr(ev, "device_type", DeviceType.CPU) != DeviceType.CPU:
            continue  # a GPU kernel: its time is already its operator's
        us = float(getattr(ev, attr, 0.0) or 0.0)
        shapes = ev.input_shapes or []
        part, flop = None, 0.0
        if ev.key in CONV_OPS and len(shapes) > 1 and len(shapes[1]) == 4:
            part = conv_part(net, shapes[1])
            n, _, h, w = shapes[0]
            flop = 2.0 * math.prod(shapes[1]) * n * h * w * ev.count
        part = part or f"other: {ev.key}"
        acc = parts.setdefault(part, [0.0, 0.0])
        acc[0] += us / 1e6
        acc[1] += flop
    return parts


def profile_table(net, X, Y, device, sizes, top=8) -> Table:
    """Time per part of one call, float32 and bfloat16 side by side."""
    runs = {}
    for name in ("float32", "bfloat16"):
        progress(f"profile {name}")
        dtype = None if name == "float32" else name
        runs[name] = profile_call(net, X, Y, device, dtype, sizes)
    totals = {k: sum(s for s, _ in v.values()) for k, v in runs.items()}
    layers = sorted({p for v in runs.values() for p in v if not p.startswith("other")})
    others = sorted(
        {p for v in runs.values() for p in v if p.startswith("other")},
        key=lambda p: -runs["float32"].get(p, (0.0, 0.0))[0],
    )
    body = []
    for part in [*layers, *others[:top], "other: rest", "total"]:
        row = [part]
        for name, run in runs.items():
            if part == "total":
                seconds, flop = totals[name], 0.0
            elif part == "other: rest":
                rest = [run.get(p, (0.0, 0.0)) for p in others[top:]]
                seconds, flop = sum(s for s, _ in rest), 0.0
            else:
                seconds, flop = run.get(part, (0.0, 0.0))
            share = seconds / totals[name] if totals[name] else 0.0
            gf = f"{flop / seconds / 1e9:.1f}" if flop and seconds else "-"
            row += [f"{seconds * 1e3:.1f}", f"{share:.1%}", gf]
        body.append(row)
    clock = "GPU" if device.type == "cuda" else "wall-clock (torch threads inside)"
    notes = [
        f"self {clock} time of each operator in one cdist_tap call of table 1's "
        "workload under torch.profiler (which adds a little overhead per "
        "operator), summed by layer for the convolutions",
        "GFLOP/s of a layer: 2 * weight size * cells computed (padding "
        "included) / its time; compare with the roofline rows",
    ]
    headers = ["part", "f32 ms", "f32 %", "f32 GF/s", "bf16 ms", "bf16 %", "bf16 GF/s"]
    return Table("Profile: one cdist_tap call by part", headers, body, notes)


# ------------------------------------------------------------------ table 2


def scan_one_length(net, L, side, rng, device, sizes, repeats):
    """Seconds per pair of cdist_tap (float32) and tslearn soft-DTW at length L."""
    X = [rng.standard_normal((L, 500)).astype(np.float32) for _ in range(side)]
    Y = [rng.standard_normal((L, 500)).astype(np.float32) for _ in range(side)]
    run = partial(
        cdist_tap, net=net, device=device, working_memory=sizes.working_memory
    )
    tap_s, _ = best_of(
        partial(run, X, Y), repeats, device, warmup=partial(run, X[:1], Y[:1])
    )
    A, B = to_time_series_dataset(X), to_time_series_dataset(Y)
    sdtw = partial(cdist_soft_dtw, gamma=1.0)
    sdtw_s, _ = best_of(
        partial(sdtw, A, B), repeats, CPU, warmup=partial(sdtw, A[:1], B[:1])
    )
    return tap_s / side**2, sdtw_s / side**2


def length_table(net, rng, device, sizes, repeats) -> Table:
    flop_per_cell = 2 * conv_macs_per_cell(net)
    dev = device_label(device)
    body = []
    for L in sizes.scan_lengths:
        side = sizes.scan_side_short if L <= 200 else sizes.scan_side_long
        progress(f"length scan L={L} ({side} x {side} pairs)")
        tap_s, sdtw_s = scan_one_length(net, L, side, rng, device, sizes, repeats)
        body.append(
            [
                str(L),
                f"{side} x {side}",
                f"{tap_s:.4g}",
                f"{flop_per_cell * L * L / tap_s / 1e9:.1f}",
                f"{sdtw_s:.4g}",
                f"{tap_s / sdtw_s:.2f}",
            ]
        )
    notes = [
        f"pairs per length: {sizes.scan_side_short} x {sizes.scan_side_short} for "
        f"L <= 200, {sizes.scan_side_long} x {sizes.scan_side_long} above (kept "
        "small so a full run stays within ~10 minutes on 2 CPU cores)",
        "random sequences of exactly L frames; default TAPNet; soft-DTW gamma = 1",
    ]
    headers = [
        "L",
        "pairs",
        f"cdist_tap s/pair ({dev})",
        "TAP GFLOP/s",
        "soft-DTW s/pair (CPU)",
        "TAP / soft-DTW time",
    ]
    return Table(
        "Table 2: time per pair versus length, d = 500 (TAP paper A.5)",
        headers,
        body,
        notes,
    )


# ------------------------------------------------------------------ output


def render_text(table: Table) -> str:
    cells = [table.headers, *table.rows]
    widths = [max(len(row[c]) for row in cells) for c in range(len(table.headers))]

    def line(row):
        first = row[0].ljust(widths[0])
        rest = (cell.rjust(w) for cell, w in zip(row[1:], widths[1:]))
        return "  ".join((first, *rest))

    rule = "-" * len(line(table.headers))
    out = [table.title, rule, line(table.headers), rule]
    out += [line(row) for row in table.rows] + [rule]
    for note in table.notes:
        out += textwrap.wrap(note, 88, initial_indent="  * ", subsequent_indent="    ")
    return "\n".join(out)


def render_markdown(table: Table) -> str:
    out = [f"### {table.title}", "", "| " + " | ".join(table.headers) + " |"]
    out.append("|" + "|".join(["---"] + ["---:"] * (len(table.headers) - 1)) + "|")
    out += ["| " + " | ".join(row) + " |" for row in table.rows]
    out += [""] + [f"- {note}" for note in table.notes]
    return "\n".join(out)


def write_markdown(path: str, header: list[str], tables: list[Table]) -> None:
    parts = ["## cdist_tap benchmark", "", "```", *header, "```"]
    parts += ["\n" + render_markdown(t) for t in tables]
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main(argv=None) -> None:
    args = parse_args(argv)
    device = pick_device(args.device)
    sizes = sizes_for(args.quick, device)
    torch.manual_seed(args.seed)  # the fixed random TAPNet
    net = TAPNet().eval()
    rng = np.random.default_rng(args.seed)
    n_x = args.n_x or sizes.n
    n_y = args.n_y or n_x
    X = random_sequences(rng, n_x, *args.lengths, 13)
    Y = random_sequences(rng, n_y, *args.lengths, 13)
    header = machine_facts(device, sizes, args)
    print("\n".join(header) + "\n", flush=True)
    rows, mats, loop_err = measure_workload(
        net,
        X,
        Y,
        rng,
        device,
        sizes,
        args.repeats,
        baselines=not args.skip_baselines,
        tslearn_rows_too=not args.skip_tslearn,
    )
    tables = [
        workload_table(rows, n_x, n_y, args.lengths),
        targets_table(rows, mats, loop_err, device),
    ]
    for table in tables:
        print(render_text(table) + "\n", flush=True)
    if args.profile:
        tables.append(profile_table(net, X, Y, device, sizes))
        print(render_text(tables[-1]) + "\n", flush=True)
    print(f"load average    {load_average()} (1, 5, 15 min) at the end\n", flush=True)
    if not args.skip_length_scan:
        tables.append(length_table(net, rng, device, sizes, args.repeats))
        print(render_text(tables[-1]), flush=True)
    if args.output_markdown:
        write_markdown(args.output_markdown, header, tables)


if __name__ == "__main__":
    main()
