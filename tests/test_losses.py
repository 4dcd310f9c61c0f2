"""Metric losses against hand-written references; the self-supervised loss."""

import math

import numpy as np
import pytest
import torch

from sktap import TAPNet
from sktap.augment import augment_batch
from sktap.losses import (
    BatchHardTripletLoss,
    BinomialDevianceLoss,
    LiftedStructureLoss,
    SelfSupervisedAlignmentLoss,
    binomial_deviance_loss,
    get_metric_loss,
    ground_truth_alignments,
    lifted_structure_loss,
    self_supervised_loss,
)

# Asymmetric on purpose: row i is anchor i as the TAP source.
DIST = np.array(
    [
        [0.0, 0.3, 0.5, 0.9],
        [0.4, 0.0, 0.35, 0.45],
        [0.65, 0.2, 0.0, 0.5],
        [0.5, 0.9, 0.45, 0.0],
    ]
)
LABELS = np.array([0, 0, 1, 1])
LOSSES = ["triplet", "lifted", "binomial"]


def _pairs(i):
    pos = [DIST[i, j] for j in range(4) if j != i and LABELS[j] == LABELS[i]]
    neg = [DIST[i, j] for j in range(4) if LABELS[j] != LABELS[i]]
    return pos, neg


def _mine(pos, neg, m):
    return [p for p in pos if p > min(neg) - m], [n for n in neg if n < max(pos) + m]


def _reference_lifted(alpha=40.0, beta=2.0, lam=1.0):
    total = 0.0
    for i in range(4):
        pos, neg = _pairs(i)
        total += math.log1p(sum(math.exp(beta * (p - lam)) for p in pos)) / beta
        total += math.log1p(sum(math.exp(-alpha * (n - lam)) for n in neg)) / alpha
    return total / 4


def _reference_binomial(alpha=40.0, beta=2.0, lam=1.0, m=0.1):
    total = 0.0
    for i in range(4):
        pos, neg = _mine(*_pairs(i), m)
        if pos:
            pos_terms = [math.log1p(math.exp(beta * (p - lam))) / beta for p in pos]
            neg_terms = [math.log1p(math.exp(-alpha * (n - lam))) / alpha for n in neg]
            total += np.mean(pos_terms) + np.mean(neg_terms)
    return total / 4


def _dist(values=DIST, grad=False):
    return torch.tensor(values, dtype=torch.float64, requires_grad=grad)


def test_triplet_by_hand():
    # anchor 0: positive 0.3 < min negative 0.5 - 0.1, no hard pair -> 0
    # anchor 1: hard positive 0.4, hard negatives 0.35, 0.45 -> (0.15 + 0.05) / 2
    # anchor 2: hard positive 0.5, hard negative 0.2 (0.65 >= 0.6) -> 0.4
    # anchor 3: hard positive 0.45, hard negative 0.5 (0.9 >= 0.55) -> 0.05
    loss = BatchHardTripletLoss(margin=0.1)(_dist(), torch.tensor(LABELS))
    assert float(loss) == pytest.approx((0.0 + 0.1 + 0.4 + 0.05) / 4, abs=1e-12)


def test_lifted_against_reference():
    loss = LiftedStructureLoss()(_dist(), torch.tensor(LABELS))
    assert float(loss) == pytest.approx(_reference_lifted(), rel=1e-12)
    loss = lifted_structure_loss(_dist(), LABELS, alpha=3.0, beta=1.5, threshold=0.4)
    assert float(loss) == pytest.approx(_reference_lifted(3.0, 1.5, 0.4), rel=1e-12)


def test_binomial_against_reference():
    loss = BinomialDevianceLoss()(_dist(), torch.tensor(LABELS))
    assert float(loss) == pytest.approx(_reference_binomial(), rel=1e-12)
    loss = binomial_deviance_loss(_dist(), LABELS, alpha=3.0, threshold=0.4, margin=0.2)
    assert float(loss) == pytest.approx(
        _reference_binomial(3.0, 2.0, 0.4, 0.2), rel=1e-12
    )


