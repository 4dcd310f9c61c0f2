"""The OTAM distance (against an enumeration of its paths) and its classifier."""

import pickle

import numpy as np
import pytest
import torch

import sktap
from sktap import TAPFewShotClassifier
from sktap._validation import check_sequences, concat_sequences
from sktap.baselines import OTAMFewShotClassifier
from sktap.baselines._otam import otam_pairwise, otam_path_cost
from sktap.core import ChannelScaler, ConvFrameEncoder, choose_stride

from .conftest import TINY_OTAM, same_weights, weights_of

TINY = TINY_OTAM


# -- the recurrence, checked against its definition ---------------------------
def _paths(n, m):
    """Every path of OTAM's moves through an n x m grid padded to m + 2 columns.

    From (i, j): right to (i, j + 1), diagonally to (i + 1, j + 1), and down
    to (i + 1, j) in the two zero columns 0 and m + 1 only; from (0, 0) to
    (n - 1, m + 1).
    """

    def walk(i, j):
        if (i, j) == (n - 1, m + 1):
            yield [(i, j)]
            return
        moves = [(i, j + 1), (i + 1, j + 1)]
        if j in (0, m + 1):
            moves.append((i + 1, j))
        for a, b in moves:
            if a < n and b <= m + 1:
                for rest in walk(a, b):
                    yield [(i, j), *rest]

    return list(walk(0, 0))


def _path_costs(C):
    padded = np.pad(C, ((0, 0), (1, 1)))
    return np.array([sum(padded[c] for c in path) for path in _paths(*C.shape)])


def _soft_min(costs, gamma):
    low = costs.min()
    return low - gamma * np.log(np.exp(-(costs - low) / gamma).sum())


def _cost(C, gamma):
    """otam_path_cost of one numpy grid, in float64."""
    n, m = C.shape
    out = otam_path_cost(torch.tensor(C)[None], [n], [m], gamma)
    return float(out[0])


@pytest.mark.parametrize(
    ("n", "m"), [(1, 1), (1, 3), (4, 1), (2, 3), (3, 2), (3, 3), (2, 5), (5, 2)]
)
@pytest.mark.parametrize("gamma", [0.05, 1.0])
def test_path_cost_is_the_soft_min_over_every_path(n, m, gamma):
    C = np.random.default_rng(n * 10 + m).random((n, m))
    expected = _soft_min(_path_costs(C), gamma)
    assert _cost(C, gamma) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_hand_example():
    # y = (a, b) inside x = (c, a, b, c): the path enters after the first
    # frame of x and leaves before the last one, at no cost
    C = np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0]]).T  # rows: x
    costs = _path_costs(C.T)  # rows: y (2), columns: x (4, all matched)
    assert len(costs) == len(_paths(2, 4)) == 7
    assert costs.min() == 2.0  # every frame of x matched: the c's cost 1 each
    costs = _path_costs(C)  # rows: x, columns: y (matched once each)
    assert costs.min() == 0.0
    assert _cost(C, 1e-4) == pytest.approx(0.0, abs=1e-3)
    assert _cost(C.T, 1e-4) == pytest.approx(2.0, abs=1e-3)


@pytest.mark.parametrize(("n", "m"), [(3, 4), (5, 2), (4, 4)])
def test_small_gamma_tends_to_the_cheapest_path(n, m):
    C = np.random.default_rng(0).random((n, m))
    costs = _path_costs(C)
    hard, count = costs.min(), len(costs)
    for gamma in (1e-1, 1e-2, 1e-3):
        soft = _cost(C, gamma)
        # the soft-min of `count` values lies within gamma * log(count) below
        assert hard - gamma * np.log(count) - 1e-12 <= soft <= hard + 1e-12


