"""TAPNearestNeighbors: exact k-NN and radius search, graphs, candidates, indexes."""

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors

import sktap
from sktap import TAPKNeighborsClassifier, TAPMetricLearner, TAPNearestNeighbors
from sktap._engine import TAPKernel, TensorSequences
from sktap.metrics import cdist_tap
from sktap.neighbors._frames import frame_scores
from sktap.neighbors._ranker import DistilledRanker, segment_means

from .conftest import TINY_LEARNER


@pytest.fixture(scope="module")
def data():
    """30 references and 6 queries, lengths 3-12, 2 channels, 3 classes."""
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 13), 2).cumsum(0) + 2 * (i % 3) for i in range(36)]
    y = np.array([i % 3 for i in range(36)])
    return X[:30], y[:30], X[30:]


def _sorted(D, k):
    ind = np.lexsort((np.broadcast_to(np.arange(D.shape[1]), D.shape), D), axis=1)
    ind = ind[:, :k]
    return np.take_along_axis(D, ind, 1), ind


@pytest.mark.parametrize("supervised", [False, True])
def test_kneighbors_with_a_learner_fitted_here(data, supervised):
    X, y, Q = data
    nn = TAPNearestNeighbors(
        4, metric_learner=TAPMetricLearner(**TINY_LEARNER), device="cpu"
    )
    nn.fit(X, y if supervised else None)
    D = nn.metric_learner_.pairwise_distances(Q, X)
    dist, ind = nn.kneighbors(Q)
    ref_d, ref_i = _sorted(D, 4)
    np.testing.assert_array_equal(ind, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-5)


@pytest.mark.parametrize("query", ["queries", "references"])
@pytest.mark.parametrize("sort_results", [False, True])
def test_radius_neighbors_and_graphs_match_scikit_learn(data, query, sort_results):
    X, _, Q = data
    D_train = cdist_tap(X).astype(np.float64)
    r = float(np.quantile(D_train, 0.1))  # about 3 of the 30 per query
    nn = TAPNearestNeighbors(3, radius=r, working_memory=0.01, device="cpu").fit(X)
    ref = NearestNeighbors(n_neighbors=3, radius=r, metric="precomputed")
    # X=None leaves each reference out of its own neighbours; a precomputed
    # matrix with a huge diagonal does the same for scikit-learn's queries
    np.fill_diagonal(D_train, 1e9)
    ref.fit(D_train)
    queries = Q if query == "queries" else None
    D = cdist_tap(Q, X).astype(np.float64) if queries is not None else D_train
    dist, ind = nn.radius_neighbors(queries, sort_results=sort_results)
    ref_dist, ref_ind = ref.radius_neighbors(D, sort_results=sort_results)
    assert sum(len(i) for i in ind) > len(ind)  # the radius finds some
    for a, b, da, db in zip(ind, ref_ind, dist, ref_dist):
        if not sort_results:  # scikit-learn gives index order for brute force
            a, da = a[np.argsort(a)], da[np.argsort(a)]
            b, db = b[np.argsort(b)], db[np.argsort(b)]
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(da, db, rtol=1e-5)
    for mode in ("connectivity", "distance"):
        got = nn.radius_neighbors_graph(queries, mode=mode).toarray()
        want = ref.radius_neighbors_graph(D, mode=mode).toarray()
        np.testing.assert_allclose(got, want, rtol=1e-5)
        got = nn.kneighbors_graph(queries, mode=mode)
        assert got.shape == (len(D), len(X)) and got.nnz == 3 * len(D)
        want = ref.kneighbors_graph(D, mode=mode)
        np.testing.assert_allclose(got.toarray(), want.toarray(), rtol=1e-5)


def test_bad_arguments(data):
    X, _, Q = data
    with pytest.raises(TypeError, match="candidate_index must have fit"):
        TAPNearestNeighbors(n_candidates=3, candidate_index=object()).fit(X)
    nn = TAPNearestNeighbors(device="cpu").fit(X)
    with pytest.raises(ValueError, match="radius must be a finite non-negative"):
        nn.radius_neighbors(Q, radius=-1.0)
    with pytest.raises(ValueError, match="Unsupported mode"):
        nn.kneighbors_graph(Q, mode="weights")
    with pytest.raises(ValueError, match="sort_results is True"):
        nn.radius_neighbors(Q, return_distance=False, sort_results=True)
    with pytest.raises(ValueError, match="has 3 features per time step, but 2"):
        nn.kneighbors([np.ones((4, 3))])


def test_candidate_budget_as_a_fraction(data, monkeypatch):
    X, _, Q = data
    nn = TAPNearestNeighbors(2, n_candidates=0.2, random_state=0, device="cpu").fit(X)
    calls = []
    scored = nn._candidate_chunk

    def recording(refs, queries, q_idx, k, exclude_self, budget):
        calls.append(nn._n_scored(k, exclude_self))
        return scored(refs, queries, q_idx, k, exclude_self, budget)

    monkeypatch.setattr(nn, "_candidate_chunk", recording)
    nn.kneighbors(Q)
    nn.kneighbors()
    assert calls == [6, 7]  # ceil(0.2 * 30), one more when each leaves itself out


