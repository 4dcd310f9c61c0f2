"""Inference contexts: one per call (or, for k-NN, per fit), no fitted state touched.

Inference makes a fitted network ready on its device once (the fitted model
itself on the CPU, read-only; a private copy elsewhere), keeps a k-NN
classifier's encoded training set on the device as float32 between calls,
and never moves, casts or switches the fitted ``model_``.
"""

import copy
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

import sktap
from sktap import TAPFewShotClassifier, TAPKNeighborsClassifier, TAPMetricLearner
from sktap._engine import (
    InferenceCache,
    InferenceContext,
    TAPKernel,
    TensorSequences,
    inference_net,
    inference_scope,
)
from sktap.baselines import (
    DTWFewShotClassifier,
    OTAMFewShotClassifier,
    PrototypeFewShotClassifier,
)
from sktap.interop import TAPDistanceTransformer
from sktap.metrics import cdist_tap

from .conftest import TINY_FEW_SHOT, TINY_LEARNER, TINY_OTAM, requires_cuda

DEVICES = ["cpu", pytest.param("cuda", marks=requires_cuda)]


@pytest.fixture(scope="module")
def data():
    """24 training and 7 query sequences of 3 classes told apart by offset."""
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 13), 2) + 2 * (i % 3) for i in range(31)]
    y = np.array([i % 3 for i in range(31)])
    return X[:24], y[:24], X[24:]


def _snapshot(model):
    """Device, dtype and values of every tensor, and every training flag."""
    tensors = {
        name: (t.device, t.dtype, t.detach().cpu().clone())
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    }
    return tensors, [m.training for m in model.modules()]


def _assert_unchanged(model, snapshot):
    tensors, flags = _snapshot(model)
    assert flags == snapshot[1]
    assert tensors.keys() == snapshot[0].keys()
    for name, (device, dtype, value) in tensors.items():
        before = snapshot[0][name]
        assert (device, dtype) == before[:2], name
        assert torch.equal(value, before[2]), name


class _Spy:
    """Counts, on fitted modules, ``to`` / ``train`` calls, and network copies."""

    def __init__(self, monkeypatch, watched=()):
        self.watched = {id(m) for model in watched for m in model.modules()}
        self.moves, self.copies = [], []
        self._depth = 0
        to, train, deepcopy = torch.nn.Module.to, torch.nn.Module.train, copy.deepcopy

        def spy_to(module, *args, **kwargs):
            if id(module) in self.watched:
                self.moves.append(("to", type(module).__name__, args, kwargs))
            return to(module, *args, **kwargs)

        def spy_train(module, mode=True):
            if id(module) in self.watched:
                self.moves.append(("train", type(module).__name__, mode))
            return train(module, mode)

        def spy_deepcopy(obj, memo=None, _nil=[]):  # noqa: B006 - copy's signature
            if self._depth == 0 and isinstance(obj, torch.nn.Module):
                self.copies.append(type(obj).__name__)
            self._depth += 1
            try:
                return deepcopy(obj, memo)
            finally:
                self._depth -= 1

        monkeypatch.setattr(torch.nn.Module, "to", spy_to)
        monkeypatch.setattr(torch.nn.Module, "train", spy_train)
        monkeypatch.setattr(copy, "deepcopy", spy_deepcopy)