def test_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(0)
    C = torch.rand(5, 4, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    rows, cols = torch.tensor([4, 2, 1, 3, 4]), torch.tensor([6, 3, 5, 1, 2])
    assert torch.autograd.gradcheck(lambda C: otam_path_cost(C, rows, cols, 0.3), C)
    # through the cosine distances and both directions
    x = torch.randn(2, 4, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randn(3, 5, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    lx, ly = torch.tensor([4, 2]), torch.tensor([5, 3, 1])
    assert torch.autograd.gradcheck(
        lambda x, y: otam_pairwise(x, lx, y, ly, 0.5, symmetric=True), (x, y)
    )


def test_padded_batch_gives_exactly_the_per_pair_result():
    gen = torch.Generator().manual_seed(1)
    lx, ly = [7, 3, 1, 5], [2, 6, 4]
    x = torch.randn(4, 7, 3, dtype=torch.float64, generator=gen)
    y = torch.randn(3, 6, 3, dtype=torch.float64, generator=gen)
    for i, L in enumerate(lx):
        x[i, L:] = 100.0  # what lies in the padding must not matter
    for j, L in enumerate(ly):
        y[j, L:] = -100.0
    batch = otam_pairwise(x, torch.tensor(lx), y, torch.tensor(ly), 0.1)
    sym = otam_pairwise(x, torch.tensor(lx), y, torch.tensor(ly), 0.1, symmetric=True)
    for i, a in enumerate(lx):
        for j, b in enumerate(ly):
            xi, yj = x[i : i + 1, :a], y[j : j + 1, :b]
            one = otam_pairwise(xi, torch.tensor([a]), yj, torch.tensor([b]), 0.1)
            back = otam_pairwise(yj, torch.tensor([b]), xi, torch.tensor([a]), 0.1)
            torch.testing.assert_close(batch[i, j], one[0, 0], rtol=1e-12, atol=0)
            torch.testing.assert_close(
                sym[i, j], (one[0, 0] + back[0, 0]) / 2, rtol=1e-12, atol=0
            )
            # the definition: cosine distances, x on the columns, mean over x
            xn = torch.nn.functional.normalize(xi[0], dim=1)
            yn = torch.nn.functional.normalize(yj[0], dim=1)
            grid = (1 - yn @ xn.T).numpy()  # rows: y, columns: x
            expected = _soft_min(_path_costs(grid), 0.1) / a if a * b <= 16 else None
            if expected is not None:
                assert float(one[0, 0]) == pytest.approx(expected, rel=1e-10)


# -- the classifier --------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    """4 classes of 5 variable-length 2-D sequences, separated by an offset."""
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(3, 8), 2) * 0.3 + (i % 4) for i in range(20)]
    return X, np.array([i % 4 for i in range(20)])


@pytest.fixture(scope="module")
def fitted(data):
    return OTAMFewShotClassifier(**TINY, validation_interval=1).fit(*data)


def test_the_same_protocol_as_tap_but_no_alignment_network(fitted):
    tap = TAPFewShotClassifier().get_params()
    otam = OTAMFewShotClassifier().get_params()
    assert set(otam) - set(tap) == {"gamma"} and otam["gamma"] == 0.1
    assert set(tap) - set(otam) == {
        "alignment_net",
        "tap_channels",
        "tap_kernel_sizes",
        "self_attention",
    }
    assert all(otam[k] == tap[k] for k in otam if k != "gamma")
    model = fitted.model_
    assert isinstance(model.backbone, ConvFrameEncoder) and model.scaler is not None
    assert not hasattr(model, "align") and model.attention is None
    assert (fitted.n_way_, fitted.k_shot_, fitted.n_query_) == (3, 1, 1)
    assert len(fitted.history_) == 3 and fitted.stride_ == 1


def test_scores_are_minus_both_directions_of_otam(fitted, data):
    X, _ = data
    Q = [x[::-1] for x in X[:3]]
    Z = fitted._embed(concat_sequences([check_sequences(Q), fitted.support_]))
    z, lz = torch.as_tensor(Z.data), torch.as_tensor(Z.lengths)
    with torch.no_grad():
        d = otam_pairwise(z[:3], lz[:3], z[3:], lz[3:], fitted.gamma, symmetric=True)
    pair = -2 * d.numpy().astype(np.float64)  # -otam(q, s) - otam(s, q)
    labels = fitted.support_labels_
    expected = np.stack([pair[:, labels == c].mean(1) for c in range(4)], 1)
    np.testing.assert_allclose(fitted._class_scores(Q), expected, rtol=1e-5)
    proba = fitted.predict_proba(Q)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert fitted.predict(Q).tolist() == fitted.classes_[expected.argmax(1)].tolist()


def test_training_moves_the_backbone(fitted, data):
    shorter = OTAMFewShotClassifier(**{**TINY, "n_episodes": 2}).fit(*data)
    a = dict(fitted.model_.named_parameters())
    b = dict(shorter.model_.named_parameters())
    # same seed, one episode fewer: the third episode moved every layer
    assert all(not torch.equal(a[k], b[k]) for k in a)
    again = OTAMFewShotClassifier(**TINY, validation_interval=1).fit(*data)
    assert same_weights(weights_of(fitted), weights_of(again))


def test_encoder_options_and_round_trips(data, tmp_path):
    X, y = data
    X = [np.repeat(x, 20, axis=0) * 50 + 7 for x in X]  # 60 to 140 steps
    clf = OTAMFewShotClassifier(
        **TINY, encoder="conv", scale=True, downsample="auto", gamma=0.5
    ).fit(X, y)
    assert isinstance(clf.model_.backbone, ConvFrameEncoder)
    stride = choose_stride(max(map(len, X)), 64)
    assert isinstance(clf.model_.scaler, ChannelScaler) and clf.stride_ == stride > 1
    proba = clf.predict_proba(X[:5])
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X[:5]), proba)
    clf.save(tmp_path / "otam.sktap")
    loaded = sktap.load(tmp_path / "otam.sktap")
    assert isinstance(loaded, OTAMFewShotClassifier) and loaded.stride_ == stride
    assert loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X[:5]), proba)


def test_parameter_errors(data):
    with pytest.raises(ValueError, match="The 'gamma' parameter"):
        OTAMFewShotClassifier(**{**TINY, "gamma": 0}).fit(*data)
    with pytest.raises(TypeError, match="unexpected keyword argument 'tap_channels'"):
        OTAMFewShotClassifier(tap_channels=(4,))