def test_ranker_learns_to_rank_like_the_distance():
    """The trained map orders references more like TAP than segment means do."""
    rng = np.random.RandomState(1)
    X = [rng.randn(rng.randint(8, 20), 2).cumsum(0) for _ in range(120)]
    refs = sktap.Sequences(*_padded(X))
    kernel = TAPKernel(None, torch.device("cpu"))
    D = cdist_tap(X).astype(np.float64)
    np.fill_diagonal(D, np.inf)
    true = np.argsort(D, 1)[:, :5]
    ranker = DistilledRanker().fit(kernel, refs, 64.0, None, np.random.RandomState(0))
    assert ranker.n_teacher_pairs_ > 0

    def recall(E):
        R = ((E[:, None] - E[None]) ** 2).sum(-1)
        np.fill_diagonal(R, np.inf)
        cand = np.argsort(R, 1)[:, :12]
        return np.mean([len(set(t) & set(c)) / 5 for t, c in zip(true, cand)])

    plain = segment_means(refs)
    assert recall(ranker.embedding_) > recall(plain) + 0.02


def _nearest_frames(q, x, w):
    """The score by brute force: each frame of q to its nearest in x."""
    D = np.sqrt(((q[:, None] - x[None]) ** 2).sum(-1))
    iq, ix = np.arange(1, len(q) + 1) / len(q), np.arange(1, len(x) + 1) / len(x)
    return (D + w * np.abs(iq[:, None] - ix[None])).min(1).mean()


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_frame_scores_match_brute_force(data, symmetric, weight):
    X, _, Q = data
    cpu = torch.device("cpu")
    refs = TensorSequences(sktap.Sequences(*_padded(X)), cpu)
    queries = TensorSequences(sktap.Sequences(*_padded(Q)), cpu)
    cand = np.random.RandomState(0).randint(0, len(X), size=(len(Q), 9))
    # a bound of 0.002 MiB splits each query's candidates into several steps
    got = frame_scores(queries, refs, cand, weight, symmetric, 0.002)
    want = np.array(
        [
            [_nearest_frames(Q[i], X[j], weight) for j in row]
            for i, row in enumerate(cand)
        ]
    )
    if symmetric:
        want = (
            want
            + np.array(
                [
                    [_nearest_frames(X[j], Q[i], weight) for j in row]
                    for i, row in enumerate(cand)
                ]
            )
        ) / 2
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_position_weight_follows_the_teacher(weight):
    """A teacher that ranks by the frame score of weight w gets w back."""
    from sktap.neighbors._ranker import _best_position_weight

    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(5, 30), 2).cumsum(0) for _ in range(60)]
    refs = sktap.Sequences(*_padded(X))
    tensors = TensorSequences(refs, torch.device("cpu"))
    anchors = np.arange(20)
    cands = np.array([rng.choice(np.setdiff1d(np.arange(60), a), 40) for a in anchors])
    teacher = np.array(
        [
            [_nearest_frames(X[a], X[j], weight) for j in row]
            for a, row in zip(anchors, cands)
        ]
    )
    chosen = _best_position_weight(refs, tensors, anchors, cands, teacher, False, 8.0)
    assert chosen == weight


def test_nearest_frame_score_bounds_tap_from_below(data):
    """Each alignment row sums to 1/Lx: TAP >= mean_i min_j D[i, j]."""
    X, y, Q = data
    learner = TAPMetricLearner(**TINY_LEARNER).fit(X, y)
    for D, (zq, zx) in [
        (cdist_tap(Q, X), (Q, X)),
        (learner.pairwise_distances(Q, X), _encoded(learner, Q, X)),
    ]:
        bound = np.array([[_nearest_frames(q, x, 0.0) for x in zx] for q in zq])
        assert np.all(bound <= D + 1e-5) and np.all(bound > 0.05 * D)


def _encoded(learner, Q, X):
    zq, zx = learner.encode(Q), learner.encode(X)
    return (
        [d[:n] for d, n in zip(zq.data, zq.lengths)],
        [d[:n] for d, n in zip(zx.data, zx.lengths)],
    )


def _padded(seqs):
    lengths = np.array([len(s) for s in seqs])
    out = np.zeros((len(seqs), lengths.max(), seqs[0].shape[1]))
    for row, s in zip(out, seqs):
        row[: len(s)] = s
    return out, lengths


def test_segment_means_of_short_and_long_sequences():
    x = np.arange(10.0)[:, None]
    seqs = sktap.Sequences(*_padded([x, x[:3]]))
    means = segment_means(seqs, segments=4)
    # 10 frames: spans of 2 or 3 frames; 3 frames: the empty span 1 takes
    # its centre frame (1)
    np.testing.assert_allclose(means[0], [0.5, 3.0, 5.5, 8.0])
    np.testing.assert_allclose(means[1], [0.0, 1.0, 1.0, 2.0])


