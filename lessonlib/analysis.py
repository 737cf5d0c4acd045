"""Error analysis of a classifier: tables, galleries and an embedding map.

The analyses of seeds 000 and 002, as small functions that take plain arrays
(images, integer labels, predicted labels or probabilities) and return numbers
or a ``matplotlib.figure.Figure``:

* confusion matrices, one per split (:func:`plot_confusions`), the most
  confused pairs (:func:`most_confused`) and the errors of each class
  (:func:`errors_per_class`);
* galleries: every misclassified image with the wrong label drawn on it
  (:func:`plot_misclassified`), the most confident images of every class
  (:func:`top_confident`, :func:`plot_top_confident`) and the most wrong images
  of one class with their true and predicted probabilities
  (:func:`most_wrong`, :func:`plot_predictions`);
* a map of the embedding: its first two principal components
  (:func:`pca_embedding`, :func:`plot_embedding`) and the classes whose
  centres lie closest in it (:func:`closest_classes`).

Images are channels last, ``(N, H, W)`` or ``(N, H, W, 3)``, ``uint8`` or
floats in [0, 1].  Colours come from viridis; the drawn labels are white on a
dark box, readable on any image.

Examples
--------
>>> y_true = np.array([0, 0, 1, 1, 2]); y_pred = np.array([0, 1, 1, 1, 1])
>>> most_confused(y_true, y_pred, classes=("a", "b", "c"))
[('a', 'b', 1), ('c', 'b', 1)]
>>> errors_per_class(y_true, y_pred, classes=("a", "b", "c"))
{'a': 1, 'b': 0, 'c': 1}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from lessonlib._validate import array, non_negative_int, positive_int

_LABEL_BOX = dict(boxstyle="round,pad=0.15", facecolor="black", alpha=0.7, linewidth=0)


# --------------------------------------------------------------------------- checks


def _labels(name: str, values: Any, n_classes: int | None = None) -> np.ndarray:
    arr = array(name, values, ndim=1, dtype_kind="iu")
    if arr.min() < 0 or (n_classes is not None and arr.max() >= n_classes):
        bound = f" and < {n_classes}" if n_classes is not None else ""
        raise ValueError(f"{name} must hold class indices >= 0{bound}")
    return arr.astype(np.int64)


def _classes(classes: Any) -> tuple[str, ...]:
    if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
        raise TypeError("classes must be a non-empty sequence of class names")
    return tuple(str(c) for c in classes)


def _pair(y_true: Any, y_pred: Any, classes: Any) -> tuple[np.ndarray, np.ndarray, tuple]:
    names = _classes(classes)
    t = _labels("y_true", y_true, len(names))
    p = _labels("y_pred", y_pred, len(names))
    if t.shape != p.shape:
        raise ValueError(f"y_pred must have the shape of y_true {t.shape}, got {p.shape}")
    return t, p, names


def _probs(probs: Any, n: int | None = None) -> np.ndarray:
    arr = array("probs", probs, ndim=2, dtype_kind="f")
    if n is not None and len(arr) != n:
        raise ValueError(f"probs must have one row per image ({n}), got {len(arr)}")
    if arr.min() < 0 or not np.allclose(arr.sum(1), 1, atol=1e-3):
        raise ValueError("probs must hold probabilities: rows >= 0 that sum to 1")
    return arr


def _images(images: Any) -> np.ndarray:
    arr = array("images", images, ndim=(3, 4), dtype_kind="uif")
    if arr.ndim == 4 and arr.shape[-1] not in (1, 3):
        raise ValueError(f"images must be channels last with 1 or 3 channels, got {arr.shape}")
    return arr[..., 0] if arr.ndim == 4 and arr.shape[-1] == 1 else arr


def _show(ax: Any, image: np.ndarray) -> None:
    # Small images (digits) are enlarged: nearest-neighbour keeps them crisp and the
    # figure's PNG small.  Photos keep matplotlib's antialiasing.
    interpolation = "nearest" if max(image.shape[:2]) < 100 else "antialiased"
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation=interpolation)
    ax.set_xticks([])
    ax.set_yticks([])


def _grid(n: int, ncols: int, size: float) -> tuple[Figure, np.ndarray]:
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + 0.5), squeeze=False
    )
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes


# --------------------------------------------------------------------------- tables


def most_confused(
    y_true: Any, y_pred: Any, *, classes: Sequence[str], k: int = 3
) -> list[tuple[str, str, int]]:
    """Return the ``k`` most frequent (true class, predicted class, count) errors.

    Ties keep the order of the confusion matrix (true class, then predicted).
    """
    t, p, names = _pair(y_true, y_pred, classes)
    k = positive_int("k", k)
    counts = np.zeros((len(names), len(names)), np.int64)
    np.add.at(counts, (t, p), 1)
    np.fill_diagonal(counts, 0)
    flat = np.argsort(-counts, axis=None, kind="stable")[:k]
    rows, cols = np.unravel_index(flat, counts.shape)
    return [
        (names[r], names[c], int(counts[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if counts[r, c] > 0
    ]


def errors_per_class(y_true: Any, y_pred: Any, *, classes: Sequence[str]) -> dict[str, int]:
    """Return the number of misclassified images of every true class, in class order."""
    t, p, names = _pair(y_true, y_pred, classes)
    wrong = np.bincount(t[t != p], minlength=len(names))
    return {name: int(n) for name, n in zip(names, wrong, strict=True)}


# --------------------------------------------------------------------------- confusion


def plot_confusions(
    splits: Mapping[str, tuple[Any, Any]], *, classes: Sequence[str], title: str = ""
) -> Figure:
    """Draw one confusion matrix per split with scikit-learn's ``ConfusionMatrixDisplay``.

    Parameters
    ----------
    splits : mapping of str to (y_true, y_pred)
        For example ``{"train": (y_tr, p_tr), "validation": (y_va, p_va)}``.
    classes : sequence of str
        Class names, indexed by label.  Cell counts are printed for up to 12
        classes; beyond that the colours carry the counts.
    title : str
        Figure title.

    Examples
    --------
    >>> fig = plot_confusions({"a": ([0, 1], [0, 1]), "b": ([1, 1], [0, 1])}, classes=("x", "y"))
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['a: 2 images, accuracy 100.0%', 'b: 2 images, accuracy 50.0%']
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    if not isinstance(splits, Mapping) or not splits:
        raise TypeError("splits must be a non-empty mapping of split name to (y_true, y_pred)")
    names = _classes(classes)
    many = len(names) > 12
    side = 3.2 + 0.22 * len(names)
    fig, axes = plt.subplots(1, len(splits), figsize=(side * len(splits), side), squeeze=False)
    for ax, (split, pair) in zip(axes.flat, splits.items(), strict=True):
        t, p, _ = _pair(*pair, names)
        ConfusionMatrixDisplay.from_predictions(
            t, p, labels=list(range(len(names))), display_labels=list(names), ax=ax,
            cmap="viridis", colorbar=False, include_values=not many, xticks_rotation="vertical",
        )  # fmt: skip
        ax.set_title(f"{split}: {len(t):,} images, accuracy {np.mean(t == p):.1%}")
        if many:
            ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- galleries


