"""Figures for MC dropout and calibration.

* :func:`plot_mc_boxes`: each image beside box plots of its class
  probabilities over the MC passes (seed 001's figure);
* :func:`plot_rotation_sweep`: a rotated image's MC mean per class and its
  predictive entropy against the angle;
* :func:`plot_reliability`: reliability diagrams with their ECE, side by side;
* :func:`plot_entropy_histograms`: predictive entropy of several input sets;
* :func:`plot_spread_comparison`: how widely two samplers spread, on one
  input and over a whole test set.

Every function returns the ``matplotlib.figure.Figure``; colours come from
viridis, images are shown in grey.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from lessonlib._validate import array, non_negative_int, positive_int
from lessonlib.ood import RotationSweep
from lessonlib.uncertainty import ReliabilityData


def _colours(n: int) -> np.ndarray:
    return plt.get_cmap("viridis")(np.linspace(0.0, 0.8, max(n, 1)))


def _class_names(class_names: Sequence[str], n_classes: int) -> list[str]:
    names = [str(c) for c in class_names]
    if len(names) != n_classes:
        raise ValueError(f"class_names must have {n_classes} entries, got {len(names)}")
    return names


def _mapping(name: str, value: Any) -> Mapping:
    if not isinstance(value, Mapping) or not value:
        raise TypeError(f"{name} must be a non-empty mapping of name to values")
    return value


def _show_image(ax: Any, image: np.ndarray) -> None:
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_mc_boxes(
    images: Any,
    probs: Any,
    *,
    class_names: Sequence[str],
    titles: Sequence[str] | None = None,
    suptitle: str = "",
) -> Figure:
    """Show each image beside box plots of its class probabilities over the MC passes.

    Boxes span the quartiles of the ``S`` sampled probabilities, whiskers
    reach 1.5 times the box length (points beyond are drawn), and a diamond
    marks the MC mean.

    Parameters
    ----------
    images : array_like
        ``(K, H, W)`` or ``(K, H, W, 3)`` images, one row of the figure each.
    probs : array_like
        ``(S, K, C)`` MC probabilities of those images.
    class_names : sequence of str
        One name per class, for the x axis.
    titles : sequence of str, optional
        One title per image.
    suptitle : str
        Figure title.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> probs = rng.dirichlet([5, 1, 1], size=(50, 2)).astype(np.float32)
    >>> fig = plot_mc_boxes(np.zeros((2, 8, 8)), probs, class_names=["a", "b", "c"])
    >>> len(fig.axes), fig.axes[1].get_ylabel()
    (4, 'probability')
    """
    images = array("images", images, ndim=(3, 4))
    probs = array("probs", probs, ndim=3, dtype_kind="f")
    if probs.shape[1] != len(images):
        raise ValueError(f"probs must be (S, {len(images)}, C), got shape {probs.shape}")
    names = _class_names(class_names, probs.shape[2])
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles must have {len(images)} entries, got {len(titles)}")
    k = len(images)
    fig, axes = plt.subplots(
        k,
        2,
        figsize=(3.0 + 0.55 * len(names) + 1.5, 2.6 * k),
        gridspec_kw={"width_ratios": [1, 0.35 * len(names) + 0.6]},
        squeeze=False,
    )
    colour = _colours(1)[0]
    positions = np.arange(1, len(names) + 1)
    for row, (ax_img, ax_box) in enumerate(axes):
        _show_image(ax_img, images[row])
        if titles is not None:
            ax_img.set_title(titles[row], fontsize=9)
        ax_box.boxplot(
            probs[:, row, :],
            positions=positions,
            widths=0.6,
            flierprops={"markersize": 2, "alpha": 0.4},
            medianprops={"color": colour},
            boxprops={"color": colour},
        )
        ax_box.plot(
            positions, probs[:, row, :].mean(axis=0), "D", color="tab:orange", ms=4, label="MC mean"
        )
        ax_box.set_xticks(positions, names, rotation=30 if len(names) > 5 else 0)
        ax_box.set_ylim(-0.03, 1.03)
        ax_box.set_ylabel("probability")
        ax_box.set_xlabel("class")
        ax_box.set_title(f"{probs.shape[0]:,} stochastic passes", fontsize=9)
        if row == 0:
            ax_box.legend(fontsize=8, loc="upper right")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_rotation_sweep(
    sweep: RotationSweep,
    *,
    class_names: Sequence[str],
    index: int = 0,
    thumbnails: int = 7,
    min_probability: float = 0.1,
    title: str = "",
) -> Figure:
    """Plot one rotated image's MC mean per class and the predictive entropy against the angle.

    The top row shows the image at a few angles.  Bottom left: the MC mean
    probability of every class that reaches ``min_probability`` at some
    angle.  Bottom right: the predictive entropy of this image and, when the
    sweep holds several images, their average.

    Parameters
    ----------
    sweep : RotationSweep
        From :func:`lessonlib.ood.rotation_sweep`.
    class_names : sequence of str
        One name per class.
    index : int
        Which image of the sweep to show.
    thumbnails : int
        Number of rotated images in the top row.
    min_probability : float
        Classes whose mean never reaches this are left out of the left panel.
    title : str
        Figure title.

    Examples
    --------
    >>> from lessonlib.ood import RotationSweep
    >>> mean = np.full((1, 3, 2), 0.5)
    >>> sweep = RotationSweep(np.array([0.0, 90, 180]), np.zeros((1, 3, 4, 4)), mean,
    ...                       np.full((1, 3), np.log(2)), np.zeros((1, 3)))
    >>> fig = plot_rotation_sweep(sweep, class_names=["a", "b"], thumbnails=3)
    >>> [ax.get_xlabel() for ax in fig.axes[-2:]]
    ['rotation angle (degrees)', 'rotation angle (degrees)']
    """
    if not isinstance(sweep, RotationSweep):
        raise TypeError(f"sweep must be a RotationSweep, got {type(sweep).__name__}")
    index = non_negative_int("index", index)
    if index >= len(sweep.mean):
        raise ValueError(f"index must be below {len(sweep.mean)}, got {index}")
    thumbnails = min(positive_int("thumbnails", thumbnails), len(sweep.angles))
    names = _class_names(class_names, sweep.mean.shape[2])
    fig = plt.figure(figsize=(10, 5.6))
    grid = fig.add_gridspec(2, thumbnails, height_ratios=[1, 2.4])
    for j, a in enumerate(np.linspace(0, len(sweep.angles) - 1, thumbnails).round().astype(int)):
        ax = fig.add_subplot(grid[0, j])
        _show_image(ax, sweep.images[index, a])
        ax.set_title(f"{sweep.angles[a]:g}°", fontsize=9)
    half = thumbnails // 2
    ax_p = fig.add_subplot(grid[1, :half])
    ax_h = fig.add_subplot(grid[1, half:])
    mean = sweep.mean[index]
    shown = [c for c in range(mean.shape[1]) if mean[:, c].max() >= min_probability]
    markers = "osD^vP*Xh<>"
    for k, (colour, c) in enumerate(zip(_colours(len(shown)), shown, strict=True)):
        ax_p.plot(
            sweep.angles,
            mean[:, c],
            "-",
            marker=markers[k % len(markers)],
            ms=4,
            color=colour,
            label=names[c],
        )
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_ylabel("MC mean probability")
    ax_p.set_title("MC mean probability per class", fontsize=10)
    ax_p.legend(fontsize=8, title="class", title_fontsize=8)
    ax_h.plot(
        sweep.angles, sweep.entropy[index], "-o", ms=3, color=_colours(1)[0], label="this image"
    )
    if len(sweep.entropy) > 1:
        ax_h.plot(
            sweep.angles,
            sweep.entropy.mean(axis=0),
            "--",
            color="tab:orange",
            label=f"mean of {len(sweep.entropy)} images",
        )
    ax_h.axhline(np.log(len(names)), color="grey", lw=0.8, ls=":", label="maximum, log C")
    ax_h.set_ylabel("predictive entropy (nats)")
    ax_h.set_title("Predictive entropy", fontsize=10)
    ax_h.legend(fontsize=8)
    for ax in (ax_p, ax_h):
        ax.set_xlabel("rotation angle (degrees)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_reliability(data: Mapping[str, ReliabilityData], *, title: str = "") -> Figure:
    """Draw reliability diagrams side by side, each titled with its ECE.

    Bars show the accuracy in each confidence bin, diamonds the bin's mean
    confidence; a calibrated model's bars reach the diagonal.  The bar
    colour shows how many predictions fall in the bin (darker: fewer).

    Parameters
    ----------
    data : mapping of str to ReliabilityData
        From :func:`lessonlib.uncertainty.reliability_diagram_data`.
    title : str
        Figure title.

    Examples
    --------
    >>> from lessonlib.uncertainty import reliability_diagram_data
    >>> rel = reliability_diagram_data([[0.9, 0.1], [0.6, 0.4]], [0, 1], n_bins=5)
    >>> fig = plot_reliability({"model": rel})
    >>> fig.axes[0].get_title()
    'model: ECE 0.350'
    """
    data = _mapping("data", data)
    fig, axes = plt.subplots(1, len(data), figsize=(4.2 * len(data), 4), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, (name, rel) in zip(axes[0], data.items(), strict=True):
        if not isinstance(rel, ReliabilityData):
            raise TypeError(f"data[{name!r}] must be ReliabilityData, got {type(rel).__name__}")
        centres = (rel.edges[:-1] + rel.edges[1:]) / 2
        width = np.diff(rel.edges)
        share = rel.counts / max(rel.counts.sum(), 1)
        full = rel.counts > 0
        ax.bar(
            centres[full],
            rel.accuracy[full],
            width=width[full] * 0.9,
            color=cmap(0.25 + 0.7 * share[full] / share.max()),
            edgecolor="black",
            lw=0.5,
            label="accuracy",
        )
        ax.plot(
            centres[full],
            rel.confidence[full],
            "D",
            color="tab:orange",
            ms=4,
            label="mean confidence",
        )
        ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="calibrated")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}: ECE {rel.ece:.3f}", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_entropy_histograms(
    entropies: Mapping[str, Any], *, num_classes: int, bins: int = 30, title: str = ""
) -> Figure:
    """Overlay histograms (as densities) of predictive entropy for several input sets.

    Parameters
    ----------
    entropies : mapping of str to array_like
        Input-set name to its ``(N,)`` entropies in nats.
    num_classes : int
        Number of classes ``C``; the x axis runs to ``log C``.
    bins : int
        Number of bins.
    title : str
        Figure title.

    Examples
    --------
    >>> fig = plot_entropy_histograms({"test": [0.1, 0.2], "photos": [1.5, 2.0]}, num_classes=10)
    >>> fig.axes[0].get_xlabel()
    'predictive entropy (nats)'
    """
    entropies = _mapping("entropies", entropies)
    num_classes, bins = positive_int("num_classes", num_classes), positive_int("bins", bins)
    top = np.log(num_classes)
    edges = np.linspace(0, top, bins + 1)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for colour, (name, values) in zip(_colours(len(entropies)), entropies.items(), strict=True):
        values = array(f"entropies[{name!r}]", values, ndim=1, dtype_kind="uif")
        ax.hist(
            np.clip(values, 0, top),
            bins=edges,
            density=True,
            histtype="stepfilled",
            alpha=0.35,
            color=colour,
        )
        label = f"{name} (n={len(values)}, median {np.median(values):.2f})"
        ax.hist(
            np.clip(values, 0, top),
            bins=edges,
            density=True,
            histtype="step",
            lw=1.6,
            color=colour,
            label=label,
        )
    ax.axvline(top, color="grey", ls=":", lw=1, label=f"maximum, log {num_classes}")
    ax.set_xlabel("predictive entropy (nats)")
    ax.set_ylabel("density")
    ax.set_title(title or "Predictive entropy by input set", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_spread_comparison(
    probs: Mapping[str, Any], *, index: int, class_names: Sequence[str], title: str = ""
) -> Figure:
    """Compare the spread of several samplers: box plots for one input, a histogram for all.

    Left: for input ``index``, the sampled probability of each class, one
    box per sampler side by side.  Right: over all inputs, the histogram of
    the standard deviation (across passes) of the probability of the class
    each sampler predicts.

    Parameters
    ----------
    probs : mapping of str to array_like
        Sampler name to its ``(S, N, C)`` probabilities on the same inputs.
    index : int
        The input shown on the left.
    class_names : sequence of str
        One name per class.
    title : str
        Figure title.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.dirichlet([4, 1], size=(30, 5)); b = rng.dirichlet([40, 10], size=(30, 5))
    >>> fig = plot_spread_comparison({"a": a, "b": b}, index=0, class_names=["x", "y"])
    >>> fig.axes[1].get_xlabel()
    'std over passes of the predicted class probability'
    """
    probs = _mapping("probs", probs)
    arrays = {k: array(f"probs[{k!r}]", v, ndim=3, dtype_kind="f") for k, v in probs.items()}
    shapes = {v.shape[1:] for v in arrays.values()}
    if len(shapes) != 1:
        raise ValueError(f"probs must all cover the same (N, C) inputs, got shapes {shapes}")
    n_inputs, n_classes = shapes.pop()
    index = non_negative_int("index", index)
    if index >= n_inputs:
        raise ValueError(f"index must be below {n_inputs}, got {index}")
    names = _class_names(class_names, n_classes)
    fig, (ax_box, ax_hist) = plt.subplots(1, 2, figsize=(11, 3.8))
    colours, m = _colours(len(arrays)), len(arrays)
    width = 0.8 / m
    spreads = {}
    for j, (colour, (name, p)) in enumerate(zip(colours, arrays.items(), strict=True)):
        pos = np.arange(n_classes) + (j - (m - 1) / 2) * width
        ax_box.boxplot(
            p[:, index, :],
            positions=pos,
            widths=width * 0.85,
            patch_artist=True,
            boxprops={"facecolor": colour, "alpha": 0.6},
            medianprops={"color": "black"},
            flierprops={"markersize": 2, "alpha": 0.3},
        )
        ax_box.plot([], [], "s", color=colour, alpha=0.6, label=name)
        predicted = p.mean(axis=0).argmax(axis=1)
        spreads[name] = p[:, np.arange(n_inputs), predicted].std(axis=0)
    ax_box.set_xticks(np.arange(n_classes), names, rotation=30 if n_classes > 5 else 0)
    ax_box.set_ylim(-0.03, 1.03)
    ax_box.set_xlabel("class")
    ax_box.set_ylabel("probability")
    n_passes = next(iter(arrays.values())).shape[0]
    ax_box.set_title(f"One input, {n_passes:,} passes each", fontsize=10)
    ax_box.legend(fontsize=8)
    top = max(float(s.max()) for s in spreads.values()) or 1.0
    edges = np.linspace(0, top, 31)
    for colour, (name, s) in zip(colours, spreads.items(), strict=True):
        ax_hist.hist(
            s,
            bins=edges,
            histtype="step",
            lw=1.6,
            color=colour,
            label=f"{name} (median {np.median(s):.3f})",
        )
    ax_hist.set_xlabel("std over passes of the predicted class probability")
    ax_hist.set_ylabel("inputs")
    ax_hist.set_title(f"All {n_inputs:,} inputs", fontsize=10)
    ax_hist.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = [
    "plot_entropy_histograms",
    "plot_mc_boxes",
    "plot_reliability",
    "plot_rotation_sweep",
    "plot_spread_comparison",
]
