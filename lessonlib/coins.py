"""Counting real objects: crops of scikit-image's ``coins`` photo, labelled by segmentation.

``skimage.data.coins()`` is a 303 x 384 grey photo of 24 old coins on a dark
background, in four rows of six.  To count coins in crops we need labels, and
labels made by a program must themselves be checked.  The pieces:

* :func:`segment_coins` - watershed on the Sobel gradient from sure-background
  and sure-coin markers, holes filled, specks dropped (the recipe of
  scikit-image's own coins tutorial), returning a label image;
* :func:`coin_centres` - the centroid of each segmented coin;
* :data:`CENTRES_BY_EYE` - the 24 centres marked by hand on a gridded plot of
  the photo, to check the segmentation against (:func:`match_centres`);
* :func:`coin_crops` - square crops of random sizes at random places inside a
  rectangle of the photo, each labelled with the number of coin centres it
  contains (:func:`counts_in_crops`: a coin counts if its centre lies in the
  crop, even when the crop cuts it); crops with a centre within a few pixels
  of their border are drawn again (:func:`clear_of_border`), because there
  the label depends on exactly where the centre is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lessonlib._validate import array, non_negative_int, positive_float, positive_int

COIN_COUNT = 24
"""Coins in ``skimage.data.coins()``, counted by eye."""

CENTRES_BY_EYE = np.array(
    [
        *[(55, 45), (57, 100), (50, 155), (52, 210), (55, 275), (45, 335)],
        *[(122, 45), (122, 102), (125, 152), (122, 205), (118, 265), (127, 340)],
        *[(195, 43), (195, 100), (197, 155), (195, 210), (195, 270), (188, 350)],
        *[(258, 45), (265, 115), (260, 172), (262, 240), (260, 300), (265, 358)],
    ],
    dtype=float,
)
"""(row, col) of every coin's centre, read off a plot of the photo with a 20-px grid."""
CENTRES_BY_EYE.flags.writeable = False

__all__ = [
    "CENTRES_BY_EYE",
    "COIN_COUNT",
    "CoinCrops",
    "clear_of_border",
    "coin_centres",
    "coin_crops",
    "counts_in_crops",
    "crops_at",
    "load_coins",
    "match_centres",
    "plot_segmentation",
    "segment_coins",
]


def load_coins() -> np.ndarray:
    """Return the coins photo, ``uint8`` of shape (303, 384) (bundled with scikit-image)."""
    from skimage import data

    return data.coins()


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _grey_uint8(name: str, image: Any) -> np.ndarray:
    arr = array(name, image, ndim=2, dtype_kind="u")
    if arr.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 grey image, got {arr.dtype}")
    return arr


def segment_coins(
    image: np.ndarray | None = None, *, background: int = 30, coin: int = 150, min_area: int = 100
) -> np.ndarray:
    """Segment bright round objects on a dark background into labelled regions.

    Pixels darker than ``background`` are sure background and pixels brighter
    than ``coin`` sure coin; a watershed on the Sobel gradient grows both
    marker sets until they meet at the strongest edges.  Holes inside coins
    are filled and regions smaller than ``min_area`` pixels are dropped.

    Parameters
    ----------
    image : uint8 array (H, W), optional
        Defaults to :func:`load_coins`.
    background, coin : int
        Grey-level thresholds of the two marker sets, ``background < coin``.
    min_area : int
        Smallest region kept, in pixels.

    Returns
    -------
    numpy.ndarray
        ``int`` labels of shape (H, W): 0 for the background, 1..K for coins.

    Examples
    --------
    >>> labels = segment_coins()
    >>> int(labels.max())
    24
    """
    from scipy import ndimage as ndi
    from skimage import filters, measure, segmentation

    image = load_coins() if image is None else _grey_uint8("image", image)
    background, coin = non_negative_int("background", background), non_negative_int("coin", coin)
    min_area = positive_int("min_area", min_area)
    if not background < coin:
        raise ValueError(f"background must be below coin, got {background} and {coin}")
    markers = np.zeros(image.shape, dtype=np.int32)
    markers[image < background] = 1
    markers[image > coin] = 2
    regions = segmentation.watershed(filters.sobel(image), markers)
    labels = measure.label(ndi.binary_fill_holes(regions == 2))
    sizes = np.bincount(labels.ravel())
    keep = np.flatnonzero(sizes >= min_area)
    keep = keep[keep > 0]
    lookup = np.zeros(len(sizes), dtype=np.int64)
    lookup[keep] = np.arange(1, len(keep) + 1)
    return lookup[labels]