def montage(images: Any, *, ncols: int, pad: int = 2) -> np.ndarray:
    """Tile equally sized images into one array, row by row, with ``pad`` white pixels between.

    Grey images stay grey; ``uint8`` images are scaled to [0, 1].

    Examples
    --------
    >>> montage(np.zeros((3, 2, 2)), ncols=2, pad=1).shape
    (5, 5)
    """
    x = _images(images).astype(np.float32)
    if x.max() > 1:
        x = x / 255.0
    ncols = min(positive_int("ncols", ncols), len(x))
    pad = non_negative_int("pad", pad)
    nrows = int(np.ceil(len(x) / ncols))
    rows, cols = x.shape[1:3]
    shape = (nrows * (rows + pad) - pad, ncols * (cols + pad) - pad) + x.shape[3:]
    out = np.ones(shape, np.float32)
    for i, image in enumerate(x):
        r, c = divmod(i, ncols)
        out[
            r * (rows + pad) : r * (rows + pad) + rows, c * (cols + pad) : c * (cols + pad) + cols
        ] = image
    return out


def plot_misclassified(
    images: Any,
    y_true: Any,
    y_pred: Any,
    *,
    classes: Sequence[str],
    max_images: int | None = None,
    ncols: int = 16,
    tile: float = 0.85,
    title: str = "",
) -> Figure:
    """Show every misclassified image with the wrong prediction drawn on it.

    The images are tiled into one picture (fast even for hundreds of them).
    Each tile carries its predicted, wrong class in bold along its lower edge
    and its true class, small, in its upper left corner.

    Parameters
    ----------
    images : array_like
        All images, aligned with ``y_true`` and ``y_pred``.
    max_images : int, optional
        Show at most this many (the first ones); all by default.
    ncols : int
        Tiles per row.
    tile : float
        Side of one tile in inches.

    Examples
    --------
    >>> x = np.zeros((3, 8, 8))
    >>> fig = plot_misclassified(x, [0, 1, 1], [0, 0, 1], classes=("a", "b"))
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['b', 'a']
    >>> plot_misclassified(x, [0, 1, 1], [0, 0, 1], classes="ab")
    Traceback (most recent call last):
    ...
    TypeError: classes must be a non-empty sequence of class names
    """
    x = _images(images)
    t, p, names = _pair(y_true, y_pred, classes)
    if len(x) != len(t):
        raise ValueError(f"images must have one entry per label, got {len(x)} for {len(t)}")
    wrong = np.flatnonzero(t != p)
    if max_images is not None:
        wrong = wrong[: positive_int("max_images", max_images)]
    if len(wrong) == 0:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        return fig
    ncols = min(positive_int("ncols", ncols), len(wrong))
    nrows = int(np.ceil(len(wrong) / ncols))
    pad = max(1, x.shape[1] // 14)
    fig, ax = plt.subplots(figsize=(tile * ncols, tile * nrows + 0.5))
    _show(ax, montage(x[wrong], ncols=ncols, pad=pad))
    rows, cols = x.shape[1] + pad, x.shape[2] + pad
    for k, i in enumerate(wrong):
        r, c = divmod(k, ncols)
        ax.text(c * cols + 1, r * rows + 1, names[t[i]], ha="left", va="top",
                color="white", fontsize=6, bbox=_LABEL_BOX)  # fmt: skip
        ax.text(c * cols + (cols - pad) / 2, r * rows + rows - pad - 1, names[p[i]],
                ha="center", va="bottom", color="white", fontsize=8, fontweight="bold",
                bbox=_LABEL_BOX)  # fmt: skip
    ax.set_title(
        title or f"{len(wrong)} misclassified images: prediction in bold, true class top left"
    )
    fig.tight_layout()
    return fig


def top_confident(probs: Any, *, k: int = 5) -> np.ndarray:
    """Return, for every class, the indices of the ``k`` images with the highest probability.

    Returns
    -------
    numpy.ndarray
        ``int64`` array ``(n_classes, k)``; row ``c`` lists images by
        decreasing ``probs[:, c]``, whatever their true class.

    Examples
    --------
    >>> top_confident(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), k=2).tolist()
    [[0, 2], [1, 2]]
    """
    pr = _probs(probs)
    k = positive_int("k", k)
    if k > len(pr):
        raise ValueError(f"k must be at most the {len(pr)} images, got {k}")
    return np.argsort(-pr, axis=0, kind="stable")[:k].T.astype(np.int64)


def plot_top_confident(
    images: Any,
    probs: Any,
    *,
    classes: Sequence[str],
    y_true: Any = None,
    k: int = 5,
    size: float = 1.1,
    title: str = "",
) -> Figure:
    """Show the ``k`` most confident images of every class, one row per class.

    Panel titles give the probability; with ``y_true``, an image whose true
    class differs from the row's is flagged with its true class.

    Examples
    --------
    >>> fig = plot_top_confident(np.zeros((3, 4, 4)), np.array([[0.9, 0.1], [0.2, 0.8],
    ...                          [0.6, 0.4]]), classes=("a", "b"), y_true=[0, 1, 1], k=2)
    >>> fig.axes[1].get_title(), fig.axes[0].get_ylabel()
    ('p=0.60 (true: b)', 'a')
    """
    x = _images(images)
    names = _classes(classes)
    pr = _probs(probs, len(x))
    if pr.shape[1] != len(names):
        raise ValueError(f"probs must have one column per class ({len(names)}), got {pr.shape}")
    truth = None if y_true is None else _labels("y_true", y_true, len(names))
    top = top_confident(pr, k=k)
    fig, axes = plt.subplots(
        len(names), k, figsize=(size * k + 0.6, size * len(names) + 0.5), squeeze=False
    )
    for c, row in enumerate(top):
        for j, i in enumerate(row):
            ax = axes[c, j]
            _show(ax, x[i])
            label = f"p={pr[i, c]:.2f}"
            if truth is not None and truth[i] != c:
                label += f" (true: {names[truth[i]]})"
            ax.set_title(label, fontsize=7)
        axes[c, 0].set_ylabel(names[c], rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title or f"The {k} most confident images of each class")
    fig.tight_layout()
    return fig


def most_wrong(
    probs: Any, y_true: Any, *, label: int, k: int = 5, toward: int | None = None
) -> np.ndarray:
    """Return the misclassified images of class ``label``, most wrong first.

    Without ``toward`` they are sorted by increasing probability of their
    true class; with ``toward=c`` by decreasing probability of class ``c``
    (seed 002: "the deer with the highest scores for cat").  At most ``k``.

    Examples
    --------
    >>> p = np.array([[0.3, 0.7], [0.9, 0.1], [0.45, 0.55], [0.2, 0.8]])
    >>> most_wrong(p, [0, 0, 0, 1], label=0).tolist()
    [0, 2]
    """
    t = _labels("y_true", y_true)
    pr = _probs(probs, len(t))
    label = non_negative_int("label", label)
    if label >= pr.shape[1]:
        raise ValueError(f"label must be < {pr.shape[1]}, got {label}")
    k = positive_int("k", k)
    idx = np.flatnonzero((t == label) & (pr.argmax(1) != label))
    if toward is None:
        order = np.argsort(pr[idx, label], kind="stable")
    else:
        toward = non_negative_int("toward", toward)
        if toward >= pr.shape[1]:
            raise ValueError(f"toward must be < {pr.shape[1]}, got {toward}")
        order = np.argsort(-pr[idx, toward], kind="stable")
    return idx[order][:k].astype(np.int64)


def plot_predictions(
    images: Any,
    probs: Any,
    y_true: Any,
    indices: Any,
    *,
    classes: Sequence[str],
    size: float = 1.9,
    title: str = "",
) -> Figure:
    """Show chosen images titled with the true and the predicted class and their probabilities.

    Examples
    --------
    >>> p = np.array([[0.3, 0.7], [0.9, 0.1]])
    >>> fig = plot_predictions(np.zeros((2, 4, 4)), p, [0, 0], [0], classes=("a", "b"))
    >>> fig.axes[0].get_title()
    'true a: 0.30\\npred b: 0.70'
    """
    x = _images(images)
    names = _classes(classes)
    t = _labels("y_true", y_true, len(names))
    pr = _probs(probs, len(x))
    idx = _labels("indices", indices, len(x)) if len(indices) else np.zeros(0, np.int64)
    if len(idx) == 0:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no images to show", ha="center", va="center")
        return fig
    fig, axes = _grid(len(idx), len(idx), size)
    for ax, i in zip(axes.flat, idx, strict=False):
        _show(ax, x[i])
        pred = int(pr[i].argmax())
        true_line = f"true {names[t[i]]}: {pr[i, t[i]]:.2f}"
        ax.set_title(f"{true_line}\npred {names[pred]}: {pr[i, pred]:.2f}", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- embedding


def pca_embedding(features: Any, *, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project features onto their first principal components (centred, not scaled).

    Returns
    -------
    coords : numpy.ndarray
        ``(N, n_components)`` projections.
    explained : numpy.ndarray
        Share of the total variance each component explains.

    Examples
    --------
    >>> x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    >>> coords, explained = pca_embedding(x, n_components=1)
    >>> coords.shape, explained.round(3).tolist()
    ((3, 1), [1.0])
    """
    from sklearn.decomposition import PCA

    x = array("features", features, ndim=2, dtype_kind="uif")
    n_components = positive_int("n_components", n_components)
    if n_components > min(x.shape):
        raise ValueError(f"n_components must be at most {min(x.shape)}, got {n_components}")
    pca = PCA(n_components=n_components, svd_solver="full").fit(x)
    return pca.transform(x), pca.explained_variance_ratio_


def closest_classes(
    coords: Any, labels: Any, *, classes: Sequence[str], k: int = 3
) -> list[tuple[str, str, float]]:
    """Return the ``k`` pairs of classes whose centres (mean points) lie closest.

    Examples
    --------
    >>> pts = np.array([[0.0, 0], [0, 1], [5, 0], [5, 1], [0.5, 0.5]])
    >>> closest_classes(pts, [0, 0, 1, 1, 2], classes=("a", "b", "c"), k=1)
    [('a', 'c', 0.5)]
    """
    names = _classes(classes)
    xy = array("coords", coords, ndim=2, dtype_kind="uif").astype(float)
    y = _labels("labels", labels, len(names))
    if len(y) != len(xy):
        raise ValueError(f"labels must have one entry per row of coords, got {len(y)}")
    present = np.unique(y)
    centres = np.stack([xy[y == c].mean(0) for c in present])
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    rows, cols = np.triu_indices(len(present), k=1)
    order = np.argsort(dist[rows, cols], kind="stable")[: positive_int("k", k)]
    return [
        (names[present[rows[o]]], names[present[cols[o]]], round(float(dist[rows[o], cols[o]]), 6))
        for o in order
    ]


def nearest_centre_distances(
    coords: Any, labels: Any, *, classes: Sequence[str]
) -> dict[str, float]:
    """Return, for every class present, the distance from its centre to the nearest other centre.

    The class with the largest value is the most isolated one on the map.

    Examples
    --------
    >>> pts = np.array([[0.0, 0], [0, 1], [5, 0], [5, 1], [0.5, 0.5]])
    >>> nearest_centre_distances(pts, [0, 0, 1, 1, 2], classes=("a", "b", "c"))
    {'a': 0.5, 'b': 4.5, 'c': 0.5}
    """
    names = _classes(classes)
    xy = array("coords", coords, ndim=2, dtype_kind="uif").astype(float)
    y = _labels("labels", labels, len(names))
    if len(y) != len(xy):
        raise ValueError(f"labels must have one entry per row of coords, got {len(y)}")
    present = np.unique(y)
    if len(present) < 2:
        raise ValueError("labels must contain at least two classes")
    centres = np.stack([xy[y == c].mean(0) for c in present])
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    return {names[c]: round(float(d), 6) for c, d in zip(present, dist.min(1), strict=True)}


def plot_embedding(
    coords: Any,
    labels: Any,
    *,
    classes: Sequence[str],
    explained: Any = None,
    title: str = "",
) -> Figure:
    """Scatter the first two coordinates coloured by class, with each class named at its centre.

    The names make the plot readable without telling colours apart.

    Examples
    --------
    >>> fig = plot_embedding(np.array([[0.0, 0], [1, 1]]), [0, 1], classes=("a", "b"),
    ...                      explained=[0.5, 0.2])
    >>> fig.axes[0].get_xlabel()
    'PC 1 (50.0% of the variance)'
    """
    names = _classes(classes)
    xy = array("coords", coords, ndim=2, dtype_kind="uif")
    if xy.shape[1] < 2:
        raise ValueError(f"coords must have at least 2 columns, got {xy.shape}")
    y = _labels("labels", labels, len(names))
    fig, ax = plt.subplots(figsize=(7.5, 6))
    colours = plt.get_cmap("viridis")(np.linspace(0, 1, len(names)))
    for c, name in enumerate(names):
        pts = xy[y == c]
        if len(pts) == 0:
            continue
        ax.scatter(pts[:, 0], pts[:, 1], s=9, alpha=0.6, color=colours[c], label=name)
        centre = np.median(pts[:, :2], axis=0)
        ax.text(*centre, name, fontsize=9, fontweight="bold", ha="center", bbox=_LABEL_BOX,
                color="white")  # fmt: skip
    for axis, setter in enumerate((ax.set_xlabel, ax.set_ylabel)):
        share = "" if explained is None else f" ({float(explained[axis]):.1%} of the variance)"
        setter(f"PC {axis + 1}{share}")
    ax.set_title(title or "The embedding on its first two principal components")
    ax.legend(fontsize=7, markerscale=2, ncols=2 if len(names) > 12 else 1, loc="best")
    fig.tight_layout()
    return fig
