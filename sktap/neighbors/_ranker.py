"""Candidates for approximate search: an embedding trained to rank like the distance.

A learned TAP distance ranks by temporal order as well as by frame content,
so no pooled vector ranks like it for free: the mean frame keeps 20-40% of
the exact ten nearest neighbours among 2% of the references, the means of
eight time segments 84% (``docs/benchmarks.md``). The ranker therefore
*learns* to rank like the distance it serves: each sequence becomes the
means of its frames over :data:`SEGMENTS` equal spans of relative time (its
coarse shape, in order), and a linear map, started at the identity, is
trained so that Euclidean distances after it order references as the exact
distance orders them, on pairs scored with the distance itself when the
search is fitted (listwise cross-entropy plus a squared error on the
values). Any vector index then retrieves a shortlist of :data:`SHORTLIST`
times the exact budget, the nearest-frame score (:mod:`._frames`, with the
position weight chosen here from the same teacher distances) keeps the best
of it, and only those are scored exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from .._engine import TensorSequences, generator_from, iter_pairs
from .._validation import Sequences
from ._frames import POSITION_WEIGHTS, frame_scores

__all__ = ["SHORTLIST", "DistilledRanker", "as_tensors", "segment_means"]

# The ranker's shape and training budget, measured on generated data with
# 4,760 references (20 classes; docs/benchmarks.md, "Search"): recall@10
# among 2% of them went 0.84 (segment means alone) -> 0.91 with this
# training; a two-layer MLP in its place did not train, and 1,000 anchors
# did no better than 300.
SEGMENTS = 8  # spans of relative time pooled per sequence
ANCHORS = 300  # references whose distances teach the ranker (at most)
NEAR = 100  # per anchor: its nearest references by segment means ...
FAR = 50  # ... and this many random ones
STEPS = 300  # Adam steps, each on BATCH anchors
BATCH = 64
LEARNING_RATE = 1e-2
# The index retrieves this many times the exact budget, re-ranked by the
# nearest-frame score: recall@10 among 2% of 10,000 references went 0.89
# (ranking vectors alone) -> 0.99 (docs/benchmarks.md, "Search at scale").
SHORTLIST = 10
AGREEMENT_K = 10  # the teacher's nearest that the position weight should keep


def as_tensors(kernel, seqs):
    """``seqs`` as :class:`TensorSequences` where ``kernel`` reads them (the
    CPU in float32 for kernels that take numpy blocks)."""
    seqs = kernel.upload(seqs)
    if isinstance(seqs, TensorSequences):
        return seqs
    return TensorSequences(seqs, torch.device("cpu"))


def segment_means(seqs: Sequences, segments: int = SEGMENTS) -> np.ndarray:
    """The mean frame over each of ``segments`` equal spans of relative time.

    Frame ``t`` of a sequence of length ``L`` falls in span
    ``floor((t + 0.5) * segments / L)``. A span that holds no frame (``L <
    segments``) takes the frame at its centre.

    Returns
    -------
    ndarray of shape (n_ts, segments * d), float32
    """
    data, lengths = np.asarray(seqs.data), np.asarray(seqs.lengths)
    n, max_len, d = data.shape
    t = np.arange(max_len)[None, :] + 0.5
    span = np.minimum((t * segments / lengths[:, None]).astype(np.int64), segments - 1)
    valid = t < lengths[:, None]
    slot = (np.arange(n)[:, None] * segments + span)[valid]
    frames = torch.as_tensor(data[valid], dtype=torch.float64)
    sums = torch.zeros((n * segments, d), dtype=torch.float64)
    sums = sums.index_add_(0, torch.as_tensor(slot), frames).numpy()
    counts = np.bincount(slot, minlength=n * segments)
    centre = ((np.arange(segments) + 0.5) * lengths[:, None] / segments).astype(
        np.int64
    )
    fallback = data[np.arange(n)[:, None], centre].reshape(n * segments, d)
    empty = counts == 0
    sums[empty] = fallback[empty]
    means = sums / np.maximum(counts, 1)[:, None]
    return means.reshape(n, segments * d).astype(np.float32)


def _linear(n_in: int) -> torch.nn.Module:
    """The ranking map, started at the identity (segment means as they are)."""
    layer = torch.nn.Linear(n_in, n_in, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(n_in))
    return layer


def _pair_lists(features, rng):
    """``(anchors (a,), candidates (a, c))``: each anchor's nearest references
    by segment means (itself excluded) and random others."""
    n = len(features)
    anchors = np.sort(rng.choice(n, size=min(n, ANCHORS), replace=False))
    near = min(NEAR, n - 1)
    index = NearestNeighbors(n_neighbors=near + 1, algorithm="brute").fit(features)
    order = index.kneighbors(features[anchors], return_distance=False)
    # drop the anchor itself (usually first; duplicates may put it elsewhere)
    keep = order != anchors[:, None]
    order = np.array([row[k][:near] for row, k in zip(order, keep)])
    far = rng.randint(0, n, size=(len(anchors), min(FAR, n - 1)))
    return anchors, np.concatenate([order, far], axis=1)


def _listwise_loss(teacher, learned):
    """Cross-entropy between the orders the teacher's and the learned
    distances put on each row, plus their squared difference."""
    tau_t = teacher.std(dim=1, keepdim=True).clamp_min(1e-6) / 3
    tau_e = learned.std(dim=1, keepdim=True).detach().clamp_min(1e-6) / 3
    target = torch.softmax(-teacher / tau_t, dim=1)
    log_q = torch.log_softmax(-learned / tau_e, dim=1)
    return -(target * log_q).sum(dim=1).mean() + ((learned - teacher) ** 2).mean()


def _best_position_weight(refs, tensors, anchors, cands, teacher, symmetric, budget):
    """The position weight whose nearest-frame order best keeps each
    anchor's :data:`AGREEMENT_K` nearest by the teacher: the fraction of
    them among the frame score's ``k`` and ``2 * k`` nearest, averaged
    (ties: the smaller weight)."""
    k = max(1, min(AGREEMENT_K, cands.shape[1] // 4))
    data = tensors.data
    queries = TensorSequences(refs.take(anchors), data.device, data.dtype)
    truth = np.argsort(teacher, axis=1, kind="stable")[:, :k]
    best, best_weight = -1.0, POSITION_WEIGHTS[0]
    for weight in POSITION_WEIGHTS:
        scores = frame_scores(queries, tensors, cands, weight, symmetric, budget)
        order = np.argsort(scores, axis=1, kind="stable")
        hits = np.mean(
            [
                len(np.intersect1d(t, o[:k])) + len(np.intersect1d(t, o[: 2 * k]))
                for t, o in zip(truth, order)
            ]
        ) / (2 * k)
        if hits > best + 1e-9:
            best, best_weight = hits, weight
    return best_weight


class DistilledRanker:
    """Segment means mapped linearly to a vector that ranks like a pair kernel.

    Fitted on the references (already encoded for the kernel); :meth:`embed`
    maps queries the same way. Deterministic for a given ``random_state``.

    Attributes
    ----------
    center_ : ndarray of shape (segments * d,)
        Mean of the references' segment means.
    scale_ : float
        Their overall standard deviation (one number: the geometry is kept).
    net_ : torch.nn.Linear
        The ranking map.
    embedding_ : ndarray of shape (n_refs, segments * d)
        The references' ranking vectors.
    n_teacher_pairs_ : int
        Pairs scored with the kernel to train the ranker.
    position_weight_ : float
        Weight of the relative-position gap in the nearest-frame score that
        re-ranks the shortlist (one of :data:`POSITION_WEIGHTS`).
    """

    def fit(
        self,
        kernel,
        refs,
        budget,
        n_jobs=None,
        random_state=None,
        symmetric=False,
        uploaded=None,
    ):
        """Train on the encoded references ``refs`` (``uploaded``: the same
        set already where ``kernel`` reads it, so it is not copied again)."""
        rng = random_state
        features = segment_means(refs)
        self.center_ = features.mean(axis=0)
        self.scale_ = float(features.std()) + 1e-6
        z = (features - self.center_) / self.scale_
        self.net_ = _linear(z.shape[1])
        self.n_teacher_pairs_ = 0
        self.position_weight_ = POSITION_WEIGHTS[0]
        if len(z) > 1:  # a single reference has no order to learn
            tensors = as_tensors(kernel, refs if uploaded is None else uploaded)
            self._distil(kernel, refs, tensors, z, budget, n_jobs, rng, symmetric)
        self.embedding_ = self._embed(z)
        return self

    def _distil(self, kernel, refs, tensors, z, budget, n_jobs, rng, symmetric):
        anchors, cands = _pair_lists(z, rng)
        rows = np.repeat(anchors, cands.shape[1])
        teacher = np.empty(rows.shape, dtype=np.float32)
        for pos, d in iter_pairs(
            kernel, tensors, tensors, rows, cands.ravel(), budget, n_jobs
        ):
            teacher[pos] = d
        self.n_teacher_pairs_ = len(rows)
        teacher = teacher.reshape(cands.shape)
        self.position_weight_ = _best_position_weight(
            refs, tensors, anchors, cands, teacher, symmetric, budget
        )
        self._train(
            torch.as_tensor(z),
            torch.as_tensor(anchors),
            torch.as_tensor(cands),
            torch.as_tensor(teacher),
            generator_from(rng),
        )

    def _train(self, z, anchors, cands, teacher, gen):
        # the map is linear: the distance of a pair is |W (z_a - z_c)|, so
        # the differences are formed once and each step maps a batch of them
        diffs = z[cands] - z[anchors][:, None]  # (a, c, n_in)
        opt = torch.optim.Adam(self.net_.parameters(), lr=LEARNING_RATE)
        for _ in range(STEPS):
            pick = torch.randperm(len(anchors), generator=gen)[:BATCH]
            mapped = self.net_(diffs[pick])  # (b, c, n_in)
            learned = (mapped**2).sum(-1).clamp_min(1e-12).sqrt()
            loss = _listwise_loss(teacher[pick], learned)
            opt.zero_grad()
            loss.backward()
            opt.step()

    def _embed(self, z):
        with torch.inference_mode():
            return self.net_(torch.as_tensor(z, dtype=torch.float32)).numpy()

    def embed(self, seqs: Sequences) -> np.ndarray:
        """Ranking vectors (n_ts, segments * d) of sequences encoded like the
        references."""
        return self._embed((segment_means(seqs) - self.center_) / self.scale_)

    # -- persistence -----------------------------------------------------
    def state(self) -> dict:
        return {
            "center": torch.as_tensor(self.center_),
            "scale": float(self.scale_),
            "net": {k: v.clone() for k, v in self.net_.state_dict().items()},
            "n_teacher_pairs": int(self.n_teacher_pairs_),
            "position_weight": float(self.position_weight_),
        }

    @classmethod
    def from_state(cls, state, refs) -> DistilledRanker:
        ranker = cls()
        ranker.center_ = state["center"].numpy()
        ranker.scale_ = float(state["scale"])
        ranker.net_ = _linear(len(ranker.center_))
        ranker.net_.load_state_dict(state["net"])
        ranker.net_.eval()
        ranker.n_teacher_pairs_ = state["n_teacher_pairs"]
        # files saved before the shortlist re-ranked by frames: the bound
        ranker.position_weight_ = state.get("position_weight", POSITION_WEIGHTS[0])
        ranker.embedding_ = ranker.embed(refs)
        return ranker
