"""Tests for lessonlib.cache: atomic, checksummed downloads and array files."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from lessonlib import cache
from lessonlib.cache import (
    ChecksumError,
    atomic_write,
    cache_dir,
    fetch,
    load_arrays,
    save_arrays,
    sha256_of,
)

PAYLOAD = b"lessonlib test payload\n" * 100
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def source(tmp_path):
    """A local file served through a file:// URL."""
    path = tmp_path / "remote" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


@pytest.fixture
def opened(monkeypatch):
    """Count the URLs urlopen is asked for, and the timeouts it is given."""
    calls: list[tuple[str, float]] = []
    real = urllib.request.urlopen

    def counting(url, *args, timeout=None, **kwargs):
        calls.append((url, timeout))
        return real(url, *args, timeout=timeout, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", counting)
    return calls


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_cache_dir_honours_env_and_creates_subfolders(tmp_path, monkeypatch):
    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path / "root"))
    assert cache_dir() == tmp_path / "root"
    sub = cache_dir("features/v1")
    assert sub == tmp_path / "root" / "features" / "v1"
    assert sub.is_dir()


def test_cache_dir_defaults_to_a_per_user_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("LESSONLIB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "lessonlib"
    assert cache_dir().is_dir()


def test_sha256_of_known_answer(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert sha256_of(path) == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (3 << 20))  # several read blocks
    assert sha256_of(big) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_fetch_downloads_once_then_hits_the_cache(source, opened):
    url = source.as_uri()
    first = fetch(url, filename="data.bin", sha256=PAYLOAD_SHA, subdir="dl", timeout=3.5)
    assert first == cache_dir("dl") / "data.bin"
    assert first.read_bytes() == PAYLOAD
    assert opened == [(url, 3.5)]
    second = fetch(url, filename="data.bin", sha256=PAYLOAD_SHA, subdir="dl")
    assert second == first
    assert len(opened) == 1  # a cache hit touches no URL
    assert _leftovers(first.parent) == []


def test_fetch_works_without_the_source_once_cached(source, opened):
    fetch(source.as_uri(), filename="data.bin", sha256=PAYLOAD_SHA)
    source.unlink()
    assert fetch(source.as_uri(), filename="data.bin", sha256=PAYLOAD_SHA).exists()
    assert len(opened) == 1


def test_fetch_replaces_a_corrupt_cached_file(source, opened):
    target = cache_dir("downloads") / "data.bin"
    target.write_bytes(b"half a file")
    path = fetch(source.as_uri(), filename="data.bin", sha256=PAYLOAD_SHA)
    assert path == target
    assert path.read_bytes() == PAYLOAD
    assert len(opened) == 1


def test_fetch_checksum_mismatch_keeps_nothing(source, opened):
    wrong = "0" * 64
    folder = cache_dir("downloads")
    with pytest.raises(ChecksumError, match="data.bin") as info:
        fetch(source.as_uri(), filename="data.bin", sha256=wrong)
    message = str(info.value)
    assert PAYLOAD_SHA in message and wrong in message  # names the file and both digests
    assert isinstance(info.value, ValueError)
    assert list(folder.iterdir()) == []  # no file, no *.part left behind


def test_fetch_checksum_mismatch_discards_a_stale_copy(source):
    folder = cache_dir("downloads")
    (folder / "data.bin").write_bytes(b"stale")
    with pytest.raises(ChecksumError):
        fetch(source.as_uri(), filename="data.bin", sha256="1" * 64)
    assert list(folder.iterdir()) == []


def test_fetch_missing_source_raises_oserror_and_keeps_nothing(tmp_path):
    url = (tmp_path / "nowhere.bin").as_uri()
    with pytest.raises(OSError):
        fetch(url, filename="nowhere.bin", sha256=PAYLOAD_SHA)
    assert list(cache_dir("downloads").iterdir()) == []


@pytest.mark.parametrize("url", ["data.bin", "/tmp/data.bin", 42, None])
def test_fetch_rejects_bad_url(url, opened):
    with pytest.raises(ValueError, match="url must be an absolute URL"):
        fetch(url, filename="data.bin", sha256=PAYLOAD_SHA)
    assert opened == []


@pytest.mark.parametrize("digest", ["abc", PAYLOAD_SHA + "0", None, 12])
def test_fetch_rejects_bad_sha256(source, digest, opened):
    with pytest.raises(ValueError, match="sha256 must be a 64-character hex digest"):
        fetch(source.as_uri(), filename="data.bin", sha256=digest)
    assert opened == []


def test_fetch_accepts_upper_case_digest(source):
    path = fetch(source.as_uri(), filename="data.bin", sha256=PAYLOAD_SHA.upper())
    assert path.read_bytes() == PAYLOAD


def test_fetch_rejects_non_hex_digest_before_downloading(source, opened):
    with pytest.raises(ValueError, match="sha256 must be a 64-character hex digest"):
        fetch(source.as_uri(), filename="data.bin", sha256="z" * 64)
    assert opened == []


def test_atomic_write_replaces_the_file(tmp_path):
    path = tmp_path / "sub" / "out.txt"  # parent folders are created
    assert atomic_write(path, lambda tmp: tmp.write_text("new")) == path
    assert path.read_text() == "new"
    atomic_write(path, lambda tmp: tmp.write_text("newer"))
    assert path.read_text() == "newer"
    assert _leftovers(path.parent) == []


def test_atomic_write_writes_to_a_temporary_file_beside_the_target(tmp_path):
    seen = []

    def writer(tmp):
        seen.append(tmp)
        assert not (tmp_path / "out.txt").exists()
        tmp.write_text("x")

    atomic_write(tmp_path / "out.txt", writer)
    assert seen[0].parent == tmp_path
    assert seen[0].name.startswith(".out.txt.") and seen[0].name.endswith(".part")
    assert not seen[0].exists()


def test_atomic_write_keeps_the_old_file_when_the_writer_raises(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_save_and_load_arrays_round_trip(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([3, 1, 2], dtype=np.int64)
    path = save_arrays(tmp_path / "feats.npz", features=a, labels=b)
    assert path == tmp_path / "feats.npz"
    assert (tmp_path / "feats.sha256").read_text() == sha256_of(path)
    out = load_arrays(path)
    assert set(out) == {"features", "labels"}
    np.testing.assert_array_equal(out["features"], a)
    assert out["features"].dtype == np.float32
    np.testing.assert_array_equal(out["labels"], b)


def test_save_arrays_overwrites_and_updates_the_checksum(tmp_path):
    path = tmp_path / "x.npz"
    save_arrays(path, a=np.zeros(2))
    save_arrays(path, a=np.ones(3))
    np.testing.assert_array_equal(load_arrays(path)["a"], np.ones(3))


def test_load_arrays_missing_file_is_none(tmp_path):
    assert load_arrays(tmp_path / "absent.npz") is None


def test_load_arrays_corrupt_file_is_none_and_removed(tmp_path):
    path = save_arrays(tmp_path / "x.npz", a=np.arange(5))
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    assert load_arrays(path) is None
    assert not path.exists()
    assert not (tmp_path / "x.sha256").exists()


def test_load_arrays_missing_sidecar_is_none_and_removed(tmp_path):
    path = save_arrays(tmp_path / "x.npz", a=np.arange(5))
    (tmp_path / "x.sha256").unlink()
    assert load_arrays(path) is None
    assert not path.exists()


def test_load_arrays_wrong_sidecar_is_none_and_removed(tmp_path):
    path = save_arrays(tmp_path / "x.npz", a=np.arange(5))
    (tmp_path / "x.sha256").write_text("0" * 64)
    assert load_arrays(path) is None
    assert list(tmp_path.iterdir()) == []


def test_default_timeout_is_short():
    assert 0 < cache.DEFAULT_TIMEOUT <= 30
