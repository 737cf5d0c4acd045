"""Tests for lessonlib.mc_dropout: head-only MC sampling and the Keras batch-norm pitfall.

No torch optimizer is created here (see tests/test_models_cifar3.py): loading
triton after TensorFlow crashes the process in this environment.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lessonlib.mc_dropout import (
    mc_predict_head,
    naive_keras_mc,
    split_model,
    with_identity_batchnorm,
)
from lessonlib.models_cifar3 import copy_torch_weights, mc_dropout_net, variational_net
from lessonlib.uncertainty import mc_predict

DIGITS = dict(input_shape=(1, 28, 28), num_classes=10)


def _digits_net() -> nn.Sequential:
    torch.manual_seed(3)
    return mc_dropout_net(n_train=1_000, **DIGITS)


def test_split_model_parts_compose_to_the_model_and_share_weights():
    net = _digits_net().eval()
    body, head = split_model(net)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(head(body(x)), net(x))
    assert body.conv1.weight is net.conv1.weight
    assert [n for n, _ in head.named_children()][-1] == "logits"


@pytest.mark.parametrize("samples", [1, 7])
def test_mc_predict_head_equals_mc_predict_on_the_whole_net(samples):
    """Known answer: the body draws no random numbers, so the samples are identical."""
    net = _digits_net()
    x = torch.rand(5, 1, 28, 28)
    kwargs = dict(samples=samples, seed=11, batch_size=8, show_progress=False)
    fast = mc_predict_head(net, x, **kwargs)
    slow = mc_predict(net, x, **kwargs)
    assert fast.shape == (samples, 5, 10) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, slow, atol=1e-6)
    assert net.training  # modes are restored (builders return models in train mode)


def test_mc_predict_head_samples_vary_and_accept_numpy_input():
    net = _digits_net()
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    probs = mc_predict_head(net, x, samples=20, seed=0, show_progress=False)
    assert probs.std(axis=0).max() > 0
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)


def test_mc_predict_head_on_the_variational_net_matches_mc_predict():
    torch.manual_seed(0)
    vnn = variational_net(**DIGITS)
    x = torch.rand(3, 1, 28, 28)
    fast = mc_predict_head(vnn, x, samples=6, seed=2, show_progress=False)
    slow = mc_predict(vnn, x, samples=6, seed=2, show_progress=False)
    np.testing.assert_allclose(fast, slow, atol=1e-6)
    assert fast.std(axis=0).max() > 0  # the latent layer samples


def test_body_runs_in_eval_mode_with_batch_norm():
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("lin", nn.Linear(4, 6))
    net.add_module("bn", nn.BatchNorm1d(6))
    net.add_module("flatten", nn.Flatten())
    net.add_module("drop", nn.Dropout(0.0))
    net.add_module("out", nn.Linear(6, 3))
    net.train()
    with torch.no_grad():
        net(torch.randn(16, 4) * 3 + 2)  # non-trivial running statistics
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(5, 4)
    probs = mc_predict_head(net, x, samples=2, show_progress=False)
    with torch.no_grad():
        expected = torch.softmax(net.eval()(x), dim=1).numpy()
    np.testing.assert_allclose(probs[0], expected, atol=1e-6)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, state[key])


@pytest.mark.parametrize(
    ("model", "kwargs", "error", "match"),
    [
        (nn.Linear(3, 2), {}, TypeError, "model must be a torch.nn.Sequential"),
        (None, {"after": "nope"}, ValueError, "after must name a child"),
        (None, {"after": 3}, TypeError, "after must be a str"),
        (None, {"after": "dropout1"}, ValueError, "random layer"),
    ],
)
def test_split_model_rejects_bad_input(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        split_model(model if model is not None else _digits_net(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"samples": 0}, ValueError, "samples must be a positive"),
        ({"samples": 2, "batch_size": 0}, ValueError, "batch_size must be a positive"),
        ({"samples": 2, "seed": -1}, ValueError, "seed must be >= 0"),
        ({"samples": 2, "x": np.zeros(3)}, ValueError, "x must have a batch dimension"),
        ({"samples": 2, "x": np.array([["a"]])}, TypeError, "x must have a numeric dtype"),
    ],
)
def test_mc_predict_head_rejects_bad_input(kwargs, error, match):
    x = kwargs.pop("x", np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(error, match=match):
        mc_predict_head(_digits_net(), x, show_progress=False, **kwargs)


# ----------------------------------------------------------------------------- Keras


@pytest.fixture(scope="module")
def keras():
    from lessonlib.models_keras import import_keras

    return import_keras()


def _keras_twin(keras):
    net = _digits_net().eval()
    twin = mc_dropout_net(n_train=1_000, framework="keras", input_shape=(28, 28, 1), num_classes=10)
    copy_torch_weights(net, twin)
    return twin


def test_identity_batchnorm_predicts_like_the_original_and_leaves_it_alone(keras):
    twin = _keras_twin(keras)
    weights = [w.copy() for w in twin.get_weights()]
    x = np.random.default_rng(1).random((12, 28, 28, 1), dtype=np.float32)
    bn_net = with_identity_batchnorm(twin, x)
    names = [layer.name for layer in bn_net.layers]
    assert names[names.index("flatten") + 1] == "batchnorm"
    np.testing.assert_allclose(
        bn_net.predict(x, verbose=0), twin.predict(x, verbose=0), rtol=1e-4, atol=1e-4
    )
    for before, after in zip(weights, twin.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    norm = bn_net.get_layer("batchnorm")
    body = twin.layers[: [layer.name for layer in twin.layers].index("flatten") + 1]
    features = keras.Sequential([keras.Input((28, 28, 1)), *body]).predict(x, verbose=0)
    np.testing.assert_allclose(norm.moving_mean.numpy(), features.mean(axis=0), atol=1e-5)


def test_naive_training_true_loop_breaks_batch_norm_and_mc_predict_does_not(keras):
    twin = _keras_twin(keras)
    x = np.random.default_rng(2).random((10, 28, 28, 1), dtype=np.float32)
    bn_net = with_identity_batchnorm(twin, x)
    variance = bn_net.get_layer("batchnorm").moving_variance.numpy().copy()
    good = mc_predict(bn_net, x, samples=5, seed=0, show_progress=False)
    reference = mc_predict(twin, x, samples=5, seed=0, show_progress=False)
    np.testing.assert_allclose(good, reference, atol=1e-4)  # batch norm stayed in inference
    np.testing.assert_array_equal(bn_net.get_layer("batchnorm").moving_variance.numpy(), variance)
    naive = naive_keras_mc(bn_net, x, samples=2, batch_size=1)
    assert naive.shape == (2, 10, 10)
    after = bn_net.get_layer("batchnorm").moving_variance.numpy()
    assert after.mean() < variance.mean()  # training=True updated the moving averages


def test_naive_keras_mc_without_batch_norm_is_plain_dropout(keras):
    twin = _keras_twin(keras)
    x = np.random.default_rng(3).random((4, 28, 28, 1), dtype=np.float32)
    probs = naive_keras_mc(twin, x, samples=30, batch_size=3)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    assert probs.std(axis=0).max() > 0  # dropout is on
    mean = mc_predict(twin, x, samples=300, seed=0, show_progress=False).mean(axis=0)
    assert np.abs(probs.mean(axis=0) - mean).max() < 0.15  # same distribution


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: with_identity_batchnorm(m, np.zeros((2, 28, 28, 1)), after="x"), ValueError,
         "after must name a layer"),
        (lambda m: with_identity_batchnorm(nn.Linear(2, 2), np.zeros((2, 2))), TypeError,
         "model must be a keras.Sequential"),
        (lambda m: naive_keras_mc(nn.Linear(2, 2), np.zeros((2, 2)), samples=1, batch_size=1),
         TypeError, "model must be a keras.Model"),
        (lambda m: naive_keras_mc(m, np.zeros((2, 28, 28, 1)), samples=0, batch_size=1),
         ValueError, "samples must be a positive"),
        (lambda m: naive_keras_mc(m, np.zeros((2, 28, 28, 1)), samples=1, batch_size=0),
         ValueError, "batch_size must be a positive"),
    ],
)  # fmt: skip
def test_keras_helpers_reject_bad_input(keras, call, error, match):
    with pytest.raises(error, match=match):
        call(_keras_twin(keras))
