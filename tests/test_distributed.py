"""sktap.distributed: TAP distances and neighbour search on a dask cluster.

One two-process cluster for the module. Results are checked against the
local computations (cdist_tap, the learner's pairwise_distances, scikit-learn's
NearestNeighbors on the precomputed matrix); what travels is checked with
the client's own calls (spied) and the workers' transfer counters.
"""

import subprocess
import sys
import time

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import NearestNeighbors

from sktap import TAPMetricLearner
from sktap._engine import iter_tiles
from sktap.metrics import PairKernel, cdist_tap

from .conftest import TINY_LEARNER

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
from dask.sizeof import sizeof  # noqa: E402

from sktap.distributed import DistributedReferences, pairwise_distances  # noqa: E402
from sktap.distributed._cluster import Packed  # noqa: E402
from sktap.distributed._worker import (  # noqa: E402
    DistanceModel,
    merge_radius,
    merge_topk_parts,
)

pytestmark = pytest.mark.slow

TOL = dict(rtol=1e-6, atol=1e-6)
FORMS = [False, True, "divergence"]


@pytest.fixture(scope="module")
def cluster():
    # each worker declares one (pretend) GPU, so that resources={"GPU": 1}
    # can be placed; the computation itself stays on the CPU
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        resources={"GPU": 1},
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    """40 references and 9 queries, lengths 3..15, 2 channels."""
    rng = np.random.default_rng(0)
    R = [rng.normal(size=(rng.integers(3, 16), 2)) + (i % 2) for i in range(40)]
    Q = [rng.normal(size=(rng.integers(3, 16), 2)) for _ in range(9)]
    return R, np.arange(40) % 2, Q


@pytest.fixture(scope="module")
def learner(data):
    R, y, _ = data
    return TAPMetricLearner(**TINY_LEARNER).fit(R, y)


def _local(learner, X, Y=None, symmetric=False):
    if learner is None:
        return cdist_tap(X, Y, symmetric=symmetric, device="cpu")
    return learner.pairwise_distances(X, Y, symmetric=symmetric)


def _nn(D_train, k=4):
    """scikit-learn's search on a precomputed matrix: the expected graphs."""
    nn = NearestNeighbors(n_neighbors=k, metric="precomputed")
    return nn.fit(D_train.astype(np.float64))


def _topk(D, k, exclude_self=False):
    D = D.astype(np.float64)
    if exclude_self:
        np.fill_diagonal(D, np.inf)
    cols = np.broadcast_to(np.arange(D.shape[1]), D.shape)
    ind = np.lexsort((cols, D), axis=1)[:, :k]
    return np.take_along_axis(D, ind, axis=1), ind


def _radius_between(D, fraction=0.3):
    """A radius half-way between two distances at least 1e-4 apart, so that
    float rounding cannot move a pair across it."""
    u = np.unique(D)
    gaps = np.flatnonzero(np.diff(u) > 1e-4)
    m = gaps[np.searchsorted(gaps, int(fraction * len(u)))]
    return float((u[m] + u[m + 1]) / 2)


def _same_graph(G, E):
    assert G.shape == E.shape
    np.testing.assert_array_equal(G.indptr, E.indptr)
    np.testing.assert_array_equal(G.indices, E.indices)
    np.testing.assert_allclose(G.data, E.data, **TOL)


def _sktap_keys(cluster, prefix):
    return [k for k in cluster.scheduler.tasks if str(k).startswith(prefix)]


