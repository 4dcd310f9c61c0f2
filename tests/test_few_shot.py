import ast
import math
import pickle
import re

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

import sktap
from sktap import TAPFewShotClassifier, TAPMetricLearner
from sktap.baselines import DTWFewShotClassifier, PrototypeFewShotClassifier
from sktap.core import ChannelScaler, ConvFrameEncoder, choose_stride
from sktap.few_shot import EpisodeSampler, FrameSelfAttention
from sktap.few_shot._episodes import PairwiseScorer, run_episodes
from sktap.few_shot._model import sinusoidal_positions

from .conftest import TINY_FEW_SHOT as TINY
from .conftest import same_weights, weights_of


@pytest.fixture
def data():
    """4 classes of 4 variable-length 2-D sequences, separated by an offset."""
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 8), 2) * 0.1 + 2 * (i % 4) for i in range(16)]
    return X, np.array([i % 4 for i in range(16)])


# -- episodes ------------------------------------------------------------
def test_sampler_draws_disjoint_balanced_episodes():
    y = np.repeat(["a", "b", "c", "d"], [5, 6, 7, 8])
    sampler = EpisodeSampler(y, n_way=3, k_shot=2, n_query=3, random_state=0)
    for ep in [sampler.sample() for _ in range(20)]:
        assert ep.support_idx.shape == (6,) and ep.query_idx.shape == (9,)
        assert not set(ep.support_idx) & set(ep.query_idx)
        assert len(set(ep.support_idx) | set(ep.query_idx)) == 15
        assert len(set(ep.classes)) == 3
        np.testing.assert_array_equal(np.bincount(ep.support_labels), [2, 2, 2])
        np.testing.assert_array_equal(np.bincount(ep.query_labels), [3, 3, 3])
        np.testing.assert_array_equal(y[ep.support_idx], ep.classes[ep.support_labels])
        np.testing.assert_array_equal(y[ep.query_idx], ep.classes[ep.query_labels])


def test_sampler_is_reproducible_and_iterable():
    y = np.repeat(np.arange(5), 4)
    a = EpisodeSampler(y, 3, 1, 2, random_state=7, n_episodes=4)
    b = EpisodeSampler(y, 3, 1, 2, random_state=7)
    episodes = list(a)
    assert len(episodes) == 4
    for ep in episodes:
        np.testing.assert_array_equal(ep.query_idx, b.sample().query_idx)


