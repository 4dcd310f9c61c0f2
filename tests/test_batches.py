"""Class-balanced minibatches (``samples_per_class``) of the metric learners."""

import inspect
import math

import numpy as np
import pytest

from sktap import TAPMetricLearner
from sktap._engine import ClassBalancedBatches, EpochBatches, _trainable
from sktap.baselines import SoftDTWMetricLearner

from .conftest import TINY_LEARNER, TINY_SOFT_DTW, same_weights, weights_of


def _labels_of(counts):
    return np.repeat(np.arange(len(counts)), counts)


def _check_epoch(source, labels_of, rng):
    """Draw one epoch; check what holds for every source; return the batches."""
    batches = source(rng)
    assert len(batches) == len(source)
    for batch in batches:
        assert len(np.unique(batch)) == len(batch)  # no index twice
        assert np.isin(batch, source.indices).all()
        classes = np.unique(labels_of[batch])
        assert len(classes) == source.n_classes_per_batch
    return batches


def test_p_classes_by_k_sequences_when_classes_are_big_enough():
    labels = _labels_of([6] * 5)
    indices = np.arange(100, 130)  # indices need not start at 0
    lookup = np.full(130, -1)  # the label of each index
    lookup[indices] = labels
    source = ClassBalancedBatches(indices, labels, batch_size=9, samples_per_class=3)
    assert len(source) == math.ceil(30 / 9) == len(EpochBatches(indices, 9))
    assert source.n_classes_per_batch == 3
    batches = _check_epoch(source, lookup, np.random.RandomState(0))
    for batch in batches:
        _, counts = np.unique(lookup[batch], return_counts=True)
        assert counts.tolist() == [3, 3, 3]
    # classes, and each class's sequences, are drawn in turn
    drawn = lookup[np.concatenate(batches)]
    per_class = np.bincount(drawn, minlength=5)
    assert per_class.max() - per_class.min() <= 3  # one batch's worth, K each
    chosen = [np.unique(lookup[b]) for b in batches]
    class_turns = np.bincount(np.concatenate(chosen), minlength=5)
    assert class_turns.max() - class_turns.min() <= 1


def test_classes_smaller_than_k_give_all_they_have():
    counts = [1, 2, 5, 5]
    labels = _labels_of(counts)
    source = ClassBalancedBatches(np.arange(13), labels, 6, 3)
    assert source.n_classes_per_batch == 2 and len(source) == 3
    for seed in range(5):
        for batch in _check_epoch(source, labels, np.random.RandomState(seed)):
            for c in np.unique(labels[batch]):
                assert (labels[batch] == c).sum() == min(3, counts[c])


def test_fewer_classes_than_p_caps_the_batch():
    labels = _labels_of([3, 4])
    source = ClassBalancedBatches(np.arange(7), labels, 16, 2)
    # batch_size is capped at the 7 sequences: one batch of both classes
    assert len(source) == 1 and source.n_classes_per_batch == 2
    (batch,) = _check_epoch(source, labels, np.random.RandomState(0))
    assert len(batch) == 4


def test_batch_size_below_2k_gives_one_class_per_batch():
    labels = _labels_of([4, 4, 4])
    source = ClassBalancedBatches(np.arange(12), labels, 3, 2)
    assert source.n_classes_per_batch == 1 and len(source) == 4
    for batch in _check_epoch(source, labels, np.random.RandomState(0)):
        assert len(batch) == 2