# -- pairwise_distances -------------------------------------------------------
@pytest.mark.parametrize("symmetric", FORMS)
@pytest.mark.parametrize("learned", [False, True])
def test_pairwise_distances_match_local(
    client, cluster, data, learner, symmetric, learned
):
    R, _, Q = data
    model = learner if learned else None
    D = pairwise_distances(
        Q, R, metric_learner=model, symmetric=symmetric, chunk_size=7, client=client
    )
    assert isinstance(D, da.Array)
    assert D.shape == (9, 40) and D.chunks == ((7, 2), (7,) * 5 + (5,))
    assert D.dtype == (np.float64 if learned else np.float32)
    assert not _sktap_keys(cluster, f"('{D.name}'")  # lazy: nothing ran yet
    out = D.compute()
    assert out.dtype == D.dtype
    np.testing.assert_allclose(out, _local(model, Q, R, symmetric), **TOL)
    S = pairwise_distances(
        R, metric_learner=model, symmetric=symmetric, chunk_size=16, client=client
    ).compute()
    np.testing.assert_allclose(S, _local(model, R, None, symmetric), **TOL)
    if symmetric:  # the blocks below the diagonal mirror those above
        np.testing.assert_array_equal(S, S.T)
    if symmetric == "divergence":
        np.testing.assert_array_equal(S.diagonal(), 0)


# -- DistributedReferences ----------------------------------------------------
def _index(client, model, symmetric=False, k=4):
    return DistributedReferences(
        k,
        metric_learner=model,
        symmetric=symmetric,
        device="cpu",
        chunk_size=7,
        working_memory=0.5,
        client=client,
    )


@pytest.mark.parametrize("symmetric", FORMS)
@pytest.mark.parametrize("learned", [False, True])
def test_kneighbors_match_local(client, data, learner, symmetric, learned):
    R, _, Q = data
    model = learner if learned else None
    D_qr = _local(model, Q, R, symmetric)
    # k > chunk_size: each chunk's part has all its 7 (or 5), the merge 8
    with _index(client, model, symmetric, k=8).fit(R) as index:
        assert len(index.references_) == 6
        assert set(index.chunk_workers_) == set(client.nthreads())
        dist, ind = index.kneighbors(Q)
        exp_d, exp_i = _topk(D_qr, 8)
        np.testing.assert_array_equal(ind, exp_i)
        np.testing.assert_allclose(dist, exp_d, **TOL)
        assert dist.dtype == np.float64
        dist, ind = index.kneighbors()  # the references, each without itself
        exp_d, exp_i = _topk(_local(model, R, None, symmetric), 8, exclude_self=True)
        np.testing.assert_array_equal(ind, exp_i)
        np.testing.assert_allclose(dist, exp_d, **TOL)
        P = index.pairwise_distances(Q)
        assert isinstance(P, da.Array) and P.dtype == D_qr.dtype
        np.testing.assert_allclose(P.compute(), D_qr, **TOL)


@pytest.mark.parametrize("learned", [False, True])
def test_graphs_match_scikit_learn(client, data, learner, learned):
    R, _, Q = data
    model = learner if learned else None
    D_qr, D_rr = _local(model, Q, R), _local(model, R)
    radius, r_self = _radius_between(D_qr), _radius_between(D_rr)
    nn = _nn(D_rr, 4)
    with _index(client, model).fit(R) as index:
        for mode in ("connectivity", "distance"):
            G = index.kneighbors_graph(Q, mode=mode)
            _same_graph(G, nn.kneighbors_graph(D_qr, mode=mode))
            G = index.kneighbors_graph(mode=mode)
            _same_graph(G, nn.kneighbors_graph(None, mode=mode))
            G = index.radius_neighbors_graph(Q, radius, mode=mode)
            assert 0 < G.nnz < G.shape[0] * G.shape[1]
            _same_graph(G, nn.radius_neighbors_graph(D_qr, radius, mode=mode))
            G = index.radius_neighbors_graph(radius=r_self, mode=mode)
            _same_graph(G, nn.radius_neighbors_graph(None, r_self, mode=mode))
        np.testing.assert_allclose(index.pairwise_distances().compute(), D_rr, **TOL)