@pytest.mark.parametrize(
    ("y", "kwargs", "match"),
    [
        (
            ["a"] * 5 + ["b"] * 2,
            {},
            "k_shot \\+ n_query = 3 sequences; class 'b' has 2",
        ),
        (
            ["a", "a", "b", "b"],
            {"n_way": 3},
            "n_way=3 classes per episode, but y has only 2",
        ),
        (["a", "a", "b", "b"], {"n_way": 1}, "n_way must be an integer >= 2; got 1"),
        (["a", "a", "b", "b"], {"k_shot": 0}, "k_shot must be an integer >= 1"),
    ],
)
def test_sampler_errors(y, kwargs, match):
    params = {"n_way": 2, "k_shot": 1, "n_query": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        EpisodeSampler(y, **params)


class _RightThenWrong:
    """Every query right in even episodes, every query wrong in odd ones."""

    def __init__(self):
        self.calls = 0

    def prepare(self, n_pairs):
        pass

    def class_scores(self, query, support, support_labels, n_classes):
        truth = np.repeat(np.arange(n_classes), len(query) // n_classes)
        pred = truth if self.calls % 2 == 0 else (truth + 1) % n_classes
        self.calls += 1
        return np.eye(n_classes)[pred]


def test_interval_half_width_formula():
    sampler = EpisodeSampler(np.repeat([0, 1, 2], 2), 3, 1, 1, random_state=0)
    mean, half = run_episodes(_RightThenWrong(), sampler, 2)  # accuracies 1, 0
    assert mean == 0.5
    assert half == pytest.approx(1.96 * 0.5 / math.sqrt(2))  # population std 0.5
    # equal scores: argmax answers class 0, right on 1 query of 2, every time
    sampler = EpisodeSampler(np.repeat([0, 1], 3), 2, 1, 2, random_state=0)
    scorer = PairwiseScorer(lambda a, b: np.zeros((len(a), len(b))), 6, "mean")
    assert run_episodes(scorer, sampler, 3) == (0.5, 0.0)


def test_separable_set_gives_perfect_accuracy(data):
    X, y = data
    mean, half = PrototypeFewShotClassifier().evaluate_episodes(
        X, y, n_way=3, k_shot=1, n_query=2, n_episodes=50, random_state=0
    )
    assert (mean, half) == (1.0, 0.0)


def test_full_matrix_equals_per_episode_scores(data):
    X, y = data
    clf = TAPFewShotClassifier(**TINY).fit(X, y)
    Z = clf._embed(sktap._validation.check_sequences(X))
    lazy, full = clf._make_scorer(Z), clf._make_scorer(Z)
    full.prepare(10**9)
    assert full._matrix is not None and lazy._matrix is None
    ep = EpisodeSampler(y, 3, 2, 2, random_state=0).sample()
    args = (ep.query_idx, ep.support_idx, ep.support_labels, 3)
    np.testing.assert_allclose(
        lazy.class_scores(*args), full.class_scores(*args), rtol=1e-5
    )


# -- SA-TAP ----------------------------------------------------------------
def test_self_attention_shapes_and_padding_invariance():
    sa = FrameSelfAttention(6)
    x = torch.randn(3, 7, 6, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([7, 4, 2])
    out = sa(x, lengths)
    assert out.shape == (3, 7, 6)
    assert torch.all(out[1, 4:] == 0) and torch.all(out[2, 2:] == 0)
    alone = sa(x[1:2, :4], lengths[1:2])  # no padding at all
    torch.testing.assert_close(out[1, :4], alone[0])
    garbage = x.clone()
    garbage[1, 4:] = 100.0  # what lies in the padding must not matter
    torch.testing.assert_close(sa(garbage, lengths)[1], out[1])


def test_position_embedding_values():
    pe = sinusoidal_positions(3, 5)
    assert pe.shape == (3, 5)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1, 0, 1, 0]))
    assert pe[2, 0] == pytest.approx(math.sin(2.0))
    assert pe[1, 3] == pytest.approx(math.cos(1 / 10000 ** (2 / 5)))


