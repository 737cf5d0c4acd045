"""Tests for lessonlib.batchnorm: the hand-written layer against torch and Keras, and the sweep."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from lessonlib import batchnorm as bn
from lessonlib.batchnorm import (
    BatchNorm2dByHand,
    SweepRun,
    accuracy_one_at_a_time,
    batch_norm,
    compare_batch_norm,
    keras_momentum,
    keras_running_means,
    plain_convnet,
    recalibrated,
    sweep_figure,
    sweep_table,
    torch_momentum,
    torch_running_means,
    train_recording_steps,
)
from lessonlib.models_torch import count_params
from lessonlib.training import make_loader


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def keras():
    from lessonlib.models_keras import import_keras

    return import_keras()


def _batch(seed: int, shape=(6, 3, 5, 4), loc=2.0, scale=3.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64) * scale + loc


def _random_affine(layer: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(layer.weight.shape, generator=gen) + 0.5)
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))


# --- the function by hand ------------------------------------------------------------------


def test_training_mode_normalises_each_channel():
    x = _batch(0)
    c = x.shape[1]
    y, _, _ = batch_norm(
        x,
        weight=torch.ones(c, dtype=x.dtype),
        bias=torch.zeros(c, dtype=x.dtype),
        running_mean=torch.zeros(c, dtype=x.dtype),
        running_var=torch.ones(c, dtype=x.dtype),
        training=True,
        eps=0.0,
    )
    np.testing.assert_allclose(y.mean(dim=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(dim=(0, 2, 3), unbiased=False), 1, rtol=1e-12)


def test_gamma_and_beta_scale_and_shift():
    x = _batch(1)
    c = x.shape[1]
    common = dict(
        running_mean=torch.zeros(c, dtype=x.dtype), running_var=torch.ones(c, dtype=x.dtype)
    )
    gamma = torch.tensor([2.0, 0.5, -1.0], dtype=x.dtype)
    beta = torch.tensor([1.0, -3.0, 0.0], dtype=x.dtype)
    plain, _, _ = batch_norm(
        x,
        weight=torch.ones(c, dtype=x.dtype),
        bias=torch.zeros(c, dtype=x.dtype),
        training=True,
        **common,
    )
    scaled, _, _ = batch_norm(x, weight=gamma, bias=beta, training=True, **common)
    np.testing.assert_allclose(scaled, plain * gamma.reshape(1, 3, 1, 1) + beta.reshape(1, 3, 1, 1))


def test_running_averages_follow_torch_convention_by_hand():
    x = _batch(2)
    n = x.numel() // x.shape[1]
    mean0 = torch.tensor([1.0, -1.0, 0.5], dtype=x.dtype)
    var0 = torch.tensor([2.0, 1.0, 0.5], dtype=x.dtype)
    _, mean, var = batch_norm(
        x,
        weight=torch.ones(3, dtype=x.dtype),
        bias=torch.zeros(3, dtype=x.dtype),
        running_mean=mean0,
        running_var=var0,
        training=True,
        momentum=0.25,
    )
    batch_mean = x.mean(dim=(0, 2, 3))
    batch_var = x.var(dim=(0, 2, 3), unbiased=False)
    np.testing.assert_allclose(mean, 0.75 * mean0 + 0.25 * batch_mean)
    np.testing.assert_allclose(var, 0.75 * var0 + 0.25 * batch_var * n / (n - 1))


def test_eval_mode_uses_and_keeps_the_running_statistics():
    x = _batch(3)
    mean0 = torch.tensor([1.0, 2.0, 3.0], dtype=x.dtype)
    var0 = torch.tensor([4.0, 1.0, 0.25], dtype=x.dtype)
    y, mean, var = batch_norm(
        x,
        weight=torch.ones(3, dtype=x.dtype),
        bias=torch.zeros(3, dtype=x.dtype),
        running_mean=mean0,
        running_var=var0,
        training=False,
        eps=0.0,
    )
    expected = (x - mean0.reshape(1, 3, 1, 1)) / var0.sqrt().reshape(1, 3, 1, 1)
    np.testing.assert_allclose(y, expected)
    assert torch.equal(mean, mean0) and torch.equal(var, var0)
    assert mean.data_ptr() != mean0.data_ptr()  # a copy, not the caller's buffer


@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 7), (2, 5, 3, 3, 2)])
def test_works_for_any_rank_with_channels_on_axis_1(shape):
    x = _batch(4, shape=shape)
    c = shape[1]
    y, _, _ = batch_norm(
        x,
        weight=torch.ones(c, dtype=x.dtype),
        bias=torch.zeros(c, dtype=x.dtype),
        running_mean=torch.zeros(c, dtype=x.dtype),
        running_var=torch.ones(c, dtype=x.dtype),
        training=True,
    )
    reference = nn.functional.batch_norm(
        x, torch.zeros(c, dtype=x.dtype), torch.ones(c, dtype=x.dtype), training=True
    )
    np.testing.assert_allclose(y, reference, rtol=1e-10, atol=1e-12)


# --- the module against torch.nn.BatchNorm2d ----------------------------------------------


@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0])
def test_module_matches_torch_in_train_mode_over_several_batches(momentum):
    ours = BatchNorm2dByHand(3, momentum=momentum).double()
    theirs = nn.BatchNorm2d(3, momentum=momentum).double()
    _random_affine(theirs, 7)
    ours.load_state_dict(theirs.state_dict())
    for seed in range(4):
        x = _batch(10 + seed)
        np.testing.assert_allclose(ours(x).detach(), theirs(x).detach(), rtol=1e-10, atol=1e-12)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-12)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 4


def test_module_matches_torch_in_eval_mode_and_leaves_buffers_alone():
    theirs = nn.BatchNorm2d(3).double()
    _random_affine(theirs, 8)
    theirs(_batch(20))  # give it non-trivial running statistics
    ours = BatchNorm2dByHand(3).double()
    ours.load_state_dict(theirs.state_dict())
    ours.eval(), theirs.eval()
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    x = _batch(21, loc=-5.0)
    np.testing.assert_allclose(ours(x).detach(), theirs(x).detach(), rtol=1e-10, atol=1e-12)
    for key, value in ours.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_module_gradients_match_torch():
    ours = BatchNorm2dByHand(3).double()
    theirs = nn.BatchNorm2d(3).double()
    _random_affine(theirs, 9)
    ours.load_state_dict(theirs.state_dict())
    x1 = _batch(30).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    target = _batch(31)
    ((ours(x1) - target) ** 2).sum().backward()
    ((theirs(x2) - target) ** 2).sum().backward()
    np.testing.assert_allclose(x1.grad, x2.grad, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad, rtol=1e-9)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad, rtol=1e-9)


def test_module_state_dict_loads_into_torch():
    ours = BatchNorm2dByHand(4)
    ours(torch.randn(3, 4, 2, 2))
    theirs = nn.BatchNorm2d(4)
    theirs.load_state_dict(ours.state_dict())
    assert torch.equal(theirs.running_mean, ours.running_mean)
    assert "momentum=0.1" in repr(ours)


def test_module_like_torch_refuses_a_single_value_per_channel():
    with pytest.raises(ValueError, match="more than one value per channel"):
        BatchNorm2dByHand(2)(torch.randn(1, 2, 1, 1))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm2d(2)(torch.randn(1, 2, 1, 1))
    layer = BatchNorm2dByHand(2).eval()  # eval mode has no such limit
    assert layer(torch.randn(1, 2, 1, 1)).shape == (1, 2, 1, 1)


# --- against keras.layers.BatchNormalization -------------------------------------------------


def _keras_layer(keras, *, momentum, epsilon, gamma, beta, mean, var):
    layer = keras.layers.BatchNormalization(axis=-1, momentum=momentum, epsilon=epsilon)
    layer.build((None, 5, 4, len(gamma)))
    layer.set_weights([gamma, beta, mean, var])
    return layer


@pytest.mark.parametrize("keras_m", [0.9, 0.99])
def test_matches_keras_in_training_mode_with_the_converted_momentum(keras, keras_m):
    rng = np.random.default_rng(0)
    gamma, beta = rng.random(3) + 0.5, rng.normal(size=3)
    mean0, var0 = rng.normal(size=3), rng.random(3) + 0.5
    layer = _keras_layer(
        keras, momentum=keras_m, epsilon=1e-3, gamma=gamma, beta=beta, mean=mean0, var=var0
    )
    x = (rng.normal(size=(6, 5, 4, 3)) * 3 + 2).astype(np.float32)
    y_keras = np.asarray(layer(x, training=True))
    as_t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    y, mean, var = batch_norm(
        as_t(x),
        weight=as_t(gamma),
        bias=as_t(beta),
        running_mean=as_t(mean0),
        running_var=as_t(var0),
        training=True,
        momentum=torch_momentum(keras_m),
        eps=1e-3,
        channel_axis=-1,
        unbiased_running_var=False,
    )
    np.testing.assert_allclose(y_keras, y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), var, rtol=1e-5, atol=1e-6)


def test_matches_keras_in_inference_mode(keras):
    rng = np.random.default_rng(1)
    gamma, beta = rng.random(2) + 0.5, rng.normal(size=2)
    mean0, var0 = rng.normal(size=2), rng.random(2) + 0.5
    layer = _keras_layer(
        keras, momentum=0.99, epsilon=1e-3, gamma=gamma, beta=beta, mean=mean0, var=var0
    )
    x = rng.normal(size=(3, 5, 4, 2)).astype(np.float32)
    as_t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    y, _, _ = batch_norm(
        as_t(x),
        weight=as_t(gamma),
        bias=as_t(beta),
        running_mean=as_t(mean0),
        running_var=as_t(var0),
        training=False,
        eps=1e-3,
        channel_axis=-1,
    )
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean0, rtol=1e-6)  # untouched


def test_torch_point_one_tracks_keras_point_nine_batch_by_batch(keras):
    rng = np.random.default_rng(2)
    stream = [(rng.normal(size=(8, 2, 4, 4)) + 5).astype(np.float32) for _ in range(6)]
    torch_trace = torch_running_means(nn.BatchNorm2d(2, momentum=0.1), stream)
    channels_last = [b.transpose(0, 2, 3, 1) for b in stream]
    k09 = keras_running_means(keras.layers.BatchNormalization(momentum=0.9), channels_last)
    k099 = keras_running_means(keras.layers.BatchNormalization(momentum=0.99), channels_last)
    assert torch_trace.shape == k09.shape == (6, 2)
    np.testing.assert_allclose(torch_trace, k09, rtol=1e-5)
    # Keras's default moves ten times more slowly: after one batch 1% of the way, not 10%
    np.testing.assert_allclose(k099[0], torch_trace[0] / 10, rtol=1e-4)
    expected = [1 - 0.9 ** (i + 1) for i in range(6)]  # fraction of the way to mean 5
    np.testing.assert_allclose(torch_trace[:, 0] / 5, expected, atol=0.05)


def test_momentum_conversions():
    assert keras_momentum(0.1) == pytest.approx(0.9)
    assert torch_momentum(0.99) == pytest.approx(0.01)
    assert keras_momentum(torch_momentum(0.3)) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="torch_value"):
        keras_momentum(1.5)
    with pytest.raises(TypeError, match="keras_value"):
        torch_momentum("0.9")


def test_running_mean_helpers_reject_bad_input():
    with pytest.raises(TypeError, match="layer must be a torch batch-norm layer"):
        torch_running_means(nn.ReLU(), [np.zeros((2, 1, 2, 2), np.float32)])
    with pytest.raises(ValueError, match="batches must hold at least one batch"):
        torch_running_means(nn.BatchNorm2d(1), [])
    with pytest.raises(ValueError, match="batches must have 4 dimensions"):
        torch_running_means(nn.BatchNorm2d(1), [np.zeros((2, 2), np.float32)])
    with pytest.raises(TypeError, match="layer must be a Keras BatchNormalization"):
        keras_running_means(object(), [np.zeros((2, 2, 2, 1), np.float32)])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x": np.zeros((2, 3))}, TypeError, "x must be a torch.Tensor"),
        ({"x": torch.zeros(2, 3, dtype=torch.long)}, TypeError, "x must be a floating-point"),
        ({"x": torch.zeros(3)}, ValueError, "batch and a channel axis"),
        ({"channel_axis": 0}, ValueError, "channel_axis must name a non-batch axis"),
        ({"channel_axis": 2}, ValueError, "channel_axis must name a non-batch axis"),
        ({"channel_axis": 1.0}, TypeError, "channel_axis must be an int"),
        ({"momentum": 1.5}, ValueError, "momentum"),
        ({"eps": -1.0}, ValueError, "eps"),
        ({"weight": torch.ones(4)}, ValueError, r"weight must have shape \(3,\)"),
        ({"running_var": [1.0, 1.0, 1.0]}, TypeError, "running_var must be a torch.Tensor"),
        ({"x": torch.zeros(1, 3)}, ValueError, "more than one value per channel"),
    ],
)
def test_batch_norm_rejects_bad_input(kwargs, error, match):
    args = dict(
        x=torch.zeros(2, 3),
        weight=torch.ones(3),
        bias=torch.zeros(3),
        running_mean=torch.zeros(3),
        running_var=torch.ones(3),
        training=True,
    )
    args.update(kwargs)
    with pytest.raises(error, match=match):
        batch_norm(**args)


def test_module_rejects_bad_input():
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3, H, W\)"):
        BatchNorm2dByHand(3)(torch.zeros(2, 4, 3, 3))
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm2dByHand(0)
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm2dByHand(3, momentum=-0.1)


# --- the deeper convnet ------------------------------------------------------------------------


def test_plain_convnet_parameter_counts_by_hand():
    convs = [(1, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32)]
    weights = sum(9 * cin * cout for cin, cout in convs)
    channels = sum(cout for _, cout in convs)
    head = 32 * 10 + 10
    assert count_params(plain_convnet(batch_norm=False)) == weights + channels + head == 18_370
    # with BN the conv biases go, and every channel gains gamma and beta
    assert count_params(plain_convnet(batch_norm=True)) == weights + 2 * channels + head == 18_482


def test_plain_convnet_structure_and_shapes():
    with_bn = plain_convnet(batch_norm=True)
    without = plain_convnet(batch_norm=False)
    convs = [m for m in with_bn if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(c.bias is None for c in convs)
    assert all(m.bias is not None for m in without if isinstance(m, nn.Conv2d))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in with_bn) == 6
    assert not any(isinstance(m, nn.BatchNorm2d) for m in without)
    assert sum(isinstance(m, nn.MaxPool2d) for m in with_bn) == 2
    assert with_bn(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    features = with_bn[:-3](torch.zeros(2, 1, 28, 28))
    assert features.shape == (2, 32, 7, 7)


def test_plain_convnet_options():
    deep = plain_convnet(batch_norm=True, widths=[4] * 8, pool_after=[1, 3, 5], num_classes=3)
    assert sum(isinstance(m, nn.Conv2d) for m in deep) == 8
    assert deep(torch.zeros(1, 1, 28, 28)).shape == (1, 3)
    colour = plain_convnet(batch_norm=np.bool_(False), in_channels=3, pool_after=[])
    assert colour(torch.zeros(1, 3, 8, 8)).shape == (1, 10)


def test_plain_convnet_he_init_keeps_the_signal_scale():
    torch.manual_seed(0)
    wide = [64] * 6
    he = plain_convnet(batch_norm=False, widths=wide, pool_after=[])
    torch.manual_seed(0)
    default = plain_convnet(batch_norm=False, widths=wide, pool_after=[], he_init=False)
    fan_in = 64 * 9
    assert he[2].weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    assert default[2].weight.std().item() == pytest.approx(math.sqrt(1 / (3 * fan_in)), rel=0.05)
    x = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        he_out, default_out = he[:-3](x), default[:-3](x)
    # six ReLU layers: He keeps the mean square near that of the input, the default shrinks it
    assert 0.1 < he_out.pow(2).mean().item() < 10
    assert default_out.pow(2).mean().item() < 1e-2 * he_out.pow(2).mean().item()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_norm": 1}, TypeError, "batch_norm must be a bool"),
        ({"batch_norm": True, "he_init": "yes"}, TypeError, "he_init must be a bool"),
        ({"batch_norm": True, "widths": 8}, TypeError, "widths must be a sequence"),
        ({"batch_norm": True, "widths": []}, ValueError, "widths must list 1 to 16"),
        ({"batch_norm": True, "widths": [8, 0]}, ValueError, "widths"),
        ({"batch_norm": True, "pool_after": [6]}, ValueError, "pool_after must index"),
        ({"batch_norm": True, "num_classes": 0}, ValueError, "num_classes"),
        ({"batch_norm": True, "in_channels": 0}, ValueError, "in_channels"),
    ],
)
def test_plain_convnet_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        plain_convnet(**kwargs)


# --- training, the sweep and its figure and table ---------------------------------------------


def _toy_digits(n=60, seed=0):
    """Two easy classes: a bright left half or a bright right half."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (rng.random((n, 12, 12)) * 60).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, :, :6] += 150 if label == 0 else 0
        x[i, :, 6:] += 150 if label == 1 else 0
    return x, y