def _spy(monkeypatch, client):
    """Record what the client sends (scatter, submit) and receives (gather)."""
    log = {"scatter": [], "submit": [], "gather": []}
    scatter, submit, gather = client.scatter, client.submit, client.gather

    def spy_scatter(data, workers=None, broadcast=False, **kw):
        copies = len(workers) if broadcast and workers else 1
        for item in data if isinstance(data, list) else [data]:
            log["scatter"].append((type(item).__name__, sizeof(item), copies))
        return scatter(data, workers=workers, broadcast=broadcast, **kw)

    def spy_submit(func, *args, **kw):
        sent = [a for a in args if not isinstance(a, distributed.Future)]
        log["submit"].append((func.__name__, sizeof(sent)))
        return submit(func, *args, **kw)

    def spy_gather(futures, *a, **kw):
        out = gather(futures, *a, **kw)
        log["gather"].append(sum(x.nbytes for r in out for x in r))
        return out

    monkeypatch.setattr(client, "scatter", spy_scatter)
    monkeypatch.setattr(client, "submit", spy_submit)
    monkeypatch.setattr(client, "gather", spy_gather)
    return log


def _worker_bytes_out(client):
    """Bytes the workers have sent so far (to each other and to the client)."""
    counts = client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total)
    return sum(counts.values())


def _query_call(client, log, index, Q, k):
    for entries in log.values():
        entries.clear()
    before = _worker_bytes_out(client)
    index.kneighbors(Q, k)
    return {
        "scattered": sum(size * copies for _, size, copies in log["scatter"]),
        "kinds": {kind for kind, *_ in log["scatter"]},
        "submit_payload": max(size for _, size in log["submit"]),
        "gathered": sum(log["gather"]),
        "workers_out": _worker_bytes_out(client) - before,
    }


def test_references_and_weights_travel_once(client, data, monkeypatch):
    R, y, Q = data
    # weights large enough to be seen if they travelled with the queries
    wide = TAPMetricLearner(**dict(TINY_LEARNER, hidden_layer_sizes=(96, 96)))
    wide.fit(R, y)
    log = _spy(monkeypatch, client)
    k = 3
    with DistributedReferences(
        metric_learner=wide, device="cpu", chunk_size=7, client=client
    ).fit(R) as index:
        models = [s for s in log["scatter"] if s[0] == "DistanceModel"]
        assert [copies for *_, copies in models] == [1, 1]  # one to each worker
        model_bytes = models[0][1]
        ref_bytes = sum(s for kind, s, _ in log["scatter"] if kind == "Packed")
        first = _query_call(client, log, index, Q, k)
        second = _query_call(client, log, index, Q, k)
        # each copy stays on its worker, past the memory manager's rounds
        time.sleep(2.5)
        where = {w: client.who_has(f)[f.key] for w, f in index.models_.items()}
        assert all(list(held) == [w] for w, held in where.items())
        third = _query_call(client, log, index, Q, k)
        keys = [f.key for f in index.references_]
        encoded = client.run_on_scheduler(
            lambda dask_scheduler: sum(dask_scheduler.tasks[k].nbytes for k in keys)
        )
    query_bytes = sizeof(
        Packed(np.zeros((sum(map(len, Q)), 2), np.float32), np.zeros(9, np.int64))
    )
    for call in (first, second, third):
        # only the queries, one copy per worker holding references
        assert call["kinds"] == {"Packed"}
        assert call["scattered"] == 2 * query_bytes
        assert call["submit_payload"] < 512  # tasks carry futures, not data
        # results of n_queries x k, never n_queries x n_references
        assert call["gathered"] == 9 * k * 16
        # between workers: the per-chunk top-k and the merged result; no
        # weights, no references
        assert call["workers_out"] < min(encoded, model_bytes) / 4
    out = [c["workers_out"] for c in (first, second, third)]
    assert max(out) - min(out) <= 0.25 * max(out)
    print(
        f"\nweights: {model_bytes} B to each worker at fit; references: "
        f"{ref_bytes} B scattered at fit, {encoded} B encoded on the workers; "
        f"per query call: {first['scattered']} B scattered, {out} B sent by "
        f"workers, {first['gathered']} B gathered"
    )


class _TileCounter(PairKernel):
    def __init__(self, bytes_per_cell):
        self.bytes_per_cell = bytes_per_cell

    def block(self, x, x_lengths, y, y_lengths):
        return np.zeros((len(x), len(y)), dtype=np.float32)