def test_self_attention_adds_positions_of_the_frames_norm():
    """Positions scaled to norm 1 (as the L2-normalised frames), not sqrt(d/2)."""
    d = 32
    sa = FrameSelfAttention(d)
    seen = []
    sa.query.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    x = torch.zeros(1, 5, d)
    sa(x, torch.tensor([5]))
    added = seen[0][0]  # z = x + positions, with x = 0
    torch.testing.assert_close(added.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(added, sinusoidal_positions(5, d) * math.sqrt(2 / d))


def test_sa_tap_model_encodes_independently_of_padding(data):
    X, y = data
    clf = TAPFewShotClassifier(**TINY, self_attention=True).fit(X, y)
    assert isinstance(clf.model_.attention, FrameSelfAttention)
    long = sktap._validation.check_sequences([X[0], np.zeros((12, 2))])
    alone = clf._embed(sktap._validation.check_sequences([X[0]]))
    np.testing.assert_allclose(
        clf._embed(long).data[0, : len(X[0])], alone.data[0], rtol=1e-5, atol=1e-6
    )


# -- the TAP classifier ---------------------------------------------------
def test_fit_predict_and_history(data):
    X, y = data
    clf = TAPFewShotClassifier(**{**TINY, "validation_interval": 2}).fit(X, y)
    assert clf.n_features_in_ == 2 and clf.classes_.tolist() == [0, 1, 2, 3]
    assert (clf.n_way_, clf.k_shot_, clf.n_query_) == (3, 1, 1)
    assert [h["epoch"] for h in clf.history_] == [1, 2]  # 3 episodes -> 2 rounds
    proba = clf.predict_proba(X)
    assert proba.shape == (16, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


def test_same_random_state_same_weights(data):
    X, y = data
    a = TAPFewShotClassifier(**TINY, self_attention=True).fit(X, y)
    b = TAPFewShotClassifier(**TINY, self_attention=True).fit(X, y)
    assert same_weights(weights_of(a), weights_of(b))
    c = TAPFewShotClassifier(**{**TINY, "random_state": 1}, self_attention=True)
    assert not same_weights(weights_of(a), weights_of(c.fit(X, y)))


def test_warm_start_and_exact_resume_after_interruption(data):
    X, y = data
    seen = []

    def interrupt_at_two(est, round_, logs):
        seen.append(round_)
        if round_ == 2:
            raise KeyboardInterrupt

    params = {**TINY, "n_episodes": 4, "validation_interval": 1}
    reference = TAPFewShotClassifier(**params).fit(X, y)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clf = TAPFewShotClassifier(**params, warm_start=True, callback=interrupt_at_two)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        clf.fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)  # global RNG untouched
    assert seen == [1, 2] and len(clf.history_) == 2
    model = clf.model_
    clf.set_params(callback=None).fit(X, y)  # finishes rounds 3 and 4
    assert clf.model_ is model and len(clf.history_) == 4
    assert same_weights(weights_of(reference), weights_of(clf))
    clf.fit(X, y)  # a completed run: warm start adds n_episodes more
    assert [h["epoch"] for h in clf.history_] == list(range(1, 9))


def test_resume_from_checkpoint_after_crash(data, tmp_path):
    X, y = data
    path = str(tmp_path / "run.ckpt")
    params = {**TINY, "n_episodes": 3, "validation_interval": 1}
    reference = TAPFewShotClassifier(**params).fit(X, y)

    def crash(est, round_, logs):
        if round_ == 1:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        TAPFewShotClassifier(**params, checkpoint_path=path, callback=crash).fit(X, y)
    fresh = TAPFewShotClassifier(**params, checkpoint_path=path, warm_start=True)
    assert len(fresh.fit(X, y).history_) == 3
    assert same_weights(weights_of(reference), weights_of(fresh))


def test_set_support_with_unseen_string_labels(data):
    X, y = data
    clf = TAPFewShotClassifier(**TINY).fit(X[:12], y[:12])
    names = np.array(["cat", "dog", "eel", "fox"])
    assert clf.set_support(X[:8], names[y[:8]]) is clf
    assert clf.classes_.tolist() == ["cat", "dog", "eel", "fox"]
    pred = clf.predict(X[8:])
    assert set(pred) <= set(names)
    clf.set_support(X[:8:2], names[y[:8:2]])  # classes 0, 2 only
    assert clf.classes_.tolist() == ["cat", "eel"]
    assert set(clf.predict(X)) <= {"cat", "eel"}
    assert clf.predict_proba(X).shape == (16, 2)


def test_validation_keeps_best_round(data):
    X, y = data
    X, y = X + X, np.r_[y, y + 4]  # 8 classes: 4 to train, 4 to validate
    seen = {}

    def remember(est, round_, logs):
        seen[round_] = weights_of(est)

    clf = TAPFewShotClassifier(
        **{**TINY, "n_episodes": 6, "validation_interval": 2},
        validation_fraction=0.5,
        n_validation_episodes=3,
        callback=remember,
    ).fit(X, y)
    assert len(clf.history_) == 3 and all("val_accuracy" in h for h in clf.history_)
    assert clf.classes_.tolist() == list(range(8))  # support = all training data
    # the best round's weights were kept (the first of equal accuracies:
    # only a strictly higher one counts as better), not the last round's
    val = [h["val_accuracy"] for h in clf.history_]
    best = int(np.argmax(val)) + 1
    assert best < len(val)
    assert same_weights(weights_of(clf), seen[best])
    assert not same_weights(weights_of(clf), seen[len(val)])


def test_small_data_is_clipped_with_warnings():
    rng = np.random.RandomState(0)
    X = rng.randn(4, 5)  # 2 classes of 2 univariate series
    y = ["a", "a", "b", "b"]
    clf = TAPFewShotClassifier(**{**TINY, "n_way": 5, "k_shot": 3, "n_query": 5})
    with pytest.warns(
        UserWarning, match="fewer than n_way=5; training episodes are 2-way"
    ):
        with pytest.warns(UserWarning, match="use k_shot=1, n_query=1"):
            clf.fit(X, y)
    assert (clf.n_way_, clf.k_shot_, clf.n_query_) == (2, 1, 1)


def test_custom_backbone_trains_but_cannot_be_saved(data, tmp_path):
    X, y = data
    initial = []

    def backbone(d):
        layer = torch.nn.Linear(d, 5)
        initial.append(layer.weight.detach().clone())
        return layer

    clf = TAPFewShotClassifier(**TINY, backbone=backbone).fit(X, y)
    assert clf.model_.backbone.out_features == 5
    assert not torch.equal(clf.model_.backbone.weight, initial[-1])  # it trained
    assert clf.predict(X[:3]).shape == (3,)
    with pytest.raises(ValueError, match="custom backbone cannot be saved"):
        clf.save(tmp_path / "clf.sktap")
    bad = TAPFewShotClassifier(**TINY, backbone=lambda d: torch.nn.Flatten())
    with pytest.raises(ValueError, match="backbone must map \\(batch, L, d\\)"):
        bad.fit(X, y)


def test_pickle_and_save_load_round_trip(data, tmp_path):
    X, y = data
    names = np.array(["w", "x", "y", "z"])[y]
    clf = TAPFewShotClassifier(**TINY, self_attention=True).fit(X, names)
    proba = clf.predict_proba(X)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), proba)
    clf.save(tmp_path / "clf.sktap")
    loaded = sktap.load(tmp_path / "clf.sktap")
    assert isinstance(loaded, TAPFewShotClassifier)
    assert loaded.get_params() == clf.get_params()
    assert loaded.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


