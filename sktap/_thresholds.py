"""Measured thresholds: where one exact computation starts to beat another.

sktap computes the same TAP distance and the same training loss along
several exact paths (padded batches; blocks of one shape with the network's
last layer as 1 x 1 maps; length buckets; mined pairs recomputed; frame
distances summed one channel at a time). Every path gives the same result
within float rounding (the exactness tests check it); these constants only
choose the fastest for the work at hand. They sit here together, each with
the measurement that set it, so that a new machine can be measured against
them in one place. Code reads them at call time (``_thresholds.NAME``), so a
benchmark that re-measures one can set it here.

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

#: Device types on which the padded path (the one accelerators take) also
#: computes the last layer as 1 x 1 maps and shifted adds, without autograd.
#: On the H100 the default TAPNet's ``cdist_tap`` ran 1.14x faster in
#: float32 that way, and the same in bfloat16
#: (``benchmarks/bench_cuda_variants.py``); training was not measured.
PADDED_LAST_LAYER_AS_MAPS: tuple[str, ...] = ("cuda",)

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

# -- training steps (sktap/metric_learning/_steps.py) ------------------------

#: Above this fraction of a minibatch's pairs carrying gradient, recomputing
#: them costs more than the all-pairs backward it saves (the no-grad pass
#: that finds them is about half a forward and backward).
MINING_PAYS_BELOW = 0.5

#: Below this many multiply-adds of the alignment network over a minibatch's
#: padded B x B grid, the mined path's extra operators (length buckets, a
#: no-grad pass, recomputed pairs) cost more than they save, and the batch
#: takes the all-pairs computation. On the 2-core CPU with the default
#: learner, JapaneseVowels batches (about 80 M) ran 0.5x as fast mined as
#: all-pairs, BasicMotions batches (about 300 M) 1.9x
#: (``benchmarks/bench_train.py``, ``docs/benchmarks.md``).
MINED_MIN_MACS = 150_000_000
