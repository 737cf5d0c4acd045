"""Tests for lessonlib.adversarial: the one-step gradient-sign attack against a known answer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lessonlib.adversarial import fgsm

RNG_SEED = 5


@pytest.fixture
def linear() -> nn.Linear:
    torch.manual_seed(RNG_SEED)
    return nn.Linear(6, 3)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(RNG_SEED)
    return torch.rand(10, 6, generator=gen), torch.randint(0, 3, (10,), generator=gen)


def test_linear_model_known_answer(linear, batch):
    x, y = batch
    # cross-entropy of softmax(Wx + b): the input gradient is W^T (p - onehot(y)) per sample
    p = torch.softmax(linear(x), dim=1).detach()
    grad = (p - nn.functional.one_hot(y, 3).float()) @ linear.weight.detach()
    expected = x + 0.1 * grad.sign()
    assert torch.allclose(fgsm(linear, x, y, epsilon=0.1), expected, atol=1e-6)


def test_the_attack_raises_the_loss_and_respects_the_budget(linear, batch):
    x, y = batch
    adv = fgsm(linear, x, y, epsilon=0.05)
    loss = nn.functional.cross_entropy
    assert loss(linear(adv), y) > loss(linear(x), y)
    assert torch.allclose((adv - x).abs(), torch.full_like(x, 0.05), atol=1e-6)


def test_zero_epsilon_returns_an_equal_copy(linear, batch):
    x, y = batch
    out = fgsm(linear, x, y, epsilon=0)
    assert torch.equal(out, x) and out is not x and not out.requires_grad


def test_clamp_keeps_the_valid_range(linear, batch):
    x, y = batch
    out = fgsm(linear, x, y, epsilon=0.5, clamp=(0.0, 1.0))
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert ((out == 0.0) | (out == 1.0)).any()


def test_batching_does_not_change_the_result(linear, batch):
    x, y = batch
    assert torch.equal(
        fgsm(linear, x, y, epsilon=0.1, batch_size=3), fgsm(linear, x, y, epsilon=0.1)
    )


def test_model_state_is_left_alone_and_no_grad_is_fine(batch):
    x, y = batch
    torch.manual_seed(RNG_SEED)
    net = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 3)).train()
    with torch.no_grad():
        a = fgsm(net, x, y, epsilon=0.1)
    b = fgsm(net, x, y, epsilon=0.1)
    assert torch.equal(a, b)  # eval mode during the attack: dropout is off
    assert net.training and net[1].training
    assert all(p.grad is None for p in net.parameters())


def test_custom_loss_is_used(linear, batch):
    x, y = batch
    calls = []

    def loss_fn(logits, targets):
        calls.append(len(targets))
        return -nn.functional.cross_entropy(logits, targets)  # pushes towards the label

    toward = fgsm(linear, x, y, epsilon=0.05, loss_fn=loss_fn)
    assert calls == [10]
    loss = nn.functional.cross_entropy
    assert loss(linear(toward), y) < loss(linear(x), y)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model": "net"}, TypeError, "model must be a torch.nn.Module"),
        ({"inputs": torch.zeros(10, 6, dtype=torch.int64)}, TypeError, "floating-point"),
        ({"targets": torch.zeros(10)}, TypeError, "int64"),
        ({"targets": torch.zeros(4, dtype=torch.int64)}, ValueError, "one label per input"),
        ({"epsilon": -0.1}, ValueError, "epsilon must be a number >= 0"),
        ({"epsilon": True}, ValueError, "epsilon"),
        ({"clamp": (1.0, 0.0)}, ValueError, "clamp must be a"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_arguments_name_the_argument(linear, batch, kwargs, error, match):
    x, y = batch
    args = {"model": linear, "inputs": x, "targets": y, "epsilon": 0.1, **kwargs}
    with pytest.raises(error, match=match):
        fgsm(args.pop("model"), args.pop("inputs"), args.pop("targets"), **args)
