import inspect
import pickle

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

import sktap
from sktap import TAPMetricLearner
from sktap._engine import _trainable

from .conftest import TINY_LEARNER, same_weights, weights_of

# two epochs: warm starts and resumes have an epoch to continue from
SMALL = dict(TINY_LEARNER, max_epochs=2)


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 15), 2) + (i % 3) for i in range(18)]
    y = np.array([i % 3 for i in range(18)])
    return X, y


@pytest.mark.parametrize("loss", ["triplet", "lifted", "binomial"])
def test_supervised_fit_transform_distances(data, loss):
    X, y = data
    est = TAPMetricLearner(loss, n_components=3, **SMALL).fit(X, y)
    Z = est.transform(X)
    assert Z.shape == (18, 14, 3)
    lengths = np.array([len(x) for x in X])
    norms = np.linalg.norm(Z[0, : lengths[0]], axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    assert np.isnan(Z[0, lengths[0] :]).all()
    D = est.pairwise_distances(X[:4], X)
    assert D.shape == (4, 18) and np.isfinite(D).all()
    assert len(est.history_) == 2 and "metric_loss" in est.history_[0]
    T = est.alignment(X[0], X[1])
    np.testing.assert_allclose(T.sum(axis=1), 1 / len(X[0]), rtol=1e-5)


def test_pairwise_matches_metric_callable(data):
    X, y = data
    est = TAPMetricLearner(**SMALL).fit(X, y)
    metric = est.get_metric()
    D = est.pairwise_distances(X[:3], X[:3])
    assert metric(X[0], X[2]) == pytest.approx(float(D[0, 2]), rel=1e-5)
    sym = est.get_metric(symmetric=True)
    assert sym(X[0], X[2]) == pytest.approx(float(D[0, 2] + D[2, 0]) / 2, rel=1e-5)


def test_metric_callable_in_sklearn_knn():
    rng = np.random.RandomState(0)
    X2 = np.vstack([rng.randn(6, 10), rng.randn(6, 10) + 3])
    y2 = np.repeat([0, 1], 6)
    est = TAPMetricLearner(**SMALL).fit(X2, y2)
    knn = KNeighborsClassifier(
        n_neighbors=1, metric=est.get_metric(), algorithm="brute"
    )
    assert knn.fit(X2, y2).score(X2, y2) == 1.0


def test_unsupervised_fit_learns_alignment_only(data):
    X, _ = data
    est = TAPMetricLearner(**SMALL).fit(X)
    assert est.model_.frame is None and not est.supervised_
    assert "metric_loss" not in est.history_[0]
    # the frames TAP compares: the input, standardised per channel
    frames = np.concatenate(X)
    Xt = est.transform(X)
    expected = (X[1] - frames.mean(0)) / frames.std(0)
    np.testing.assert_allclose(Xt[1, : len(X[1])], expected, rtol=1e-5, atol=1e-6)
    raw = TAPMetricLearner(**{**SMALL, "scale": False}).fit(X)
    np.testing.assert_allclose(raw.transform(X)[1, : len(X[1])], X[1])


def test_same_random_state_same_weights(data):
    X, y = data
    a = TAPMetricLearner(**SMALL).fit(X, y)
    b = TAPMetricLearner(**SMALL).fit(X, y)
    assert same_weights(weights_of(a), weights_of(b))
    c = TAPMetricLearner(**{**SMALL, "random_state": 1}).fit(X, y)
    assert not same_weights(weights_of(a), weights_of(c))


def test_global_torch_rng_untouched(data):
    X, y = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    TAPMetricLearner(**SMALL).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


def test_warm_start_continues(data):
    X, y = data
    est = TAPMetricLearner(**{**SMALL, "warm_start": True}).fit(X, y)
    first = weights_of(est)
    model = est.model_
    est.fit(X, y)
    assert est.model_ is model and len(est.history_) == 4
    assert est.history_[-1]["epoch"] == 4
    assert not same_weights(first, weights_of(est))
    cold = TAPMetricLearner(**SMALL).fit(X, y)
    cold.fit(X, y)
    assert len(cold.history_) == 2


def _capture_validation(monkeypatch):
    """``{"validate": ...}``, filled with the validation pass a fit trains with."""
    captured = {}
    train = _trainable.train

    def capturing(*args, **kwargs):
        captured["validate"] = (
            inspect.signature(train).bind(*args, **kwargs).arguments["validate"]
        )
        return train(*args, **kwargs)

    monkeypatch.setattr(_trainable, "train", capturing)
    return captured


def test_validation_and_early_stopping(data, monkeypatch):
    X, y = data
    seen = {}

    def remember(est, epoch, logs):
        seen[epoch] = weights_of(est)

    captured = _capture_validation(monkeypatch)
    est = TAPMetricLearner(
        **{
            **SMALL,
            "max_epochs": 30,
            "validation_fraction": 0.3,
            "n_iter_no_change": 2,
            "learning_rate": 0.05,
        },
        callback=remember,
    ).fit(X, y)
    val = [h["val_loss"] for h in est.history_]
    assert all("val_seconds" in h for h in est.history_)
    # it stopped early, and exactly after two epochs without a new best
    assert len(val) < 30
    assert min(val[-2:]) >= min(val[:-2])
    assert all(
        min(val[: i - 1]) > min(val[i - 1 : i + 1]) for i in range(2, len(val) - 1)
    )
    # the best epoch's weights were kept, not the last epoch's
    best = int(np.argmin(val)) + 1
    assert best == len(val) - 2
    assert same_weights(weights_of(est), seen[best])
    assert not same_weights(weights_of(est), seen[len(val)])
    # and a fresh validation pass (same held-out set and augmentations)
    # reproduces the best epoch's loss
    with torch.no_grad():
        assert captured["validate"]() == pytest.approx(min(val), rel=1e-6)


def test_pickle_and_safe_format_round_trip(data, tmp_path):
    X, y = data
    est = TAPMetricLearner(**SMALL).fit(X, y)
    D = est.pairwise_distances(X)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.pairwise_distances(X), D)
    path = tmp_path / "learner.sktap"
    est.save(path)
    loaded = sktap.load(path)
    assert isinstance(loaded, TAPMetricLearner)
    assert loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.pairwise_distances(X), D)
    for p in loaded.model_.parameters():
        assert p.device.type == "cpu"


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_load_refuses_code_executing_pickle(tmp_path, capsys):
    path = tmp_path / "evil.sktap"
    with open(path, "wb") as f:
        pickle.dump({"format": "sktap-estimator", "payload": _Evil()}, f)
    with pytest.raises(ValueError, match="refusing to load"):
        sktap.load(path)
    assert "this must never run" not in capsys.readouterr().out
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not an sktap estimator file"):
        sktap.load(tmp_path / "other.pt")


