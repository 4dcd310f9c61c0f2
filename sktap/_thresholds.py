"""Measured thresholds: where one exact computation starts to beat another.

sktap computes the same TAP distance and the same training loss along
several exact paths (padded batches; blocks of one shape with the network's
last layer by kernel rows; length buckets; mined pairs recomputed; frame
distances summed one channel at a time). Every path gives the same result
within float rounding (the exactness tests check it); these constants only
choose the fastest for the work at hand. They sit here together, each with
the measurement that set it, so that a new machine can be measured against
them in one place. Code reads them at call time (``_thresholds.NAME``), so a
benchmark that re-measures one can set it here. :func:`round_up_length` is
the one function here: the grid of padded sizes its two constants define.

The machines: "the 2-core CPU" is the development machine of
``docs/benchmarks.md`` (x86-64, 2 threads, 32 MiB of L3); "the H100" is
the GPU of that page's "On a GPU" section.
"""

from __future__ import annotations

# -- core: TAPNet on the CPU (sktap/core/_nets.py) --------------------------

#: Bound on the bytes of one activation (pairs x Lx x Ly x channels) in one
#: call of the layers on the CPU, so that activations stay in the last-level
#: cache. On the 2-core CPU 16 MiB batches ran the default network about
#: 1.3x faster than whole tiles; 32 MiB batches lost that gain.
CPU_BATCH_BYTES = 16 * 2**20

#: The least multiply-adds per batch and per torch thread for the CPU's
#: block-shape path to pay: below it the fixed cost of each batch (a dozen
#: operators, each a parallel region; about 0.4 ms forward, 1.4 ms with the
#: backward on 2 threads) outweighs the padding and masks it saves. On 2
#: threads against the padded batch: the default network at 2,600 cells per
#: batch (62 M multiply-adds) 0.9x, at 21,700 cells (526 M) 1.6-1.9x; one
#: hidden layer of 8 channels at 24,000 cells (12 M) 0.75-0.9x.
CPU_MIN_MACS_PER_THREAD = 50_000_000

#: Values of ``h`` (m * C * H * W) from which the last layer (one output
#: channel) runs as a convolution by kernel rows and a strided sum
#: (``sktap/core/_nets.py``, ``_single_output_rows``) rather than oneDNN's
#: C -> 1 convolution. On 2 threads, 3 x 3, without autograd: 1 x 7 x 7 and
#: 1 x 30 x 40 at C = 8 (400 and 9,600 values) ran 0.6x and 0.8x as fast,
#: 4 x 12 x 15 at C = 8 and 30 (5,800 and 21,600) 0.93x and 1.04x,
#: 32 x 20 x 20 at C = 8 (102,400) 1.24x, 640 x 896 at C = 8 1.7x.
CPU_ROWS_MIN_VALUES = 20_000

#: Cells (H x W) of one image from which the first layer's weight gradient
#: is computed on row strips of it, as a minibatch (``_weight_grad`` in
#: ``sktap/core/_nets.py``), rather than on the whole image, which oneDNN
#: runs on about one thread (on 640 x 896, three alternations in one run:
#: 15.5-16.2 ms at 2 threads, 16.5-19.8 ms at 1). On 2 threads, 2 -> 8
#: channels, 5 x 5, strips against the whole image: 640 x 896 to 224 x 320
#: 0.66-0.71x the time, 160 x 224 0.28-0.34x, 96 x 144 0.88-0.94x, 64 x 96
#: 0.97-1.15x, 48 x 48 1.1-1.6x (results equal within float32 rounding of
#: the sums). Measured on a 2-core host with 105 MiB of L3 at 2.0 GHz
#: (AMX), not the 32 MiB one above.
CPU_STRIPS_MIN_CELLS = 30_000

#: Device types on which the padded path (the one accelerators take) also
#: computes the last layer by kernel rows and a strided sum
#: (``_single_output_rows``), without autograd. On the H100 the default
#: TAPNet's ``cdist_tap`` ran 1.14x faster in float32, and the same in
#: bfloat16, with an earlier form of that sum (k*k 1 x 1 maps and shifted
#: adds; ``benchmarks/bench_cuda_variants.py``); the rows form, which reads
#: and writes k times less, has not been timed on a GPU, nor has training.
PADDED_LAST_LAYER_BY_ROWS: tuple[str, ...] = ("cuda",)

# -- core: frame distances (sktap/core/_tap.py) ------------------------------

#: Frame widths up to which accelerators sum the channels one at a time
#: rather than call ``torch.cdist``, without autograd. On the H100, 65,536
#: pairs of 40 x 40 frames: 12x faster at d = 13, 4.3x at 32, 2.2x at 64,
#: 1.1x at 128, 0.6x at 256 (``benchmarks/bench_cuda_variants.py``). With
#: autograd (small, launch-bound training batches) ``torch.cdist`` stays.
BY_CHANNEL_MAX_D = 64

# -- core: length buckets (sktap/core/_bucketed.py) --------------------------

