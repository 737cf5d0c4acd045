"""Tests for lessonlib.uncertainty: MC prediction in torch and Keras, summaries, calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve
from torch import nn

from lessonlib.models_cifar3 import cifar3_cnn, copy_torch_weights, mc_dropout_net, variational_net
from lessonlib.uncertainty import (
    class_spread,
    expected_calibration_error,
    expected_entropy,
    mc_predict,
    mutual_information,
    predictive_entropy,
    predictive_mean,
    reliability_diagram_data,
)

LOG2 = np.log(2.0)


def _bn_net(dropout: float) -> nn.Module:
    """A small torch net with batch norm and dropout, its running statistics made non-trivial."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 6 * 6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(16, 3),
    )  # fmt: skip
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(32, 1, 8, 8) * 2 + 1)
    return net.eval()


def _bn_state(net: nn.Module) -> dict[str, torch.Tensor]:
    state = net.state_dict()
    return {k: v.clone() for k, v in state.items() if "running" in k or "num_batches" in k}


# ----------------------------------------------------------------------------- torch


def test_torch_dropout_zero_gives_identical_samples_equal_to_eval():
    torch.manual_seed(1)
    net = cifar3_cnn(dropout=0.0, input_shape=(3, 16, 16))
    x = torch.rand(5, 3, 16, 16)
    probs = mc_predict(net, x, samples=7, batch_size=4, show_progress=False)
    assert probs.shape == (7, 5, 3) and probs.dtype == np.float32
    with torch.no_grad():
        expected = torch.softmax(net.eval()(x), 1).numpy()
    for sample in probs:  # every sample, across chunk borders, in input order
        np.testing.assert_allclose(sample, expected, atol=1e-6)


def test_torch_dropout_samples_differ_and_equal_a_manual_train_mode_pass():
    torch.manual_seed(2)
    net = cifar3_cnn(input_shape=(3, 16, 16)).eval()
    x = torch.rand(3, 3, 16, 16)
    probs = mc_predict(net, x, samples=50, seed=7)
    assert probs.std(axis=0).min() > 0
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # oracle: the same seed, the whole repeated batch in train mode (no batch norm here)
    torch.manual_seed(7)
    with torch.no_grad():
        manual = torch.softmax(net.train()(x.repeat(50, 1, 1, 1)), 1).numpy()
    np.testing.assert_allclose(probs.reshape(150, 3), manual, atol=1e-5)


def test_torch_batch_norm_is_untouched_and_modes_are_restored():
    net = _bn_net(dropout=0.5)
    before = _bn_state(net)
    x = torch.randn(4, 1, 8, 8)
    probs = mc_predict(net, x, samples=20, seed=0)
    assert probs.std(axis=0).max() > 0
    after = _bn_state(net)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m.training for m in net.modules())
    # the pitfall this avoids: train mode moves the running statistics
    net.train()
    with torch.no_grad():
        net(x)
    assert not torch.equal(before["1.running_mean"], net.state_dict()["1.running_mean"])
    mc_predict(net, x, samples=2)
    assert all(m.training for m in net.modules())  # train mode restored too


def test_torch_dropout_zero_with_batch_norm_equals_eval_mode():
    net = _bn_net(dropout=0.0)
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        expected = torch.softmax(net(x), 1).numpy()
    probs = mc_predict(net, x, samples=4)
    np.testing.assert_allclose(probs, np.broadcast_to(expected, probs.shape), atol=1e-6)


def test_torch_seed_repeats_samples_and_leaves_the_global_rng_alone():
    net = cifar3_cnn(input_shape=(3, 16, 16))
    x = np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32)
    state = torch.get_rng_state()
    a = mc_predict(net, x, samples=10, seed=3)
    b = mc_predict(net, x, samples=10, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, mc_predict(net, x, samples=10, seed=4))


