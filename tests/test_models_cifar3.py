"""Tests for lessonlib.models_cifar3: seed 001's three networks in torch and Keras.

No torch optimizer is created here: in this environment, loading triton (which
``torch.optim`` pulls in) after TensorFlow crashes the process, and the Keras
tests of other modules may have imported TensorFlow already.  Training steps
are written out by hand instead.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lessonlib.models_cifar3 import (
    cifar3_cnn,
    copy_torch_weights,
    kl_term,
    l2_penalty,
    mc_dropout_net,
    penalized_loss,
    variational_net,
    weight_decay_from_tau,
    weight_decay_param_groups,
)
from lessonlib.models_torch import count_params

SEED_PENALTIES = (0.5 / (0.5 * 15_000), 1 / (0.5 * 15_000))  # seed 001: tau 0.5, dropout 0.5


def _build(kind: str, **kwargs):
    if kind == "mc":
        return mc_dropout_net(n_train=15_000, **kwargs)
    return {"cnn": cifar3_cnn, "vnn": variational_net}[kind](**kwargs)


# ----------------------------------------------------------------------------- torch


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("cnn", 331_331), ("mc", 167_363), ("vnn", 230_787)],
)
def test_torch_parameter_counts_match_the_seed(kind, expected):
    assert count_params(_build(kind)) == expected


def test_layer_roles_and_output_shapes():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    for kind in ("cnn", "mc", "vnn"):
        net = _build(kind).eval()
        assert isinstance(net.conv_last, torch.nn.Conv2d)
        assert net(x).shape == (2, 3)
    assert _build("cnn").conv_last.out_channels == 64
    assert _build("mc").conv_last.out_channels == 128
    assert [m.p for m in _build("cnn").modules() if isinstance(m, torch.nn.Dropout)] == [0.2, 0.2]


def test_mc_dropout_net_for_digits():
    net = mc_dropout_net(n_train=5_000, input_shape=(1, 28, 28), num_classes=10)
    # conv 320 + 18,496 + 73,856; a 1x1x128 map after the third pool; dense 16,512 + 8,256 + 650
    assert count_params(net) == 118_090
    assert net.eval()(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    kernel, bias = weight_decay_from_tau(tau=0.5, n_train=5_000, dropout=0.5)
    assert net.l2_penalties == {name: (kernel, bias) for name in ("dense1", "dense2", "logits")}


def test_weight_decay_from_tau_known_values():
    kernel, bias = weight_decay_from_tau(tau=0.5, n_train=15_000, dropout=0.5)
    assert kernel == pytest.approx(SEED_PENALTIES[0], rel=1e-12)
    assert bias == pytest.approx(SEED_PENALTIES[1], rel=1e-12)
    k2, b2 = weight_decay_from_tau(tau=0.5, n_train=15_000, dropout=0.5, length_scale=2.0)
    assert (k2, b2) == pytest.approx((4 * kernel, 4 * bias))
    assert weight_decay_from_tau(tau=1.0, n_train=10, dropout=0.0) == pytest.approx((0.1, 0.1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau": 0.0}, "tau"),
        ({"n_train": 0}, "n_train"),
        ({"n_train": 1.5}, "n_train"),
        ({"dropout": 1.0}, "dropout"),
        ({"length_scale": -1.0}, "length_scale"),
    ],
)
def test_weight_decay_from_tau_rejects_bad_input(kwargs, match):
    args = {"tau": 0.5, "n_train": 100, "dropout": 0.5} | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        weight_decay_from_tau(**args)


def test_l2_penalty_is_the_keras_sum_and_matches_the_weight_decay_groups():
    torch.manual_seed(1)
    net = mc_dropout_net(n_train=200, tau=0.25, dropout=0.3)
    kernel, bias = weight_decay_from_tau(tau=0.25, n_train=200, dropout=0.3)
    by_hand = sum(
        kernel * (layer.weight**2).sum() + bias * (layer.bias**2).sum()
        for layer in (net.dense1, net.dense2, net.logits)
    )
    penalty = l2_penalty(net)
    assert penalty.item() == pytest.approx(by_hand.item(), rel=1e-6)
    penalty.backward()
    groups = weight_decay_param_groups(net)
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in net.parameters())  # each parameter once
    for group in groups:
        for p in group["params"]:
            grad = p.grad if p.grad is not None else torch.zeros_like(p)
            torch.testing.assert_close(group["weight_decay"] * p.detach(), grad)
    assert l2_penalty(cifar3_cnn()).item() == 0.0


def test_kl_term_matches_a_hand_computation():
    net = variational_net()
    with torch.no_grad():
        for layer in (net.latent.z_mean, net.latent.z_log_var):
            layer.weight.zero_()
        net.latent.z_mean.bias.fill_(1.0)  # mean 1
        net.latent.z_log_var.bias.fill_(np.log(2.0))  # variance 2
    with pytest.raises(ValueError, match="forward pass"):
        kl_term(net)
    net(torch.rand(3, 3, 32, 32))
    # per unit: -0.5 * (1 + log 2 - 1 - 2), averaged over the 32 units and the batch
    assert kl_term(net).item() == pytest.approx(-0.5 * (1 + np.log(2.0) - 1 - 2), rel=1e-6)
    assert float(kl_term(cifar3_cnn())) == 0.0


def test_variational_net_samples_and_trains_with_the_kl_term():
    torch.manual_seed(2)
    net = variational_net(input_shape=(1, 16, 16), num_classes=2, latent_dim=4)
    x, y = torch.rand(8, 1, 16, 16), torch.tensor([0, 1] * 4)
    assert not torch.equal(net(x), net(x))  # the latent is sampled, in eval mode too
    loss_fn = penalized_loss(net)
    losses, kls = [], []
    for _ in range(30):
        logits = net(x)
        loss = loss_fn(logits, y)
        kls.append(kl_term(net).item())
        assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item() + kls[-1], rel=1e-5)
        net.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.05 * p.grad
        losses.append(loss.item())
    assert min(kls) > 0
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"framework": "jax"}, "framework"),
        ({"input_shape": (32, 32)}, "input_shape"),
        ({"input_shape": (3, 0, 32)}, "input_shape"),
        ({"input_shape": (3, 4, 4)}, "input_shape"),
        ({"num_classes": 0}, "num_classes"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_builders_reject_bad_input(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cifar3_cnn(**kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        mc_dropout_net(n_train=10, **kwargs)
    if "dropout" not in kwargs:
        with pytest.raises((ValueError, TypeError), match=match):
            variational_net(**kwargs)


def test_more_bad_input():
    with pytest.raises(TypeError, match="n_train"):
        mc_dropout_net()
    with pytest.raises(ValueError, match="tau"):
        mc_dropout_net(n_train=10, tau=-1.0)
    with pytest.raises(ValueError, match="latent_dim"):
        variational_net(latent_dim=0)
    with pytest.raises(ValueError, match="intermediate_dim"):
        variational_net(intermediate_dim=0)
    for fn in (l2_penalty, kl_term, weight_decay_param_groups, penalized_loss):
        with pytest.raises(TypeError, match="model"):
            fn("not a model")
    with pytest.raises(AttributeError, match="nothing"):
        import lessonlib.models_cifar3 as mod

        mod.nothing  # noqa: B018


def test_whole_torch_variational_net_pickles():
    import io

    import lessonlib.models_cifar3 as mod

    net = variational_net(input_shape=(3, 16, 16))
    assert isinstance(net.latent, mod.GaussianLatent)
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(loaded.latent.z_mean.weight, net.latent.z_mean.weight)


# ----------------------------------------------------------------------------- Keras


@pytest.fixture(scope="module")
def keras_models():
    """The three Keras models, built once (importing TensorFlow costs ~9 s)."""
    return {kind: _build(kind, framework="keras") for kind in ("cnn", "mc", "vnn")}


def test_keras_counts_names_and_regularizers(keras_models):
    counts = {kind: m.count_params() for kind, m in keras_models.items()}
    assert counts == {"cnn": 331_331, "mc": 167_363, "vnn": 230_787}
    assert keras_models["cnn"].get_layer("Conv_last").filters == 64
    assert keras_models["mc"].get_layer("Conv_last").filters == 128
    for name in ("dense1", "dense2", "logits"):
        layer = keras_models["mc"].get_layer(name)
        assert float(layer.kernel_regularizer.l2) == pytest.approx(SEED_PENALTIES[0])
        assert float(layer.bias_regularizer.l2) == pytest.approx(SEED_PENALTIES[1])
    assert keras_models["cnn"].get_layer("dense1").kernel_regularizer is None
    import lessonlib.models_cifar3 as mod

    assert isinstance(keras_models["vnn"].get_layer("latent"), mod.GaussianLatentLayer)


def test_torch_and_keras_agree_after_copying_weights(keras_models):
    torch.manual_seed(3)
    x = np.random.default_rng(3).random((4, 3, 32, 32), dtype=np.float32)
    for kind in ("cnn", "mc"):
        net = _build(kind).eval()
        copy_torch_weights(net, keras_models[kind])
        with torch.no_grad():
            expected = torch.softmax(net(torch.from_numpy(x)), 1).numpy()
        got = np.asarray(keras_models[kind](x.transpose(0, 2, 3, 1)))
        np.testing.assert_allclose(_softmax(got), expected, atol=1e-5)
        if kind == "mc":  # the same L2 penalty on both sides
            keras_penalty = float(sum(np.asarray(v) for v in keras_models[kind].losses))
            assert keras_penalty == pytest.approx(l2_penalty(net).item(), rel=1e-5)


def test_keras_variational_net_adds_the_kl_term_to_its_loss(keras_models):
    import keras

    vnn = keras_models["vnn"]
    net = variational_net().eval()
    copy_torch_weights(net, vnn)
    latent = vnn.get_layer("latent")
    kernel, bias = latent.z_log_var.get_weights()
    latent.z_log_var.set_weights([np.zeros_like(kernel), np.full_like(bias, -30.0)])  # z = mean
    x = np.random.default_rng(4).random((6, 32, 32, 3), dtype=np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    logits = np.asarray(vnn(x))
    mean = np.asarray(latent.z_mean(_encoder(vnn, x)))
    kl = np.mean(-0.5 * np.mean(1 - 30.0 - mean**2 - np.exp(-30.0), axis=-1))
    assert len(vnn.losses) == 1 and float(vnn.losses[0]) == pytest.approx(kl, rel=1e-5)
    ce = np.mean(-np.log(_softmax(logits)[np.arange(6), y]))
    vnn.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    total = vnn.evaluate(x, y, batch_size=6, verbose=0)
    assert total == pytest.approx(ce + kl, rel=1e-4)
    assert kl > 0


def test_copy_torch_weights_rejects_mismatched_models(keras_models):
    with pytest.raises(ValueError, match="keras_model"):
        copy_torch_weights(cifar3_cnn(), keras_models["mc"])
    with pytest.raises(ValueError, match="keras_model"):
        copy_torch_weights(cifar3_cnn(num_classes=5), keras_models["cnn"])
    with pytest.raises(TypeError, match="model"):
        copy_torch_weights(keras_models["cnn"], keras_models["cnn"])


def _encoder(model, x):
    """Run a Keras variational net up to (not including) its latent layer."""
    h = x
    for layer in model.layers:
        if layer.name == "latent":
            return h
        h = layer(h)
    raise AssertionError("no latent layer")


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
