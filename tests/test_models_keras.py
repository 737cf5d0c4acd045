"""Tests for lessonlib.models_keras: the Keras twin and the torch-to-Keras weight copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lessonlib import models_torch
from lessonlib.models_keras import copy_torch_weights, import_keras, mnist_convnet


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def _logits(keras, model, x_nchw: np.ndarray) -> np.ndarray:
    out = model(np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)), training=False)
    return keras.ops.convert_to_numpy(out)


def test_import_keras_gives_keras_3_on_tensorflow(keras):
    assert keras.__name__ == "keras"
    assert int(keras.__version__.split(".")[0]) >= 3
    assert keras.backend.backend() == "tensorflow"
    assert import_keras() is keras


def test_seed_parameter_counts(keras):
    assert mnist_convnet(head=False).count_params() == 55_744
    assert mnist_convnet().count_params() == 93_322


def test_counts_match_the_torch_twin_for_every_setting(keras):
    for kwargs in ({"in_channels": 3}, {"num_classes": 5}, {"pooling": False}):
        expected = models_torch.count_params(models_torch.mnist_convnet(**kwargs))
        assert mnist_convnet(**kwargs).count_params() == expected, kwargs


def test_layers_names_and_shapes(keras):
    model = mnist_convnet()
    assert model.name == "mnist_convnet"
    assert [layer.name for layer in model.layers] == [
        "conv1", "pool1", "conv2", "pool2", "conv3", "flatten", "dense1", "logits",
    ]  # fmt: skip
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)
    assert model.get_layer("conv3").output.shape == (None, 3, 3, 64)
    assert model.get_layer("logits").activation.__name__ == "linear"  # logits, like torch


def test_no_pool_feature_map_is_22x22x64(keras):
    model = mnist_convnet(pooling=False, head=False)
    assert model.name == "mnist_convnet_no_pool"
    assert model.output_shape == (None, 22, 22, 64)
    assert [layer.name for layer in model.layers] == ["conv1", "conv2", "conv3"]
    assert mnist_convnet(pooling=False).output_shape == (None, 10)


def test_settings_change_input_and_output(keras):
    model = mnist_convnet(in_channels=3, num_classes=4)
    assert model.input_shape == (None, 28, 28, 3)
    assert model.output_shape == (None, 4)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_classes": 0}, ValueError, "num_classes"),
        ({"num_classes": 10.0}, TypeError, "num_classes"),
        ({"in_channels": 0}, ValueError, "in_channels"),
        ({"in_channels": True}, TypeError, "in_channels"),
    ],
)
def test_mnist_convnet_rejects(keras, kwargs, error, match):
    with pytest.raises(error, match=match):
        mnist_convnet(**kwargs)


def test_mnist_convnet_settings_are_keyword_only(keras):
    with pytest.raises(TypeError):
        mnist_convnet(10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"pooling": False},
        {"head": False},
        {"pooling": False, "head": False},
        {"in_channels": 3},
    ],
)
def test_copy_torch_weights_gives_the_same_outputs(keras, kwargs):
    torch.manual_seed(4)
    t_model = models_torch.mnist_convnet(**kwargs).eval()
    k_model = mnist_convnet(**kwargs)
    copy_torch_weights(t_model, k_model)
    rng = np.random.default_rng(0)
    x = rng.random((4, kwargs.get("in_channels", 1), 28, 28), dtype=np.float32)
    with torch.inference_mode():
        expected = t_model(torch.from_numpy(x)).numpy()
    got = _logits(keras, k_model, x)
    if expected.ndim == 4:  # feature maps: torch is channels first
        expected = expected.transpose(0, 2, 3, 1)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert np.abs(expected).max() > 1e-3  # a non-trivial comparison


def test_copy_torch_weights_on_real_digits_keeps_the_predictions(keras):
    from lessonlib.data import bundled_mnist, to_float

    torch.manual_seed(1)
    t_model = models_torch.mnist_convnet().eval()
    k_model = mnist_convnet()
    copy_torch_weights(t_model, k_model)
    x = to_float(bundled_mnist().x_test[:16], channels_last=False)
    with torch.inference_mode():
        expected = t_model(torch.from_numpy(x)).numpy()
    got = _logits(keras, k_model, x)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


def test_copy_torch_weights_rejects_a_missing_head(keras):
    with pytest.raises(ValueError, match="keras_model must have the same conv/dense layers"):
        copy_torch_weights(models_torch.mnist_convnet(), mnist_convnet(head=False))
    with pytest.raises(ValueError, match="got 3/2 vs 3/0"):
        copy_torch_weights(models_torch.mnist_convnet(head=False), mnist_convnet())


@pytest.mark.parametrize(
    ("torch_kwargs", "keras_kwargs"),
    [
        ({"pooling": False}, {}),
        ({"num_classes": 5}, {}),
        ({"in_channels": 3}, {}),
    ],
)
def test_copy_torch_weights_rejects_shape_mismatches(keras, torch_kwargs, keras_kwargs):
    with pytest.raises(ValueError):
        copy_torch_weights(
            models_torch.mnist_convnet(**torch_kwargs), mnist_convnet(**keras_kwargs)
        )


def test_copy_torch_weights_leaves_the_target_untouched_on_mismatch(keras):
    k_model = mnist_convnet()
    before = [w.copy() for w in k_model.get_layer("conv1").get_weights()]
    with pytest.raises(ValueError):
        copy_torch_weights(models_torch.mnist_convnet(pooling=False), k_model)
    for old, new in zip(before, k_model.get_layer("conv1").get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_import_keras_limits_torch_threads_when_omp_policy_came_late(keras, monkeypatch):
    import sys

    from lessonlib import models_keras

    calls = []
    monkeypatch.setattr(models_keras, "_limit_torch_threads", lambda: calls.append(True))
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    monkeypatch.delitem(sys.modules, "tensorflow")  # restored after the test
    assert import_keras() is keras  # keras itself is already loaded: no re-import
    assert calls == [True]
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    import_keras()
    assert calls == [True]