# -- 1. several threads, one fitted estimator ---------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_concurrent_inference_is_exact_and_leaves_fitted_state(
    data, device, monkeypatch
):
    X, y, Q = data
    learner = TAPMetricLearner(**dict(TINY_LEARNER, device=device)).fit(X, y)
    knn = TAPKNeighborsClassifier(
        3, metric_learner=learner, refit_metric=False, device=device
    ).fit(X, y)
    plain = TAPKNeighborsClassifier(3, n_candidates=5, device=device).fit(X, y)
    few = TAPFewShotClassifier(**dict(TINY_FEW_SHOT, device=device)).fit(X, y)
    calls = {
        "transform": lambda: learner.transform(Q),
        "pairwise": lambda: learner.pairwise_distances(Q, X),
        "divergence": lambda: learner.pairwise_distances(Q, symmetric="divergence"),
        "predict": lambda: knn.predict(Q),
        "kneighbors": lambda: np.hstack(knn.kneighbors(Q)),
        "self_kneighbors": lambda: np.hstack(knn.kneighbors()),
        "plain_kneighbors": lambda: np.hstack(plain.kneighbors(Q)),
        "few_shot": lambda: few.predict_proba(Q),
    }
    single = {name: call() for name, call in calls.items()}
    models = [learner.model_, knn.metric_learner_.model_, few.model_]
    before = [_snapshot(m) for m in models]
    spy = _Spy(monkeypatch, models)
    jobs = [name for name in calls for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda name: calls[name](), jobs))
    monkeypatch.undo()
    for name, result in zip(jobs, results):
        np.testing.assert_array_equal(result, single[name], err_msg=name)
    assert spy.moves == []  # no fitted module moved, cast or switched
    for model, snapshot in zip(models, before):
        _assert_unchanged(model, snapshot)
        assert next(model.parameters()).device.type == "cpu"  # stored on CPU


def test_transform_stays_float64_at_the_edge(data):
    X, y, Q = data
    learner = TAPMetricLearner(**TINY_LEARNER).fit(X, y)
    Z = learner.encode(Q)
    assert Z.data.dtype == np.float32  # float32 inside, as the network computes
    out = learner.transform(Q)
    assert out.dtype == np.float64
    expected = Z.data.astype(np.float64)
    expected[np.isnan(out)] = np.nan  # NaN after each sequence's end
    np.testing.assert_array_equal(out, expected)


# -- 2. a fitted k-NN classifier prepares once ---------------------------------
@pytest.mark.parametrize(
    ("device", "precision", "copies_at_fit"),
    [
        ("cpu", "float32", 0),  # the fitted model itself, read-only
        ("cpu", "bfloat16", 1),  # the alignment network cast once
        pytest.param("cuda", "float32", 1, marks=requires_cuda),
    ],
)
def test_knn_prepares_its_references_once_per_fit(
    data, monkeypatch, device, precision, copies_at_fit
):
    X, y, Q = data
    learner = TAPMetricLearner(
        **dict(TINY_LEARNER, device=device, precision=precision)
    ).fit(X, y)
    encode = TAPMetricLearner.encode
    encoded = []

    def counting_encode(self, X, *, name="X"):
        encoded.append(len(X))
        return encode(self, X, name=name)

    uploads = []
    init = TensorSequences.__init__

    def counting_init(self, seqs, *args, **kwargs):
        uploads.append(len(seqs))
        init(self, seqs, *args, **kwargs)

    tiles = []
    block = TAPKernel.block

    def recording_block(self, x, lx, yy, ly):
        tiles.append((type(x), type(yy)))
        return block(self, x, lx, yy, ly)

    monkeypatch.setattr(TAPMetricLearner, "encode", counting_encode)
    monkeypatch.setattr(TensorSequences, "__init__", counting_init)
    monkeypatch.setattr(TAPKernel, "block", recording_block)
    spy = _Spy(monkeypatch, [learner.model_])
    knn = TAPKNeighborsClassifier(
        3, metric_learner=learner, refit_metric=False, device=device
    )
    knn.fit(X, y)
    spy.watched |= {id(m) for m in knn.metric_learner_.model_.modules()}
    assert encoded == [len(X)]  # the training set, encoded at fit
    assert len(spy.copies) == copies_at_fit
    first = knn.predict(Q)
    encoded.clear()
    uploads.clear()
    tiles.clear()
    copies = list(spy.copies)
    for _ in range(3):
        np.testing.assert_array_equal(knn.predict(Q), first)
    assert encoded == [len(Q)] * 3  # queries only: the training set never again
    assert len(X) not in uploads  # nor uploaded again
    assert spy.copies == copies  # no network copied after the first call
    assert spy.moves == []  # and no fitted module moved
    # every tile reads the training set already on the device
    assert tiles and all(t == (torch.Tensor, torch.Tensor) for t in tiles)