#: Default bound on (cells computed) / (true cells) of every bucket, hence of
#: a whole bucketed call; lower means more, smaller network calls.
MAX_PADDING = 1.2

#: Padding a bucket of selected pairs may add beyond ``MAX_PADDING`` times
#: its true cells (:func:`sktap.core.tap_pairs`): one network call's fixed
#: cost, counted in cells, so that a few pairs of spread lengths share one
#: padded call rather than take one call each. On the 2-core CPU, the
#: default network with autograd (forward and backward), 16 sequences of
#: 7-94 frames, 1-30% of the 256 pairs selected at random (3 draws x 5
#: fractions): 1.0-3.6x faster with 25,000 than with 0 (median 1.7x);
#: 10,000 and 50,000 came within about 25% of it either way, with no
#: steady winner (``benchmarks/bench_packed.py``, part ``pairs``).
PAIRS_CALL_CELLS = 25_000

# -- core: packed grids (sktap/core/_packed.py) -----------------------------

#: The fixed cost of one network call (its dozen operators, each a parallel
#: region) counted in grid cells, for choosing between the packed and the
#: bucketed all-pairs computation (:func:`sktap.core._packed.packing_pays`
#: costs each as its cells plus this per call). On the 2-core CPU, no
#: autograd, the default network (one hidden layer of 8 channels), 16
#: sequences of 7-94 frames: 49 bucketed blocks took 79 ms, 2 packed bands
#: 33 ms, for about 0.9 M cells each: about 35 ms per million cells and
#: 0.9 ms per call, i.e. 26,000 cells. Over 12 batches (16 or 32
#: sequences; 7-94, 7-29 or 50-94 frames, or one length of 20, 64 or 94;
#: ``benchmarks/bench_packed.py``, part ``all-pairs``) the choice was the
#: faster one without autograd, or within 1% of it, in 11; the twelfth (32
#: sequences of 50-94 frames) kept buckets at 1.4x packing's time, where
#: with autograd buckets were the faster. Packing ran 1.5-4.8x faster on
#: the spread batches it took; buckets 1.0-1.3x on the equal lengths.
PACKED_CALL_CELLS = 25_000

#: The fixed cost of one call for frame distances with autograd (forward
#: and backward), counted in distances, for grouping the bands of
#: :func:`sktap.core.tap_pairs_packed` (each group one batched product,
#: padded to its largest band). On the 2-core CPU, d = 64: about 8 ns per
#: distance on large calls and 0.13 ms for a 10 x 10 one, i.e. 16,000
#: distances; so bands group while the padding they add costs less.
DISTANCE_CALL_CELLS = 16_000

#: Most target sequences packed into one image, so that an image stays
#: narrow enough for a band to hold several sequences within
#: ``CPU_BATCH_BYTES`` however many targets an inference tile has. On the
#: 2-core CPU, ``cdist_tap`` of 200 sequences of 7-94 frames against
#: themselves, all tiles packed, in groups of 16 / 32 / 64 / all 200
#: targets: the default network 3.90 / 3.67 / 3.67 / 3.68 s, ``net=None``
#: 1.20 / 1.10 / 1.07 / 1.05 s (``benchmarks/bench_packed.py --part
#: tiles``). Training batches (16 or 32 sequences) are one group.
PACKED_MAX_TARGETS = 32

#: Alignment networks up to this many multiply-adds per grid cell
#: (``TAPNet.macs_per_cell``; the default learner's has 472) have every
#: inference tile on the CPU packed unless both its sides have one length
#: each (:func:`sktap.core._packed.packing_beats_shapes`): their tiles
#: spend more on per-pair frame distances and per-shape network calls than
#: packing adds in gaps. Wider networks are packed where the cell count
#: says so (widely spread lengths). Measured with
#: ``benchmarks/bench_packed.py --part tiles`` (docs/benchmarks.md).
PACKED_TILE_NARROW_MACS = 1_000

# -- downsampling (sktap/_engine/_trainable.py) -------------------------------

#: Longest encoded sequence that ``downsample="auto"`` aims at: the stride
#: is the smallest that brings the longest training series to at most this
#: many frames. TAP's cost grows with ``Lx * Ly``; 64 frames keep a pair's
#: grid at 4,096 cells. Chosen on the seven sets of ``bench_accuracy.py``
#: (at most 361 steps).
AUTO_TARGET_LENGTH = 64

#: Largest stride ``downsample="auto"`` takes, or None for no cap: above
#: ``AUTO_TARGET_LENGTH * AUTO_MAX_STRIDE`` (1,024) steps the longest
#: series keeps more than ``AUTO_TARGET_LENGTH`` frames, so long series are
#: not read too coarsely. Measured with ``bench_accuracy.py`` (1-NN
#: accuracy of the default learner; ``docs/benchmarks.md``, "Hard
#: regimes"): PigCVP (2,000 steps) 0.19 at stride 32 (63 frames), 0.64 at
#: stride 16; ACSF1 (1,460 steps) 0.77 at stride 23, 0.85 at stride 12.
#: The seven standard sets (at most 361 steps, stride at most 6) and the
#: few-shot defaults' data are below the cap, so unchanged.
AUTO_MAX_STRIDE = 16

