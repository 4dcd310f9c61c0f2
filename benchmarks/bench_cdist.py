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

import numpy as np
import torch
import tslearn
from tslearn.metrics import cdist_dtw, cdist_soft_dtw
from tslearn.utils import to_time_series_dataset

import sktap
from sktap import TAPNet
from sktap.functional import tap_pairwise
from sktap.metrics import cdist_tap

CPU = torch.device("cpu")


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run (``--quick`` shrinks them)."""

    n: int  # sequences per set; table 1 times all n x n pairs
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
        "--output-markdown", metavar="PATH", help="also write the tables here"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
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
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
    ]
    return lines


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


def time_cdist_tap(net, X, Y, device, dtype, sizes, repeats):
    run = partial(
        cdist_tap,
        net=net,
        device=device,
        dtype=dtype,
        working_memory=sizes.working_memory,
    )
    # The warm-up on a corner of the problem builds the same oneDNN / cuDNN
    # kernels at a fraction of the cost of a full call.
    warm = partial(run, X[:64], Y[:64])
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


def measure_workload(net, X, Y, rng, device, sizes, repeats):
    """Rows of table 1 keyed by a short name, the matrices and the loop error."""
    rows, mats = tap_rows(net, X, Y, device, sizes, repeats)
    pairs = rng.integers(0, [len(X), len(Y)], size=(sizes.loop_pairs, 2))
    rows["loop"], loop_err = loop_row(
        net, X, Y, pairs, device, repeats, mats["float32"]
    )
    rows.update(tslearn_rows(X, Y, sizes.dtw_rows, repeats))
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


def format_row(key: str, r: Row, rows: dict[str, Row], loop_rate: float):
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
        "-" if is_roof else f"{rate / loop_rate:.2f}x",
    ]


def workload_table(rows: dict[str, Row], n: int) -> Table:
    loop_rate = rows["loop"].pairs / rows["loop"].seconds
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
    title = f"Table 1: {n} x {n} pairs, lengths uniform in [30, 50], d = 13"
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
    f32, b16, loop = (
        rows[k].pairs / rows[k].seconds for k in ("float32", "bfloat16", "loop")
    )
    roof = gflops(rows["float32"]) / gflops(rows["roof_float32"])
    agree, rel = bf16_quality(mats)
    best = max(f32, b16)
    cuda = target(
        "CUDA pairs/s (faster dtype)", ">= 1,000,000", fmt_rate(best), best >= 1e6
    )
    if device.type != "cuda":
        cuda[-1] = "n/a (CPU run)"
    body = [
        target("float32 / roofline", ">= 0.70", f"{roof:.2f}", roof >= 0.7),
        target(
            "float32 / per-pair loop", ">= 4.00x", f"{f32 / loop:.2f}x", f32 >= 4 * loop
        ),
        target(
            "bfloat16 / float32 pairs/s",
            ">= 1.60x",
            f"{b16 / f32:.2f}x",
            b16 >= 1.6 * f32,
        ),
        target("bfloat16 1-NN agreement", ">= 99%", f"{agree:.1%}", agree >= 0.99),
        cuda,
    ]
    notes = [
        f"bfloat16 vs float32: max relative difference of distances {rel:.2e}",
        "per-pair loop vs cdist_tap float32 on the same pairs: max abs "
        f"difference {loop_err:.2e}",
    ]
    return Table("Targets", ["target", "required", "measured", "status"], body, notes)


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
    X = random_sequences(rng, sizes.n, 30, 50, 13)
    Y = random_sequences(rng, sizes.n, 30, 50, 13)
    header = machine_facts(device, sizes, args)
    print("\n".join(header) + "\n", flush=True)
    rows, mats, loop_err = measure_workload(net, X, Y, rng, device, sizes, args.repeats)
    tables = [
        workload_table(rows, sizes.n),
        targets_table(rows, mats, loop_err, device),
    ]
    for table in tables:
        print(render_text(table) + "\n", flush=True)
    if not args.skip_length_scan:
        tables.append(length_table(net, rng, device, sizes, args.repeats))
        print(render_text(tables[-1]), flush=True)
    if args.output_markdown:
        write_markdown(args.output_markdown, header, tables)


if __name__ == "__main__":
    main()
