"""Static-first interactive figures.

A figure is always drawn once at its default parameters and displayed as a
plain image, so the static book shows it.  Sliders are built only in a live
Jupyter kernel and only when ``LESSONLIB_STATIC`` is not set; each change
redraws the figure in place through the display handle.  Constructing no
widget in static mode keeps widget state (and its JavaScript) out of the book.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from lessonlib.profiles import is_static


def live_kernel() -> bool:
    """Return True inside a Jupyter kernel that may show widgets."""
    if is_static():
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def interactive_figure(
    draw: Callable[..., Figure],
    *,
    sliders: Mapping[str, tuple[float, float, float]],
    defaults: Mapping[str, Any],
) -> Any:
    """Display ``draw(**defaults)``, with sliders that redraw it in a live kernel.

    Parameters
    ----------
    draw : callable
        Returns a new matplotlib figure for keyword parameters.
    sliders : mapping
        ``name -> (min, max, step)``; int bounds give an int slider.
    defaults : mapping
        Initial value of every slider.

    Returns
    -------
    ipywidgets.Widget or None
        The slider box in a live kernel, else None.
    """
    from IPython.display import display

    if not callable(draw):
        raise TypeError(f"draw must be callable, got {type(draw).__name__}")
    missing = set(sliders) - set(defaults)
    if missing:
        raise ValueError(f"defaults lacks a value for slider(s) {sorted(missing)}")
    fig = draw(**defaults)
    handle = display(fig, display_id=True)
    plt.close(fig)
    if not live_kernel():
        return None
    return _build_sliders(draw, handle, sliders, defaults)


def _build_sliders(draw, handle, sliders, defaults):  # pragma: no cover - needs a live kernel
    import ipywidgets as widgets
    from IPython.display import display

    controls = {}
    for name, (low, high, step) in sliders.items():
        cls = (
            widgets.IntSlider
            if all(isinstance(v, int) for v in (low, high, step))
            else widgets.FloatSlider
        )
        controls[name] = cls(value=defaults[name], min=low, max=high, step=step, description=name)

    def redraw(_change=None):
        new = draw(**{k: c.value for k, c in controls.items()})
        handle.update(new)
        plt.close(new)

    for control in controls.values():
        control.observe(redraw, names="value")
    box = widgets.VBox(list(controls.values()))
    display(box)
    return box
