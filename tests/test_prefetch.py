"""Tests of lessonlib.prefetch, offline: every loader is a stand-in."""

from __future__ import annotations

import pytest

from lessonlib import prefetch
from lessonlib.cache import ChecksumError


@pytest.fixture
def registry(monkeypatch):
    """An empty registry for the test, and downloads allowed."""
    monkeypatch.setattr(prefetch, "SOURCES", {})
    monkeypatch.delenv("LESSONLIB_OFFLINE", raising=False)
    return prefetch.SOURCES


def quiet(_line: str) -> None:
    pass


def test_the_real_registry_names_existing_loaders():
    assert "mnist" in prefetch.SOURCES
    for source in prefetch.SOURCES.values():
        assert callable(source.resolve()), source.name
    from lessonlib import data

    assert prefetch.SOURCES["mnist"].resolve() is data.download_mnist


def test_listing_imports_no_loader(registry):
    prefetch.register("later", "lessonlib_no_such_module:load", description="not yet written")
    assert "later" in prefetch.describe()
    with pytest.raises(RuntimeError, match="cannot import loader 'lessonlib_no_such_module:load'"):
        registry["later"].resolve()


def test_prefetch_calls_each_loader_with_its_kwargs(registry):
    calls = []
    prefetch.register("a", lambda: calls.append("a"), description="A")
    prefetch.register(
        "b", lambda *, size: calls.append(("b", size)), description="B", kwargs={"size": 3}
    )
    results = prefetch.prefetch(echo=quiet, delay=0)
    assert calls == ["a", ("b", 3)]
    assert [(r.name, r.ok, r.attempts) for r in results] == [("a", True, 1), ("b", True, 1)]


def test_slow_only_and_names(registry):
    prefetch.register("fast", lambda: None, description="fast host")
    prefetch.register("cifar10", lambda: None, description="throttled", slow=True)
    prefetch.register("stl10", lambda: None, description="slow", slow=True)
    assert [s.name for s in prefetch.select(slow_only=True)] == ["cifar10", "stl10"]
    assert [s.name for s in prefetch.select(["stl10", "fast"])] == ["stl10", "fast"]
    assert [s.name for s in prefetch.select(["fast"], slow_only=True)] == []
    with pytest.raises(ValueError, match="unknown source.*nope; registered: fast, cifar10, stl10"):
        prefetch.select(["nope"])


def test_a_failure_is_retried_then_succeeds(registry):
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError("connection reset")

    prefetch.register("flaky", flaky, description="flaky host")
    lines = []
    (result,) = prefetch.prefetch(retries=2, delay=0, echo=lines.append)
    assert result.ok and result.attempts == 3
    assert sum("attempt" in line and "failed: OSError" in line for line in lines) == 2


def test_a_checksum_failure_is_reported_not_raised(registry):
    def corrupt():
        raise ChecksumError("sha256 mismatch for cifar-10-python.tar.gz")

    prefetch.register("corrupt", corrupt, description="bad file")
    (result,) = prefetch.prefetch(retries=1, delay=0, echo=quiet)
    assert not result.ok and result.attempts == 2
    assert result.error == "ChecksumError: sha256 mismatch for cifar-10-python.tar.gz"


def test_offline_refuses(registry, monkeypatch):
    monkeypatch.setenv("LESSONLIB_OFFLINE", "1")
    prefetch.register("a", lambda: None, description="A")
    with pytest.raises(RuntimeError, match="LESSONLIB_OFFLINE is set"):
        prefetch.prefetch(echo=quiet)
    assert prefetch.main(["a"]) == 2


@pytest.mark.parametrize(
    ("name", "loader", "match"),
    [
        ("Bad Name", lambda: None, "name must match"),
        ("ok", 42, "loader must be a callable"),
    ],
)
def test_register_validates(registry, name, loader, match):
    with pytest.raises(ValueError, match=match):
        prefetch.register(name, loader, description="x")


def test_register_refuses_duplicates_unless_replace(registry):
    prefetch.register("a", lambda: 1, description="first")
    with pytest.raises(ValueError, match="already registered"):
        prefetch.register("a", lambda: 2, description="second")
    assert (
        prefetch.register("a", lambda: 2, description="second", replace=True).description
        == "second"
    )


def test_main_exit_status_and_output(registry, capsys):
    prefetch.register("good", lambda: None, description="works", size="1 MB")
    prefetch.register(
        "bad", lambda: (_ for _ in ()).throw(OSError("timed out")), description="fails"
    )
    assert prefetch.main(["--list"]) == 0
    listing = capsys.readouterr().out
    assert "good" in listing and "1 MB" in listing and "fails" in listing
    assert prefetch.main(["good"]) == 0
    assert "1 fetched, 0 failed" in capsys.readouterr().out
    assert prefetch.main(["good", "bad", "--retries", "0"]) == 1
    captured = capsys.readouterr()
    assert "1 fetched, 1 failed" in captured.out
    assert "bad failed: OSError: timed out" in captured.err
    assert prefetch.main(["missing"]) == 2
    assert "unknown source(s) missing" in capsys.readouterr().err