def test_non_finite_loss_keeps_last_good_weights(data):
    X, y = data

    def corrupt(est, epoch, logs):
        if epoch == 1:
            good.update(weights_of(est))
            with torch.no_grad():
                est.model_.align.convs[0].weight[0, 0, 0, 0] = float("nan")

    good = {}
    est = TAPMetricLearner(**{**SMALL, "max_epochs": 3, "callback": corrupt})
    with pytest.raises(
        FloatingPointError, match=r"last completed epoch \(1\) were kept"
    ):
        est.fit(X, y)
    assert same_weights(good, weights_of(est))


def test_keyboard_interrupt_keeps_completed_epochs(data):
    X, y = data

    def interrupt(est, epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    est = TAPMetricLearner(**{**SMALL, "max_epochs": 5, "callback": interrupt})
    with pytest.warns(RuntimeWarning, match=r"last completed epoch \(2\)"):
        est.fit(X, y)
    assert len(est.history_) == 2
    assert est.pairwise_distances(X[:2]).shape == (2, 2)


def test_checkpoint_written_each_epoch(data, tmp_path):
    X, y = data
    path = tmp_path / "ckpt.pt"
    epochs = []

    def watch(est, epoch, logs):
        epochs.append(torch.load(path, weights_only=True)["epoch"])

    TAPMetricLearner(**{**SMALL, "callback": watch, "checkpoint_path": str(path)}).fit(
        X, y
    )
    assert epochs == [1, 2]
    assert not list(tmp_path.glob(".sktap-ckpt-*"))


def test_fewer_sequences_than_a_batch(data):
    X, y = data
    est = TAPMetricLearner(**{**SMALL, "batch_size": 64}).fit(X[:6], y[:6])
    assert est.pairwise_distances(X[:6]).shape == (6, 6)


@pytest.mark.parametrize(
    ("kwargs", "fit_y", "exc", "match"),
    [
        ({}, "one", ValueError, "y has 1 class; at least 2"),
        ({}, "short", ValueError, "18 sequences but 5 labels"),
        ({}, "nan", ValueError, "y contains NaN labels"),
        ({"loss": "hinge"}, "ok", ValueError, "The 'loss' parameter"),
        ({"batch_size": 0}, "ok", ValueError, "The 'batch_size' parameter"),
        ({"device": "tpu"}, "ok", ValueError, "not a valid torch device"),
        ({"validation_fraction": 0.99}, "ok", ValueError, "leaves too few"),
    ],
)
def test_bad_input(data, kwargs, fit_y, exc, match):
    X, y = data
    labels = {
        "one": np.zeros(18),
        "short": y[:5],
        "nan": np.r_[y[:-1], np.nan],
        "ok": y,
        None: None,
    }[fit_y]
    with pytest.raises(exc, match=match):
        TAPMetricLearner(**{**SMALL, **kwargs}).fit(X, labels)


def test_feature_mismatch_after_fit(data):
    X, y = data
    est = TAPMetricLearner(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match="has 3 features per time step, but 2"):
        est.transform([np.ones((4, 3))])


def _crash_at(epoch_to_crash, exc):
    def callback(est, epoch, logs):
        if epoch == epoch_to_crash:
            raise exc

    return callback


def test_resume_after_crash_matches_uninterrupted_run(data, tmp_path):
    X, y = data
    params = {**SMALL, "max_epochs": 4, "validation_fraction": 0.25}
    reference = TAPMetricLearner(**params).fit(X, y)
    path = str(tmp_path / "run.ckpt")
    crashed = TAPMetricLearner(
        **params, checkpoint_path=path, callback=_crash_at(2, RuntimeError("power cut"))
    )
    with pytest.raises(RuntimeError, match="power cut"):
        crashed.fit(X, y)
    # a new process: a fresh estimator picks the checkpoint up
    resumed = TAPMetricLearner(**params, checkpoint_path=path, warm_start=True).fit(
        X, y
    )
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4]
    assert same_weights(weights_of(reference), weights_of(resumed))