@pytest.mark.parametrize("name", LOSSES)
def test_single_class_batch_is_zero_with_finite_gradient(name):
    dist = _dist(grad=True)
    loss = get_metric_loss(name)(dist, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(dist.grad).all()


@pytest.mark.parametrize("name", LOSSES)
def test_equal_distances_give_finite_gradients(name):
    dist = torch.full((4, 4), 0.5, dtype=torch.float64, requires_grad=True)
    loss = get_metric_loss(name)(dist, torch.tensor(LABELS))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(dist.grad).all()
    assert dist.grad.abs().sum() > 0


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_reaches_off_diagonal_only(name):
    dist = _dist(DIST + 0.6, grad=True)  # every anchor has a violation
    get_metric_loss(name)(dist, torch.tensor(LABELS)).backward()
    assert dist.grad.abs().sum() > 0
    assert (torch.diagonal(dist.grad) == 0).all()


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_distances_give_a_non_finite_loss(name, bad):
    # mining compares distances and NaN compares False: all-NaN distances
    # would otherwise mine nothing and give a loss of 0 (training would go
    # on with broken weights); one bad pair is enough
    labels = torch.tensor(LABELS)
    assert not torch.isfinite(get_metric_loss(name)(torch.full((4, 4), bad), labels))
    dist = _dist()
    dist[0, 2] = bad
    assert not torch.isfinite(get_metric_loss(name)(dist, labels))
    # the diagonal is never a pair
    dist = _dist()
    dist.fill_diagonal_(bad)
    assert torch.isfinite(get_metric_loss(name)(dist, labels))


@pytest.mark.parametrize("name", LOSSES)
def test_extreme_distances_do_not_overflow(name):
    dist = _dist(DIST * 1e4, grad=True)
    loss = get_metric_loss(name)(dist, torch.tensor(LABELS))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(dist.grad).all()


def test_gradcheck_smooth_losses():
    labels = torch.tensor(LABELS)
    for f in (lifted_structure_loss, binomial_deviance_loss):
        assert torch.autograd.gradcheck(
            lambda d, f=f: f(d, labels, alpha=3.0), (_dist(grad=True),)
        )


def test_metric_loss_errors():
    with pytest.raises(ValueError, match="unknown metric loss 'npair'; valid names"):
        get_metric_loss("npair")
    with pytest.raises(ValueError, match=r"square \(B, B\) matrix; got shape \(4, 3\)"):
        lifted_structure_loss(torch.zeros(4, 3), LABELS)
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        binomial_deviance_loss(torch.zeros(4, 4), LABELS[:3])
    with pytest.raises(ValueError, match="margin must be a real number >= 0"):
        BatchHardTripletLoss(margin=-1)
    with pytest.raises(ValueError, match="alpha must be a real number > 0"):
        LiftedStructureLoss(alpha=0)


def _batch(seed=0, lengths=(7, 5, 9)):
    rng = np.random.default_rng(seed)
    data = np.zeros((len(lengths), max(lengths), 3))
    for b, length in enumerate(lengths):
        data[b, :length] = rng.normal(size=(length, 3))
    aug, aug_lengths, G = augment_batch(data, np.array(lengths), rng=seed)
    return torch.tensor(data), torch.tensor(lengths), torch.tensor(aug), aug_lengths, G


def test_ground_truth_rows_sum_like_tap():
    _, lx, _, la, G = _batch()
    fwd, bwd = ground_truth_alignments(torch.tensor(G), lx, torch.tensor(la))
    for b in range(3):
        rows = fwd[b, : lx[b]].sum(1)
        used = torch.tensor(G[b, : lx[b]].sum(1) > 0)
        torch.testing.assert_close(rows[used], torch.full_like(rows[used], 1 / lx[b]))
        assert (rows[~used] == 0).all()
        back = bwd[b, : la[b]].sum(1)
        torch.testing.assert_close(back, torch.full_like(back, 1 / float(la[b])))


def test_self_supervised_differentiable_for_tapnet():
    torch.manual_seed(0)
    net = TAPNet(channels=(4, 4)).double()
    x, lx, aug, la, G = _batch()
    loss, parts = self_supervised_loss(net, x, lx, aug, la, G, return_parts=True)
    assert torch.isfinite(loss) and loss > 0
    # an untrained network misses the augmentation's alignment; default weight 1
    assert parts["alignment_error"] > 0
    torch.testing.assert_close(loss, parts["tap"] + parts["alignment_error"])
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_self_supervised_padding_invariant():
    net = TAPNet(channels=(3, 3)).double()
    x, lx, aug, la, G = _batch(seed=1)
    joint = self_supervised_loss(net, x, lx, aug, la, G, return_parts=True)[1]
    singles = []
    for b in range(3):
        n, m = int(lx[b]), int(la[b])
        singles.append(
            self_supervised_loss(
                net,
                x[b : b + 1, :n],
                lx[b : b + 1],
                aug[b : b + 1, :m],
                la[b : b + 1],
                G[b : b + 1, :n, :m],
                return_parts=True,
            )[1]
        )
    for key in ("tap", "alignment_error"):
        expected = sum(s[key] for s in singles) / 3
        torch.testing.assert_close(joint[key], expected, rtol=1e-10, atol=1e-14)


def test_self_supervised_perfect_alignment_is_near_zero():
    # Far-apart frames and an identity augmentation: soft nearest frame = truth.
    x = 100.0 * torch.arange(6, dtype=torch.float64).reshape(1, 6, 1)
    G = torch.eye(6, dtype=torch.float64)[None]
    loss_fn = SelfSupervisedAlignmentLoss()
    loss, parts = loss_fn(None, x, [6], x, [6], G, return_parts=True)
    assert float(parts["alignment_error"]) < 1e-20
    assert float(loss) < 1e-20


def test_self_supervised_alignment_error_is_on_unit_rows():
    # Far-apart frames: parameter-free TAP aligns frame i to frame i (A = I).
    # Against a target that swaps frames 0 and 1, rows 0 and 1 each miss by
    # ||e_0 - e_1||^2 = 2, in both directions: (2 + 2) / 3 per direction, on
    # rows summing to 1, whatever the lengths (T's rows sum to 1 / Lx).
    x = 100.0 * torch.arange(3, dtype=torch.float64).reshape(1, 3, 1)
    swap = torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64)
    parts = self_supervised_loss(None, x, [3], x, [3], swap[None], return_parts=True)[1]
    torch.testing.assert_close(
        parts["alignment_error"], torch.tensor(8 / 3, dtype=torch.float64)
    )


def test_self_supervised_transform_and_weight():
    x, lx, aug, la, G = _batch(seed=2)
    transform = torch.nn.Linear(3, 2).double()
    loss, parts = self_supervised_loss(
        None,
        x,
        lx,
        aug,
        la,
        G,
        transform=transform,
        alignment_weight=10.0,
        return_parts=True,
    )
    torch.testing.assert_close(loss, parts["tap"] + 10.0 * parts["alignment_error"])
    loss.backward()
    assert torch.isfinite(transform.weight.grad).all()


def test_self_supervised_shape_error():
    x, lx, aug, la, G = _batch()
    with pytest.raises(ValueError, match=r"G \(n, Lx, L_aug\); got"):
        self_supervised_loss(None, x, lx, aug, la, G[:, :-1])