@pytest.mark.parametrize(
    ("kwargs", "labels", "match"),
    [
        ({"n_way": 1}, "ok", "The 'n_way' parameter"),
        ({"optimizer": "rmsprop"}, "ok", "The 'optimizer' parameter"),
        ({}, "one", "y has 1 class; at least 2"),
        ({}, "singleton", "class 7 has 1 sequence; few-shot training needs at least 2"),
        ({"validation_fraction": 0.1}, "ok", "leaves 3 to train and 1 to validate"),
    ],
)
def test_fit_errors(data, kwargs, labels, match):
    X, y = data
    y = {"ok": y, "one": np.zeros(16), "singleton": np.r_[y[:15], 7]}[labels]
    with pytest.raises(ValueError, match=match):
        TAPFewShotClassifier(**{**TINY, **kwargs}).fit(X, y)


def test_scoring_errors(data):
    X, y = data
    clf = TAPFewShotClassifier(**TINY).fit(X, y)
    with pytest.raises(
        ValueError, match="n_way=5 classes per episode, but y has only 4"
    ):
        clf.evaluate_episodes(X, y, n_way=5)
    with pytest.raises(
        ValueError, match="k_shot \\+ n_query = 5 sequences; class 0 has 4"
    ):
        clf.evaluate_episodes(X, y, n_way=2, k_shot=4, n_episodes=3)
    with pytest.raises(ValueError, match="the support set has 1 class \\('a'\\)"):
        clf.set_support(X[:3], ["a"] * 3)
    with pytest.raises(ValueError, match="has 3 features per time step, but 2"):
        clf.set_support([np.ones((4, 3))] * 2, [0, 1])
    with pytest.raises(ValueError, match="n_episodes must be an integer >= 1"):
        clf.evaluate_episodes(X, y, n_way=2, n_episodes=0)
    unfitted = TAPFewShotClassifier(**TINY)
    with pytest.raises(NotFittedError):
        unfitted.evaluate_episodes(X, y, n_way=2)


# -- baselines ---------------------------------------------------------------
def test_prototype_baseline_ignores_order():
    up, down = np.arange(6.0), np.arange(6.0)[::-1]
    clf = PrototypeFewShotClassifier().fit([up, down], ["up", "down"])
    # the same bag of frames: a tie, resolved towards the first class
    assert clf.predict([up]).tolist() == [clf.classes_[0]]
    clf.set_support([up, up + 5], ["low", "high"])
    assert clf.predict([up + 4, up - 1]).tolist() == ["high", "low"]


