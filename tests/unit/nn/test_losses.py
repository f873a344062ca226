"""Margin losses and mixup against hand-computed values on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch

from automl_asd.nn.losses import (
    MIN_SCALE,
    AdaCos,
    ArcFace,
    SubClusterAdaCos,
    make_margin_loss,
    mixup,
)


def _set_centres(loss: torch.nn.Module, centres: list[list[float]]) -> None:
    with torch.no_grad():
        loss.centres.copy_(torch.tensor(centres))  # type: ignore[operator]


def test_arcface_matches_hand_computed_value() -> None:
    loss = ArcFace(2, 2, scale=1.0, margin=0.5)
    _set_centres(loss, [[1.0, 0.0], [0.0, 1.0]])
    emb = torch.tensor([[2.0, 0.0]])  # unnormalised on purpose: theta_0 = 0, theta_1 = pi/2
    value = loss(emb, torch.tensor([[1.0, 0.0]]))
    # logits: cos(0 + 0.5) for the target, cos(pi/2) = 0 for the other class
    expected = math.log(1.0 + math.exp(-math.cos(0.5)))
    assert value.item() == pytest.approx(expected, abs=1e-4)


def test_arcface_margin_raises_loss_and_zero_margin_is_scaled_softmax() -> None:
    emb = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    plain = ArcFace(2, 2, scale=4.0, margin=0.0)
    _set_centres(plain, [[1.0, 0.0], [0.0, 1.0]])
    cos = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    expected = torch.nn.functional.cross_entropy(4.0 * cos, torch.tensor([0, 1]))
    assert plain(emb, targets).item() == pytest.approx(expected.item(), abs=1e-4)
    margin = ArcFace(2, 2, scale=4.0, margin=0.3)
    _set_centres(margin, [[1.0, 0.0], [0.0, 1.0]])
    assert margin(emb, targets).item() > plain(emb, targets).item() + 0.1


def test_adacos_initial_scale_and_training_update_by_hand() -> None:
    n_classes = 20
    loss = AdaCos(2, n_classes)
    s0 = math.sqrt(2) * math.log(n_classes - 1)
    assert loss.scale.item() == pytest.approx(s0, abs=1e-5)
    _set_centres(loss, [[1.0, 0.0], [0.0, 1.0]] + [[-1.0, 0.0]] * (n_classes - 2))
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    targets = torch.eye(n_classes)[:2]
    # cos rows: [1, 0, -1 x 18] (target 0) and [0, 1, 0 x 18] (target 1)
    b_avg = ((1.0 + 18 * math.exp(-s0)) + 19.0) / 2
    s1 = math.log(b_avg) / math.cos(0.0)  # both target angles ~ 0 < pi/4
    loss.train()
    value = loss(emb, targets)
    assert loss.scale.item() == pytest.approx(s1, abs=1e-3)
    ce1 = -math.log(math.exp(s1) / (math.exp(s1) + 1 + 18 * math.exp(-s1)))
    ce2 = -math.log(math.exp(s1) / (math.exp(s1) + 19))
    assert value.item() == pytest.approx((ce1 + ce2) / 2, abs=1e-3)
    loss.eval()
    loss(emb, targets)
    assert loss.scale.item() == pytest.approx(s1, abs=1e-3)  # no update in eval mode


def test_adacos_scale_is_floored_for_few_classes() -> None:
    loss = AdaCos(2, 3)
    assert loss.scale.item() == pytest.approx(MIN_SCALE)
    _set_centres(loss, [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    loss.train()
    loss(torch.tensor([[1.0, 0.0]]), torch.eye(3)[:1])
    # unfloored: log(exp(0) + exp(-2)) / cos(0) = 0.127
    assert loss.scale.item() == pytest.approx(MIN_SCALE)


def test_subcluster_adacos_sums_subcluster_probabilities() -> None:
    loss = SubClusterAdaCos(2, 4, n_subclusters=4)
    assert loss.scale.item() == pytest.approx(math.sqrt(2) * math.log(15), abs=1e-5)
    loss = SubClusterAdaCos(2, 2, n_subclusters=2)
    # class 0 owns sub-clusters [1,0] and [0,1]; class 1 owns [-1,0] and [0,-1]
    _set_centres(loss, [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    with torch.no_grad():
        loss.scale.fill_(2.0)
    loss.eval()
    emb = torch.tensor([[1.0, 0.0]])
    e = [math.exp(2.0 * c) for c in (1.0, 0.0, -1.0, 0.0)]
    p0 = (e[0] + e[1]) / sum(e)
    assert loss(emb, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(-math.log(p0), abs=1e-4)
    # soft (mixup) targets: weighted cross-entropy of the two class probabilities
    soft = loss(emb, torch.tensor([[0.25, 0.75]])).item()
    expected = -(0.25 * math.log(p0) + 0.75 * math.log(1 - p0))
    assert soft == pytest.approx(expected, abs=1e-4)


def test_losses_train_a_separable_problem() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    targets = torch.eye(2)[y]
    for name in ("arcface", "adacos", "subcluster_adacos"):
        torch.manual_seed(0)
        lin = torch.nn.Linear(4, 8)
        loss = make_margin_loss(name, 8, 2, n_subclusters=2, arcface_scale=8.0,
                                arcface_margin=0.2)
        opt = torch.optim.Adam(list(lin.parameters()) + list(loss.parameters()), lr=0.05)
        first = None
        for _ in range(60):
            value = loss(lin(x), targets)
            first = value.item() if first is None else first
            opt.zero_grad()
            value.backward()
            opt.step()
        assert value.item() < 0.5 * first, name


def test_mixup_convex_and_deterministic() -> None:
    x = torch.arange(8.0).view(4, 2)
    t = torch.eye(4)
    (same,), t_same = mixup((x,), t, prob=0.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(same, x) and torch.equal(t_same, t)
    (m1,), t1 = mixup((x,), t, prob=1.0, generator=torch.Generator().manual_seed(1))
    (m2,), t2 = mixup((x,), t, prob=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(m1, m2) and torch.equal(t1, t2)
    assert torch.allclose(t1.sum(dim=1), torch.ones(4))
    # each mixed row equals targets-weighted sum of the original rows
    assert torch.allclose(m1, t1 @ x, atol=1e-5)
    assert not torch.equal(m1, x)


def test_unknown_loss_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="arcface"):
        make_margin_loss("triplet", 4, 2)
