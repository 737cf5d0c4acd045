"""Tests for lessonlib.ood: rotations, the rotation sweep and the out-of-distribution sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from lessonlib.models_cifar3 import mc_dropout_net
from lessonlib.ood import (
    PHOTOS,
    RotationSweep,
    lfw_faces,
    photo_patches,
    rotate_images,
    rotation_sweep,
)
from lessonlib.uncertainty import mc_predict, predictive_entropy


def _arrow() -> np.ndarray:
    img = np.zeros((9, 9), np.uint8)
    img[1:5, 4] = 255  # a bar from the centre upwards
    return img


def test_rotate_images_quarter_turns_match_rot90():
    img = _arrow()
    turned = rotate_images(img, angles=[0, 90, 180, 270, 360])
    assert turned.shape == (5, 9, 9) and turned.dtype == np.uint8
    for k, out in enumerate(turned):
        np.testing.assert_array_equal(out, np.rot90(img, k % 4))  # rot90 is anticlockwise


def test_rotate_images_matches_scipy_and_keeps_colour_and_float_dtypes():
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    out = rotate_images(colour, angles=[30.0])
    assert out.shape == (1, 12, 12, 3) and out.dtype == np.uint8
    expected = ndimage.rotate(colour.astype(float), 30, axes=(1, 0), reshape=False, order=1)
    np.testing.assert_array_equal(out[0], np.clip(np.rint(expected), 0, 255).astype(np.uint8))
    grey = rng.random((6, 6)).astype(np.float32)
    assert rotate_images(grey, angles=[45]).dtype == np.float32


def test_rotation_keeps_the_ink_of_a_centred_digit():
    img = np.zeros((28, 28), np.uint8)
    img[10:18, 12:16] = 200
    turned = rotate_images(img, angles=np.arange(0, 181, 30))
    ink = turned.reshape(len(turned), -1).sum(axis=1)
    np.testing.assert_allclose(ink, ink[0], rtol=0.1)


def _tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(16, 4))  # fmt: skip


def test_rotation_sweep_shapes_and_agreement_with_mc_predict():
    net = _tiny_net()
    images = np.random.default_rng(1).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    angles = [0, 45, 90]
    sweep = rotation_sweep(net, images, angles=angles, samples=15, seed=4)
    assert isinstance(sweep, RotationSweep)
    assert sweep.images.shape == (3, 3, 8, 8)
    assert sweep.mean.shape == (3, 3, 4) and sweep.entropy.shape == (3, 3)
    np.testing.assert_allclose(sweep.mean.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(sweep.mutual_information >= 0)
    assert np.all(sweep.entropy <= np.log(4) + 1e-6)
    x = (sweep.images.reshape(9, 1, 8, 8) / 255.0).astype(np.float32)
    probs = mc_predict(net, x, samples=15, seed=4, show_progress=False)
    np.testing.assert_allclose(sweep.entropy.ravel(), predictive_entropy(probs), atol=1e-5)
    np.testing.assert_array_equal(sweep.angles, np.array(angles, dtype=float))


def test_rotation_sweep_head_only_equals_the_whole_network():
    net = mc_dropout_net(n_train=500, input_shape=(1, 28, 28), num_classes=10)
    images = np.random.default_rng(2).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    kwargs = dict(angles=[0, 90], samples=10, seed=1)
    whole = rotation_sweep(net, images, **kwargs)
    head = rotation_sweep(net, images, after="flatten", **kwargs)
    np.testing.assert_allclose(head.mean, whole.mean, atol=1e-6)


def test_rotation_sweep_runs_a_keras_model_channels_last():
    from lessonlib.models_keras import import_keras

    keras = import_keras()
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dropout(0.5), keras.layers.Dense(3)])  # fmt: skip
    images = np.random.default_rng(3).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    sweep = rotation_sweep(model, images, angles=[0, 180], samples=5, seed=0)
    assert sweep.mean.shape == (2, 2, 3)
    with pytest.raises(TypeError, match="after is only supported for torch"):
        rotation_sweep(model, images, angles=[0], samples=2, after="flatten")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": np.zeros((4, 4))}, ValueError, "images must have 3 or 4 dimensions"),
        ({"samples": 0}, ValueError, "samples must be a positive"),
        ({"seed": -2}, ValueError, "seed must be >= 0"),
        ({"angles": [[0, 1]]}, ValueError, "angles must have 1 dimensions"),
    ],
)
def test_rotation_sweep_rejects_bad_input(kwargs, error, match):
    args = {"images": np.zeros((1, 8, 8), np.uint8), "angles": [0], "samples": 2, **kwargs}
    with pytest.raises(error, match=match):
        rotation_sweep(_tiny_net(), args.pop("images"), **args)


def test_photo_patches_are_repeatable_full_range_and_from_every_photo():
    a = photo_patches(n=2 * len(PHOTOS), size=28, seed=5)
    b = photo_patches(n=2 * len(PHOTOS), size=28, seed=5)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (26, 28, 28) and a.dtype == np.uint8
    assert np.all(a.reshape(len(a), -1).max(axis=1) == 255)
    assert np.all(a.reshape(len(a), -1).min(axis=1) == 0)
    assert len({p.tobytes() for p in a}) == len(a)
    assert not np.array_equal(a, photo_patches(n=26, size=28, seed=6))


def test_photo_patches_in_colour_and_with_chosen_sides():
    rgb = photo_patches(n=3, size=32, seed=0, channels=3, sides=(40, 40), names=["camera"])
    assert rgb.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])  # grey repeated


def test_lfw_faces_shapes_and_channels():
    faces = lfw_faces(size=28)
    assert faces.shape == (100, 28, 28) and faces.dtype == np.uint8
    assert faces.std() > 10
    assert lfw_faces(size=32, channels=3, n=2).shape == (2, 32, 32, 3)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: photo_patches(n=0, size=28, seed=0), ValueError, "n must be a positive"),
        (lambda: photo_patches(n=1, size=28, seed=-1), ValueError, "seed must be >= 0"),
        (lambda: photo_patches(n=1, size=28, seed=0, channels=2), ValueError,
         "channels must be 1 or 3"),
        (lambda: photo_patches(n=1, size=28, seed=0, sides=(90, 60)), ValueError,
         "sides must be"),
        (lambda: photo_patches(n=1, size=28, seed=0, names="camera"), ValueError,
         "names must be"),
        (lambda: lfw_faces(size=28, n=101), ValueError, "n must be at most 100"),
        (lambda: lfw_faces(size=0), ValueError, "size must be a positive"),
        (lambda: rotate_images(np.zeros(3), angles=[0]), ValueError,
         "image must have 2 or 3 dimensions"),
    ],
)  # fmt: skip
def test_ood_sets_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