@pytest.mark.parametrize("symmetric", [False, "divergence"])
def test_distance_transformer_prepares_its_references_once_per_fit(
    data, monkeypatch, symmetric
):
    X, y, Q = data
    learner = TAPMetricLearner(**dict(TINY_LEARNER, precision="bfloat16")).fit(X, y)
    encode = TAPMetricLearner.encode
    encoded, uploads = [], []

    def counting_encode(self, X, *, name="X"):
        encoded.append(len(X))
        return encode(self, X, name=name)

    init = TensorSequences.__init__

    def counting_init(self, seqs, *args, **kwargs):
        uploads.append(len(seqs))
        init(self, seqs, *args, **kwargs)

    monkeypatch.setattr(TAPMetricLearner, "encode", counting_encode)
    monkeypatch.setattr(TensorSequences, "__init__", counting_init)
    spy = _Spy(monkeypatch, [learner.model_])
    transformer = TAPDistanceTransformer(
        FrozenEstimator(learner), symmetric=symmetric, device="cpu"
    ).fit(X)
    assert encoded == [len(X)] and spy.copies == ["TAPNet"]  # bfloat16, once
    first = transformer.transform(Q)
    encoded.clear()
    uploads.clear()
    for _ in range(3):
        np.testing.assert_array_equal(transformer.transform(Q), first)
    assert encoded == [len(Q)] * 3  # the references never again
    assert len(X) not in uploads  # nor uploaded again
    assert spy.copies == ["TAPNet"] and spy.moves == []  # no copy after fit


def test_learner_call_copies_at_most_once(data, monkeypatch):
    X, y, Q = data
    learner = TAPMetricLearner(**dict(TINY_LEARNER, precision="bfloat16")).fit(X, y)
    spy = _Spy(monkeypatch, [learner.model_])
    learner.pairwise_distances(Q, X, symmetric="divergence")
    assert spy.copies == ["TAPNet"]  # the bfloat16 network, once for the call
    spy.copies.clear()
    learner.transform(Q)  # float32 on the CPU: the fitted model itself
    assert spy.copies == [] and spy.moves == []


# -- 3. a new fit, new references ----------------------------------------------
@pytest.mark.parametrize("with_learner", [False, True])
def test_refit_and_new_settings_use_new_references(data, with_learner):
    X, y, Q = data
    learner = TAPMetricLearner(**TINY_LEARNER) if with_learner else None
    knn = TAPKNeighborsClassifier(2, metric_learner=learner, device="cpu")
    knn.fit(X, y)
    old = knn.kneighbors(Q)
    X2 = [2 - x[::-1] for x in X[:15]]  # other sequences, fewer of them
    y2 = (y[:15] + 1) % 3
    knn.fit(X2, y2)
    expected = clone(knn).fit(X2, y2)
    for got, want in zip(knn.kneighbors(Q), expected.kneighbors(Q)):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(knn.kneighbors(Q)[1], old[1])
    np.testing.assert_array_equal(knn.predict(Q), expected.predict(Q))
    if not with_learner:
        D = cdist_tap(Q, X2)
        np.testing.assert_allclose(
            knn.kneighbors(Q)[0], np.sort(D, axis=1)[:, :2], rtol=1e-6
        )
    # a setting the prepared kernel depends on, changed after fit
    knn.set_params(symmetric=True)
    fresh = clone(knn).fit(X2, y2)
    for got, want in zip(knn.kneighbors(Q), fresh.kneighbors(Q)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TAPFewShotClassifier(**TINY_FEW_SHOT),
        lambda: OTAMFewShotClassifier(**TINY_OTAM),
        lambda: PrototypeFewShotClassifier(),
        lambda: DTWFewShotClassifier(),
    ],
    ids=["tap", "otam", "prototype", "dtw"],
)
def test_few_shot_embeds_its_support_once_per_support_set(data, make, monkeypatch):
    X, y, Q = data
    clf = make().fit(X, y)
    embedded = []
    embed = type(clf)._embed

    def counting_embed(self, seqs):
        embedded.append(len(seqs))
        return embed(self, seqs)

    monkeypatch.setattr(type(clf), "_embed", counting_embed)
    first = clf.predict(Q)
    assert embedded == [len(Q), len(X)]  # the queries, then the support set
    embedded.clear()
    np.testing.assert_array_equal(clf.predict(Q), first)
    assert embedded == [len(Q)]  # the queries only: the support is kept
    # a fresh copy embeds its support again and scores the same
    fresh = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(fresh.predict(Q), first)
    # a new support set is embedded once, and replaces the old one
    embedded.clear()
    clf.set_support(X[:9], y[:9])
    np.testing.assert_array_equal(
        clf.predict(Q), pickle.loads(pickle.dumps(clf)).predict(Q)
    )
    assert sorted(embedded) == sorted([len(Q), 9, len(Q), 9])
    embedded.clear()
    clf.predict(Q)
    assert embedded == [len(Q)]