def test_same_rng_state_same_batches():
    labels = _labels_of([3, 5, 2, 7, 4, 1])
    source = ClassBalancedBatches(np.arange(22), labels, 8, 2)
    rng = np.random.RandomState(3)
    state = rng.get_state()
    first = source(rng)
    second_epoch = source(rng)
    rng.set_state(state)
    assert all(np.array_equal(a, b) for a, b in zip(first, source(rng)))
    assert all(np.array_equal(a, b) for a, b in zip(second_epoch, source(rng)))
    other = source(np.random.RandomState(4))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_source_errors():
    labels = _labels_of([2, 2])
    with pytest.raises(ValueError, match="samples_per_class must be at least 2"):
        ClassBalancedBatches(np.arange(4), labels, 4, 1)
    with pytest.raises(ValueError, match="3 labels for 4 indices"):
        ClassBalancedBatches(np.arange(4), labels[:3], 4, 2)
    with pytest.raises(ValueError, match="each of the 4 classes has only one"):
        ClassBalancedBatches(np.arange(4), np.arange(4), 4, 2)


# -- the learners ---------------------------------------------------------

SMALL = dict(TINY_LEARNER, max_epochs=2)

# the two metric learners share the batch sources (one protocol)
both_learners = pytest.mark.parametrize(
    ("cls", "tiny"),
    [(TAPMetricLearner, SMALL), (SoftDTWMetricLearner, TINY_SOFT_DTW)],
)


@pytest.fixture
def data():
    """6 classes x 4 sequences: uniform batches of 8 often miss positives."""
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 12), 2) + (i % 6) / 2 for i in range(24)]
    y = np.array([i % 6 for i in range(24)])
    return X, y


def _capture_batches(monkeypatch):
    """``{"batches": source, "rng_state": ...}`` of the next fit's loop."""
    captured = {}
    train = _trainable.train

    def capturing(*args, **kwargs):
        arguments = inspect.signature(train).bind(*args, **kwargs).arguments
        captured["batches"] = arguments["batches"]
        captured["rng_state"] = arguments["rng"].get_state()
        return train(*args, **kwargs)

    monkeypatch.setattr(_trainable, "train", capturing)
    return captured


def test_none_keeps_the_uniform_batches(data, monkeypatch):
    X, y = data
    captured = _capture_batches(monkeypatch)
    TAPMetricLearner(**SMALL, samples_per_class=None).fit(X, y)
    source = captured["batches"]
    assert type(source) is EpochBatches
    rng = np.random.RandomState()
    rng.set_state(captured["rng_state"])
    ours = source(rng)
    rng.set_state(captured["rng_state"])
    committed = EpochBatches(np.arange(len(X)), SMALL["batch_size"])(rng)
    assert all(np.array_equal(a, b) for a, b in zip(ours, committed))
    assert len(ours) == len(committed)


def test_the_default_is_auto(data):
    X, y = data
    assert TAPMetricLearner().samples_per_class == "auto"
    assert SoftDTWMetricLearner().samples_per_class == "auto"
    default = TAPMetricLearner(**SMALL).fit(X, y)
    auto = TAPMetricLearner(**SMALL, samples_per_class="auto").fit(X, y)
    uniform = TAPMetricLearner(**SMALL, samples_per_class=None).fit(X, y)
    assert same_weights(weights_of(default), weights_of(auto))
    assert not same_weights(weights_of(default), weights_of(uniform))


def test_learner_draws_balanced_batches_from_training_labels(data, monkeypatch):
    X, y = data
    captured = _capture_batches(monkeypatch)
    params = {**SMALL, "samples_per_class": 2, "validation_fraction": 0.25}
    est = TAPMetricLearner(**params).fit(X, y)
    source = captured["batches"]
    assert type(source) is ClassBalancedBatches
    assert len(source.indices) == 18  # the validation split is left out
    for group in source.groups:  # labels restricted to the training indices
        assert len(np.unique(y[group])) == 1
    rng = np.random.RandomState()
    rng.set_state(captured["rng_state"])
    for batch in source(rng):
        _, counts = np.unique(y[batch], return_counts=True)
        assert counts.tolist() == [2, 2, 2, 2]
    uniform = TAPMetricLearner(**{**params, "samples_per_class": None}).fit(X, y)
    assert not same_weights(weights_of(est), weights_of(uniform))


def _interrupt_at(epoch_to_stop):
    def callback(est, epoch, logs):
        if epoch == epoch_to_stop:
            raise KeyboardInterrupt

    return callback


