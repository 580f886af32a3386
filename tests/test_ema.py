"""The mean-net update: formula, warm-up, extremes, buffers untouched."""

import pytest
import torch
from torch import nn

import fastreid_mmt  # noqa: F401
from fastreid_mmt.modeling import ema_momentum, ema_update


def _net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))


def test_momentum_warm_up_and_ceiling():
    assert ema_momentum(0, 0.999) == 0.0
    assert ema_momentum(1, 0.999) == pytest.approx(0.5)
    assert ema_momentum(10 ** 6, 0.999) == 0.999


def test_formula_on_random_weights():
    mean, net = _net(0), _net(1)
    before = {k: v.clone() for k, v in mean.named_parameters()}
    ema_update(mean, net, 0.7)
    for name, param in mean.named_parameters():
        expected = 0.7 * before[name] + 0.3 * dict(net.named_parameters())[name]
        torch.testing.assert_close(param, expected)


def test_step_zero_copies_and_alpha_zero_copies():
    for momentum in (ema_momentum(0, 0.999), ema_momentum(50, 0.0)):
        mean, net = _net(0), _net(1)
        ema_update(mean, net, momentum)
        for a, b in zip(mean.parameters(), net.parameters()):
            torch.testing.assert_close(a, b)


def test_alpha_one_freezes():
    mean, net = _net(0), _net(1)
    before = [p.clone() for p in mean.parameters()]
    assert ema_momentum(10, 1.0) == pytest.approx(1 - 1 / 11)  # the warm-up still applies early
    ema_update(mean, net, 1.0)
    for a, b in zip(mean.parameters(), before):
        torch.testing.assert_close(a, b)


def test_buffers_are_not_averaged_and_no_grad_is_recorded():
    mean, net = _net(0), _net(1)
    net[1].running_mean.fill_(5.0)
    ema_update(mean, net, 0.5)
    assert torch.equal(mean[1].running_mean, torch.zeros(3))
    assert all(not p.requires_grad or p.grad is None for p in mean.parameters())
