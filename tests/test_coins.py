"""Tests for lessonlib.coins: the coin segmentation, its check by eye, and labelled crops."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from skimage.draw import disk

from lessonlib import coins


@pytest.fixture(scope="module")
def photo():
    return coins.load_coins()


@pytest.fixture(scope="module")
def centres(photo):
    return coins.coin_centres(coins.segment_coins(photo))


def test_the_photo_and_the_hand_marks():
    image = coins.load_coins()
    assert image.shape == (303, 384) and image.dtype == np.uint8
    assert coins.CENTRES_BY_EYE.shape == (coins.COIN_COUNT, 2)
    assert not coins.CENTRES_BY_EYE.flags.writeable
    rows, cols = coins.CENTRES_BY_EYE.T
    assert rows.min() > 0 and rows.max() < 303 and cols.min() > 0 and cols.max() < 384


def test_segmentation_finds_every_coin_once(photo, centres):
    labels = coins.segment_coins(photo)
    assert labels.shape == photo.shape and labels.max() == coins.COIN_COUNT
    assert set(np.unique(labels)) == set(range(coins.COIN_COUNT + 1))
    assert coins.match_centres(centres, coins.CENTRES_BY_EYE, tolerance=8) == (24, 0, 0)
    areas = np.bincount(labels.ravel())[1:]
    assert areas.min() > 900 and areas.max() < 3500  # coins, not specks or merged pairs


def test_segmentation_on_drawn_disks():
    image = np.full((60, 80), 10, np.uint8)
    for centre in [(15, 15), (30, 50), (45, 20)]:
        image[disk(centre, 8, shape=image.shape)] = 200
    image[5, 70] = 200  # a speck, below min_area
    labels = coins.segment_coins(image, min_area=20)
    assert labels.max() == 3
    found = coins.coin_centres(labels)
    assert coins.match_centres(found, np.array([(15, 15), (30, 50), (45, 20)]), tolerance=1) == (
        3,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"image": np.zeros((4, 4), np.float32)}, TypeError, "image"),
        ({"image": np.zeros((4, 4, 3), np.uint8)}, ValueError, "image"),
        ({"background": 200, "coin": 100}, ValueError, "background"),
        ({"min_area": 0}, ValueError, "min_area"),
    ],
)
def test_segment_coins_rejects_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        coins.segment_coins(**kwargs)


def test_match_centres_counts_misses_and_extras():
    reference = np.array([[0.0, 0.0], [50.0, 50.0]])
    assert coins.match_centres(np.array([[1.0, 1.0]]), reference) == (1, 1, 0)
    assert coins.match_centres(np.zeros((0, 2)), reference) == (0, 2, 0)
    assert coins.match_centres(np.array([[1.0, 1.0], [30.0, 30.0]]), reference) == (1, 1, 1)
    with pytest.raises(ValueError, match="tolerance"):
        coins.match_centres(reference, reference, tolerance=0)


def test_counts_in_crops_uses_pixel_borders():
    centres = np.array([[2.4, 2.4], [2.6, 2.6]])
    # a 3-px crop at (0, 0) covers pixels 0..2, i.e. [-0.5, 2.5)
    assert coins.counts_in_crops(centres, np.array([[0, 0]]), crop_size=3).tolist() == [1]
    assert coins.counts_in_crops(centres, np.array([[0, 0]]), crop_size=np.array([4])).tolist() == [
        2
    ]
    with pytest.raises(ValueError, match="crop_size"):
        coins.counts_in_crops(centres, np.array([[0, 0], [1, 1]]), crop_size=np.array([3]))


def test_clear_of_border_flags_centres_near_any_edge():
    centres = np.array([[10.0, 10.0]])
    corners = np.array([[0, 0], [9, 0], [0, 9], [3, 3], [30, 30]])
    clear = coins.clear_of_border(centres, corners, crop_size=20, margin=3)
    # the centre is 10.5 px inside crop 0, 1.5 px from the top of crop 1 and left of crop 2,
    # 6.5 px inside crop 3 and far outside crop 4
    assert clear.tolist() == [True, False, False, True, True]
    assert coins.clear_of_border(centres, corners, crop_size=20, margin=0).all()
    with pytest.raises(ValueError, match="margin"):
        coins.clear_of_border(centres, corners, crop_size=20, margin=-1)


def test_crops_at_cuts_and_resizes():
    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    crops = coins.crops_at(image, np.array([[2, 4]]), crop_size=4)
    assert np.array_equal(crops[0], image[2:6, 4:8])
    flat = coins.crops_at(
        np.full((8, 8), 77, np.uint8), np.array([[1, 1]]), crop_size=6, out_size=3
    )
    assert flat.dtype == np.uint8 and (flat == 77).all()  # averaging keeps a flat patch flat
    small = coins.crops_at(image, np.array([[0, 0]]), crop_size=4, out_size=2)[0]
    assert small[0, 0] < small[0, 1] < small[1, 1]  # the ramp survives
    assert image[:4, :4].min() <= small.min() and small.max() <= image[:4, :4].max()
    with pytest.raises(ValueError, match="does not fit"):
        coins.crops_at(image, np.array([[6, 6]]), crop_size=4)


def test_coin_crops_labels_agree_with_the_hand_marks(photo, centres):
    crops = coins.coin_crops(
        photo,
        centres,
        n=300,
        sizes=(48, 144),
        out_size=32,
        rows=(0, 303),
        cols=(0, 240),
        margin=6,
        seed=0,
    )
    assert crops.images.shape == (300, 32, 32) and crops.images.dtype == np.uint8
    assert crops.sizes.min() >= 48 and crops.sizes.max() <= 144
    assert (crops.corners[:, 1] + crops.sizes <= 240).all()
    assert (crops.corners[:, 0] + crops.sizes <= 303).all()
    by_eye = coins.counts_in_crops(coins.CENTRES_BY_EYE, crops.corners, crop_size=crops.sizes)
    assert np.array_equal(by_eye, crops.counts)
    assert len(np.unique(crops.counts)) >= 4
    # the first crop really is the photo, resized
    r, c, s = *crops.corners[0], crops.sizes[0]
    expected = coins.crops_at(photo, np.array([[r, c]]), crop_size=int(s), out_size=32)[0]
    assert np.array_equal(crops.images[0], expected)


def test_coin_crops_is_repeatable_and_refuses_impossible_requests(photo, centres):
    a = coins.coin_crops(
        photo, centres, n=20, sizes=(60, 80), out_size=16, rows=(0, 303), cols=(0, 384), seed=3
    )
    b = coins.coin_crops(
        photo, centres, n=20, sizes=(60, 80), out_size=16, rows=(0, 303), cols=(0, 384), seed=3
    )
    assert np.array_equal(a.corners, b.corners) and np.array_equal(a.images, b.images)
    with pytest.raises(ValueError, match="cannot hold"):
        coins.coin_crops(
            photo, centres, n=5, sizes=(60, 200), out_size=16, rows=(0, 303), cols=(0, 100)
        )
    with pytest.raises(ValueError, match="margin"):
        coins.coin_crops(
            photo,
            centres,
            n=5,
            sizes=(140, 144),
            out_size=16,
            rows=(0, 303),
            cols=(0, 384),
            margin=60,
        )
    with pytest.raises(TypeError, match="rows"):
        coins.coin_crops(photo, centres, n=5, sizes=(60, 80), out_size=16, rows=303, cols=(0, 384))


def test_plot_segmentation(photo):
    labels = coins.segment_coins(photo)
    fig = coins.plot_segmentation(
        photo, labels, coins.coin_centres(labels), reference=coins.CENTRES_BY_EYE, title="coins"
    )
    ax = fig.axes[0]
    assert ax.get_title() == "coins" and len(ax.collections) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="labels must have the image's shape"):
        coins.plot_segmentation(photo, labels[:10], np.zeros((0, 2)))