# -- what is saved -------------------------------------------------------------
def test_cache_is_never_saved_nor_cloned(data, tmp_path):
    X, y, Q = data
    knn = TAPKNeighborsClassifier(
        3, metric_learner=TAPMetricLearner(**TINY_LEARNER), device="cpu"
    ).fit(X, y)
    proba = knn.predict_proba(Q)
    assert knn._inference.built
    assert "_inference" not in knn.get_params(deep=True)
    assert not hasattr(clone(knn), "_inference")
    for again in (pickle.loads(pickle.dumps(knn)), copy.deepcopy(knn)):
        assert not again._inference.built  # rebuilt lazily
        np.testing.assert_array_equal(again.predict_proba(Q), proba)
        assert again._inference.built
    # the pickle holds no prepared kernel nor device references
    assert len(pickle.dumps(knn._inference)) < 200
    path = tmp_path / "knn.sktap"
    knn.save(path)
    np.testing.assert_array_equal(sktap.load(path).predict_proba(Q), proba)


# -- the context itself --------------------------------------------------------
def test_context_uses_a_ready_module_and_copies_otherwise():
    net = sktap.TAPNet((4,), (3, 3)).eval()
    cpu = torch.device("cpu")
    context = InferenceContext()
    assert context.net(net, cpu) is net  # eval, float32, on the CPU: itself
    assert context.net(None, cpu) is None
    half = context.net(net, cpu, torch.bfloat16)
    assert half is not net and next(half.parameters()).dtype == torch.bfloat16
    assert context.net(net, cpu, torch.bfloat16) is half  # once per context
    assert next(net.parameters()).dtype == torch.float32
    training = sktap.TAPNet((4,), (3, 3))  # in training mode
    ready = inference_net(training, cpu)
    assert ready is not training and not ready.training and training.training


def test_context_shares_a_copy_with_its_submodules():
    outer = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    cpu = torch.device("cpu")  # in training mode: a copy
    with inference_scope() as context:
        ready = inference_net(outer, cpu)
        assert ready is not outer and not ready.training
        assert inference_net(outer[1], cpu) is ready[1]  # a part of the copy
        with inference_scope() as nested:
            assert nested is context  # an inner call shares the outer one
    assert inference_net(outer, cpu) is not ready  # no scope: a one-off
    assert outer.training


def test_cache_builds_once_and_rebuilds_on_change():
    cache, built = InferenceCache(), []
    source, other = object(), object()

    def build():
        built.append(1)
        return len(built)

    assert cache.get(build, sources=(source,), settings=(True,)) == 1
    assert cache.get(build, sources=(source,), settings=(True,)) == 1
    assert cache.get(build, sources=(other,), settings=(True,)) == 2
    assert cache.get(build, sources=(other,), settings=(False,)) == 3
    with ThreadPoolExecutor(4) as pool:
        fresh = InferenceCache()
        values = list(pool.map(lambda _: fresh.get(build), range(8)))
    assert values == [4] * 8  # concurrent first calls: built once
    assert not pickle.loads(pickle.dumps(fresh)).built
    assert not copy.deepcopy(fresh).built
