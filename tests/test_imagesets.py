"""Tests for lessonlib.imagesets: the offline digits and the full-profile loaders' wiring.

The full-profile loaders are tested against small fake torchvision datasets that
mimic the attributes and item types the real ones have; nothing is downloaded.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest
from PIL import Image
from torchvision import datasets

from lessonlib import imagesets, profile
from lessonlib.cache import cache_dir
from lessonlib.imagesets import (
    CALTECH22_CLASSES,
    load_caltech22,
    load_flowers102,
    load_image_set,
    load_stl10,
    stratified_split,
    stratified_subset,
)

RNG_SEED = 4


@pytest.fixture
def online(monkeypatch):
    """The full profile with downloads allowed (each test fakes the download)."""
    monkeypatch.delenv("LESSONLIB_OFFLINE", raising=False)
    return profile("full", image_size=12)


def _photo(rng: np.random.Generator, grey: bool) -> Image.Image:
    size = (int(rng.integers(20, 40)), int(rng.integers(20, 40)))
    if grey:
        return Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8), mode="L")
    return Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8))


class FakeCaltech101:
    """Caltech101's interface: sorted ``categories``, per-image ``y``, (PIL, target) items."""

    calls: list = []

    def __init__(self, root, target_type="category", download=False):
        FakeCaltech101.calls.append(
            {"root": root, "target_type": target_type, "download": download,
             "timeout": socket.getdefaulttimeout()}
        )  # fmt: skip
        self.categories = sorted([*CALTECH22_CLASSES, "Faces", "airplanes", "zebra"])
        rng = np.random.default_rng(RNG_SEED)
        self.y = [i for i in range(len(self.categories)) for _ in range(5)]
        self.images = [_photo(rng, grey=i % 3 == 0) for i in range(len(self.y))]

    def __getitem__(self, index):
        return self.images[index], self.y[index]


class FakeSTL10:
    calls: list = []

    def __init__(self, root, split="train", download=False):
        FakeSTL10.calls.append({"root": root, "split": split, "download": download})
        n = 20 if split == "train" else 30
        rng = np.random.default_rng(RNG_SEED + (split == "test"))
        self.data = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        self.labels = np.arange(n) % 10
        self.classes = list(imagesets.STL10_CLASSES)


class FakeFlowers102:
    sizes = {"train": 6, "val": 4, "test": 9}

    def __init__(self, root, split="train", download=False):
        self.split = split
        rng = np.random.default_rng(RNG_SEED)
        self.images = [_photo(rng, grey=False) for _ in range(self.sizes[split])]
        self.labels = [(i * 7 + len(split)) % 102 for i in range(self.sizes[split])]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]


# --------------------------------------------------------------------------- quick profile


@pytest.mark.parametrize("name", imagesets.IMAGE_SETS)
def test_quick_profile_returns_the_rgb_digits_for_every_name(name):
    split = load_image_set(name, "quick")
    assert split.source == imagesets.DIGITS_SOURCE
    assert split.x_train.shape == (4000, 28, 28, 3) and split.x_test.shape == (1000, 28, 28, 3)
    assert split.x_train.dtype == np.uint8 and split.y_train.dtype == np.int64
    assert (split.x_train[..., 0] == split.x_train[..., 1]).all()
    assert split.classes == tuple(str(d) for d in range(10))


def test_offline_full_profile_returns_the_digits_without_downloading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(datasets, "Caltech101", refuse)
    split = load_image_set("caltech22", profile("full"))
    assert split.source == imagesets.DIGITS_SOURCE


def test_subsets_are_balanced_and_repeatable():
    a = load_image_set("stl10", "quick", n_train=300, n_test=105, seed=3)
    b = load_image_set("stl10", "quick", n_train=300, n_test=105, seed=3)
    c = load_image_set("stl10", "quick", n_train=300, n_test=105, seed=4)
    assert np.bincount(a.y_train).tolist() == [30] * 10
    assert np.bincount(a.y_test).tolist() == [10] * 10  # 105 rounds down to 10 per class
    assert np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)


def test_load_image_set_rejects_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        load_image_set("mnist", "quick")
    with pytest.raises(ValueError, match="n_train must be >= 0"):
        load_image_set("stl10", "quick", n_train=-1)
    with pytest.raises(TypeError, match="cfg must be a Profile"):
        load_image_set("stl10", 3)
    with pytest.raises(ValueError, match="n must be 0"):
        load_image_set("stl10", "quick", n_train=5)


# --------------------------------------------------------------------------- splitting


def test_stratified_split_covers_every_index_once_with_the_fraction_per_class():
    labels = np.repeat([0, 1, 2], [10, 5, 20])
    train, test = stratified_split(labels, train_fraction=0.6, seed=1)
    assert sorted(np.r_[train, test].tolist()) == list(range(35))
    assert np.bincount(labels[train]).tolist() == [6, 3, 12]
    again, _ = stratified_split(labels, train_fraction=0.6, seed=1)
    other, _ = stratified_split(labels, train_fraction=0.6, seed=2)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_stratified_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="train_fraction"):
        stratified_split([0, 1], train_fraction=fraction, seed=0)