def test_train_recording_steps_records_every_step_and_learns(capsys):
    x, y = _toy_digits()
    torch.manual_seed(0)
    model = plain_convnet(batch_norm=True, widths=[4, 4], pool_after=[0], num_classes=2)
    loader = make_loader(x, y, batch_size=10, shuffle=True, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = train_recording_steps(model, loader, optimizer=opt, epochs=3, desc="toy")
    assert losses.shape == (18,) and np.isfinite(losses).all()
    assert losses[-3:].mean() < losses[:3].mean()
    assert capsys.readouterr().out.startswith("toy: 18/18 done in")


def test_train_recording_steps_stops_at_divergence(capsys):
    x, y = _toy_digits()
    model = nn.Sequential(nn.Flatten(), nn.Linear(144, 2))
    with torch.no_grad():
        model[1].weight.fill_(math.inf)
    loader = make_loader(x, y, batch_size=20)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = train_recording_steps(model, loader, optimizer=opt, epochs=2)
    assert np.isnan(losses).all() and losses.shape == (6,)
    assert "loss=diverged" in capsys.readouterr().out


def test_train_recording_steps_rejects_bad_input():
    loader = make_loader(np.zeros((2, 4, 4), np.uint8), np.array([0, 1]), batch_size=1)
    with pytest.raises(ValueError, match="epochs"):
        train_recording_steps(nn.Flatten(), loader, optimizer=None, epochs=0)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        train_recording_steps("net", loader, optimizer=None, epochs=1)


@pytest.fixture(scope="module")
def sweep():
    x, y = _toy_digits(80, seed=1)
    xt, yt = _toy_digits(40, seed=2)
    return compare_batch_norm(
        x,
        y,
        xt,
        yt,
        learning_rates=[0.01, 1e30],
        epochs=2,
        batch_size=16,
        seed=0,
        widths=[4, 4],
        pool_after=[0],
    )


def test_compare_batch_norm_runs_both_variants_per_rate(sweep):
    assert [(r.lr, r.batch_norm) for r in sweep] == [
        (0.01, False),
        (0.01, True),
        (1e30, False),
        (1e30, True),
    ]
    assert all(r.step_losses.shape == (10,) for r in sweep)
    assert not sweep[0].diverged and 0.0 <= sweep[0].test_accuracy <= 1.0
    assert any(isinstance(m, nn.BatchNorm2d) for m in sweep[1].model.modules())
    # lr 1e30 overflows float32 within a step or two, with and without BN
    assert sweep[2].diverged and sweep[3].diverged and math.isnan(sweep[2].test_accuracy)


def test_compare_batch_norm_is_repeatable(sweep):
    x, y = _toy_digits(80, seed=1)
    xt, yt = _toy_digits(40, seed=2)
    again = compare_batch_norm(
        x,
        y,
        xt,
        yt,
        learning_rates=[0.01],
        epochs=2,
        batch_size=16,
        seed=0,
        widths=[4, 4],
        pool_after=[0],
    )
    for first, second in zip(sweep[:2], again, strict=True):
        np.testing.assert_array_equal(first.step_losses, second.step_losses)


def test_compare_batch_norm_rejects_bad_rates():
    x, y = _toy_digits(10)
    with pytest.raises(ValueError, match="learning_rates must not be empty"):
        compare_batch_norm(x, y, x, y, learning_rates=[], epochs=1, batch_size=5, seed=0)
    with pytest.raises(ValueError, match="learning_rates"):
        compare_batch_norm(x, y, x, y, learning_rates=[-1.0], epochs=1, batch_size=5, seed=0)


def test_sweep_table(sweep):
    table = sweep_table(sweep)
    assert list(table.columns) == ["without BN", "with BN"]
    assert table.index.tolist() == [0.01, 1e30]
    assert table.loc[0.01, "with BN"] == sweep[1].test_accuracy
    assert math.isnan(table.loc[1e30, "without BN"])
    with pytest.raises(TypeError, match="runs must be a non-empty list of SweepRun"):
        sweep_table([])


def test_sweep_figure(sweep):
    fig = sweep_figure(sweep, smooth=3, title="sweep")
    assert [ax.get_title() for ax in fig.axes] == ["learning rate 0.01", "learning rate 1e+30"]
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels[0] == "without BN (diverged)" and labels[1].startswith("with BN")
    line = fig.axes[0].lines[0]
    assert len(line.get_xdata()) == 10 - 3 + 1
    np.testing.assert_allclose(line.get_ydata()[0], sweep[0].step_losses[:3].mean())
    assert fig.axes[0].get_ylabel() == "training loss (mean of 3 steps)"
    with pytest.raises(TypeError, match="runs must be"):
        sweep_figure(["run"])
    with pytest.raises(ValueError, match="smooth"):
        sweep_figure(sweep, smooth=0)


def test_sweep_run_diverged_flag():
    run = SweepRun(True, 0.1, np.array([1.0, np.nan]), math.nan, nn.Identity())
    assert run.diverged
    assert not SweepRun(True, 0.1, np.array([1.0, 0.5]), 0.9, nn.Identity()).diverged


# --- the pitfall ------------------------------------------------------------------------------


def test_one_at_a_time_in_eval_mode_equals_batched_evaluation(sweep):
    from lessonlib.training import predict_proba

    model = sweep[1].model
    x, y = _toy_digits(30, seed=3)
    batched = float((predict_proba(model, x).argmax(1) == y).mean())
    assert accuracy_one_at_a_time(model, x, y, train_mode=False) == batched


def test_one_at_a_time_in_train_mode_leaves_the_model_alone(sweep):
    model = sweep[1].model
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _toy_digits(20, seed=4)
    acc = accuracy_one_at_a_time(model, x, y, train_mode=True)
    assert 0.0 <= acc <= 1.0
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_one_at_a_time_in_train_mode_normalises_each_image_alone():
    """With batch size 1, train-mode BN erases each image's overall brightness."""
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1), nn.Flatten())
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    dark = np.full((1, 4, 4), 10, np.uint8)
    bright = np.full((1, 4, 4), 200, np.uint8)
    dark[0, 0, 0] = bright[0, 0, 0] = 255
    outputs = []
    for image in (dark, bright):
        work = bn.copy.deepcopy(model).train()
        outputs.append(work(torch.from_numpy(image[None] / 255.0).float()))
    # after per-image normalisation both images look alike up to contrast: same sign pattern
    assert torch.equal(outputs[0] > 0, outputs[1] > 0)


