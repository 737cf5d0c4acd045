"""Tests for lessonlib.progress: one summary line when static, tqdm.auto when live."""

from __future__ import annotations

import itertools

import pytest

from lessonlib import progress as progress_module
from lessonlib.progress import StaticBar, progress


@pytest.fixture
def clock(monkeypatch):
    """A fake perf_counter: 10.0 at start, then 12.5, so every bar takes 2.5 s."""
    ticks = itertools.chain([10.0], itertools.repeat(12.5))
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(ticks))


def _lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_static_bar_prints_one_final_line(capsys, clock):
    seen = []
    bar = progress(range(3), desc="epochs")
    assert isinstance(bar, StaticBar)
    for i in bar:
        seen.append(i)
        bar.set_postfix(loss=0.123456, step=i)
    assert seen == [0, 1, 2]
    assert _lines(capsys) == ["epochs: 3/3 done in 2.5 s [loss=0.1235, step=2]"]


def test_static_bar_without_a_length(capsys, clock):
    for _ in progress((i for i in range(4)), desc="gen"):
        pass
    assert _lines(capsys) == ["gen: 4 done in 2.5 s"]


def test_static_bar_with_an_explicit_total(capsys, clock):
    for _ in progress(iter("abcd"), total=10, desc="letters"):
        pass
    assert _lines(capsys) == ["letters: 4/10 done in 2.5 s"]


def test_static_bar_prints_nothing_until_it_ends(capsys):
    bar = progress(range(2), desc="slow")
    it = iter(bar)
    next(it)
    assert capsys.readouterr().out == ""
    list(it)
    assert len(_lines(capsys)) == 1


def test_manual_updates_in_a_context_manager(capsys, clock):
    with progress(total=5, desc="manual") as bar:
        bar.update()
        bar.update(3)
        bar.set_postfix({"acc": 0.5}, lr=1e-3)
        assert capsys.readouterr().out == ""
    assert _lines(capsys) == ["manual: 4/5 done in 2.5 s [acc=0.5, lr=0.001]"]


def test_close_prints_only_once(capsys):
    bar = StaticBar(range(2), desc="once")
    for _ in bar:
        pass
    bar.close()
    with bar:
        pass
    assert len(_lines(capsys)) == 1


def test_static_bar_closes_when_the_loop_body_raises(capsys):
    with pytest.raises(RuntimeError, match="boom"):
        for i in progress(range(5), desc="failing"):
            if i == 2:
                raise RuntimeError("boom")
    assert _lines(capsys)[0].startswith("failing: 2/5 done")


def test_static_bar_needs_an_iterable_to_iterate():
    bar = StaticBar(total=3, desc="x")
    with pytest.raises(TypeError, match="StaticBar needs an iterable"):
        list(bar)


def test_live_mode_returns_a_tqdm_auto_bar(monkeypatch, capsys):
    from tqdm.auto import tqdm

    monkeypatch.delenv("LESSONLIB_STATIC")
    bar = progress(range(4), desc="live")
    try:
        assert isinstance(bar, tqdm)
        assert not isinstance(bar, StaticBar)
        assert (bar.total, bar.desc) == (4, "live")
        assert list(bar) == [0, 1, 2, 3]
        assert bar.n == 4
    finally:
        bar.close()
    assert capsys.readouterr().out == ""  # tqdm draws on stderr


def test_live_mode_manual_bar(monkeypatch):
    from tqdm.auto import tqdm

    monkeypatch.setenv("LESSONLIB_STATIC", "0")
    with progress(total=3, desc="manual") as bar:
        assert isinstance(bar, tqdm)
        bar.update(2)
        bar.set_postfix(loss=0.5)
        assert bar.n == 2


def test_progress_rejects_a_non_iterable():
    with pytest.raises(TypeError, match="iterable"):
        progress(5, desc="bad")