def test_resume_with_balanced_batches_matches_uninterrupted_run(data, tmp_path):
    X, y = data
    params = {
        **SMALL,
        "max_epochs": 4,
        "samples_per_class": 2,
        "validation_fraction": 0.25,
    }
    reference = TAPMetricLearner(**params).fit(X, y)
    path = str(tmp_path / "run.ckpt")
    interrupted = TAPMetricLearner(
        **params, checkpoint_path=path, callback=_interrupt_at(2)
    )
    with pytest.warns(RuntimeWarning, match="interrupted"):
        interrupted.fit(X, y)
    assert len(interrupted.history_) == 2
    # a new process: a fresh estimator picks the checkpoint up
    resumed = TAPMetricLearner(**params, checkpoint_path=path, warm_start=True)
    resumed.fit(X, y)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4]
    assert same_weights(weights_of(reference), weights_of(resumed))


@both_learners
@pytest.mark.filterwarnings("ignore:The number of unique classes:UserWarning")
def test_bad_samples_per_class(data, cls, tiny):
    X, y = data
    for bad in (1, 0, 2.5, "2"):
        with pytest.raises(ValueError, match="The 'samples_per_class' parameter"):
            cls(**tiny, samples_per_class=bad).fit(X, y)
    singletons = np.arange(len(X))
    with pytest.raises(ValueError, match="each of the 24 classes has only one"):
        cls(**tiny, samples_per_class=2).fit(X, singletons)


def test_unsupervised_fit_ignores_samples_per_class(data):
    X, _ = data
    a = TAPMetricLearner(**TINY_LEARNER, samples_per_class=2).fit(X)
    b = TAPMetricLearner(**TINY_LEARNER).fit(X)
    assert same_weights(weights_of(a), weights_of(b))


@both_learners
def test_many_classes_two_sequences_each(cls, tiny):
    rng = np.random.RandomState(1)
    X = [rng.randn(rng.randint(3, 8), 2) + (i % 12) / 4 for i in range(24)]
    y = np.array([i % 12 for i in range(24)])
    est = cls(**tiny, samples_per_class=2).fit(X, y)
    assert est.get_params()["samples_per_class"] == 2
    assert len(est.history_) == tiny["max_epochs"]
    assert all(np.isfinite(h["loss"]) for h in est.history_)
    assert np.isfinite(est.pairwise_distances(X[:4])).all()


@pytest.mark.parametrize(
    ("counts", "batch_size", "k", "p"),
    [
        ([10, 10], 16, 8, 2),  # few classes: K fills the batch
        ([4] * 5, 16, 3, 5),
        ([2] * 52, 16, 2, 8),  # many classes of 2: P x 2
    ],
)
def test_auto_samples_per_class_fills_the_batch(counts, batch_size, k, p):
    labels = _labels_of(counts)
    est = TAPMetricLearner(batch_size=batch_size, samples_per_class="auto")
    source = est._batches(np.arange(len(labels)), (None, labels))
    assert isinstance(source, ClassBalancedBatches)
    assert (source.samples_per_class, source.n_classes_per_batch) == (k, p)
    for batch in _check_epoch(source, labels, np.random.RandomState(0)):
        _, per_class = np.unique(labels[batch], return_counts=True)
        assert per_class.tolist() == [min(k, counts[0])] * p  # equal classes here


@both_learners
@pytest.mark.filterwarnings("ignore:The number of unique classes:UserWarning")
def test_auto_samples_per_class_fits_singletons_uniformly(data, cls, tiny):
    # every class with one sequence: no positives to balance, uniform batches
    X, _ = data
    singletons = np.arange(len(X))
    est = cls(**tiny, samples_per_class="auto")
    assert isinstance(est._batches(singletons, (None, singletons)), EpochBatches)
    est.fit(X, singletons)
    assert len(est.history_) == tiny["max_epochs"]