def test_one_at_a_time_rejects_bad_input():
    x, y = np.zeros((2, 4, 4), np.uint8), np.array([0, 1])
    with pytest.raises(TypeError, match="model must be"):
        accuracy_one_at_a_time("net", x, y, train_mode=True)
    with pytest.raises(TypeError, match="train_mode must be a bool"):
        accuracy_one_at_a_time(nn.Flatten(), x, y, train_mode=1)


# --- recalibration and the running-mean figure -------------------------------------------------


def test_recalibrated_recomputes_the_statistics_over_the_images():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2, momentum=0.3))
    x, _ = _toy_digits(40, seed=5)
    fresh = recalibrated(model, x, batch_size=10)
    # the plain mean of the four batch means equals the mean over all 40 images
    with torch.no_grad():
        conv_out = model[0](torch.from_numpy(x[:, None] / 255.0).float())
    np.testing.assert_allclose(fresh[1].running_mean, conv_out.mean(dim=(0, 2, 3)), rtol=1e-5)
    assert int(fresh[1].num_batches_tracked) == 4
    assert fresh[1].momentum == 0.3 and not fresh.training
    # the original is untouched, weights are shared in value only
    assert torch.equal(model[1].running_mean, torch.zeros(2)) and model.training
    assert torch.equal(fresh[0].weight, model[0].weight)


def test_recalibrated_rejects_bad_input():
    x = np.zeros((2, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="no batch-norm layer"):
        recalibrated(nn.Conv2d(1, 1, 1), x)
    with pytest.raises(TypeError, match="model must be"):
        recalibrated("net", x)


def test_plot_running_means():
    traces = {"torch 0.1": np.linspace(0, 4, 5), "keras 0.9": np.linspace(0, 4, 5)}
    fig = bn.plot_running_means(traces, batch_means=np.full(5, 5.0), title="momentum")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "mean of each batch",
        "torch 0.1",
        "keras 0.9",
    ]
    np.testing.assert_array_equal(ax.lines[2].get_ydata(), traces["keras 0.9"])
    assert ax.lines[1].get_linestyle() != ax.lines[2].get_linestyle()
    assert ax.get_title() == "momentum"
    with pytest.raises(ValueError, match="one value per batch"):
        bn.plot_running_means({"a": np.zeros(3)}, batch_means=np.zeros(4))
    with pytest.raises(TypeError, match="traces must be a non-empty dict"):
        bn.plot_running_means({}, batch_means=np.zeros(4))