def test_more_tiles_ship_no_more_bytes(client, data, learner, monkeypatch):
    R, _, Q = data
    log = _spy(monkeypatch, client)
    calls, tiles = {}, {}
    for wm in (1.0, 0.01):
        with DistributedReferences(
            metric_learner=learner,
            device="cpu",
            chunk_size=10,
            working_memory=wm,
            client=client,
        ).fit(R) as index:
            calls[wm] = _query_call(client, log, index, Q, 3)
        # the tiles of each task, as the workers plan them (nothing computed)
        counter = _TileCounter(learner.distance_kernel().bytes_per_cell)
        Zq, Zr = learner.encode(Q), learner.encode(R)
        tiles[wm] = sum(
            sum(1 for _ in iter_tiles(counter, Zq, Zr.take(np.arange(s, s + 10)), wm))
            for s in range(0, 40, 10)
        )
    assert tiles[0.01] >= 4 * tiles[1.0]
    small, large = calls[0.01], calls[1.0]
    assert small["scattered"] == large["scattered"]
    assert small["gathered"] == large["gathered"]
    assert small["workers_out"] <= 1.25 * large["workers_out"] + 256
    sent = large["workers_out"], small["workers_out"]
    print(f"\ntiles {tiles}; bytes sent by workers {sent[0]} -> {sent[1]}")


def test_resources_place_the_tasks(client, cluster, data):
    R, _, Q = data
    seen = {}

    class Restrictions(distributed.diagnostics.plugin.SchedulerPlugin):
        def transition(self, key, start, finish, *args, **kwargs):
            # as the scheduler hands the task to a worker
            ts = cluster.scheduler.tasks.get(key)
            if finish == "processing" and str(key).startswith("sktap-"):
                where = ts.processing_on.address
                seen[str(key)] = (
                    ts.resource_restrictions,
                    ts.worker_restrictions,
                    where,
                )

    plugin = Restrictions()
    cluster.scheduler.add_plugin(plugin, name="sktap-restrictions")
    try:
        with DistributedReferences(
            2, resources={"GPU": 1}, device="cpu", client=client
        ).fit(R) as index:
            ind = index.kneighbors(Q, return_distance=False)
    finally:
        cluster.scheduler.remove_plugin(name="sktap-restrictions")
    np.testing.assert_array_equal(ind, _topk(cdist_tap(Q, R), 2)[1])
    placed = {k: v for k, v in seen.items() if not k.startswith("sktap-merge")}
    kinds = {k.split("-")[1] for k in placed}
    assert kinds == {"reference", "query", "topk"}
    for res, workers, where in placed.values():
        assert res == {"GPU": 1} and workers == {where}
    with pytest.raises(ValueError, match="no worker of the cluster declares"):
        DistributedReferences(resources={"TPU": 1}, client=client).fit(R)


def test_close_releases_the_references(client, cluster, data):
    R, _, Q = data
    with DistributedReferences(device="cpu", client=client).fit(R) as index:
        prefix = index.references_[0].key.rsplit("-", 1)[0]
        assert len(_sktap_keys(cluster, prefix)) == 2
    with pytest.raises(NotFittedError):
        index.kneighbors(Q)
    deadline = time.monotonic() + 10
    while _sktap_keys(cluster, prefix) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _sktap_keys(cluster, prefix)