# -- shapes that repeat (sktap/core/_bucketed.py, sktap/_engine) ------------

#: Padded lengths are rounded up to a grid (:func:`round_up_length`):
#: multiples of ``SHAPE_GRID_MIN_STEP`` up to ``SHAPE_GRID_MIN_STEP *
#: SHAPE_GRID_STEPS_PER_OCTAVE``, then ``SHAPE_GRID_STEPS_PER_OCTAVE`` sizes
#: per octave (a power of two): at most 7 extra frames up to 64, less than
#: 1/8 of the length beyond. Training batches and length buckets are padded
#: so (``sktap.config_context(shape_rounding=...)``). Every new shape costs
#: oneDNN new primitives (about 1 ms each), and its cache keeps 1,024:
#: with hundreds of distinct lengths the buckets of a training step keep
#: missing it. On the 2-core CPU, a default fit on 500 generated sequences
#: of 103-1,500 steps (5-63 frames after downsampling), 4 epochs, took
#: 28-35 s unrounded (10,330 distinct convolution shapes) and 18-24 s on
#: the grid (2,024), 1.4-1.6x faster in each interleaved pair; with every
#: primitive cached (``ONEDNN_PRIMITIVE_CACHE_CAPACITY=200000``, a second
#: identical fit) 14-15 s either way. Fits on 7-29 steps ran as fast, on
#: data of one length they are unchanged: batches are never padded beyond
#: the width the sequences are stored at (``benchmarks/bench_shapes.py``).
SHAPE_GRID_MIN_STEP = 8
SHAPE_GRID_STEPS_PER_OCTAVE = 8


def round_up_length(n: int) -> int:
    """``n`` rounded up to the grid of padded lengths (``n < 1`` as it is).

    The grid is monotone and ``n <= round_up_length(n) < n + max(
    SHAPE_GRID_MIN_STEP, n / SHAPE_GRID_STEPS_PER_OCTAVE)``.

    Examples
    --------
    >>> [round_up_length(n) for n in (1, 8, 9, 64, 65, 129, 1500)]
    [8, 8, 16, 64, 72, 144, 1536]
    """
    n = int(n)
    if n < 1:
        return n
    octave = 1 << max(0, (n - 1).bit_length() - 1)  # largest power of 2 < n
    step = max(SHAPE_GRID_MIN_STEP, octave // SHAPE_GRID_STEPS_PER_OCTAVE)
    return -(-n // step) * step


#: Device types on which inference tiles (``sktap/_engine/_tiling.py``) are
#: padded to the grid too. Not the CPU: a tile is one large call, whose new
#: primitive costs milliseconds against its compute, and the padding is
#: paid in full. On the 2-core CPU, ``pairwise_distances`` of a default
#: learner with rounded tiles took 1.12x as long on 500 sequences of 5-63
#: frames (23.5-24.1 s against 21.2-21.4 s) and 1.27x on 270 sequences of
#: 7-29 frames (3.1 s against 2.4-2.5 s; ``bench_shapes.py --round-tiles``).
#: Not measured on a GPU.
ROUNDED_TILE_DEVICES: tuple[str, ...] = ()


# -- training steps (sktap/metric_learning/_steps.py) ------------------------

#: Above this fraction of a minibatch's pairs carrying gradient, recomputing
#: them costs more than the all-pairs backward it saves (the no-grad pass
#: that finds them is about half a forward and backward). On the 2-core CPU,
#: the default network with autograd (forward and backward), 16 sequences
#: of 7-94 frames, pairs drawn at random recomputed on one packed image
#: against all pairs as the training step computes them (59-82 ms): 30% of
#: the pairs took 0.40-0.48 of that time, 50% 0.77-0.82, 70% 0.99-1.24 (3
#: draws; ``benchmarks/bench_packed.py --part recompute``). In whole first
#: epochs of ``bench_fit_time.py``'s set, 0.5 ran as fast as 0.65 and
#: faster than 0.8 or recomputing always (1.83-1.93 s against 1.84-2.00,
#: 1.91-2.01 and 2.03-2.12 s, 3 interleaved fits each).
MINING_PAYS_BELOW = 0.5

#: Below this many multiply-adds of the alignment network over a minibatch's
#: padded B x B grid, the mined path's extra operators (length buckets, a
#: no-grad pass, recomputed pairs) cost more than they save, and the batch
#: takes the all-pairs computation. On the 2-core CPU with the default
#: learner, JapaneseVowels batches (about 80 M) ran 0.5x as fast mined as
#: all-pairs, BasicMotions batches (about 300 M) 1.9x
#: (``benchmarks/bench_train.py``, ``docs/benchmarks.md``).
MINED_MIN_MACS = 150_000_000
