"""Tests for lessonlib.widgets: static-first figures, no widgets outside a live kernel."""

from __future__ import annotations

import types

import IPython
import IPython.display
import ipywidgets
import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from lessonlib import widgets
from lessonlib.widgets import interactive_figure, live_kernel


@pytest.fixture
def displayed(monkeypatch):
    """Record every IPython display call instead of showing anything."""
    calls = []

    def fake_display(*objs, **kwargs):
        calls.append((objs, kwargs))
        return types.SimpleNamespace(update=lambda *_: None)

    monkeypatch.setattr(IPython.display, "display", fake_display)
    return calls


@pytest.fixture
def no_widgets(monkeypatch):
    """Fail the test if any ipywidgets widget is constructed."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"a widget was built: {type(self).__name__}")

    monkeypatch.setattr(ipywidgets.Widget, "__init__", refuse)


def _draw_line(*, slope=1.0, offset=0):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [offset, offset + slope])
    ax.set_title(f"slope {slope}")
    return fig


def test_static_mode_displays_one_figure_and_builds_no_widget(displayed, no_widgets):
    before = set(plt.get_fignums())
    drawn = []

    def draw(**kwargs):
        drawn.append(kwargs)
        return _draw_line(**kwargs)

    result = interactive_figure(
        draw,
        sliders={"slope": (0.0, 2.0, 0.1), "offset": (0, 5, 1)},
        defaults={"slope": 0.5, "offset": 2},
    )
    assert result is None
    assert drawn == [{"slope": 0.5, "offset": 2}]
    assert len(displayed) == 1
    (objs, kwargs) = displayed[0]
    assert len(objs) == 1 and isinstance(objs[0], Figure)
    assert objs[0].axes[0].get_title() == "slope 0.5"
    assert kwargs == {"display_id": True}
    assert set(plt.get_fignums()) == before  # the figure was closed after display


def test_not_static_but_no_kernel_still_builds_no_widget(monkeypatch, displayed, no_widgets):
    monkeypatch.delenv("LESSONLIB_STATIC")
    assert (
        interactive_figure(_draw_line, sliders={"slope": (0, 2, 1)}, defaults={"slope": 1}) is None
    )
    assert len(displayed) == 1


def test_extra_defaults_are_passed_to_draw(displayed):
    seen = []

    def draw(**kwargs):
        seen.append(kwargs)
        return _draw_line(slope=kwargs["slope"])

    interactive_figure(draw, sliders={}, defaults={"slope": 2.0, "label": "fixed"})
    assert seen == [{"slope": 2.0, "label": "fixed"}]


def test_live_kernel_is_false_when_static(monkeypatch):
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace(kernel=object()))
    assert live_kernel() is False


def test_live_kernel_outside_ipython(monkeypatch):
    monkeypatch.delenv("LESSONLIB_STATIC")
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert live_kernel() is False


def test_live_kernel_needs_a_kernel_attribute(monkeypatch):
    monkeypatch.delenv("LESSONLIB_STATIC")
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace())  # terminal IPython
    assert live_kernel() is False
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace(kernel=object()))
    assert live_kernel() is True


def test_live_kernel_builds_sliders(monkeypatch, displayed):
    monkeypatch.setattr(widgets, "live_kernel", lambda: True)
    built = []
    monkeypatch.setattr(widgets, "_build_sliders", lambda *args: built.append(args) or "box")
    sliders, defaults = {"slope": (0.0, 2.0, 0.1)}, {"slope": 1.0}
    assert interactive_figure(_draw_line, sliders=sliders, defaults=defaults) == "box"
    draw, handle, got_sliders, got_defaults = built[0]
    assert draw is _draw_line and got_sliders is sliders and got_defaults is defaults
    assert hasattr(handle, "update")


@pytest.mark.parametrize("draw", [None, "figure", 3])
def test_rejects_a_non_callable_draw(draw, displayed):
    with pytest.raises(TypeError, match="draw must be callable"):
        interactive_figure(draw, sliders={}, defaults={})
    assert displayed == []


def test_rejects_missing_defaults(displayed):
    with pytest.raises(ValueError, match=r"defaults lacks a value for slider\(s\) \['a', 'c'\]"):
        interactive_figure(
            _draw_line, sliders={"a": (0, 1, 1), "b": (0, 1, 1), "c": (0, 1, 1)}, defaults={"b": 0}
        )
    assert displayed == []


def test_no_widgets_guard_catches_a_widget(no_widgets):
    with pytest.raises(AssertionError, match="a widget was built: IntSlider"):
        ipywidgets.IntSlider()


def test_build_sliders_redraws_through_the_handle(displayed):
    updates = []
    handle = types.SimpleNamespace(update=lambda fig: updates.append(fig.axes[0].get_title()))
    before = set(plt.get_fignums())
    box = widgets._build_sliders(
        _draw_line,
        handle,
        {"slope": (0.0, 2.0, 0.5), "offset": (0, 5, 1)},
        {"slope": 1.0, "offset": 2},
    )
    assert isinstance(box, ipywidgets.VBox)
    slope, offset = box.children
    assert isinstance(slope, ipywidgets.FloatSlider) and isinstance(offset, ipywidgets.IntSlider)
    assert (slope.value, slope.min, slope.max, slope.step) == (1.0, 0.0, 2.0, 0.5)
    assert (offset.value, offset.description) == (2, "offset")
    assert displayed == [((box,), {})]
    slope.value = 1.5
    assert updates == ["slope 1.5"]
    assert set(plt.get_fignums()) == before  # each redrawn figure is closed