def test_mc_predict_on_the_variational_net_and_digits_net(capsys):
    torch.manual_seed(3)
    vnn = variational_net(input_shape=(3, 16, 16))
    probs = mc_predict(vnn, torch.rand(2, 3, 16, 16), samples=30, batch_size=16)
    assert probs.shape == (30, 2, 3) and probs.std(axis=0).min() > 0
    assert "MC forward passes: 4/4" in capsys.readouterr().out  # static progress line
    digits = mc_dropout_net(n_train=5_000, input_shape=(1, 28, 28), num_classes=10)
    probs = mc_predict(digits, np.zeros((3, 1, 28, 28), np.uint8), samples=200)
    assert probs.shape == (200, 3, 10)


def test_from_logits_false_passes_probabilities_through():
    net = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))
    x = torch.rand(2, 4)
    with torch.no_grad():
        expected = net(x).numpy()
    probs = mc_predict(net, x, samples=3, from_logits=False)
    np.testing.assert_allclose(probs[2], expected, atol=1e-7)


@pytest.mark.parametrize(
    ("model", "x", "kwargs", "error", "match"),
    [
        ("not a model", np.zeros((1, 4)), {}, TypeError, "model"),
        (nn.Linear(4, 3), np.zeros((1, 4)), {"samples": 0}, ValueError, "samples"),
        (nn.Linear(4, 3), np.zeros((1, 4)), {"batch_size": 0}, ValueError, "batch_size"),
        (nn.Linear(4, 3), np.zeros((1, 4)), {"seed": -1}, ValueError, "seed"),
        (nn.Linear(4, 3), np.zeros(4), {}, ValueError, "x"),
        (nn.Linear(4, 3), np.zeros((0, 4)), {}, ValueError, "x"),
        (nn.Linear(4, 3), "abc", {}, TypeError, "x"),
        (nn.Unflatten(1, (2, 2)), np.zeros((1, 4)), {}, ValueError, "model must return"),
    ],
)
def test_mc_predict_rejects_bad_input(model, x, kwargs, error, match):
    with pytest.raises(error, match=match):
        mc_predict(model, x, **({"samples": 2} | kwargs))


# ----------------------------------------------------------------------------- Keras


@pytest.fixture(scope="module")
def keras():
    from lessonlib.models_cifar3 import _keras

    return _keras()


def _keras_bn_net(keras, dropout: float):
    layers = keras.layers
    net = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(4, 3, name="conv"),
            layers.BatchNormalization(name="bn"),
            layers.ReLU(),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dropout(dropout, name="drop"),
            layers.Dense(3),
        ]
    )
    bn = net.get_layer("bn")
    bn.moving_mean.assign(np.linspace(-1, 1, 4).astype(np.float32))
    bn.moving_variance.assign(np.linspace(0.5, 2, 4).astype(np.float32))
    return net


def test_keras_batch_norm_is_untouched_and_dropout_is_on(keras):
    net = _keras_bn_net(keras, dropout=0.5)
    bn = net.get_layer("bn")
    before = [v.numpy().copy() for v in (bn.moving_mean, bn.moving_variance)]
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32)
    probs = mc_predict(net, x, samples=40, batch_size=64, seed=1)
    assert probs.shape == (40, 4, 3) and probs.std(axis=0).max() > 0
    for old, new in zip(before, (bn.moving_mean, bn.moving_variance), strict=True):
        np.testing.assert_array_equal(old, new.numpy())
    assert type(net.get_layer("drop")).__name__ == "Dropout"  # the model itself is unchanged
    np.testing.assert_array_equal(probs, mc_predict(net, x, samples=40, batch_size=64, seed=1))
    # the pitfall this avoids: training=True moves the moving statistics
    net(x, training=True)
    assert not np.array_equal(before[0], bn.moving_mean.numpy())


def test_keras_dropout_zero_gives_identical_samples_equal_to_inference(keras):
    net = _keras_bn_net(keras, dropout=0.0)
    x = np.random.default_rng(1).normal(size=(3, 8, 8, 1)).astype(np.float32)
    logits = np.asarray(net(x, training=False))
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs = mc_predict(net, x, samples=5, batch_size=4, show_progress=False)
    np.testing.assert_allclose(probs, np.broadcast_to(expected, probs.shape), atol=1e-6)