def test_resume_takes_the_same_training_paths(data, tmp_path, monkeypatch):
    # every batch on the mined path (tiny batches take all pairs by
    # default), where the mining forecast picks each batch's computation
    from sktap import _thresholds
    from sktap.metric_learning import _steps

    monkeypatch.setattr(_thresholds, "MINED_MIN_MACS", 0)
    forecasts = []
    expects_most = _steps._MiningForecast.expects_most

    def spy(self):
        forecasts.append(expects_most(self))
        return forecasts[-1]

    monkeypatch.setattr(_steps._MiningForecast, "expects_most", spy)
    X, y = data
    params = {**SMALL, "max_epochs": 4}
    reference = TAPMetricLearner(**params).fit(X, y)
    expected, forecasts[:] = list(forecasts), []
    # a fresh fit starts on all pairs; later batches go by the one before
    assert expected[0] and not all(expected)
    path = str(tmp_path / "run.ckpt")
    crashed = TAPMetricLearner(
        **params, checkpoint_path=path, callback=_crash_at(2, RuntimeError("power cut"))
    )
    with pytest.raises(RuntimeError, match="power cut"):
        crashed.fit(X, y)
    resumed = TAPMetricLearner(**params, checkpoint_path=path, warm_start=True)
    resumed.fit(X, y)
    assert forecasts == expected
    assert same_weights(weights_of(reference), weights_of(resumed))


