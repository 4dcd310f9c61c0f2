"""The learner's frame encoders, input scaling, downsampling and alignment nets."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

import sktap
from sktap import TAPKNeighborsClassifier, TAPMetricLearner, TAPTransNet
from sktap.core import (
    ChannelScaler,
    ConvFrameEncoder,
    FrameMLP,
    SequenceScaler,
    TAPModel,
)

from .conftest import TINY_LEARNER

TINY = dict(TINY_LEARNER, n_components=8, max_epochs=2)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(5, 20), 2) * 50 + 100 * (i % 3) for i in range(18)]
    return X, np.array([i % 3 for i in range(18)])


def test_default_encoder_is_convolutional_and_scaled(data):
    X, y = data
    est = TAPMetricLearner(**TINY).fit(X, y)
    assert isinstance(est.model_.frame, ConvFrameEncoder)
    assert isinstance(est.model_.scaler, ChannelScaler)
    frames = np.concatenate(X)
    np.testing.assert_allclose(est.model_.scaler.mean, frames.mean(0), rtol=1e-6)
    np.testing.assert_allclose(est.model_.scaler.scale, frames.std(0), rtol=1e-6)
    assert est.stride_ == 1  # short series: no downsampling
    Z = est.transform(X)
    assert Z.shape == (len(X), max(map(len, X)), 8)
    # unit-norm frames within each length, NaN beyond
    for z, x in zip(Z, X):
        np.testing.assert_allclose(np.linalg.norm(z[: len(x)], axis=1), 1, rtol=1e-5)
        assert np.isnan(z[len(x) :]).all()


def test_scaling_makes_the_input_scale_irrelevant(data):
    X, y = data
    a = TAPMetricLearner(**TINY).fit(X, y).pairwise_distances(X[:4])
    b = TAPMetricLearner(**TINY).fit([x * 1e-3 - 7 for x in X], y)
    np.testing.assert_allclose(
        b.pairwise_distances([x * 1e-3 - 7 for x in X[:4]]), a, rtol=2e-4, atol=1e-6
    )
    raw = TAPMetricLearner(**{**TINY, "scale": False}).fit(X, y)
    assert raw.model_.scaler is None


def _padded(seqs, fill=0.0):
    lengths = torch.tensor([len(s) for s in seqs])
    x = torch.full((len(seqs), int(lengths.max()), seqs[0].shape[1]), fill)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.as_tensor(s, dtype=torch.float32)
    return x, lengths


def test_sequence_scaler_keeps_shape_level_and_scale():
    rng = np.random.RandomState(0)
    seqs = [rng.randn(n, 2) * 10.0**k + 5 * k for n, k in [(30, -3), (12, 0), (7, 2)]]
    scaler = SequenceScaler(2).fit(*_padded(seqs))
    assert scaler.n_outputs == 6
    x, lengths = _padded(seqs, fill=float("nan"))  # padding must not leak
    z, out = scaler(x, lengths)
    assert z.shape == (3, 30, 6) and out.tolist() == [30, 12, 7]
    for i, s in enumerate(seqs):
        n = len(s)
        alone, _ = scaler(*_padded([s]))
        np.testing.assert_allclose(z[i, :n], alone[0], rtol=1e-6, atol=1e-6)
        assert (z[i, n:] == 0).all()
        # the shape channels are the sequence z-normalised (up to eps)
        s = s.astype(np.float32).astype(np.float64)  # as the scaler reads it
        expected = (s - s.mean(0)) / (s.std(0) + scaler.eps.numpy())
        np.testing.assert_allclose(z[i, :n, :2], expected, rtol=1e-4, atol=1e-5)
        # level and log-scale: one value per sequence, on every frame
        assert (z[i, :n, 2:] == z[i, :1, 2:]).all()
    # the quietest and the loudest sequence differ in log-scale, not in shape
    log_scale = z[:, 0, 4:]
    assert (log_scale[2] > log_scale[1]).all() and (log_scale[1] > log_scale[0]).all()
    # a constant sequence has a finite output
    flat, _ = scaler(torch.ones(1, 5, 2), torch.tensor([5]))
    assert torch.isfinite(flat).all() and (flat[0, :, :2] == 0).all()


def test_per_sequence_scale_feeds_the_encoder_three_channels_per_input(data, tmp_path):
    X, y = data
    est = TAPMetricLearner(**{**TINY, "scale": "per_sequence"}).fit(X, y)
    assert isinstance(est.model_.scaler, SequenceScaler)
    assert est.model_.frame.n_features == 6
    # the amplitude is kept: a louder copy is no longer the same sequence
    D = est.pairwise_distances([X[0], X[0] * 100])
    assert D[0, 1] > 1e-3
    est.save(tmp_path / "m.sktap")
    again = sktap.load(tmp_path / "m.sktap")
    np.testing.assert_array_equal(
        again.pairwise_distances(X[:4]), est.pairwise_distances(X[:4])
    )
    with pytest.raises(ValueError, match="scale"):
        TAPMetricLearner(**{**TINY, "scale": "per_series"}).fit(X, y)


def test_mlp_encoder_is_the_papers(data):
    X, y = data
    est = TAPMetricLearner(**{**TINY, "encoder": "mlp"}).fit(X, y)
    assert isinstance(est.model_.frame, FrameMLP)
    with pytest.raises(ValueError, match="cannot downsample"):
        TAPMetricLearner(**{**TINY, "encoder": "mlp", "downsample": 2}).fit(X, y)


@pytest.mark.parametrize("cap", [None, 2, 3, 8])
def test_auto_downsampling_caps_its_stride(monkeypatch, cap):
    from sktap import _thresholds

    monkeypatch.setattr(_thresholds, "AUTO_MAX_STRIDE", cap)
    rng = np.random.RandomState(1)
    X = [np.cumsum(rng.randn(rng.randint(150, 300))) for _ in range(6)]
    y = np.arange(6) % 2
    est = TAPMetricLearner(**{**TINY, "max_epochs": 1}).fit(X, y)
    longest = max(map(len, X))
    assert est.stride_ == (5 if cap is None else min(5, cap))  # ceil(299 / 64)
    assert est.encode(X).lengths.max() == -(-longest // est.stride_)


def test_auto_downsampling_bounds_long_series():
    rng = np.random.RandomState(1)
    X = [np.cumsum(rng.randn(rng.randint(150, 300))) for _ in range(8)]
    y = np.arange(8) % 2
    est = TAPMetricLearner(**{**TINY, "max_epochs": 1}).fit(X, y)
    assert est.stride_ == 5  # ceil(299 / 64) or less steps
    enc = est.encode(X)
    np.testing.assert_array_equal(enc.lengths, -(-np.array(list(map(len, X))) // 5))
    assert enc.lengths.max() <= 64
    T = est.alignment(X[0], X[1])
    assert T.shape == (enc.lengths[0], enc.lengths[1])
    np.testing.assert_allclose(T.sum(axis=1), 1 / enc.lengths[0], rtol=1e-5)
    # the self-supervised term aligns frame to frame: no automatic stride
    ssl = TAPMetricLearner(**{**TINY, "max_epochs": 1, "augment": True}).fit(X, y)
    assert ssl.stride_ == 1
    with pytest.raises(ValueError, match="keeps the sequence lengths"):
        TAPMetricLearner(
            **{**TINY, "max_epochs": 1, "augment": True, "downsample": 3}
        ).fit(X, y)


@pytest.mark.parametrize("cap", [16, 2])
def test_per_sequence_resolution_keeps_short_series_whole(monkeypatch, cap):
    from sktap import _thresholds

    monkeypatch.setattr(_thresholds, "AUTO_MAX_STRIDE", cap)
    rng = np.random.RandomState(1)
    lengths = [20, 64, 65, 150, 299, 40]
    X = [np.cumsum(rng.randn(n)) for n in lengths]
    y = np.arange(6) % 2
    params = {**TINY, "max_epochs": 1, "downsample": "per_sequence"}
    est = TAPMetricLearner(**params).fit(X, y)
    frames = 64 if cap == 16 else 150  # max(64, ceil(299 / cap))
    assert est.stride_ == 1 and est.model_.frame.max_frames == frames
    enc = est.encode(X)
    np.testing.assert_array_equal(enc.lengths, np.minimum(lengths, frames))
    T = est.alignment(X[4], X[0])
    assert T.shape == (frames, 20)
    # each sequence is encoded as it would be alone
    alone = est.encode([X[3]])
    np.testing.assert_allclose(
        enc.data[3, : enc.lengths[3]], alone.data[0, : alone.lengths[0]], atol=1e-6
    )
    # the self-supervised term aligns step to step: no pooling then
    ssl = TAPMetricLearner(**{**params, "augment": True}).fit(X, y)
    assert ssl.model_.frame.max_frames is None
    with pytest.raises(ValueError, match="cannot downsample"):
        TAPMetricLearner(**{**params, "encoder": "mlp"}).fit(X, y)


def test_context_encoder_is_saved_and_loaded(data, tmp_path):
    X, y = data
    est = TAPMetricLearner(**{**TINY, "encoder": "conv_context"}).fit(X, y)
    assert est.model_.frame.context and est.model_.frame.summary is not None
    est.save(tmp_path / "m.sktap")
    again = sktap.load(tmp_path / "m.sktap")
    assert again.model_.frame.context
    np.testing.assert_array_equal(
        again.pairwise_distances(X[:5]), est.pairwise_distances(X[:5])
    )


def test_batched_encoding_equals_one_by_one(data):
    X, y = data
    est = TAPMetricLearner(**{**TINY, "downsample": 3}).fit(X, y)
    together = est.encode(X)
    for i in (0, 5, 11):
        alone = est.encode([X[i]])
        L = alone.lengths[0]
        assert together.lengths[i] == L
        np.testing.assert_allclose(together.data[i, :L], alone.data[0, :L], atol=1e-6)


def _small_trans_net(width):
    return TAPTransNet(width, n_components=4)


@pytest.mark.parametrize("net", ["trans", "factory"])
def test_alignment_net_parameter(data, net, tmp_path):
    X, y = data
    est = TAPMetricLearner(
        **TINY, alignment_net="trans" if net == "trans" else _small_trans_net
    ).fit(X, y)
    assert isinstance(est.model_.align, TAPTransNet)
    D = est.pairwise_distances(X[:3], X)
    assert D.shape == (3, len(X)) and np.isfinite(D).all()
    if net == "trans":
        est.save(tmp_path / "m.sktap")
        np.testing.assert_allclose(
            sktap.load(tmp_path / "m.sktap").pairwise_distances(X[:3], X), D
        )
    else:
        with pytest.raises(ValueError, match="cannot be saved"):
            est.save(tmp_path / "m.sktap")
        again = pickle.loads(pickle.dumps(est))
        np.testing.assert_allclose(again.pairwise_distances(X[:3], X), D)


def test_alignment_net_factory_must_return_a_module(data):
    X, y = data
    with pytest.raises(TypeError, match=r"must return a torch\.nn\.Module"):
        TAPMetricLearner(**TINY, alignment_net=lambda w: "net").fit(X, y)


def test_knn_uses_exactly_the_learners_distance(data):
    X, y = data
    learner = TAPMetricLearner(**TINY).fit(X, y)
    knn = TAPKNeighborsClassifier(2, metric_learner=learner, refit_metric=False)
    knn.fit(X, y)
    Q = [x[::2] for x in X[:5]]
    dist, ind = knn.kneighbors(Q)
    D = learner.pairwise_distances(Q, X)
    np.testing.assert_allclose(dist, np.take_along_axis(D, ind, 1), rtol=1e-5)
    np.testing.assert_array_equal(ind[:, 0], D.argmin(1))


def test_refit_metric_false_and_frozen_survive_clone(data, tmp_path):
    X, y = data
    learner = TAPMetricLearner(**TINY).fit(X, y)
    expected = TAPKNeighborsClassifier(metric_learner=learner, refit_metric=False)
    expected = expected.fit(X, y).predict(X)
    for param, refit in ((learner, False), (FrozenEstimator(learner), True)):
        knn = TAPKNeighborsClassifier(metric_learner=param, refit_metric=refit)
        cloned = clone(knn)
        np.testing.assert_array_equal(cloned.fit(X, y).predict(X), expected)
        # the clone's learner was not refitted
        assert cloned.metric_learner_.history_ == learner.history_
        cloned.save(tmp_path / "knn.sktap")
        loaded = sktap.load(tmp_path / "knn.sktap")
        assert type(loaded.metric_learner) is type(param)
        np.testing.assert_array_equal(clone(loaded).fit(X, y).predict(X), expected)


def test_classes_dtype_survives_save(data, tmp_path):
    X, _ = data
    y = np.array(["a", "bb", "c"] * 6)
    knn = TAPKNeighborsClassifier(device="cpu").fit(X, y)
    knn.save(tmp_path / "k.sktap")
    loaded = sktap.load(tmp_path / "k.sktap")
    assert loaded.classes_.dtype == knn.classes_.dtype
    np.testing.assert_array_equal(loaded.predict(X), knn.predict(X))


def test_load_refuses_another_format_version(data, tmp_path):
    X, y = data
    knn = TAPKNeighborsClassifier(device="cpu").fit(X, y)
    knn.save(tmp_path / "k.sktap")
    payload = torch.load(tmp_path / "k.sktap", weights_only=True)
    payload["version"] = 99
    torch.save(payload, tmp_path / "k.sktap")
    with pytest.raises(ValueError, match="format version 99; this sktap reads"):
        sktap.load(tmp_path / "k.sktap")


def test_failed_save_leaves_nothing_behind(data, tmp_path, monkeypatch):
    X, y = data
    knn = TAPKNeighborsClassifier(device="cpu").fit(X, y)
    knn.save(tmp_path / "k.sktap")
    before = (tmp_path / "k.sktap").read_bytes()

    def broken(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        knn.save(tmp_path / "k.sktap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.sktap"]
    assert (tmp_path / "k.sktap").read_bytes() == before


def test_learned_tap_module_encodes_with_scaler_first():
    scaler = ChannelScaler(2)
    x = torch.tensor([[[1.0, 2.0], [3.0, 6.0], [0.0, 0.0]]])
    lengths = torch.tensor([2])
    scaler.fit(x, lengths)
    z, lz = TAPModel(None, None, scaler).encode(x, lengths)
    np.testing.assert_allclose(z[0, :2], [[-1.0, -1.0], [1.0, 1.0]])
    assert float(z[0, 2].abs().sum()) == 0.0 and lz.tolist() == [2]


@pytest.mark.parametrize("loss", ["triplet", "binomial", "lifted"])
def test_mined_bucketed_training_equals_all_pairs(loss, monkeypatch):
    # well separated classes: after the first batches mining keeps few pairs
    # (the tiny batches take the mined path only with the work bound at 0)
    from sktap import _thresholds

    monkeypatch.setattr(_thresholds, "MINED_MIN_MACS", 0)
    rng = np.random.RandomState(3)
    X = [rng.randn(rng.randint(4, 25), 2) + 3 * (i % 3) for i in range(24)]
    y = np.arange(24) % 3
    kw = dict(TINY, loss=loss, max_epochs=4, learning_rate=1e-2)
    fast = TAPMetricLearner(**kw).fit(X, y)
    with sktap.config_context(training_path="all_pairs"):
        slow = TAPMetricLearner(**kw).fit(X, y)
    a = [h["metric_loss"] for h in fast.history_]
    b = [h["metric_loss"] for h in slow.history_]
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)
    if loss != "lifted":
        fractions = [h["mined_fraction"] for h in fast.history_]
        assert min(fractions) < 0.5  # the mined path really ran
    for k, v in fast.model_.state_dict().items():
        np.testing.assert_allclose(v, slow.model_.state_dict()[k], rtol=1e-3, atol=1e-4)


def test_forecast_all_pairs_step_equals_the_mined_one(monkeypatch):
    # a batch forecast to mine most of its pairs skips the no-grad pass:
    # same loss, gradients and mined fraction as the path that mines first
    from sktap import _thresholds
    from sktap.metric_learning._steps import _MiningForecast, metric_term

    monkeypatch.setattr(_thresholds, "MINED_MIN_MACS", 0)
    rng = np.random.RandomState(3)
    X = [rng.randn(rng.randint(4, 25), 2) + 3 * (i % 3) for i in range(24)]
    y = np.arange(24) % 3
    est = TAPMetricLearner(**dict(TINY, max_epochs=1)).fit(X, y)
    model, metric = est.model_.double(), est._metric_loss()
    x = torch.zeros(12, 24, 2, dtype=torch.float64)
    for i in range(12):
        x[i, : len(X[i])] = torch.as_tensor(X[i])
    lx = torch.as_tensor([len(s) for s in X[:12]])
    labels = torch.as_tensor(y[:12])
    results = []
    for previous in (None, 1.0):
        forecast = _MiningForecast()
        forecast.previous = previous
        model.zero_grad()
        loss, fraction = metric_term(model, x, lx, labels, metric, "mined", forecast)
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        assert forecast.previous == fraction
        results.append((loss.detach(), fraction, grads))
    (a, fa, ga), (b, fb, gb) = results
    assert 0 < fa < _thresholds.MINING_PAYS_BELOW and fa == fb  # mined, recomputed
    torch.testing.assert_close(b, a, rtol=1e-9, atol=0)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(v, u, rtol=1e-7, atol=1e-12)
    # validation (no autograd) neither reads nor moves the forecast
    forecast = _MiningForecast()
    forecast.previous = 0.25
    with torch.no_grad():
        metric_term(model, x, lx, labels, metric, "mined", forecast)
    assert forecast.previous == 0.25


def test_small_batches_skip_the_mined_path(monkeypatch):
    # below the work bound a batch takes the all-pairs computation (no
    # mined fraction logged); above it, the mined path; same losses
    from sktap import _thresholds

    rng = np.random.RandomState(3)
    X = [rng.randn(rng.randint(4, 25), 2) + 3 * (i % 3) for i in range(24)]
    y = np.arange(24) % 3
    kw = dict(TINY_LEARNER, max_epochs=2)
    small = TAPMetricLearner(**kw).fit(X, y)
    assert all("mined_fraction" not in h for h in small.history_)
    monkeypatch.setattr(_thresholds, "MINED_MIN_MACS", 0)
    mined = TAPMetricLearner(**kw).fit(X, y)
    assert all("mined_fraction" in h for h in mined.history_)
    np.testing.assert_allclose(
        [h["metric_loss"] for h in small.history_],
        [h["metric_loss"] for h in mined.history_],
        rtol=2e-4,
    )


def test_training_path_by_device():
    from sktap.metric_learning._steps import training_path

    assert training_path("auto", torch.device("cpu")) == "mined"
    assert training_path("auto", "cuda") == "all_pairs"
    assert training_path("auto", torch.device("cuda", 0)) == "all_pairs"
    assert training_path("all_pairs", "cpu") == "all_pairs"
    assert training_path("mined", "cuda") == "mined"


def test_the_papers_configuration_builds_the_papers_networks(data):
    X, y = data
    paper = TAPMetricLearner(
        encoder="mlp",
        hidden_layer_sizes=(1024, 1024),
        n_components=None,
        scale=False,
        downsample=1,
        tap_channels=(30, 30),
        augment=True,
        batch_size=64,
        learning_rate=1e-4,
        max_epochs=1,
        device="cpu",
        random_state=0,
    ).fit(X[:6], y[:6])
    frame, align = paper.model_.frame, paper.model_.align
    assert paper.model_.scaler is None and paper.stride_ == 1
    linears = [m for m in frame.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2, 1024),
        (1024, 1024),
        (1024, 8),  # d = 2 widened to 8 (a 1-D unit vector is only a sign)
    ]
    assert align.channels == (30, 30) and align.kernel_sizes == (5, 5, 3)
    assert "self_supervised_loss" in paper.history_[0]


def test_tap_kernel_sizes_follow_the_channels(data):
    X, y = data
    est = TAPMetricLearner(**{**TINY, "tap_channels": (4, 4), "tap_kernel_sizes": None})
    assert est.fit(X, y).model_.align.kernel_sizes == (5, 5, 3)
