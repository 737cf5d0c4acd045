"""Figures of the course: image grids, learning curves, activations and filters.

Every figure has a title and axis labels and uses a colour-blind-safe colormap
(viridis / cividis; grey for the digits themselves).  Functions return the
``matplotlib.figure.Figure`` so that a lesson can save or tweak it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from lessonlib._validate import array, positive_int, probability

FIG_DPI = 100


def use_course_style() -> None:
    """Set the course's matplotlib defaults: 100 dpi, readable fonts, viridis."""
    plt.rcParams.update(
        {
            "figure.dpi": FIG_DPI,
            "savefig.dpi": FIG_DPI,
            "image.cmap": "viridis",
            "axes.titlesize": 11,
            "axes.grid": False,
            "figure.autolayout": False,
        }
    )


def image_grid(
    images: np.ndarray,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "gray",
    suptitle: str = "",
    size: float = 1.4,
) -> Figure:
    """Show images in a grid with optional per-image titles.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, H, W)`` grey or ``(N, H, W, 3)`` colour images.
    titles : sequence of str, optional
        One title per image.
    ncols : int
        Images per row.

    Examples
    --------
    >>> fig = image_grid(np.zeros((3, 4, 4)), titles=["a", "b", "c"], suptitle="demo")
    >>> len(fig.axes), fig.axes[1].get_title()
    (3, 'b')
    """
    images = array("images", images, ndim=(3, 4))
    ncols = positive_int("ncols", ncols)
    if titles is not None and len(titles) != len(images):
        raise ValueError(
            f"titles must have one entry per image, got {len(titles)} for {len(images)}"
        )
    ncols = min(ncols, len(images))
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + 0.4), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap=cmap if images[i].ndim == 2 else None)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    for ax in axes.flat[len(images) :]:
        fig.delaxes(ax)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def smooth_curve(values: Sequence[float], *, factor: float = 0.8) -> np.ndarray:
    """Exponential running average, as seed 004 smooths its learning curves.

    ``out[0] = values[0]`` and ``out[i] = factor * out[i-1] + (1 - factor) * values[i]``.

    Examples
    --------
    >>> smooth_curve([1.0, 0.0, 0.0], factor=0.5).tolist()
    [1.0, 0.5, 0.25]
    """
    values = array("values", values, ndim=1, dtype_kind="uif").astype(float)
    factor = probability("factor", factor)
    out = np.empty_like(values)
    out[0] = values[0]
    for i in range(1, len(values)):
        out[i] = factor * out[i - 1] + (1 - factor) * values[i]
    return out


def plot_history(
    histories: Mapping[str, object] | object, *, smooth: float | None = None, title: str = ""
) -> Figure:
    """Plot loss and accuracy curves (train dashed, validation solid) of one or more runs.

    Parameters
    ----------
    histories : History or mapping of name to History
        Runs from :func:`lessonlib.training.fit` or :func:`~lessonlib.training.history_from_keras`.
    smooth : float, optional
        Smoothing factor for :func:`smooth_curve`.
    title : str
        Figure title.

    Examples
    --------
    >>> from lessonlib.training import History
    >>> h = History([1.0, 0.5], [0.5, 0.8], [1.1, 0.7], [0.4, 0.7])
    >>> fig = plot_history({"torch": h}, title="demo")
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['loss', 'accuracy']
    """
    from lessonlib.training import History

    if smooth is not None:
        smooth = probability("smooth", smooth)
    if isinstance(histories, History):
        histories = {"model": histories}
    if not isinstance(histories, Mapping) or not histories:
        raise TypeError("histories must be a History or a non-empty mapping of name to History")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.8, len(histories)))
    for colour, (name, hist) in zip(colours, histories.items(), strict=True):
        if not isinstance(hist, History):
            raise TypeError(f"histories[{name!r}] must be a History, got {type(hist).__name__}")
        epochs = np.arange(1, hist.epochs + 1)
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            for prefix, style in (("", "--"), ("val_", "-")):
                values = getattr(hist, prefix + key)
                if smooth:
                    values = smooth_curve(values, factor=smooth)
                split = "train" if not prefix else "validation"
                ax.plot(epochs, values, style, color=colour, marker="o", label=f"{name} {split}")
    for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(f"{key} per epoch" + (" (smoothed)" if smooth else ""))
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_feature_maps(
    maps: np.ndarray, *, n: int = 16, ncols: int = 8, title: str = "", cmap: str = "viridis"
) -> Figure:
    """Show the first ``n`` channels of one layer's activation ``(C, H, W)``.

    Examples
    --------
    >>> fig = plot_feature_maps(np.random.default_rng(0).random((4, 5, 5)), n=4, title="conv1")
    >>> len(fig.axes)
    4
    """
    maps = array("maps", maps, ndim=3, dtype_kind="uif")
    n = min(positive_int("n", n), len(maps))
    titles = [f"ch {i}" for i in range(n)]
    return image_grid(maps[:n], titles=titles, ncols=ncols, cmap=cmap, suptitle=title, size=1.2)


def plot_filters(weights: np.ndarray, *, title: str = "", cmap: str = "cividis") -> Figure:
    """Show first-layer convolution kernels.

    Parameters
    ----------
    weights : numpy.ndarray
        torch layout ``(out, in, kh, kw)``; the input channels are averaged.

    Examples
    --------
    >>> fig = plot_filters(np.ones((8, 1, 3, 3)), title="filters")
    >>> len(fig.axes)
    8
    """
    weights = array("weights", weights, ndim=4, dtype_kind="f")
    kernels = weights.mean(axis=1)
    titles = [f"filter {i}" for i in range(len(kernels))]
    return image_grid(kernels, titles=titles, ncols=8, cmap=cmap, suptitle=title, size=1.2)