def test_keras_and_torch_agree_on_the_mc_dropout_net_without_dropout(keras):
    torch.manual_seed(4)
    net = mc_dropout_net(n_train=100, dropout=0.0)
    twin = mc_dropout_net(n_train=100, dropout=0.0, framework="keras")
    copy_torch_weights(net, twin)
    x = np.random.default_rng(2).random((3, 3, 32, 32), dtype=np.float32)
    got = mc_predict(twin, x.transpose(0, 2, 3, 1), samples=3)
    np.testing.assert_allclose(got, mc_predict(net, x, samples=3), atol=1e-5)
    vnn = variational_net(framework="keras", input_shape=(16, 16, 3))  # latent sampling
    assert mc_predict(vnn, x[:, :, :16, :16].transpose(0, 2, 3, 1), samples=5).std(0).min() > 0


def test_keras_mc_dropout_layer_is_always_on(keras):
    from lessonlib import uncertainty

    layer = uncertainty.MCDropout(0.5, seed=0)
    ones = np.ones((2, 100), np.float32)
    assert (np.asarray(layer(ones, training=False)) == 0).any()
    with pytest.raises(AttributeError, match="nothing"):
        uncertainty.nothing  # noqa: B018


def test_keras_subclassed_model_is_rejected(keras):
    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Tiny()
    model(np.zeros((1, 3), np.float32))
    with pytest.raises(TypeError, match="model must be a Sequential or functional"):
        mc_predict(model, np.zeros((1, 3), np.float32), samples=2)


# ----------------------------------------------------------------------------- summaries

# two passes over two inputs: they disagree confidently on input 0, agree unsurely on input 1
TWO_BY_TWO = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])
# two passes over one input, three classes
THREE_CLASSES = np.array([[[0.7, 0.2, 0.1]], [[0.1, 0.2, 0.7]]])


def test_entropy_and_mutual_information_known_values():
    np.testing.assert_allclose(predictive_mean(TWO_BY_TWO), [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(predictive_entropy(TWO_BY_TWO), [LOG2, LOG2])
    np.testing.assert_allclose(expected_entropy(TWO_BY_TWO), [0.0, LOG2])
    np.testing.assert_allclose(mutual_information(TWO_BY_TWO), [LOG2, 0.0], atol=1e-12)
    # by hand: H(0.4, 0.2, 0.4) = 1.054920, H(0.7, 0.2, 0.1) = 0.801819
    np.testing.assert_allclose(predictive_entropy(THREE_CLASSES), [1.054920], atol=1e-6)
    np.testing.assert_allclose(expected_entropy(THREE_CLASSES), [0.801819], atol=1e-6)
    np.testing.assert_allclose(mutual_information(THREE_CLASSES), [0.253102], atol=1e-6)


def test_summaries_of_random_samples_obey_their_bounds():
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(4), size=(30, 10)).astype(np.float32)
    total, mi = predictive_entropy(probs), mutual_information(probs)
    assert np.all(total <= np.log(4) + 1e-9) and np.all(mi >= 0)
    np.testing.assert_allclose(total - expected_entropy(probs), mi, atol=1e-9)


def test_class_spread_quantiles_and_std():
    probs = np.stack([np.full((2, 2), 0.5), [[0.9, 0.1], [0.5, 0.5]], [[0.1, 0.9], [0.5, 0.5]]])
    spread = class_spread(probs, quantiles=(0.0, 0.5, 1.0))
    np.testing.assert_allclose(spread.quantiles[:, 0, 0], [0.1, 0.5, 0.9])
    np.testing.assert_allclose(spread.std[0], [np.sqrt(0.32 / 3)] * 2)
    np.testing.assert_allclose(spread.std[1], [0.0, 0.0])
    np.testing.assert_allclose(spread.mean, np.full((2, 2), 0.5))
    assert spread.quantiles.shape == (3, 2, 2) and class_spread(probs).levels.shape == (5,)


@pytest.mark.parametrize(
    ("probs", "match"),
    [
        (np.full((2, 1, 2), 0.7), "sum to 1"),
        (np.array([[[1.5, -0.5]]]), r"\[0, 1\]"),
        (np.array([[[np.nan, 1.0]]]), r"\[0, 1\]"),
        (np.full((1, 2), 0.5), "dimensions"),
        (np.array([[["a", "b"]]]), "dtype"),
    ],
)
def test_summaries_reject_bad_probs(probs, match):
    for fn in (predictive_mean, predictive_entropy, expected_entropy, mutual_information):
        with pytest.raises((ValueError, TypeError), match=match):
            fn(probs)
    with pytest.raises((ValueError, TypeError), match="probs"):
        class_spread(probs)
    with pytest.raises(ValueError, match="quantiles"):
        class_spread(TWO_BY_TWO, quantiles=(0.5, 1.5))


# ----------------------------------------------------------------------------- calibration


def test_ece_is_zero_when_perfectly_calibrated():
    probs = np.array([[0.8, 0.2]] * 10 + [[0.3, 0.7]] * 10)
    labels = np.array([0] * 8 + [1] * 2 + [1] * 7 + [0] * 3)  # 80% right at 0.8, 70% at 0.7
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)