@pytest.mark.parametrize("metric", ["dtw", "softdtw"])
def test_dtw_baseline_rules(metric, data):
    X = [np.arange(5.0), np.arange(7.0), -np.arange(6.0), 10 - np.arange(4.0)]
    y = ["up", "up", "down", "down"]
    nn1 = DTWFewShotClassifier(metric, rule="1nn").fit(X, y)
    mean = DTWFewShotClassifier(metric, rule="class_mean").fit(X, y)
    assert nn1.predict([10 - np.arange(5.0)]).tolist() == ["down"]
    assert nn1.predict(X).tolist() == y
    assert mean.score(X[:2], y[:2]) == 1.0
    # classes apart by an offset: every episode of every rule is right
    for rule in ("1nn", "class_mean"):
        acc = DTWFewShotClassifier(metric, rule=rule).evaluate_episodes(
            *data, n_way=3, k_shot=2, n_query=2, n_episodes=5, random_state=0
        )
        assert acc == (1.0, 0.0)


def test_tap_kernel_sizes_none_means_what_it_means_for_the_learner():
    from sktap import TAPMetricLearner

    rng = np.random.RandomState(0)
    X = [rng.randn(6, 2) + (i % 3) for i in range(12)]
    y = np.arange(12) % 3
    kw = dict(tap_channels=(3, 3), tap_kernel_sizes=None, device="cpu")
    clf = TAPFewShotClassifier(
        hidden_layer_sizes=(4,), n_way=3, n_query=1, n_episodes=1, **kw
    ).fit(X, y)
    learner = TAPMetricLearner(hidden_layer_sizes=(4,), max_epochs=1, **kw).fit(X, y)
    sizes = [c.kernel_size for c in clf.model_.align.convs]
    assert sizes == [c.kernel_size for c in learner.model_.align.convs]
    assert sizes == [(5, 5), (5, 5), (3, 3)]


# -- the frame encoder, as the metric learner's --------------------------------
def test_default_encoder_options_are_the_learners(data):
    clf = TAPFewShotClassifier(**TINY).fit(*data)
    assert isinstance(clf.model_.backbone, ConvFrameEncoder)
    assert isinstance(clf.model_.scaler, ChannelScaler) and clf.stride_ == 1
    names = ("encoder", "hidden_layer_sizes", "n_components", "encoder_kernel_size")
    names += ("downsample", "scale", "precision")
    few_shot, learner = TAPFewShotClassifier().get_params(), TAPMetricLearner()
    assert {k: few_shot[k] for k in names} == {
        k: learner.get_params()[k] for k in names
    }


