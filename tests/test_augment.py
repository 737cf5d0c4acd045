"""Tests for lessonlib.augment: transform pipelines, on-the-fly datasets and small splits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from lessonlib import augment
from lessonlib.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ArrayDataset,
    SmallSplit,
    apply_each,
    denormalize,
    digit_transform,
    keras_variants,
    make_loader,
    seed004_keras,
    seed004_torch,
    shear_degrees,
    small_split,
    stl10_eval_transform,
    stl10_train_transform,
    variants,
)
from lessonlib.data import ImageSplit
from lessonlib.training import make_loader as plain_make_loader


def _bar_digit() -> np.ndarray:
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 12:16] = 255
    return img


def _gradient_photo(rows: int = 40, cols: int = 60) -> np.ndarray:
    r = np.linspace(0, 255, rows)[:, None] * np.ones((1, cols))
    c = np.ones((rows, 1)) * np.linspace(0, 255, cols)[None, :]
    return np.stack([r, c, 255 - r], axis=-1).astype(np.uint8)


# --- units ------------------------------------------------------------------------------


def test_shear_degrees_is_the_arctangent():
    assert shear_degrees(0.0) == 0.0
    assert shear_degrees(1.0) == pytest.approx(45.0)
    assert math.tan(math.radians(shear_degrees(0.2))) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="factor"):
        shear_degrees(-0.1)
    with pytest.raises(TypeError, match="factor"):
        shear_degrees("0.2")


# --- digit transform --------------------------------------------------------------------


def test_digit_transform_keeps_shape_dtype_and_ink():
    torch.manual_seed(0)
    digit = _bar_digit()
    out = digit_transform()(digit)
    assert tuple(out.shape) == (1, 28, 28) and out.dtype == torch.uint8
    # a mild affine map keeps most of the ink and leaves the corners black
    assert 0.7 < out.float().sum() / float(digit.sum()) < 1.4
    assert out[0, 0, 0] == 0 and out[0, -1, -1] == 0


def test_digit_transform_is_random_and_identity_when_off():
    digit = _bar_digit()
    drawn = variants(digit, digit_transform(), n=6, seed=1)
    assert len({d.tobytes() for d in drawn}) > 1
    still = variants(digit, digit_transform(rotation=0, shift=0, zoom=0), n=3, seed=1)
    assert (still == digit).all()


def test_digit_transform_settings_reach_random_affine():
    affine = digit_transform(rotation=7, shift=0.05, zoom=0.2, shear=3).transforms[-1]
    assert isinstance(affine, v2.RandomAffine)
    assert list(affine.degrees) == [-7.0, 7.0]
    assert tuple(affine.translate) == (0.05, 0.05)
    assert tuple(affine.scale) == pytest.approx((0.8, 1.2))
    assert list(affine.shear) == [-3.0, 3.0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rotation": -1}, ValueError, "rotation"),
        ({"shift": 1.0}, ValueError, "shift"),
        ({"zoom": 1.0}, ValueError, "zoom"),
        ({"shear": float("nan")}, ValueError, "shear"),
        ({"rotation": "12"}, TypeError, "rotation"),
        ({"shift": True}, TypeError, "shift"),
    ],
)
def test_digit_transform_rejects_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        digit_transform(**kwargs)


# --- seed 004 in torchvision ------------------------------------------------------------


def test_seed004_torch_translates_the_seed_settings():
    t = seed004_torch(size=150)
    kinds = [type(s).__name__ for s in t.transforms]
    assert kinds == [
        "ToImage", "Resize", "Pad", "RandomAffine", "CenterCrop", "RandomHorizontalFlip",
    ]  # fmt: skip
    affine = t.transforms[3]
    assert list(affine.degrees) == [-40.0, 40.0]
    assert affine.shear[1] == pytest.approx(shear_degrees(0.2))
    assert tuple(affine.scale) == pytest.approx((0.8, 1.2))
    # padded to 3 x 150 = 450 px, so a 0.2 shift of the original is 30 / 450 of the padded image
    assert tuple(affine.translate) == pytest.approx((30 / 450, 30 / 450))
    assert t.transforms[2].padding_mode == "edge"


def test_seed004_torch_constant_fill_and_no_flip():
    t = seed004_torch(size=(20, 30), fill="constant", horizontal_flip=False)
    kinds = [type(s).__name__ for s in t.transforms]
    assert kinds == ["ToImage", "Resize", "RandomAffine"]
    assert tuple(t.transforms[2].translate) == pytest.approx((0.2, 0.2))


def test_seed004_torch_nearest_fill_leaves_no_black_pixels():
    photo = np.full((40, 60, 3), 90, np.uint8)
    nearest = variants(photo, seed004_torch(size=32), n=6, seed=0)
    constant = variants(photo, seed004_torch(size=32, fill="constant"), n=6, seed=0)
    assert nearest.shape == (6, 32, 32, 3) and nearest.dtype == np.uint8
    assert (nearest == 90).all()
    assert (constant == 0).any()


def test_seed004_torch_padding_equals_the_unpadded_map_in_the_middle():
    """With the same random draw, padding changes only the filled border."""
    photo = _gradient_photo(32, 32)
    padded = seed004_torch(size=32, horizontal_flip=False, zoom=0.0001, rotation=0.0)
    plain = seed004_torch(
        size=32, horizontal_flip=False, zoom=0.0001, rotation=0.0, fill="constant"
    )
    a = variants(photo, padded, n=1, seed=3)[0].astype(int)
    b = variants(photo, plain, n=1, seed=3)[0].astype(int)
    inside = (b != 0).all(axis=-1)
    inside[[0, -1], :] = False
    inside[:, [0, -1]] = False
    assert inside.mean() > 0.3
    # the shift is drawn in pixels from the same generator state; allow rounding at edges
    assert np.mean(np.abs(a[inside] - b[inside]) <= 12) > 0.9


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fill": "wrap"}, ValueError, "fill"),
        ({"size": 0}, ValueError, "size"),
        ({"size": (10, "a")}, TypeError, "size"),
        ({"shift": 2.0}, ValueError, "shift"),
        ({"shear": -0.2}, ValueError, "factor"),
    ],
)
def test_seed004_torch_rejects_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        seed004_torch(**kwargs)


# --- seed 004 in Keras ------------------------------------------------------------------


def test_seed004_keras_units():
    aug = seed004_keras(seed=0)
    rotation, translation, shear, zoom, flip = aug.layers
    assert rotation.get_config()["factor"] == pytest.approx((-40 / 360, 40 / 360))
    assert rotation.get_config()["fill_mode"] == "nearest"
    assert translation.get_config()["height_factor"] == pytest.approx(0.2)
    assert translation.get_config()["width_factor"] == pytest.approx(0.2)
    assert max(np.abs(shear.get_config()["x_factor"])) == pytest.approx(0.2)
    assert max(np.abs(shear.get_config()["y_factor"])) == 0.0
    assert zoom.get_config()["height_factor"] == pytest.approx(0.2)
    assert flip.get_config()["mode"] == "horizontal"
    assert len(seed004_keras(horizontal_flip=False).layers) == 4
    assert seed004_keras(fill="constant").layers[0].get_config()["fill_mode"] == "constant"


def test_seed004_keras_only_acts_in_training_mode():
    photo = _gradient_photo(24, 24)
    aug = seed004_keras(seed=3)
    batch = np.repeat(photo[None].astype(np.float32), 4, axis=0)
    assert np.allclose(np.asarray(aug(batch, training=False)), batch)
    out = keras_variants(photo, aug, n=4)
    assert out.shape == (4, 24, 24, 3) and out.dtype == np.uint8
    assert not (out == photo).all()


def test_seed004_keras_nearest_fill_on_a_flat_photo():
    out = keras_variants(np.full((20, 20, 3), 77, np.uint8), seed004_keras(seed=1), n=3)
    assert (np.abs(out.astype(int) - 77) <= 1).all()


def test_keras_variants_grey_image_and_bad_input():
    out = keras_variants(np.full((12, 12), 50, np.uint8), seed004_keras(seed=0), n=2)
    assert out.shape == (2, 12, 12)
    with pytest.raises(TypeError, match="layers"):
        keras_variants(np.zeros((4, 4), np.uint8), "flip", n=1)
    with pytest.raises(TypeError, match="image"):
        keras_variants(np.zeros((4, 4), np.float32), seed004_keras(), n=1)
    with pytest.raises(ValueError, match="seed"):
        seed004_keras(seed=-1)


# --- seed 002's STL-10 pipeline ---------------------------------------------------------


def test_stl10_train_transform_steps_and_output():
    t = stl10_train_transform()
    kinds = [type(s).__name__ for s in t.transforms]
    assert kinds == [
        "ToImage", "Pad", "RandomCrop", "Resize", "RandomRotation", "RandomHorizontalFlip",
        "ToDtype", "Normalize",
    ]  # fmt: skip
    assert t.transforms[1].padding == 4
    assert t.transforms[2].size == (96, 96)
    assert list(t.transforms[4].degrees) == [-5.0, 5.0]
    assert tuple(t.transforms[-1].mean) == IMAGENET_MEAN
    torch.manual_seed(0)
    out = t(_gradient_photo(96, 96))
    assert tuple(out.shape) == (3, 224, 224) and out.dtype == torch.float32


def test_stl10_normalisation_of_white_and_black():
    white = stl10_eval_transform(size=8)(np.full((8, 8, 3), 255, np.uint8))
    black = stl10_eval_transform(size=8)(np.zeros((8, 8, 3), np.uint8))
    for c in range(3):
        assert float(white[c].mean()) == pytest.approx((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
        assert float(black[c].mean()) == pytest.approx(-IMAGENET_MEAN[c] / IMAGENET_STD[c])


def test_stl10_eval_matches_manual_normalisation():
    photo = _gradient_photo(224, 224)
    out = stl10_eval_transform()(photo)
    manual = (photo / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert np.allclose(out.numpy().transpose(1, 2, 0), manual, atol=1e-5)


def test_stl10_bad_settings():
    with pytest.raises(ValueError, match="crop"):
        stl10_train_transform(crop=0)
    with pytest.raises(ValueError, match="pad"):
        stl10_train_transform(pad=-1)
    with pytest.raises(ValueError, match="size"):
        stl10_eval_transform(size=0)


def test_denormalize_round_trip_and_errors():
    photo = _gradient_photo(16, 16)
    back = denormalize(stl10_eval_transform(size=16)(photo))
    assert np.allclose(back, photo / 255.0, atol=1e-5)
    assert denormalize(np.zeros((3, 2, 2), np.float32)).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="channel"):
        denormalize(torch.zeros(1, 4, 4))
    with pytest.raises(TypeError, match="image"):
        denormalize(np.zeros((3, 2, 2), np.uint8))


# --- galleries and batches --------------------------------------------------------------


def test_variants_repeatable_and_validated():
    photo = _gradient_photo()
    a = variants(photo, v2.RandomHorizontalFlip(), n=5, seed=4)
    b = variants(photo, v2.RandomHorizontalFlip(), n=5, seed=4)
    assert a.shape == (5, 40, 60, 3) and (a == b).all()
    assert all((v == photo).all() or (v == photo[:, ::-1]).all() for v in a)
    with pytest.raises(TypeError, match="transform"):
        variants(photo, None, n=1, seed=0)
    with pytest.raises(ValueError, match="n must"):
        variants(photo, v2.RandomHorizontalFlip(), n=0, seed=0)
    with pytest.raises(TypeError, match="image"):
        variants(photo.astype(float), v2.RandomHorizontalFlip(), n=1, seed=0)


def test_apply_each_flip_and_rotation():
    digits = np.stack([_bar_digit(), _bar_digit().T])
    flipped = apply_each(digits, v2.RandomHorizontalFlip(p=1.0))
    assert (flipped == digits[:, :, ::-1]).all()
    upside_down = apply_each(digits, v2.RandomRotation(degrees=(180, 180)))
    assert (upside_down == digits[:, ::-1, ::-1]).all()
    colour = apply_each(np.stack([_gradient_photo()] * 2), v2.RandomVerticalFlip(p=1.0))
    assert colour.shape == (2, 40, 60, 3)
    with pytest.raises(TypeError, match="uint8"):
        apply_each(digits, v2.ToDtype(torch.float32, scale=True))
    with pytest.raises(TypeError, match="transform"):
        apply_each(digits, 3)


# --- dataset and loader -----------------------------------------------------------------


def test_array_dataset_items_grey_and_colour():
    grey = ArrayDataset(np.full((2, 5, 5), 255, np.uint8), np.array([3, 4]))
    x, y = grey[0]
    assert tuple(x.shape) == (1, 5, 5) and x.dtype == torch.float32 and float(x.max()) == 1.0
    assert y.dtype == torch.int64 and int(y) == 3
    assert type(x) is torch.Tensor
    colour = ArrayDataset(np.stack([_gradient_photo()] * 3), np.arange(3))
    assert tuple(colour[2][0].shape) == (3, 40, 60)


def test_array_dataset_draws_a_new_variant_each_read():
    ds = ArrayDataset(_bar_digit()[None], np.array([1]), transform=digit_transform())
    torch.manual_seed(0)
    reads = [ds[0][0] for _ in range(5)]
    assert len({r.numpy().tobytes() for r in reads}) > 1


def test_array_dataset_validation():
    with pytest.raises(ValueError, match="one entry per image"):
        ArrayDataset(np.zeros((3, 4, 4), np.uint8), np.arange(2))
    with pytest.raises(TypeError, match="images"):
        ArrayDataset(np.zeros((3, 4, 4), np.float32), np.arange(3))
    with pytest.raises(TypeError, match="transform"):
        ArrayDataset(np.zeros((3, 4, 4), np.uint8), np.arange(3), transform="flip")


def test_make_loader_without_transform_equals_the_training_loader():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=10)
    ours = list(make_loader(x, y, batch_size=4, shuffle=True, seed=5))
    theirs = list(plain_make_loader(x, y, batch_size=4, shuffle=True, seed=5))
    assert len(ours) == len(theirs) == 3
    for (xa, ya), (xb, yb) in zip(ours, theirs, strict=True):
        assert torch.allclose(xa, xb, atol=1e-6) and torch.equal(ya, yb)


def test_make_loader_augments_each_epoch_differently():
    x = np.stack([_bar_digit()] * 4)
    loader = make_loader(x, np.arange(4), batch_size=4, transform=digit_transform(), seed=0)
    torch.manual_seed(0)
    first, second = next(iter(loader))[0], next(iter(loader))[0]
    assert not torch.equal(first, second)
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(x, np.arange(4), batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        make_loader(x, np.arange(4), batch_size=2, num_workers=-1)


# --- small splits -----------------------------------------------------------------------


def _toy_split(per_class: int = 20) -> ImageSplit:
    y = np.repeat(np.arange(3), per_class)
    x = np.arange(len(y) * 4, dtype=np.int64).reshape(len(y), 2, 2).astype(np.uint8)
    x[:, 0, 0] = np.arange(len(y))  # a unique id per image
    return ImageSplit(x, y, x[:6], y[:6], "toy", ("a", "b", "c"))


def test_small_split_balanced_disjoint_and_repeatable():
    split = _toy_split()
    s = small_split(split, per_class=5, val_per_class=4, seed=1)
    assert isinstance(s, SmallSplit)
    assert np.bincount(s.y_train).tolist() == [5, 5, 5]
    assert np.bincount(s.y_val).tolist() == [4, 4, 4]
    ids_train, ids_val = s.x_train[:, 0, 0], s.x_val[:, 0, 0]
    assert not set(ids_train) & set(ids_val)
    assert (split.y_train[ids_train] == s.y_train).all()
    assert (split.y_train[ids_val] == s.y_val).all()
    assert s.x_test is split.x_test and s.source == "toy" and s.classes == ("a", "b", "c")
    again = small_split(split, per_class=5, val_per_class=4, seed=1)
    assert (again.x_train == s.x_train).all()
    other = small_split(split, per_class=5, val_per_class=4, seed=2)
    assert not (other.x_train == s.x_train).all()


def test_small_split_on_the_bundled_digits():
    from lessonlib.data import bundled_mnist

    s = small_split(bundled_mnist(), per_class=50, val_per_class=30, seed=20261123)
    assert s.x_train.shape == (500, 28, 28) and s.x_val.shape == (300, 28, 28)
    assert s.x_test.shape == (1000, 28, 28) and s.y_test.dtype == np.int64


def test_small_split_errors():
    with pytest.raises(ValueError, match="exceeds"):
        small_split(_toy_split(5), per_class=4, val_per_class=2, seed=0)
    with pytest.raises(TypeError, match="split"):
        small_split(object(), per_class=1, val_per_class=1, seed=0)
    with pytest.raises(ValueError, match="per_class"):
        small_split(_toy_split(), per_class=0, val_per_class=1, seed=0)


def test_module_constants():
    assert augment.SEED004["rotation_range"] == 40 and augment.SEED004["fill_mode"] == "nearest"
    assert len(IMAGENET_MEAN) == len(IMAGENET_STD) == 3
