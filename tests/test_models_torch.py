"""Tests for lessonlib.models_torch: the seed-004 convnet, parameter counts and summary()."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lessonlib.models_torch import MnistConvNet, count_params, last_conv, mnist_convnet, summary

# conv 3x3: (9 * in + 1) * out; dense: (in + 1) * out
CONVS = (9 * 1 + 1) * 32 + (9 * 32 + 1) * 64 + (9 * 64 + 1) * 64
HEAD = (3 * 3 * 64 + 1) * 64 + (64 + 1) * 10


def test_seed_parameter_counts():
    assert CONVS == 55_744 and CONVS + HEAD == 93_322
    assert count_params(mnist_convnet(head=False)) == 55_744
    assert count_params(mnist_convnet()) == 93_322


def test_parameter_counts_follow_the_settings():
    assert count_params(mnist_convnet(in_channels=3)) == 93_322 + 9 * 2 * 32
    assert count_params(mnist_convnet(num_classes=5)) == 93_322 - 5 * 65
    no_pool = (22 * 22 * 64 + 1) * 64 + (64 + 1) * 10
    assert count_params(mnist_convnet(pooling=False)) == 55_744 + no_pool
    assert count_params(mnist_convnet(pooling=False, head=False)) == 55_744


def test_forward_shapes():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 28, 28)
    model = mnist_convnet()
    assert isinstance(model, MnistConvNet)
    assert tuple(model(x).shape) == (2, 10)
    assert tuple(model.features(x).shape) == (2, 64, 3, 3)
    assert tuple(mnist_convnet(head=False)(x).shape) == (2, 64, 3, 3)
    assert isinstance(mnist_convnet(head=False).head, nn.Identity)


def test_no_pool_feature_map_is_22x22x64():
    model = mnist_convnet(pooling=False, head=False)
    assert tuple(model(torch.zeros(1, 1, 28, 28)).shape) == (1, 64, 22, 22)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert tuple(mnist_convnet(pooling=False)(torch.zeros(3, 1, 28, 28)).shape) == (3, 10)


def test_layer_order_matches_the_seed():
    kinds = [type(m).__name__ for m in mnist_convnet().features]
    assert kinds == [
        "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU",
    ]  # fmt: skip
    head = [type(m).__name__ for m in mnist_convnet().head]
    assert head == ["Flatten", "Linear", "ReLU", "Linear"]


def test_count_params_trainable_only():
    model = mnist_convnet()
    for p in model.features.parameters():
        p.requires_grad_(False)
    assert count_params(model, trainable_only=True) == HEAD
    assert count_params(model) == 93_322
    assert count_params(nn.Linear(3, 2)) == 8


@pytest.mark.parametrize("model", ["net", None, mnist_convnet])
def test_count_params_rejects_non_modules(model):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        count_params(model)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_classes": 0}, ValueError, "num_classes"),
        ({"num_classes": 2.0}, TypeError, "num_classes"),
        ({"in_channels": -1}, ValueError, "in_channels"),
        ({"in_channels": "1"}, TypeError, "in_channels"),
    ],
)
def test_mnist_convnet_rejects(kwargs, error, match):
    with pytest.raises(error, match=match):
        mnist_convnet(**kwargs)


def test_mnist_convnet_settings_are_keyword_only():
    with pytest.raises(TypeError):
        mnist_convnet(10)


@pytest.mark.parametrize("pooling", [True, False])
def test_last_conv_is_the_third_convolution(pooling):
    model = mnist_convnet(pooling=pooling)
    conv = last_conv(model)
    assert isinstance(conv, nn.Conv2d)
    assert (conv.in_channels, conv.out_channels) == (64, 64)
    assert conv is model.features[-2]


def test_last_conv_rejects_other_models():
    with pytest.raises(TypeError, match="model"):
        last_conv(nn.Linear(2, 2))


def test_summary_of_the_seed_model():
    model = mnist_convnet()
    text = summary(model, (1, 1, 28, 28))
    lines = text.splitlines()
    assert len(lines) == 2 + 12 + 2  # header, rule, 12 leaf layers, rule, total
    assert lines[0].split() == ["layer", "output", "shape", "params"]
    assert set(lines[1]) == {"-"} and lines[1] == lines[-2]
    assert lines[-1] == "total params: 93,322"
    rows = lines[2:-2]
    assert rows[0].split() == ["features.0", "(Conv2d)", "(1,", "32,", "26,", "26)", "320"]
    assert rows[6].split()[-1] == "36,928" and "(1, 64, 3, 3)" in rows[6]
    assert rows[-1].split() == ["head.3", "(Linear)", "(1,", "10)", "650"]
    assert sum(int(r.split()[-1].replace(",", "")) for r in rows) == 93_322
    assert len({len(r) for r in lines[:-1]}) == 1  # aligned columns


def test_summary_no_pool_shows_the_22x22_map():
    text = summary(mnist_convnet(pooling=False, head=False), (1, 1, 28, 28))
    assert "(1, 64, 22, 22)" in text.splitlines()[-3]
    assert text.endswith("total params: 55,744")


@pytest.mark.parametrize("training", [True, False])
def test_summary_restores_the_mode_and_removes_hooks(training):
    model = mnist_convnet()
    model.train(training)
    summary(model, (2, 1, 28, 28))
    assert model.training is training
    assert all(m.training is training for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())


def test_summary_removes_hooks_when_the_forward_fails():
    model = mnist_convnet()
    with pytest.raises(RuntimeError):
        summary(model, (1, 3, 28, 28))  # wrong channel count
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training


@pytest.mark.parametrize("size", [[1, 1, 28, 28], (1, 0, 28, 28), (1, 1, 28.0, 28), "1x28x28"])
def test_summary_rejects_bad_input_size(size):
    with pytest.raises(ValueError, match="input_size must be a tuple of positive ints"):
        summary(mnist_convnet(), size)


def test_summary_rejects_non_modules():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        summary("net", (1, 1, 28, 28))
