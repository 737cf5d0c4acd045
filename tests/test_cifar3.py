"""Tests for lessonlib.cifar3, offline: a fake torchvision CIFAR10 stands in for the download."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from lessonlib import cifar3
from lessonlib.cifar3 import (
    CIFAR3_CLASSES,
    cached_cifar3,
    download_cifar3,
    load_cifar3,
    select_classes,
    standin_cifar3,
)
from lessonlib.data import ImageSplit


class _FakeCIFAR10:
    """Mimics ``torchvision.datasets.CIFAR10``: ``data`` (N, 32, 32, 3) uint8, ``targets`` list."""

    calls: list[dict] = []
    timeouts: list[float | None] = []

    def __init__(self, root, train=True, download=False):
        type(self).calls.append({"root": str(root), "train": train, "download": download})
        type(self).timeouts.append(socket.getdefaulttimeout())
        n = 50 if train else 20
        targets = np.arange(n) % 10  # every class, in turn
        self.data = np.broadcast_to(
            targets[:, None, None, None].astype(np.uint8) * 20, (n, 32, 32, 3)
        ).copy()
        self.targets = targets.tolist()


class _BrokenCIFAR10:
    def __init__(self, *args, **kwargs):
        raise OSError("host unreachable")


@pytest.fixture
def fake_torchvision(monkeypatch):
    from torchvision import datasets

    _FakeCIFAR10.calls, _FakeCIFAR10.timeouts = [], []
    monkeypatch.setattr(datasets, "CIFAR10", _FakeCIFAR10)
    return _FakeCIFAR10


@pytest.fixture(scope="module")
def standin() -> ImageSplit:
    return standin_cifar3()


# --------------------------------------------------------------------------- select_classes


def test_select_classes_keeps_order_and_relabels():
    images = np.arange(10)[:, None, None] * np.ones((1, 2, 2), int)
    targets = np.array([9, 4, 0, 6, 6, 1, 4, 9, 3, 2])
    kept, labels = select_classes(images, targets)
    np.testing.assert_array_equal(kept[:, 0, 0], [0, 1, 3, 4, 6, 7])
    np.testing.assert_array_equal(labels, [2, 0, 1, 1, 0, 2])
    assert labels.dtype == np.int64
    _, other = select_classes(images, targets, labels=(0, 9))
    np.testing.assert_array_equal(other, [1, 0, 1])


def test_select_classes_bad_inputs():
    with pytest.raises(ValueError, match="targets must have one entry per image"):
        select_classes(np.zeros((3, 2, 2)), [4, 6])
    with pytest.raises(ValueError, match="labels must not repeat"):
        select_classes(np.zeros((2, 2, 2)), [4, 6], labels=(4, 4))
    with pytest.raises(TypeError, match="targets"):
        select_classes(np.zeros((2, 2, 2)), [4.0, 6.0])
    with pytest.raises(ValueError, match="images"):
        select_classes(np.zeros(3), [4, 6, 9])


# --------------------------------------------------------------------------- download


def test_download_filters_caches_and_reuses(fake_torchvision):
    split = download_cifar3(timeout=7.0)
    assert isinstance(split, ImageSplit) and split.classes == CIFAR3_CLASSES
    assert split.x_train.shape == (15, 32, 32, 3) and split.x_train.dtype == np.uint8
    assert split.x_test.shape == (6, 32, 32, 3)
    assert split.y_train.dtype == np.int64
    assert np.bincount(split.y_train).tolist() == [5, 5, 5]
    # the fake's pixel value encodes its CIFAR-10 label: 4 -> deer, 6 -> frog, 9 -> truck
    np.testing.assert_array_equal(
        split.x_train[:, 0, 0, 0] // 20, np.array([4, 6, 9])[split.y_train]
    )
    assert [c["train"] for c in fake_torchvision.calls] == [True, False]
    assert all(c["download"] and c["root"].endswith("cifar10") for c in fake_torchvision.calls)
    assert fake_torchvision.timeouts == [7.0, 7.0]
    assert socket.getdefaulttimeout() is None  # restored
    # the second call reads the checksummed cache and never builds the dataset
    fake_torchvision.calls.clear()
    again = download_cifar3()
    assert fake_torchvision.calls == []
    np.testing.assert_array_equal(again.x_test, split.x_test)
    assert cached_cifar3() is not None


def test_corrupt_cache_is_fetched_again(fake_torchvision):
    download_cifar3()
    path = cifar3._cache_path()
    path.write_bytes(b"not an npz")
    assert cached_cifar3() is None
    fake_torchvision.calls.clear()
    download_cifar3()
    assert len(fake_torchvision.calls) == 2


# --------------------------------------------------------------------------- load_cifar3


def test_quick_profile_gets_the_standin_without_downloading(monkeypatch, standin):
    monkeypatch.setattr(cifar3, "download_cifar3", _fail_if_called)
    monkeypatch.setattr(cifar3, "standin_cifar3", lambda **_: standin)
    split = load_cifar3("quick")
    assert split.source == cifar3.STANDIN_SOURCE
    assert split.x_train.shape == (1200, 32, 32, 3)


def _fail_if_called(**_kwargs):
    raise AssertionError("download_cifar3 must not be called")


def test_full_profile_offline_without_cache_falls_back(monkeypatch, capsys, standin):
    monkeypatch.setattr(cifar3, "download_cifar3", _fail_if_called)
    monkeypatch.setattr(cifar3, "standin_cifar3", lambda **_: standin)
    split = load_cifar3("full")
    assert split.source == cifar3.STANDIN_SOURCE
    assert "not cached and downloads are off" in capsys.readouterr().out


def test_full_profile_uses_the_cache_even_offline(fake_torchvision, monkeypatch):
    download_cifar3()
    monkeypatch.setattr(cifar3, "download_cifar3", _fail_if_called)
    split = load_cifar3("full")
    assert split.source == cifar3.CIFAR3_SOURCE and len(split.y_train) == 15


def test_full_profile_online_downloads_or_falls_back(monkeypatch, capsys, standin):
    from torchvision import datasets

    monkeypatch.delenv("LESSONLIB_OFFLINE")
    monkeypatch.setattr(cifar3, "standin_cifar3", lambda **_: standin)
    monkeypatch.setattr(datasets, "CIFAR10", _BrokenCIFAR10)
    split = load_cifar3("full")
    out = capsys.readouterr().out
    assert "download failed (host unreachable)" in out and split.source == cifar3.STANDIN_SOURCE
    monkeypatch.setattr(datasets, "CIFAR10", _FakeCIFAR10)
    split = load_cifar3("full")
    assert split.source == cifar3.CIFAR3_SOURCE
    assert "downloading CIFAR-10" in capsys.readouterr().out


# --------------------------------------------------------------------------- the stand-in


def test_standin_shapes_balance_and_information_free_backgrounds(standin):
    assert standin.x_train.shape == (1200, 32, 32, 3) and standin.x_train.dtype == np.uint8
    assert standin.x_test.shape == (300, 32, 32, 3) and standin.y_test.dtype == np.int64
    assert np.bincount(standin.y_train).tolist() == [400] * 3
    assert standin.classes == ("4", "6", "9")
    # the background colour (a corner's dominant channel) does not predict the class
    corner = standin.x_train[:, :3, :3].reshape(len(standin.y_train), -1, 3).mean(axis=1)
    colour = corner.argmax(axis=1)
    for label in range(3):
        share = np.bincount(colour[standin.y_train == label], minlength=3) / 400
        assert (share > 0.2).all(), share


def test_standin_takes_given_digits_and_load_passes_them_on(standin):
    from lessonlib.data import balanced_subset, bundled_mnist

    full = bundled_mnist()
    train = balanced_subset(full.x_train, full.y_train, per_class=40, seed=0)
    test = balanced_subset(full.x_test, full.y_test, per_class=10, seed=0)
    few = ImageSplit(*train, *test, full.source, full.classes)
    small = standin_cifar3(digits=few)
    assert np.bincount(small.y_train).tolist() == [40] * 3
    assert np.bincount(load_cifar3("quick", standin_digits=few).y_test).tolist() == [10] * 3
    with pytest.raises(TypeError, match="digits must be an ImageSplit"):
        standin_cifar3(digits=np.zeros((3, 28, 28)))


def test_prefetch_registry_knows_cifar3():
    from lessonlib import prefetch

    source = prefetch.SOURCES["cifar3"]
    assert source.slow and source.resolve() is download_cifar3
