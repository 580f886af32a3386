"""MMT losses against independent computations from the formulas of the spec."""

import math

import pytest
import torch
import torch.nn.functional as F

import fastreid_mmt  # noqa: F401
from fastreid_mmt.modeling.losses import (LOSS_REGISTRY, soft_cross_entropy, soft_softmax_triplet_loss,
                                          softmax_triplet_loss)


def _dist(x):
    n = len(x)
    return [[math.sqrt(max(sum((x[i][k] - x[j][k]) ** 2 for k in range(len(x[i]))), 1e-12)) for j in range(n)]
            for i in range(n)]


def _mined(x, y):
    """Batch-hard pairs by explicit loops: ap = farthest same label (self included),
    an = nearest other label."""
    d = _dist(x.tolist())
    ys = y.tolist()
    pairs = []
    for i in range(len(ys)):
        pos = [j for j in range(len(ys)) if ys[j] == ys[i]]
        neg = [j for j in range(len(ys)) if ys[j] != ys[i]]
        ap = max(pos, key=lambda j: d[i][j])
        an = min(neg, key=lambda j: d[i][j])
        pairs.append((ap, an))
    return d, pairs


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64)
    t = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    return x, t, y


def test_softmax_triplet_matches_formula(batch):
    x, _, y = batch
    d, pairs = _mined(x, y)
    expected = sum(math.log(1 + math.exp(d[i][ap] - d[i][an])) for i, (ap, an) in enumerate(pairs)) / len(pairs)
    assert softmax_triplet_loss(x, y).item() == pytest.approx(expected, rel=1e-9)


def test_softmax_triplet_gradient_matches_autograd_of_formula(batch):
    x, _, y = batch
    _, pairs = _mined(x, y)
    x1 = x.clone().requires_grad_(True)
    softmax_triplet_loss(x1, y).backward()
    x2 = x.clone().requires_grad_(True)
    terms = [F.softplus((x2[i] - x2[ap]).norm() - (x2[i] - x2[an]).norm()) for i, (ap, an) in enumerate(pairs)]
    torch.stack(terms).mean().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_soft_softmax_triplet_matches_formula_and_teacher_gets_no_gradient(batch):
    x, t, y = batch
    d, pairs = _mined(x, y)
    g = _dist(t.tolist())
    expected = 0.0
    for i, (ap, an) in enumerate(pairs):
        z = math.exp(g[i][ap]) + math.exp(g[i][an])
        t_ap, t_an = math.exp(g[i][ap]) / z, math.exp(g[i][an]) / z
        log_z = math.log(math.exp(d[i][ap]) + math.exp(d[i][an]))
        expected += -(t_ap * (d[i][ap] - log_z) + t_an * (d[i][an] - log_z))
    expected /= len(pairs)
    xs, ts = x.clone().requires_grad_(True), t.clone().requires_grad_(True)
    loss = soft_softmax_triplet_loss(xs, ts, y)
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    loss.backward()
    assert ts.grad is None
    assert torch.isfinite(xs.grad).all() and xs.grad.abs().sum() > 0


def test_soft_cross_entropy_matches_formula_and_detaches_teacher():
    g = torch.Generator().manual_seed(1)
    p = torch.randn(6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    q = torch.randn(6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    expected = sum(-(F.softmax(q[i].detach(), 0) * F.log_softmax(p[i].detach(), 0)).sum() for i in range(6)) / 6
    loss = soft_cross_entropy(p, q)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    loss.backward()
    assert q.grad is None
    # d/dp of the mean soft CE is (softmax(p) - softmax(q)) / B
    torch.testing.assert_close(p.grad, (F.softmax(p, 1) - F.softmax(q, 1)).detach() / 6)


def test_anchor_with_only_itself_as_positive():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 1, 1])
    loss = softmax_triplet_loss(x, y)
    # anchor 0: d_ap = sqrt(1e-12) (itself), d_an = 1; anchors 1, 2: d_ap = 2, d_an = 1 and 3
    expected = (F.softplus(torch.tensor(1e-6 - 1.0)) + F.softplus(torch.tensor(1.0)) + F.softplus(torch.tensor(-1.0))) / 3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_all_equal_features_give_finite_values_and_gradients():
    x = torch.ones(8, 4, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = softmax_triplet_loss(x, y) + soft_softmax_triplet_loss(x, x.detach() * 2, y)
    assert loss.item() == pytest.approx(2 * math.log(2), rel=1e-5)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_single_label_batch_has_no_negative_and_contributes_zero():
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.zeros(4, dtype=torch.long)
    loss = softmax_triplet_loss(x, y) + soft_softmax_triplet_loss(x, x.detach(), y)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(x.grad).all()


class ConstantTerm:
    """A loss term registered by the test below only: a constant, so its presence is plain."""

    def __call__(self, outputs, gt_labels, loss_kwargs):
        return {"loss_constant": outputs["features"].sum() * 0 + CONSTANT}


CONSTANT = 7.0


def _source_losses(*loss_names):
    """The training loss dict of a small ``SourceBaseline`` with ``MODEL.LOSSES.NAME loss_names``."""
    from fastreid.modeling import build_model
    from fastreid.utils.events import EventStorage

    from .conftest import SMALL_INPUT, small_mmt_cfg

    net = build_model(small_mmt_cfg(MODEL__META_ARCHITECTURE="SourceBaseline", MODEL__LOSSES__NAME=loss_names))
    gen = torch.Generator().manual_seed(0)
    batch = {"images": torch.rand(8, 3, *SMALL_INPUT, generator=gen) * 255,
             "targets": torch.arange(4).repeat_interleave(2)}
    with EventStorage():
        return net.train()(batch)


def test_source_network_resolves_its_loss_names_through_the_registry(monkeypatch):
    """``LOSS_REGISTRY`` maps ``MODEL.LOSSES.NAME`` entries, and the source network computes
    whatever it maps: a term registered here is trained on without any other change."""
    assert LOSS_REGISTRY.names() == ["SoftmaxTripletLoss"]
    monkeypatch.setitem(LOSS_REGISTRY._obj_map, "ConstantTerm", ConstantTerm)  # removed again at teardown
    losses = _source_losses("CrossEntropyLoss", "SoftmaxTripletLoss", "ConstantTerm")
    assert set(losses) == {"loss_cls", "loss_softmax_triplet", "loss_constant"}
    assert losses["loss_constant"].item() == CONSTANT and losses["loss_softmax_triplet"].item() > 0
    with pytest.raises(ValueError, match=r"MODEL.LOSSES.NAME: unknown loss\(es\) \['TripletLos'\]; known: "
                                         r"\[.*'CrossEntropyLoss'.*'ConstantTerm', 'SoftmaxTripletLoss'\]"):
        _source_losses("CrossEntropyLoss", "TripletLos")
