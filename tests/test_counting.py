"""Tests for lessonlib.counting: separated circles whose blob count equals the label."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.draw import disk
from skimage.measure import label, regionprops

from lessonlib import counting
from lessonlib.counting import count_components, make_circles, max_circles

# (counts, image_size, radius): the seed's two regimes, plus random radii
SETUPS = [
    (range(1, 6), 64, 4),
    (range(1, 6), 128, 4),
    (range(45, 51), 128, 4),
    (range(45, 51), 64, 2),
    (range(45, 51), 128, (2, 5)),
    (range(1, 6), 64, (1, 8)),
]

# the autouse env fixture is harmless to share between examples; no .hypothesis folder
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _disk_mask(radius):
    side = 2 * radius + 1
    mask = np.zeros((side, side), dtype=bool)
    mask[disk((radius, radius), radius + 0.5, shape=mask.shape)] = True
    return mask


@PROPERTY
@given(setup=st.sampled_from(SETUPS), seed=st.integers(0, 2**32 - 1))
def test_components_equal_labels(setup, seed):
    counts, image_size, radius = setup
    images, labels = make_circles(
        4 * len(counts), counts=counts, image_size=image_size, radius=radius, seed=seed
    )
    assert images.shape == (4 * len(counts), image_size, image_size)
    np.testing.assert_array_equal(count_components(images), labels)
    np.testing.assert_array_equal(count_components(images, connectivity=1), labels)
    assert set(np.unique(images)) <= {0, counting.FOREGROUND}


@PROPERTY
@given(setup=st.sampled_from(SETUPS), seed=st.integers(0, 2**32 - 1))
def test_every_blob_is_a_whole_disk_with_a_clear_gap(setup, seed):
    counts, image_size, radius = setup
    low, high = (radius, radius) if isinstance(radius, int) else radius
    images, labels = make_circles(
        len(counts), counts=counts, image_size=image_size, radius=radius, seed=seed
    )
    masks = {r: _disk_mask(r) for r in range(low, high + 1)}
    for image, n in zip(images, labels, strict=True):
        # 8-connected blobs: two disks closer than one clear pixel would merge into
        # one blob that is not a disk, so "every blob is a disk" proves the gap
        regions = regionprops(label(image > 0, connectivity=2))
        assert len(regions) == n
        for region in regions:
            r = (region.image.shape[0] - 1) // 2
            assert low <= r <= high  # whole disks: never clipped by the border
            np.testing.assert_array_equal(region.image, masks[r])


def test_classes_are_exactly_balanced_and_shuffled():
    images, labels = make_circles(60, counts=range(45, 51), image_size=128, seed=2)
    assert np.bincount(labels, minlength=51)[45:].tolist() == [10] * 6
    assert labels.dtype == np.int64
    assert not np.array_equal(labels, np.sort(labels))
    _, free = make_circles(300, counts=[1, 2, 3], balanced=False, seed=2)
    assert set(free.tolist()) == {1, 2, 3}
    assert np.bincount(free).tolist() != [0, 100, 100, 100]


def test_same_seed_same_images_other_seed_other_images():
    first = make_circles(30, counts=range(1, 6), image_size=48, radius=3, seed=5)
    again = make_circles(30, counts=range(1, 6), image_size=48, radius=3, seed=5)
    other = make_circles(30, counts=range(1, 6), image_size=48, radius=3, seed=6)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_random_radii_hide_the_count_in_the_ink():
    images, labels = make_circles(500, counts=range(1, 6), image_size=64, radius=(1, 8), seed=0)
    ink = (images > 0).sum(axis=(1, 2))
    # with one radius the ink is the count times a disk; with random radii classes overlap
    for k in range(1, 5):
        assert ink[labels == k].max() > ink[labels == k + 1].min()
    fixed_images, _ = make_circles(10, counts=[2], radius=4, seed=0)
    assert set((fixed_images > 0).sum(axis=(1, 2)).tolist()) == {2 * _disk_mask(4).sum()}


def test_zero_circles_give_blank_images():
    images, labels = make_circles(4, counts=[0, 1], image_size=16, radius=2, seed=0)
    assert images[labels == 0].max() == 0
    assert count_components(images).tolist() == labels.tolist()


def test_packing_bound_refuses_up_front():
    assert max_circles(image_size=64, radius=4) == 43
    assert max_circles(image_size=8, radius=4) == 0
    assert max_circles(image_size=9, radius=4) == 1
    # a valid bound: four radius-2 disks fit in the corners of a 12-px image
    corners = np.zeros((12, 12), dtype=bool)
    for row in (2, 9):
        for col in (2, 9):
            corners[disk((row, col), 2.5)] = True
    assert count_components(corners) == 4
    assert max_circles(image_size=12, radius=2) >= 4
    with pytest.raises(ValueError, match="counts: at most 43 circles"):
        make_circles(6, counts=range(45, 51), image_size=64, radius=4)
    with pytest.raises(ValueError, match="counts: at most 1 circles"):
        make_circles(1, counts=[2], image_size=12, radius=4)


def test_crowded_request_stops_after_bounded_attempts(monkeypatch):
    monkeypatch.setattr(counting, "MAX_ATTEMPTS", 2)
    # below the packing bound (43) but far beyond what random placement reaches
    with pytest.raises(ValueError, match="counts: could not place 42 circles.*2 fresh starts"):
        make_circles(1, counts=[42], image_size=64, radius=4, seed=0)


def test_count_components_known_answers():
    image = np.zeros((6, 6), dtype=np.uint8)
    image[0, 0] = image[1, 1] = 1  # diagonal neighbours
    image[4:6, 4:6] = 7
    assert count_components(image) == 2
    assert count_components(image, connectivity=1) == 3
    assert count_components(np.stack([image, np.zeros_like(image)])).tolist() == [2, 0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(n_images=0), ValueError, "n_images"),
        (dict(n_images=7), ValueError, "n_images must be a multiple"),
        (dict(n_images=2.0), TypeError, "n_images"),
        (dict(counts=5), TypeError, "counts"),
        (dict(counts=[]), ValueError, "counts"),
        (dict(counts=[1, 1]), ValueError, "counts"),
        (dict(counts=[-1, 2]), ValueError, "counts"),
        (dict(counts=["1"]), TypeError, "counts"),
        (dict(radius=0), ValueError, "radius"),
        (dict(radius="4"), TypeError, "radius"),
        (dict(radius=(5, 2)), ValueError, "radius"),
        (dict(radius=(1, 2, 3)), TypeError, "radius"),
        (dict(image_size=8), ValueError, "image_size"),
        (dict(image_size=32, radius=(2, 16)), ValueError, "image_size"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(balanced="yes"), TypeError, "balanced"),
    ],
)
def test_make_circles_rejects_bad_input(kwargs, error, match):
    args = dict(n_images=10, counts=range(1, 6), image_size=32, radius=4) | kwargs
    with pytest.raises(error, match=match):
        make_circles(args.pop("n_images"), **args)


def test_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="images"):
        count_components(np.zeros(5))
    with pytest.raises(ValueError, match="connectivity"):
        count_components(np.zeros((4, 4)), connectivity=3)
    with pytest.raises(ValueError, match="image_size"):
        max_circles(image_size=0, radius=2)
    with pytest.raises(ValueError, match="radius"):
        max_circles(image_size=10, radius=0)
