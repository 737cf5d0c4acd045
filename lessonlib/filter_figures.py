"""Figures for lesson 1: a kernel sliding over an image, and Gabor filters at work.

Each function returns a ``matplotlib.figure.Figure`` with titles on every panel.
The single-step functions (:func:`sliding_step_figure`,
:func:`gabor_explorer_figure`) take the slider values as keyword arguments, so
they can be handed to :func:`lessonlib.widgets.interactive_figure` as they are;
:func:`sliding_strip` shows several steps side by side for the static book.
Grey is used for the images themselves, cividis for signed filter responses and
viridis for Gabor magnitudes.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lessonlib._validate import array, positive_float
from lessonlib.filters import (
    GaborKernel,
    Padding,
    _pad_widths,
    gabor_kernel,
    gabor_magnitude,
    sliding_windows,
)

__all__ = [
    "gabor_bank_figure",
    "gabor_explorer_figure",
    "response_grid",
    "sliding_step_figure",
    "sliding_strip",
]


def _stops_and_canvas(
    image: np.ndarray, kernel: np.ndarray, padding: Padding
) -> tuple[list, np.ndarray, tuple[int, int]]:
    """Every stop of the kernel, the zero-padded image, and the output shape."""
    stops = list(sliding_windows(image, kernel, padding=padding))
    padded = np.pad(np.asarray(image, dtype=float), _pad_widths(np.shape(kernel), padding))
    out_shape = (stops[-1].row + 1, stops[-1].col + 1)
    return stops, padded, out_shape


def _check_step(name: str, step: object, n_stops: int) -> int:
    if isinstance(step, bool) or not isinstance(step, Integral):
        raise TypeError(f"{name} must be an int, got {type(step).__name__}")
    if not 0 <= step < n_stops:
        raise ValueError(f"{name} must lie in [0, {n_stops - 1}], got {step}")
    return int(step)


def _limit(vlim: float | None, stops: list) -> float:
    if vlim is not None:
        return positive_float("vlim", vlim)
    return max(max(abs(s.value) for s in stops), 1e-12)


def _draw_input(ax: Axes, padded: np.ndarray, stop, kernel_shape: tuple[int, int]) -> None:
    ax.imshow(padded, cmap="gray", vmin=min(padded.min(), 0.0))
    ax.add_patch(
        Rectangle(
            (stop.col - 0.5, stop.row - 0.5),
            kernel_shape[1],
            kernel_shape[0],
            fill=False,
            edgecolor="#fde725",  # the bright end of viridis
            linewidth=2.5,
        )
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_output(ax: Axes, stops: list, step: int, out_shape: tuple[int, int], vlim: float):
    partial = np.full(out_shape, np.nan)
    for stop in stops[: step + 1]:
        partial[stop.row, stop.col] = stop.value
    shown = ax.imshow(partial, cmap="cividis", vmin=-vlim, vmax=vlim)
    here = stops[step]
    ax.add_patch(
        Rectangle((here.col - 0.5, here.row - 0.5), 1, 1, fill=False, edgecolor="#fde725", lw=2.5)
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def sliding_step_figure(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    step: int,
    padding: Padding = 0,
    vlim: float | None = None,
) -> Figure:
    """Show one stop of a kernel sliding over an image, and the output so far.

    Left: the (padded) image with the current window outlined.  Middle: the
    kernel with its weights written in.  Right: the output map, filled in up
    to and including this step, with the new pixel outlined and its value,
    ``sum(window * kernel)``, in the title.

    Parameters
    ----------
    image, kernel : array_like
        2-D grey image and 2-D kernel, as for :func:`lessonlib.filters.convolve2d`.
    step : int
        Which stop to show, counted row by row from 0.
    padding : int or {"same", "valid"}
        Zero padding, as for :func:`~lessonlib.filters.convolve2d` (stride 1).
    vlim : float, optional
        The output colour scale runs from ``-vlim`` to ``vlim``; by default the
        largest absolute output value.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> square = np.zeros((6, 6)); square[2:4, 2:4] = 1
    >>> kernel = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]])
    >>> fig = sliding_step_figure(square, kernel, step=5)
    >>> fig.axes[2].get_title()
    'output (1, 1) = -3'
    """
    stops, padded, out_shape = _stops_and_canvas(image, kernel, padding)
    step = _check_step("step", step, len(stops))
    vlim = _limit(vlim, stops)
    ker = np.asarray(kernel, dtype=float)
    fig, (ax_in, ax_k, ax_out) = plt.subplots(1, 3, figsize=(9, 3.4))
    stop = stops[step]
    _draw_input(ax_in, padded, stop, ker.shape)
    ax_in.set_title(f"input, window at ({stop.row}, {stop.col})")
    ax_k.imshow(ker, cmap="cividis")
    for (r, c), w in np.ndenumerate(ker):
        ax_k.text(
            c,
            r,
            f"{w:g}",
            ha="center",
            va="center",
            color="black",
            fontsize=10,
            bbox={"facecolor": "white", "alpha": 0.7, "pad": 1, "linewidth": 0},
        )
    ax_k.set_xticks([])
    ax_k.set_yticks([])
    ax_k.set_title("kernel")
    shown = _draw_output(ax_out, stops, step, out_shape, vlim)
    ax_out.set_title(f"output ({stop.row}, {stop.col}) = {stop.value:g}")
    fig.colorbar(shown, ax=ax_out, fraction=0.046, pad=0.04)
    fig.suptitle(f"Step {step + 1} of {len(stops)}: multiply the window by the kernel and sum")
    fig.tight_layout()
    return fig


def sliding_strip(
    image: np.ndarray,
    kernel: np.ndarray,
    *,
    steps: Sequence[int],
    padding: Padding = 0,
    vlim: float | None = None,
    title: str = "",
) -> Figure:
    """Show several stops of a sliding kernel side by side (the static slider).

    Top row: the image with the window outlined at each chosen step.  Bottom
    row: the output map filled in up to that step.

    Parameters
    ----------
    image, kernel : array_like
        2-D grey image and 2-D kernel.
    steps : sequence of int
        One to eight stops to show, each in ``[0, number of stops)``.
    padding : int or {"same", "valid"}
        Zero padding (stride 1).
    vlim : float, optional
        Symmetric colour limit of the output maps.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        ``2 * len(steps)`` panels.

    Examples
    --------
    >>> square = np.zeros((6, 6)); square[2:4, 2:4] = 1
    >>> fig = sliding_strip(square, np.ones((3, 3)), steps=[0, 15])
    >>> len(fig.axes), fig.axes[1].get_title()
    (4, 'step 16: (3, 3)')
    """
    stops, padded, out_shape = _stops_and_canvas(image, kernel, padding)
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
        raise TypeError(f"steps must be a sequence of ints, got {type(steps).__name__}")
    if not 1 <= len(steps) <= 8:
        raise ValueError(f"steps must hold 1 to 8 steps, got {len(steps)}")
    steps = [_check_step("steps", s, len(stops)) for s in steps]
    vlim = _limit(vlim, stops)
    shape = np.shape(kernel)
    fig, axes = plt.subplots(
        2, len(steps), figsize=(1.9 * len(steps), 4.6), squeeze=False, layout="constrained"
    )
    for col, step in enumerate(steps):
        stop = stops[step]
        _draw_input(axes[0, col], padded, stop, shape)
        axes[0, col].set_title(f"step {step + 1}: ({stop.row}, {stop.col})", fontsize=9)
        _draw_output(axes[1, col], stops, step, out_shape, vlim)
        axes[1, col].set_title(f"output = {stop.value:g}", fontsize=9)
    axes[0, 0].set_ylabel("input + window")
    axes[1, 0].set_ylabel("output so far")
    if title:
        fig.suptitle(title)
    return fig


def response_grid(
    images: Sequence[np.ndarray],
    responses: Sequence[Sequence[np.ndarray]],
    *,
    image_names: Sequence[str],
    kernel_names: Sequence[str],
    title: str = "",
) -> Figure:
    """Show each image next to its responses to several kernels.

    Row ``i`` shows ``images[i]`` in grey, then ``responses[i][j]`` for every
    kernel ``j`` in cividis, each on its own colour scale symmetric about 0 (so
    mid-colour means "no response").  The scale ends at the 99th percentile of
    the absolute response, so that a few extreme pixels do not wash out the rest.

    Parameters
    ----------
    images : sequence of 2-D arrays
        The inputs, one per row.
    responses : sequence of sequences of 2-D arrays
        ``responses[i][j]``: image ``i`` filtered by kernel ``j``.
    image_names, kernel_names : sequence of str
        Row and column labels.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> img = np.eye(4)
    >>> fig = response_grid([img], [[img, -img]], image_names=["eye"], kernel_names=["a", "b"])
    >>> [ax.get_title() for ax in fig.axes]
    ['eye', 'a', 'b']
    """
    n_rows, n_cols = len(images), len(kernel_names)
    if len(image_names) != n_rows or len(responses) != n_rows:
        raise ValueError(
            f"image_names and responses must have one entry per image ({n_rows}), "
            f"got {len(image_names)} and {len(responses)}"
        )
    if any(len(row) != n_cols for row in responses):
        raise ValueError(f"responses must hold one map per kernel ({n_cols}) in every row")
    fig, axes = plt.subplots(
        n_rows, n_cols + 1, figsize=(2.3 * (n_cols + 1), 2.4 * n_rows), squeeze=False
    )
    for i, (image, row) in enumerate(zip(images, responses, strict=True)):
        axes[i, 0].imshow(array("images", image, ndim=2), cmap="gray")
        axes[i, 0].set_title(image_names[i])
        for j, response in enumerate(row, start=1):
            response = array("responses", response, ndim=2, dtype_kind="biuf")
            limit = float(np.percentile(np.abs(response), 99)) or float(np.abs(response).max())
            limit = max(limit, 1e-12)
            axes[i, j].imshow(response, cmap="cividis", vmin=-limit, vmax=limit)
            axes[i, j].set_title(kernel_names[j - 1] if i == 0 else "")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def gabor_explorer_figure(
    image: np.ndarray,
    *,
    frequency: float,
    theta: float,
    sigma: float,
    mode: str = "reflect",
) -> Figure:
    """Show an image, a Gabor kernel's real part and the response magnitude.

    The image is standardised (mean 0, standard deviation 1) before filtering,
    so the magnitude does not depend on brightness or contrast.

    Parameters
    ----------
    image : array_like
        A 2-D grey image.
    frequency, theta, sigma : float
        Gabor parameters, as for :func:`lessonlib.filters.gabor_kernel`.
    mode : str
        Border handling, as for :func:`lessonlib.filters.gabor_magnitude`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = gabor_explorer_figure(np.eye(16), frequency=0.25, theta=0.0, sigma=2.0)
    >>> [ax.get_title() for ax in fig.axes[:3]]
    ['image', 'kernel (real part), 13x13', 'response magnitude']
    """
    img = array("image", image, ndim=2, dtype_kind="biuf").astype(float)
    kernel = gabor_kernel(frequency=frequency, theta=theta, sigma=sigma)
    standardised = (img - img.mean()) / (img.std() or 1.0)
    magnitude = gabor_magnitude(standardised, kernel, mode=mode)
    fig, (ax_img, ax_k, ax_mag) = plt.subplots(1, 3, figsize=(10, 3.6))
    ax_img.imshow(img, cmap="gray")
    ax_img.set_title("image")
    ax_k.imshow(kernel.real, cmap="cividis", interpolation="nearest")
    ax_k.set_title(f"kernel (real part), {kernel.shape[0]}x{kernel.shape[1]}")
    shown = ax_mag.imshow(magnitude, cmap="viridis")
    ax_mag.set_title("response magnitude")
    fig.colorbar(shown, ax=ax_mag, fraction=0.046, pad=0.04)
    for ax in (ax_img, ax_k, ax_mag):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Gabor filter: frequency={frequency:.2f}, theta={theta:.2f}, sigma={sigma:.2f}")
    fig.tight_layout()
    return fig


def gabor_bank_figure(
    images: Sequence[np.ndarray],
    bank: Sequence[GaborKernel],
    magnitudes: Sequence[Sequence[np.ndarray]],
    *,
    image_names: Sequence[str],
    title: str = "",
) -> Figure:
    """Lay out a Gabor filter bank's responses as in seed 004.

    The top row shows the images.  Each further row shows one kernel (real part)
    and its response magnitude on every image, with the contrast normalised per
    kernel: one colour scale per row, from the row's minimum to its maximum.

    Parameters
    ----------
    images : sequence of 2-D arrays
        The inputs.
    bank : sequence of GaborKernel
        The kernels, for example from :func:`lessonlib.filters.gabor_bank`.
    magnitudes : sequence of sequences of 2-D arrays
        ``magnitudes[k][i]``: response magnitude of kernel ``k`` on image ``i``.
    image_names : sequence of str
        Column labels.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from lessonlib.filters import gabor_bank
    >>> bank = gabor_bank(thetas=[0], frequencies=[0.25], sigmas=[1, 2])
    >>> img = np.eye(8)
    >>> fig = gabor_bank_figure([img], bank, [[img], [img]], image_names=["eye"])
    >>> fig.axes[1].get_title(), fig.axes[2].get_ylabel()
    ('eye', 'theta=0.00\\nf=0.25\\nsigma=1.00')
    """
    n_images = len(images)
    if len(image_names) != n_images:
        raise ValueError(f"image_names must name every image ({n_images}), got {len(image_names)}")
    if len(magnitudes) != len(bank) or any(len(row) != n_images for row in magnitudes):
        raise ValueError(
            f"magnitudes must hold {len(bank)} rows (one per kernel) of {n_images} maps"
        )
    fig, axes = plt.subplots(
        len(bank) + 1, n_images + 1, figsize=(1.3 * (n_images + 1) + 0.6, 1.2 * (len(bank) + 1))
    )
    axes = np.atleast_2d(axes)
    for ax, image, name in zip(axes[0, 1:], images, image_names, strict=True):
        ax.imshow(array("images", image, ndim=2), cmap="gray")
        ax.set_title(name)
    for row, (g, maps) in enumerate(zip(bank, magnitudes, strict=True), start=1):
        if not isinstance(g, GaborKernel):
            raise TypeError(f"bank must hold GaborKernel objects, got {type(g).__name__}")
        axes[row, 0].imshow(g.kernel.real, cmap="cividis", interpolation="nearest")
        axes[row, 0].set_ylabel(
            f"theta={g.theta:.2f}\nf={g.frequency:.2f}\nsigma={g.sigma:.2f}", fontsize=7
        )
        low = min(float(np.min(m)) for m in maps)
        high = max(float(np.max(m)) for m in maps)
        for ax, magnitude in zip(axes[row, 1:], maps, strict=True):
            ax.imshow(magnitude, cmap="viridis", vmin=low, vmax=high)
    axes[0, 0].set_title("kernel")
    axes[0, 0].axis("off")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