def test_stratified_subset_keeps_order_and_rejects_mismatches():
    x = np.arange(20).reshape(20, 1, 1)
    y = np.repeat([0, 1], 10)
    xs, ys = stratified_subset(x, y, n=8, seed=0)
    assert np.all(np.diff(xs.ravel()) > 0) and ys.tolist() == [0] * 4 + [1] * 4
    assert stratified_subset(x, y, n=0, seed=0)[0] is x
    with pytest.raises(ValueError, match="one entry per image"):
        stratified_subset(x, y[:5], n=4, seed=0)
    with pytest.raises(ValueError, match="needs 6 images of class 1"):
        stratified_subset(x[:14], y[:14], n=12, seed=0)


# --------------------------------------------------------------------------- full profile


def test_caltech22_wiring(online, monkeypatch):
    FakeCaltech101.calls.clear()
    monkeypatch.setattr(datasets, "Caltech101", FakeCaltech101)
    split = load_image_set("caltech22", online)
    (call,) = FakeCaltech101.calls
    assert call["download"] is True and call["target_type"] == "category"
    assert call["root"] == str(cache_dir("caltech101"))
    assert call["timeout"] == imagesets.DEFAULT_TIMEOUT
    assert split.classes == CALTECH22_CLASSES
    # 5 images per category: 3 train and 2 test each, resized to the profile's size, RGB
    assert split.x_train.shape == (22 * 3, 12, 12, 3) and split.x_test.shape == (22 * 2, 12, 12, 3)
    assert np.bincount(split.y_train).tolist() == [3] * 22
    assert "Caltech101" in split.source


def test_caltech22_labels_follow_the_seed_order_and_images_match(online, monkeypatch):
    monkeypatch.setattr(datasets, "Caltech101", FakeCaltech101)
    split = load_caltech22(image_size=8, seed=0)
    fake = FakeCaltech101("x")
    # every image of the split is one of its category's images, squashed to 8 x 8 RGB
    for images, labels in ((split.x_train, split.y_train), (split.x_test, split.y_test)):
        for image, label in zip(images, labels, strict=True):
            original = fake.categories.index(CALTECH22_CLASSES[label])
            candidates = [
                np.asarray(fake.images[i].convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))
                for i, y in enumerate(fake.y)
                if y == original
            ]
            assert any(np.array_equal(image, c) for c in candidates)


def test_caltech22_missing_category_falls_back_to_the_digits(online, monkeypatch, capsys):
    class Partial(FakeCaltech101):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.categories = [c for c in self.categories if c != "yin_yang"]

    monkeypatch.setattr(datasets, "Caltech101", Partial)
    with pytest.raises(RuntimeError, match="yin_yang"):
        load_caltech22(image_size=8)
    split = load_image_set("caltech22", online)
    assert split.source == imagesets.DIGITS_SOURCE
    assert "caltech22 could not be loaded" in capsys.readouterr().out


def test_stl10_wiring_keeps_96_pixels_channels_last(online, monkeypatch):
    FakeSTL10.calls.clear()
    monkeypatch.setattr(datasets, "STL10", FakeSTL10)
    split = load_image_set("stl10", online)
    assert [c["split"] for c in FakeSTL10.calls] == ["train", "test"]
    assert all(c["download"] and c["root"] == str(cache_dir("stl10")) for c in FakeSTL10.calls)
    assert split.x_train.shape == (20, 96, 96, 3) and split.x_test.shape == (30, 96, 96, 3)
    assert np.array_equal(split.x_train, FakeSTL10("r", "train").data.transpose(0, 2, 3, 1))
    assert split.classes == imagesets.STL10_CLASSES and "ImageNet" in split.source


def test_stl10_without_class_file_uses_the_known_names(monkeypatch):
    class NoClasses(FakeSTL10):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            del self.classes

    monkeypatch.setattr(datasets, "STL10", NoClasses)
    assert load_stl10(root="unused").classes[3] == "cat"


def test_flowers102_trains_on_train_and_val_and_tests_on_test(online, monkeypatch):
    monkeypatch.setattr(datasets, "Flowers102", FakeFlowers102)
    split = load_image_set("flowers102", online)
    assert split.x_train.shape == (10, 12, 12, 3) and split.x_test.shape == (9, 12, 12, 3)
    expected = FakeFlowers102("r", "train").labels + FakeFlowers102("r", "val").labels
    assert split.y_train.tolist() == expected
    assert len(split.classes) == 102


def test_flowers102_crops_to_a_centred_square():
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 255  # the central square is white, the sides black

    class OneWide:
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return Image.fromarray(wide), 0

    images, targets = imagesets._read_all(OneWide(), [0], size=5, crop=True, desc="t")
    assert images.min() == 255 and targets.tolist() == [0]
    squashed, _ = imagesets._read_all(OneWide(), [0], size=5, crop=False, desc="t")
    assert squashed.min() == 0


@pytest.mark.parametrize("error", [OSError("host down"), RuntimeError("corrupted")])
def test_failed_download_falls_back_with_a_notice(online, monkeypatch, capsys, error):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(datasets, "STL10", broken)
    split = load_image_set("stl10", online, n_test=20)
    assert split.source == imagesets.DIGITS_SOURCE and len(split.y_test) == 20
    assert "using the bundled digits" in capsys.readouterr().out


def test_load_flowers_and_caltech_reject_bad_sizes():
    with pytest.raises(ValueError, match="image_size"):
        load_caltech22(image_size=0)
    with pytest.raises(TypeError, match="image_size"):
        load_flowers102(image_size=2.5)