def test_validation(client, cluster, data, learner):
    R, _, Q = data
    R_before = [r.copy() for r in R]
    with pytest.raises(NotFittedError):
        DistributedReferences(client=client).kneighbors(Q)
    unfitted = TAPMetricLearner(**TINY_LEARNER)
    with pytest.raises(NotFittedError):
        DistributedReferences(metric_learner=unfitted, client=client).fit(R)
    with pytest.raises(NotFittedError):
        pairwise_distances(R, metric_learner=unfitted, client=client)
    with pytest.raises(TypeError, match="metric_learner must be None or a fitted"):
        pairwise_distances(R, metric_learner="tap", client=client)
    with pytest.raises(ValueError, match="symmetric must be False, True or"):
        pairwise_distances(R, symmetric="both", client=client)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        pairwise_distances(R, chunk_size=0, client=client)
    with pytest.raises(ValueError, match="device='tpu' is not supported"):
        pairwise_distances(R, device="tpu", client=client)
    with pytest.raises(ValueError, match="resources must be None or a dict"):
        DistributedReferences(resources={"GPU": -1}, client=client).fit(R)
    with pytest.raises(TypeError, match=r"client must be a distributed\.Client"):
        pairwise_distances(R, client="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="Y has 3 features per time step, but 2"):
        pairwise_distances(R, [np.ones((4, 3))], client=client)
    with DistributedReferences(
        metric_learner=learner, device="auto", chunk_size=20, client=client
    ).fit(R) as index:
        with pytest.raises(
            ValueError,
            match=r"n_neighbors=41 is larger than the number of references \(40\)",
        ):
            index.kneighbors(Q, 41)
        with pytest.raises(ValueError, match=r"number of other references \(39\)"):
            index.kneighbors(None, 40)
        with pytest.raises(ValueError, match="n_neighbors must be a positive integer"):
            index.kneighbors(Q, 0)
        for radius in (0, -1.0, float("nan"), True):
            with pytest.raises(ValueError, match="radius must be a positive number"):
                index.radius_neighbors_graph(Q, radius)
        with pytest.raises(
            ValueError, match="mode must be 'connectivity' or 'distance'"
        ):
            index.kneighbors_graph(Q, mode="adjacency")
        with pytest.raises(ValueError, match="X has 3 features per time step, but 2"):
            index.kneighbors([np.ones((4, 3))])
    # the learner's own device and the data were left alone
    assert learner.device == "cpu"
    assert all(np.array_equal(a, b) for a, b in zip(R, R_before))
    with distributed.Client(cluster, set_as_default=False) as other:
        index = DistributedReferences(device="cpu", client=other).fit(R)
    with pytest.raises(
        ValueError, match="the client of this DistributedReferences is closed"
    ):
        index.kneighbors(Q)
    with pytest.raises(ValueError, match="the client is closed"):
        pairwise_distances(R, client=other)


def test_without_dask(monkeypatch, data):
    R, _, _ = data
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "dask\[distributed\]"'):
        pairwise_distances(R)
    code = (
        "import sys, sktap, sktap.distributed; "
        "assert 'dask' not in sys.modules and 'distributed' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_worker_model_pickles_without_its_caches(learner):
    import pickle

    model = DistanceModel(learner, "cpu")
    model.kernel(False)
    copy = pickle.loads(pickle.dumps(model))
    assert copy._kernels == {} and copy._context is None
    assert sizeof(model) > sum(p.numel() * 4 for p in learner.model_.parameters())


def test_merges_break_ties_by_reference_index():
    # two reference chunks' parts, sorted within each, tied across them
    a = (np.array([[1.0, 2.0], [0.5, 0.5]]), np.array([[10, 11], [12, 13]]))
    b = (np.array([[1.0, 1.0], [0.5, 3.0]]), np.array([[0, 1], [2, 3]]))
    dist, ind = merge_topk_parts(3, a, b)
    np.testing.assert_array_equal(ind, [[0, 1, 10], [2, 12, 13]])
    np.testing.assert_array_equal(dist, [[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]])
    parts = [
        (np.array([1, 0, 1]), np.array([12, 11, 10]), np.array([0.3, 0.2, 0.1])),
        (np.array([1]), np.array([2]), np.array([0.0])),
    ]
    indptr, indices, dist = merge_radius(3, *parts)
    np.testing.assert_array_equal(indptr, [0, 1, 4, 4])
    np.testing.assert_array_equal(indices, [11, 2, 10, 12])
    np.testing.assert_array_equal(dist, [0.2, 0.0, 0.1, 0.3])