def test_ece_matches_a_hand_computation():
    probs = np.array([[0.6, 0.3, 0.1]] * 5 + [[0.05, 0.05, 0.9]] * 5)
    labels = np.array([0, 0, 0, 1, 2] + [2, 2, 2, 2, 0])
    # bin (0.5, 0.6]: confidence 0.6, accuracy 3/5; bin (0.8, 0.9]: confidence 0.9, accuracy 4/5
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5 * 0 + 0.5 * 0.1)
    data = reliability_diagram_data(probs, labels, n_bins=10)
    assert data.counts.tolist() == [0, 0, 0, 0, 0, 5, 0, 0, 5, 0]
    np.testing.assert_allclose(data.accuracy[[5, 8]], [0.6, 0.8])
    np.testing.assert_allclose(data.confidence[[5, 8]], [0.6, 0.9])
    assert np.isnan(data.accuracy[0]) and np.isnan(data.confidence[9])
    np.testing.assert_allclose(data.edges, np.linspace(0, 1, 11))
    # 5 bins of width 0.2: both groups fall in bin (0.4, 0.6] and (0.8, 1.0]
    assert reliability_diagram_data(probs, labels, n_bins=5).counts.tolist() == [0, 0, 5, 0, 5]


def test_reliability_data_agrees_with_sklearn_calibration_curve():
    rng = np.random.default_rng(6)
    p1 = rng.uniform(0.5, 1.0, size=400)  # the model always predicts class 1
    labels = (rng.random(400) < p1**2).astype(int)
    data = reliability_diagram_data(np.stack([1 - p1, p1], axis=1), labels, n_bins=8)
    prob_true, prob_pred = calibration_curve(labels, p1, n_bins=8, strategy="uniform")
    full = data.counts > 0
    np.testing.assert_allclose(data.accuracy[full], prob_true)
    np.testing.assert_allclose(data.confidence[full], prob_pred)
    assert data.counts.sum() == 400


@pytest.mark.parametrize(
    ("probs", "labels", "kwargs", "match"),
    [
        (np.full((2, 2), 0.5), [0], {}, "labels"),
        (np.full((2, 2), 0.5), [0, 2], {}, "labels"),
        (np.full((2, 2), 0.5), [0, -1], {}, "labels"),
        (np.full((2, 2), 0.5), [0.0, 1.0], {}, "labels"),
        (np.full((2, 2), 0.5), [0, 1], {"n_bins": 0}, "n_bins"),
        (np.full((1, 2, 2), 0.5), [0, 1], {}, "probs"),
        (np.full((2, 2), 0.6), [0, 1], {}, "probs"),
    ],
)
def test_calibration_rejects_bad_input(probs, labels, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        expected_calibration_error(probs, labels, **kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        reliability_diagram_data(probs, labels, **kwargs)