def test_encoder_options_mean_what_they_mean_for_the_learner():
    rng = np.random.RandomState(0)
    # long series of 3 classes, far from zero mean and unit scale
    X = [rng.randn(rng.randint(70, 150), 2) * 30 + 5 * (i % 3) for i in range(12)]
    y = np.arange(12) % 3
    options = dict(
        encoder="conv",
        hidden_layer_sizes=(8, 8),
        n_components=6,
        encoder_kernel_size=3,
        downsample="auto",
        scale=True,
        tap_channels=(4,),
        tap_kernel_sizes=(3, 3),
        device="cpu",
        random_state=0,
    )
    clf = TAPFewShotClassifier(n_way=3, n_query=1, n_episodes=1, **options)
    clf.fit(X, y)
    learner = TAPMetricLearner(max_epochs=1, **options).fit(X, y)
    assert clf.stride_ == learner.stride_ == choose_stride(max(map(len, X)), 64) > 1
    frame, backbone = learner.model_.frame, clf.model_.backbone
    assert isinstance(backbone, ConvFrameEncoder)
    assert (backbone.stride, backbone.channels, backbone.kernel_size) == (
        frame.stride,
        frame.channels,
        frame.kernel_size,
    )
    shapes = [p.shape for p in backbone.parameters()]
    assert shapes == [p.shape for p in frame.parameters()]
    assert isinstance(clf.model_.scaler, ChannelScaler)
    frames = np.concatenate(X)
    np.testing.assert_allclose(clf.model_.scaler.mean, frames.mean(0), rtol=1e-6)
    torch.testing.assert_close(clf.model_.scaler.scale, learner.model_.scaler.scale)
    Z = clf._embed(sktap._validation.check_sequences(X[:2]))
    assert Z.lengths.tolist() == [-(-len(x) // clf.stride_) for x in X[:2]]


def test_encoder_option_errors(data):
    X, y = data
    msg = "one by one and cannot downsample; got downsample=2"
    with pytest.raises(ValueError, match=f"encoder='mlp' compares frames {msg}"):
        TAPFewShotClassifier(**TINY, encoder="mlp", downsample=2).fit(X, y)
    with pytest.raises(ValueError, match=f"a custom backbone maps frames {msg}"):
        TAPFewShotClassifier(
            **TINY, backbone=lambda d: torch.nn.Linear(d, 4), downsample=2
        ).fit(X, y)
    with pytest.raises(ValueError, match="The 'precision' parameter"):
        TAPFewShotClassifier(**TINY, precision="float16").fit(X, y)


def test_bfloat16_trains_and_predicts_in_bfloat16(data):
    X, y = data
    clf = TAPFewShotClassifier(**TINY, precision="bfloat16").fit(X, y)
    assert all(np.isfinite(h["loss"]) for h in clf.history_)
    low = clf.predict_proba(X)
    high = clf.set_params(precision="float32").predict_proba(X)
    # the alignment network predicted in bfloat16: close, not equal
    assert not np.array_equal(low, high)
    np.testing.assert_allclose(low, high, atol=0.05)


def test_save_load_keeps_scaler_and_stride(tmp_path):
    rng = np.random.RandomState(1)
    X = [rng.randn(rng.randint(70, 100), 2) * 9 + (i % 3) for i in range(9)]
    y = np.arange(9) % 3
    clf = TAPFewShotClassifier(
        **{**TINY, "encoder": "conv", "scale": True, "n_episodes": 1}
    ).fit(X, y)
    assert clf.stride_ == 2
    clf.save(tmp_path / "clf.sktap")
    loaded = sktap.load(tmp_path / "clf.sktap")
    assert loaded.stride_ == 2
    torch.testing.assert_close(loaded.model_.scaler.mean, clf.model_.scaler.mean)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_per_sequence_options_are_saved_and_loaded(tmp_path):
    rng = np.random.RandomState(1)
    X = [rng.randn(rng.randint(40, 100), 2) * 10.0 ** (i % 3) for i in range(9)]
    y = np.arange(9) % 3
    params = {**TINY, "encoder": "conv", "n_episodes": 1}
    params.update(scale="per_sequence", downsample="per_sequence")
    clf = TAPFewShotClassifier(**params).fit(X, y)
    assert clf.model_.backbone.n_features == 6  # 3 channels per input one
    assert clf.model_.backbone.max_frames == 64 and clf.stride_ == 1
    clf.save(tmp_path / "clf.sktap")
    loaded = sktap.load(tmp_path / "clf.sktap")
    assert loaded.model_.backbone.max_frames == 64
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    backbone = torch.nn.Linear(2, 8)
    with pytest.raises(ValueError, match=r"per_sequence. widens the frames"):
        TAPFewShotClassifier(
            **{**TINY, "backbone": backbone, "scale": "per_sequence"}
        ).fit(X, y)


def test_the_papers_few_shot_configuration_builds_the_papers_networks():
    # the configuration as the class docstring documents it
    doc = TAPFewShotClassifier.__doc__
    block = re.search(r"PAPER_FEW_SHOT = (\{.*?\n\s*\})", doc, re.S).group(1)
    paper = ast.literal_eval(block)
    assert paper["n_episodes"] == 1000 and paper["tap_channels"] == (64, 64)
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 7), 2) + (i % 5) for i in range(30)]
    y = np.arange(30) % 5
    clf = TAPFewShotClassifier(
        **{**paper, "n_episodes": 1, "device": "cpu", "random_state": 0}
    ).fit(X, y)
    assert (clf.n_way_, clf.k_shot_, clf.n_query_) == (5, 1, 5)
    model = clf.model_
    assert model.scaler is None and model.attention is None and clf.stride_ == 1
    linears = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2, 1024),
        (1024, 8),  # d = 2 widened to 8
    ]
    assert model.align.channels == (64, 64)
    assert model.align.kernel_sizes == (5, 5, 3)