def coin_centres(labels: np.ndarray) -> np.ndarray:
    """Return the (row, col) centroid of every labelled region, ``float`` (K, 2).

    Examples
    --------
    >>> lab = np.zeros((5, 6), int); lab[1:4, 1:4] = 1; lab[2, 5] = 2
    >>> coin_centres(lab).tolist()
    [[2.0, 2.0], [2.0, 5.0]]
    """
    from skimage.measure import regionprops

    labels = array("labels", labels, ndim=2, dtype_kind="iu")
    props = regionprops(labels)
    return np.array([p.centroid for p in props], dtype=float).reshape(-1, 2)


def match_centres(
    found: np.ndarray, reference: np.ndarray, *, tolerance: float = 12.0
) -> tuple[int, int, int]:
    """Pair found centres with reference ones, one to one, by least total distance.

    Returns ``(matched, missed, extra)``: pairs closer than ``tolerance``
    pixels, reference centres left without a partner, and found centres left
    without one.

    Examples
    --------
    >>> match_centres(np.array([[0, 0], [10, 10], [50, 50]]), np.array([[1, 1], [11, 9]]))
    (2, 0, 1)
    """
    from scipy.optimize import linear_sum_assignment

    found = array("found", found, ndim=2, dtype_kind="iuf", non_empty=False).reshape(-1, 2)
    reference = array("reference", reference, ndim=2, dtype_kind="iuf").reshape(-1, 2)
    tolerance = positive_float("tolerance", tolerance)
    dist = np.linalg.norm(found[:, None, :] - reference[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(dist)
    matched = int(np.sum(dist[rows, cols] < tolerance))
    return matched, len(reference) - matched, len(found) - matched


def _sizes(crop_size: Any, n: int) -> np.ndarray:
    if isinstance(crop_size, (int, np.integer)) and not isinstance(crop_size, bool):
        return np.full(n, positive_int("crop_size", crop_size), dtype=np.int64)
    sizes = array("crop_size", crop_size, ndim=1, dtype_kind="iu").astype(np.int64)
    if len(sizes) != n or sizes.min() <= 0:
        raise ValueError(f"crop_size must be a positive int or one per crop ({n}), got {sizes}")
    return sizes


def _inside(centres: np.ndarray, corners: np.ndarray, sizes: np.ndarray, grow: float):
    lo = corners[:, None, :] - 0.5 - grow
    hi = lo + sizes[:, None, None] + 2 * grow
    return ((centres[None] >= lo) & (centres[None] < hi)).all(axis=2)


def _centres_corners(centres: Any, corners: Any) -> tuple[np.ndarray, np.ndarray]:
    centres = array("centres", centres, ndim=2, dtype_kind="iuf", non_empty=False).reshape(-1, 2)
    corners = array("corners", corners, ndim=2, dtype_kind="iu")
    if corners.shape[1] != 2:
        raise ValueError(f"corners must have shape (n, 2), got {corners.shape}")
    return centres.astype(float), corners.astype(np.int64)


def counts_in_crops(
    centres: np.ndarray, corners: np.ndarray, *, crop_size: int | np.ndarray
) -> np.ndarray:
    """Count, per crop, the centres that lie inside it.

    A centre at ``(r, c)`` is inside the crop of side ``s`` at corner
    ``(r0, c0)`` when ``r0 - 0.5 <= r < r0 + s - 0.5`` and likewise for
    columns, that is when it falls on one of the crop's pixels.

    Parameters
    ----------
    centres : array (K, 2)
        (row, col) of every object.
    corners : array of int (n, 2)
        Top-left (row, col) of every crop.
    crop_size : int or array of int (n,)
        One side for all crops, or one per crop.

    Examples
    --------
    >>> centres = np.array([[1.0, 1.0], [4.0, 4.0]])
    >>> counts_in_crops(centres, np.array([[0, 0], [2, 2], [0, 0]]), crop_size=[3, 3, 6]).tolist()
    [1, 1, 2]
    """
    centres, corners = _centres_corners(centres, corners)
    sizes = _sizes(crop_size, len(corners))
    return _inside(centres, corners, sizes, 0.0).sum(axis=1).astype(np.int64)


def clear_of_border(
    centres: np.ndarray, corners: np.ndarray, *, crop_size: int | np.ndarray, margin: float
) -> np.ndarray:
    """Return, per crop, whether no centre lies within ``margin`` pixels of its border.

    A centre that close to the border could fall on either side of it if it
    moved by ``margin`` pixels, so the crop's count is ambiguous: centres
    found by different methods (or marked by eye) may disagree there.
    ``margin=0`` marks every crop as clear.

    Examples
    --------
    >>> centres = np.array([[5.0, 5.0]])
    >>> corners = np.array([[0, 0], [4, 4], [20, 20]])
    >>> clear_of_border(centres, corners, crop_size=10, margin=2).tolist()
    [True, False, True]
    """
    centres, corners = _centres_corners(centres, corners)
    sizes = _sizes(crop_size, len(corners))
    margin = _non_negative("margin", margin)
    grown = _inside(centres, corners, sizes, margin)
    shrunk = _inside(centres, corners, sizes, -margin)
    return ~(grown & ~shrunk).any(axis=1)


def crops_at(
    image: np.ndarray, corners: np.ndarray, *, crop_size: int, out_size: int | None = None
) -> np.ndarray:
    """Cut square crops of one size at the given corners, optionally resized to ``out_size``.

    Resizing uses antialiased bilinear interpolation (``torch``): shrinking
    averages neighbouring pixels instead of skipping them.

    Returns
    -------
    numpy.ndarray
        ``uint8`` (n, out_size, out_size).

    Examples
    --------
    >>> img = np.arange(36, dtype=np.uint8).reshape(6, 6)
    >>> crops_at(img, np.array([[0, 0], [2, 3]]), crop_size=2)[1].tolist()
    [[15, 16], [21, 22]]
    >>> crops_at(img, np.array([[0, 0]]), crop_size=2, out_size=1).tolist()
    [[[4]]]
    """
    import torch
    from torch.nn import functional as F

    image = _grey_uint8("image", image)
    corners = array("corners", corners, ndim=2, dtype_kind="iu")
    crop_size = positive_int("crop_size", crop_size)
    out_size = crop_size if out_size is None else positive_int("out_size", out_size)
    if corners.shape[1] != 2:
        raise ValueError(f"corners must have shape (n, 2), got {corners.shape}")
    too_far = (corners < 0).any(axis=1) | (corners + crop_size > np.array(image.shape)).any(axis=1)
    if too_far.any():
        raise ValueError(f"corners: crop {int(np.argmax(too_far))} does not fit in the image")
    offsets = np.arange(crop_size)
    crops = image[
        corners[:, 0, None, None] + offsets[None, :, None],
        corners[:, 1, None, None] + offsets[None, None, :],
    ]
    if out_size == crop_size:
        return crops
    x = torch.from_numpy(crops[:, None].astype(np.float32))
    x = F.interpolate(x, size=(out_size, out_size), mode="bilinear", antialias=True)
    return x[:, 0].round().clamp(0, 255).numpy().astype(np.uint8)


@dataclass(frozen=True)
class CoinCrops:
    """Square crops of a photo and the number of object centres in each.

    Attributes
    ----------
    images : numpy.ndarray
        ``uint8`` (n, out_size, out_size): the crops, resized.
    counts : numpy.ndarray
        ``int64`` (n,): centres inside each crop (the labels).
    corners : numpy.ndarray
        ``int64`` (n, 2): top-left (row, col) of each crop in the photo.
    sizes : numpy.ndarray
        ``int64`` (n,): side of each crop in the photo, before resizing.
    """

    images: np.ndarray
    counts: np.ndarray
    corners: np.ndarray
    sizes: np.ndarray


def _span(name: str, span: Any) -> tuple[int, int]:
    if not isinstance(span, (tuple, list)) or len(span) != 2:
        raise TypeError(f"{name} must be a (low, high) pair, got {span!r}")
    start, stop = (non_negative_int(name, v) for v in span)
    if stop < start or (name != "sizes" and stop == start) or (name == "sizes" and start == 0):
        raise ValueError(f"{name} must be an increasing pair of valid values, got {span!r}")
    return start, stop


def coin_crops(
    image: np.ndarray,
    centres: np.ndarray,
    *,
    n: int,
    sizes: tuple[int, int],
    out_size: int,
    rows: tuple[int, int],
    cols: tuple[int, int],
    margin: float = 6.0,
    seed: int = 0,
) -> CoinCrops:
    """Cut ``n`` random square crops of random sizes, labelled by the centres inside.

    Each crop's side is drawn uniformly from ``sizes`` (inclusive) and its
    place uniformly inside the rectangle ``rows`` x ``cols`` (half-open).
    Crops with a centre within ``margin`` pixels of their border are drawn
    again (:func:`clear_of_border`), so every label is unambiguous;
    ``margin=0`` keeps every crop.  All
    crops are resized to ``out_size``, so objects appear at different scales.

    Returns
    -------
    CoinCrops

    Raises
    ------
    ValueError
        If the rectangle is smaller than the largest crop, or if too few
        clear crops turn up after 50 rounds of drawing.

    Examples
    --------
    >>> img = load_coins()
    >>> crops = coin_crops(img, CENTRES_BY_EYE, n=5, sizes=(80, 120), out_size=32,
    ...                    rows=(0, 303), cols=(0, 384), seed=0)
    >>> crops.images.shape, crops.counts.dtype
    ((5, 32, 32), dtype('int64'))
    """
    image = _grey_uint8("image", image)
    centres = array("centres", centres, ndim=2, dtype_kind="iuf", non_empty=False).reshape(-1, 2)
    n, out_size = positive_int("n", n), positive_int("out_size", out_size)
    low, high = _span("sizes", sizes)
    high += 1  # inclusive range
    (r0, r1), (c0, c1) = _span("rows", rows), _span("cols", cols)
    r1, c1 = min(r1, image.shape[0]), min(c1, image.shape[1])
    if min(r1 - r0, c1 - c0) < high - 1:
        raise ValueError(f"rows x cols ({r1 - r0} x {c1 - c0} px) cannot hold a {high - 1}-px crop")
    rng = np.random.default_rng(non_negative_int("seed", seed))
    corners, side = np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    for _ in range(50):
        s = rng.integers(low, high, size=4 * n)
        c = np.stack(
            [r0 + rng.integers(0, r1 - r0 - s + 1), c0 + rng.integers(0, c1 - c0 - s + 1)], 1
        )
        ok = clear_of_border(centres, c, crop_size=s, margin=margin)
        corners, side = np.r_[corners, c[ok]][:n], np.r_[side, s[ok]][:n]
        if len(side) == n:
            break
    else:
        raise ValueError(f"margin={margin} leaves too few clear crops; lower it or widen rows/cols")
    images = np.zeros((n, out_size, out_size), dtype=np.uint8)
    for s in np.unique(side):
        pick = side == s
        images[pick] = crops_at(image, corners[pick], crop_size=int(s), out_size=out_size)
    counts = counts_in_crops(centres, corners, crop_size=side)
    return CoinCrops(images=images, counts=counts, corners=corners, sizes=side)


def plot_segmentation(
    image: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    title: str = "",
) -> Any:
    """Show a photo with the outlines of its segmented regions and their centres.

    Centres found by the segmentation are drawn as dots; ``reference``
    centres (for example :data:`CENTRES_BY_EYE`) as crosses.

    Examples
    --------
    >>> img = np.zeros((8, 8), np.uint8); lab = np.zeros((8, 8), int); lab[2:5, 2:5] = 1
    >>> fig = plot_segmentation(img, lab, coin_centres(lab), title="demo")
    >>> fig.axes[0].get_title()
    'demo'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    image = _grey_uint8("image", image)
    labels = array("labels", labels, ndim=2, dtype_kind="iu")
    if labels.shape != image.shape:
        raise ValueError(f"labels must have the image's shape {image.shape}, got {labels.shape}")
    centres = array("centres", centres, ndim=2, dtype_kind="iuf", non_empty=False).reshape(-1, 2)
    rgb = np.repeat(image[..., None] / 255.0, 3, axis=2)
    rgb[find_boundaries(labels, mode="outer")] = plt.get_cmap("viridis")(0.9)[:3]
    fig, ax = plt.subplots(figsize=(5.2, 4.3))
    ax.imshow(rgb)
    ax.scatter(centres[:, 1], centres[:, 0], s=14, c="tab:orange", label="segmentation centre")
    if reference is not None:
        ref = array("reference", reference, ndim=2, dtype_kind="iuf").reshape(-1, 2)
        ax.scatter(ref[:, 1], ref[:, 0], s=40, marker="x", c="tab:blue", label="marked by eye")
    ax.set_xlabel("column (px)")
    ax.set_ylabel("row (px)")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    ax.set_title(title)
    fig.tight_layout()
    return fig