def test_resume_after_keyboard_interrupt_in_memory(data):
    X, y = data
    reference = TAPMetricLearner(**{**SMALL, "max_epochs": 4}).fit(X, y)
    est = TAPMetricLearner(
        **{**SMALL, "max_epochs": 4, "warm_start": True},
        callback=_crash_at(1, KeyboardInterrupt()),
    )
    with pytest.warns(RuntimeWarning, match="interrupted"):
        est.fit(X, y)
    est.set_params(callback=None).fit(X, y)
    assert len(est.history_) == 4
    assert same_weights(weights_of(reference), weights_of(est))
    est.fit(X, y)  # a completed run: warm start adds max_epochs more
    assert len(est.history_) == 8


def test_mismatched_checkpoint_is_refused(data, tmp_path):
    X, y = data
    path = str(tmp_path / "run.ckpt")
    TAPMetricLearner(**SMALL, checkpoint_path=path).fit(X, y)
    other = TAPMetricLearner(
        **{**SMALL, "hidden_layer_sizes": (5,)}, checkpoint_path=path, warm_start=True
    )
    with pytest.raises(ValueError, match="does not match this estimator"):
        other.fit(X, y)


def test_validation_keeps_best_epoch_without_early_stopping(data):
    X, y = data
    seen = {}

    def remember(est, epoch, logs):
        seen[epoch] = weights_of(est)

    est = TAPMetricLearner(
        **{**SMALL, "max_epochs": 6, "validation_fraction": 0.3, "learning_rate": 0.05},
        callback=remember,
    ).fit(X, y)
    losses = [h["val_loss"] for h in est.history_]
    best = int(np.argmin(losses)) + 1
    assert best < len(losses)  # else keeping the last weights would pass too
    assert same_weights(seen[best], weights_of(est))
    assert not same_weights(seen[len(losses)], weights_of(est))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_self_supervised_training_predicts_known_alignments(seed):
    """Without labels, training brings the predicted alignment of a sequence
    onto its blur or merge well closer to the known ground truth than the
    parameter-free TAP it starts from (on generated warps; a ratio, measured
    at 0.24-0.29 over four seeds, and about 0.9 when nothing is learned),
    and closer than soft-DTW's expected alignment (0.63-0.96 of its error
    over the same four seeds; 0.63 on these two)."""
    from sktap.augment import random_blur, random_merge
    from sktap.baselines._soft_dtw_learner import soft_dtw_plan
    from sktap.datasets import make_warped_sequences
    from sktap.metrics import tap_alignment

    X, _ = make_warped_sequences(
        n_classes=3, n_per_class=12, n_features=3, random_state=seed
    )
    X = [x[~np.isnan(x).all(axis=1)] for x in X]
    learner = TAPMetricLearner(
        max_epochs=20,
        batch_size=8,
        learning_rate=3e-3,
        tap_channels=(8,),
        device="cpu",
        random_state=seed,
    ).fit(X[:24])

    def alignment_error(align):
        rng = np.random.RandomState(1)
        errors = []
        for x in X[24:]:
            augment = random_blur if rng.rand() < 0.5 else random_merge
            x_aug, G = augment(x, rng=rng)  # G: (Lx, L_aug), columns sum to 1
            truth = G / np.maximum(G.sum(axis=1, keepdims=True), 1e-12) / len(x)
            errors.append(np.mean((align(x, x_aug) - truth) ** 2))
        return np.mean(errors)

    learned = alignment_error(learner.alignment)
    untrained = alignment_error(lambda a, b: tap_alignment(a, b))
    assert learned < 0.6 * untrained
    assert learned < 0.85 * alignment_error(lambda a, b: soft_dtw_plan(a, b, 1.0))