def test_candidates_survive_save_load_and_threads(data, tmp_path):
    X, y, Q = data
    clf = TAPKNeighborsClassifier(3, n_candidates=8, random_state=0, device="cpu").fit(
        X, y
    )
    dist, ind = clf.kneighbors(Q)
    path = tmp_path / "knn.skt"
    clf.save(path)
    again = sktap.load(path)
    assert again.ranker_.position_weight_ == clf.ranker_.position_weight_
    np.testing.assert_array_equal(again.kneighbors(Q)[1], ind)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).kneighbors(Q)[1], ind)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: clf.kneighbors(Q), range(8)))
    for d, i in results:
        np.testing.assert_array_equal(i, ind)
        np.testing.assert_array_equal(d, dist)
    refit = clone(clf).fit(X, y)  # the same random_state: the same ranker
    np.testing.assert_array_equal(refit.kneighbors(Q)[1], ind)


def test_shortlist_is_reranked_by_frames_before_tap(data, monkeypatch):
    """2 candidates of 30: the index shortlists 20, the frame score keeps 2."""
    from sktap.neighbors import _base

    X, _, Q = data
    nn = TAPNearestNeighbors(1, n_candidates=2, random_state=0, device="cpu").fit(X)
    seen = []
    rerank = _base.top_by_frames

    def recording(queries, refs, cand, missing, m, *args):
        out = rerank(queries, refs, cand, missing, m, *args)
        seen.append((cand.copy(), out[0]))
        return out

    monkeypatch.setattr(_base, "top_by_frames", recording)
    _, ind = nn.kneighbors(Q)
    ((shortlist, kept),) = seen
    assert shortlist.shape == (len(Q), 20) and kept.shape == (len(Q), 2)
    order = np.argsort([len(q) for q in Q], kind="stable")  # queries go by length
    Q, ind = [Q[i] for i in order], ind[order]
    near = nn.candidate_index_.kneighbors(
        nn.ranker_.embed(sktap.Sequences(*_padded(Q))), 20, return_distance=False
    )
    np.testing.assert_array_equal(np.sort(shortlist, 1), np.sort(near, 1))
    w = nn.ranker_.position_weight_
    for q, row, k, i in zip(Q, shortlist, kept, ind):
        scores = [_nearest_frames(q, X[j], w) for j in row]
        assert set(k) == set(row[np.argsort(scores)[:2]]) and i[0] in k


def test_callable_weights(data):
    X, y, Q = data
    uniform = TAPKNeighborsClassifier(5, device="cpu").fit(X, y)
    ones = clone(uniform).set_params(weights=np.ones_like).fit(X, y)
    np.testing.assert_array_equal(ones.predict_proba(Q), uniform.predict_proba(Q))
    inverse = clone(uniform).set_params(weights="distance").fit(X, y)
    own = clone(uniform).set_params(weights=lambda d: 1.0 / d).fit(X, y)
    np.testing.assert_allclose(own.predict_proba(Q), inverse.predict_proba(Q))
    bad = clone(uniform).set_params(weights=lambda d: d[:, :1]).fit(X, y)
    with pytest.raises(ValueError, match="must return finite non-negative weights"):
        bad.predict(Q)


def test_faiss_index(data):
    pytest.importorskip("faiss")
    from sktap.neighbors import FaissIndex

    rng = np.random.RandomState(0)
    V = rng.randn(200, 16).astype(np.float32)
    exact = NearestNeighbors(algorithm="brute").fit(V)
    want = exact.kneighbors(V[:20], 5, return_distance=False)
    flat = FaissIndex(kind="flat").fit(V)
    np.testing.assert_array_equal(
        flat.kneighbors(V[:20], 5, return_distance=False), want
    )
    hnsw = pickle.loads(pickle.dumps(FaissIndex(ef_search=64).fit(V)))
    got = hnsw.kneighbors(V[:20], 5, return_distance=False)
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(got, want)]) > 0.9
    hnsw.kneighbors(V[:2], 150, return_distance=False)  # a wider search ...
    assert hnsw.index_.hnsw.efSearch == 16  # ... leaves the fitted graph as built
    with pytest.raises(ValueError, match="NaN"):
        flat.kneighbors(np.full((1, 16), np.nan), 2)
    with pytest.raises(ValueError, match="X has 3 features, but FaissIndex"):
        flat.kneighbors(V[:2, :3], 2)
    with pytest.raises(
        ValueError, match=r"n_neighbors must be an integer in \[1, 200\]"
    ):
        flat.kneighbors(V[:2], 201)
    X, y, Q = data
    clf = TAPKNeighborsClassifier(
        3,
        n_candidates=10,
        candidate_index=FaissIndex(kind="flat"),
        random_state=0,
        device="cpu",
    ).fit(X, y)
    plain = clone(clf).set_params(candidate_index=None).fit(X, y)
    np.testing.assert_array_equal(clf.kneighbors(Q)[1], plain.kneighbors(Q)[1])
