"""Figures for Grad-CAM: every step on one image, and maps side by side.

* :func:`plot_cam_steps`: one image's Grad-CAM step by step: the channels
  with the largest weights, the sorted channel weights, the signed weighted
  sum, its ReLU and the upsampled map over the image;
* :func:`plot_cam_rows`: images in the top row and, below them, one row of
  overlays per set of maps (top class vs another class, one model vs
  another, PyTorch vs Keras).

Both take what :mod:`lessonlib.gradcam` returns and draw with
:func:`lessonlib.gradcam.overlay`.  Maps are shown with viridis, signed
values with a symmetric cividis scale and a colour bar.  Each function
returns the ``matplotlib.figure.Figure``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from lessonlib._validate import array, non_negative_int, positive_int, probability
from lessonlib.gradcam import CamSteps, overlay

__all__ = ["plot_cam_rows", "plot_cam_steps"]


def _show(ax: Any, image: np.ndarray, title: str = "", **kwargs: Any) -> Any:
    shown = ax.imshow(image, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return shown


def plot_cam_steps(
    image: np.ndarray,
    steps: CamSteps,
    *,
    index: int = 0,
    n_channels: int = 4,
    title: str = "",
) -> Figure:
    """Draw the steps of one image's Grad-CAM.

    Top row: the ``n_channels`` activation channels that add the most to the
    weighted sum (largest weight times mean activation; a channel with a
    large weight that is zero everywhere adds nothing).  Bottom row: all
    channel weights, sorted; the weighted sum before the ReLU (negative
    values in dark blue); after the ReLU; the upsampled map over the image.

    Parameters
    ----------
    image : array (H, W) or (H, W, 3)
        The image as the network saw it (uint8, or floats in [0, 1]), at the
        size of ``steps.maps``.
    steps : CamSteps
        From ``GradCAM.steps`` or :func:`lessonlib.gradcam.gradcam_keras_steps`.
    index : int
        Which image of the batch in ``steps``.
    n_channels : int
        How many of the highest-weighted channels to show.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from lessonlib.gradcam import CamSteps
    >>> act = np.random.default_rng(0).random((1, 6, 3, 3))
    >>> w = np.linspace(-1, 1, 6)[None]
    >>> signed = np.einsum("nk,nkrc->nrc", w, act)
    >>> steps = CamSteps(np.zeros((1, 2)), np.array([0]), act, act, w,
    ...                  np.maximum(signed, 0), np.zeros((1, 12, 12)))
    >>> fig = plot_cam_steps(np.zeros((12, 12)), steps, n_channels=3)
    >>> [ax.get_title() for ax in fig.axes][:4]
    ['channel 5, weight 1', 'channel 4, weight 0.6', 'channel 3, weight 0.2', '']
    >>> fig.axes[4].get_title(), fig.axes[5].get_title()
    ('channel weights, sorted', 'weighted sum')
    >>> plt.close(fig)
    """
    if not isinstance(steps, CamSteps):
        raise TypeError(f"steps must be a CamSteps, got {type(steps).__name__}")
    index = non_negative_int("index", index)
    if index >= len(steps.weights):
        raise ValueError(f"index must be below the batch size {len(steps.weights)}, got {index}")
    n_channels = positive_int("n_channels", n_channels)
    weights, acts = steps.weights[index], steps.activations[index]
    n_channels = min(n_channels, len(weights))
    signed = np.einsum("k,krc->rc", weights, acts)
    image = array("image", image, ndim=(2, 3), dtype_kind="uif")
    if image.shape[:2] != steps.maps.shape[1:]:
        raise ValueError(
            f"image must have the maps' size {steps.maps.shape[1:]}, got {image.shape}"
        )
    ncols = max(n_channels, 4)
    fig, axes = plt.subplots(2, ncols, figsize=(2.3 * ncols, 4.9), squeeze=False)
    top = np.argsort(weights * acts.mean(axis=(1, 2)))[::-1][:n_channels]
    for ax, k in zip(axes[0], top, strict=False):
        _show(ax, acts[k], f"channel {k}, weight {weights[k]:.2g}", cmap="viridis")
    for ax in axes[0, n_channels:]:
        ax.set_axis_off()
    ax_w = axes[1, 0]
    ax_w.plot(np.sort(weights)[::-1], color=plt.get_cmap("viridis")(0.3))
    ax_w.axhline(0.0, color="0.5", lw=0.8)
    ax_w.set_xlabel("channel (sorted)")
    ax_w.set_ylabel("weight")
    ax_w.set_title("channel weights, sorted", fontsize=9)
    bound = float(np.abs(signed).max()) or 1.0
    shown = _show(axes[1, 1], signed, "weighted sum", cmap="cividis", vmin=-bound, vmax=bound)
    fig.colorbar(shown, ax=axes[1, 1], fraction=0.046, pad=0.04)
    _show(axes[1, 2], steps.low_res[index], "after the ReLU", cmap="viridis")
    _show(axes[1, 3], overlay(image, steps.maps[index]), "upsampled, over the image")
    for ax in axes[1, 4:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_cam_rows(
    images: Sequence[np.ndarray] | np.ndarray,
    maps: Mapping[str, Sequence[np.ndarray] | np.ndarray],
    *,
    titles: Sequence[str] | None = None,
    suptitle: str = "",
    alpha: float = 0.45,
    cmap: Any = "viridis",
    size: float = 1.9,
) -> Figure:
    """Show images in the top row and one row of Grad-CAM overlays per entry of ``maps``.

    Parameters
    ----------
    images : sequence of arrays (H, W) or (H, W, 3)
        uint8, or floats in [0, 1].
    maps : mapping of str to sequence of arrays (H, W)
        Row label -> one map in [0, 1] per image.
    titles : sequence of str, optional
        One title per column.
    suptitle : str
        Figure title.
    alpha, cmap
        As in :func:`lessonlib.gradcam.overlay`.
    size : float
        Side of each panel in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_cam_rows(np.zeros((2, 4, 4)), {"top": np.ones((2, 4, 4)),
    ...                     "other": np.zeros((2, 4, 4))}, titles=["a", "b"])
    >>> len(fig.axes), fig.axes[0].get_title(), fig.axes[2].get_ylabel()
    (6, 'a', 'top')
    >>> plt.close(fig)
    """
    images = list(images)
    if not images:
        raise ValueError("images must not be empty")
    if not isinstance(maps, Mapping) or not maps:
        raise TypeError("maps must be a non-empty mapping of row label to maps")
    n = len(images)
    for label, row in maps.items():
        if len(row) != n:
            raise ValueError(f"maps[{label!r}] must have one map per image ({n}), got {len(row)}")
    if titles is not None and (isinstance(titles, str) or len(titles) != n):
        raise ValueError(f"titles must be one str per image ({n}), got {titles!r}")
    alpha = probability("alpha", alpha, inclusive_one=True)
    fig, axes = plt.subplots(
        1 + len(maps), n, figsize=(size * n + 0.5, size * (1 + len(maps)) + 0.5), squeeze=False
    )
    for col, image in enumerate(images):
        image = array("image", image, ndim=(2, 3), dtype_kind="uif")
        _show(axes[0, col], image, titles[col] if titles is not None else "", cmap="gray")
        for row, row_maps in enumerate(maps.values(), start=1):
            _show(axes[row, col], overlay(image, row_maps[col], alpha=alpha, cmap=cmap))
    for row, label in enumerate(maps, start=1):
        axes[row, 0].set_ylabel(label, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
