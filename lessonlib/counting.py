"""Synthetic counting data: images of separate circles, labelled by their number (seed 003).

Seed 003 asks whether a CNN can count: it learns 1-5 circles almost perfectly
but stays near chance on 45-50.  :func:`make_circles` draws such images with
known ground truth.  Circles never overlap or touch, so the label is exactly
the number of connected blobs, which :func:`count_components` checks.

How the circles are placed
--------------------------
Each circle gets an integer centre and is accepted only if it keeps a clear
gap to every circle already in its image (random sequential placement).  All
images advance together: at each step every unfinished image tries a few
candidate centres at once, so a step is a few numpy operations whatever the
number of images, and 1,200 images of 45-50 circles take about a tenth of a
second instead of the ~50 s of a per-image Python loop.  Larger circles are
placed first.  A
request that cannot fit is refused up front by a packing bound, and a
request that fits in principle but keeps jamming is refused after a bounded
number of fresh starts, never by looping forever.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral

import numpy as np

from lessonlib._validate import array, non_negative_int, positive_int

FOREGROUND = 255
"""Pixel value of the circles; the background is 0."""

GAP = 1 + math.sqrt(2)
"""Extra centre distance, beyond the two radii, that keeps one clear pixel between disks."""

MAX_ATTEMPTS = 10
"""Fresh starts allowed per image before a crowded request is refused."""

_FAR = -(10**4)  # position of a circle that is not placed yet (int32-safe when squared)
_CANDIDATES = 4  # centres tried per image and step
_BUDGET = 50  # candidates per circle before an attempt is abandoned
_DRAW_CHUNK = 512  # images stamped at once, to bound memory


def _counts(counts: Iterable[int]) -> np.ndarray:
    if isinstance(counts, (str, bytes)) or not isinstance(counts, Iterable):
        raise TypeError(f"counts must be an iterable of ints, got {type(counts).__name__}")
    values = [non_negative_int("counts", c) for c in counts]
    if not values:
        raise ValueError("counts must not be empty")
    if len(set(values)) != len(values):
        raise ValueError(f"counts must not repeat a value, got {values}")
    return np.array(values, dtype=np.int64)


def _radius_range(radius: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(radius, Integral) and not isinstance(radius, bool):
        value = positive_int("radius", radius)
        return value, value
    if not isinstance(radius, (tuple, list)) or len(radius) != 2:
        raise TypeError(f"radius must be an int or a (min, max) pair, got {radius!r}")
    low, high = (positive_int("radius", r) for r in radius)
    if low > high:
        raise ValueError(f"radius range must have min <= max, got {tuple(radius)}")
    return low, high


def max_circles(*, image_size: int, radius: int) -> int:
    """Return an upper bound on how many separated circles fit in an image.

    Centres lie in a square of side ``a = image_size - 1 - 2 * radius`` and are
    at least ``D = 2 * radius + GAP`` apart.  Oler's packing inequality bounds
    such a point set by ``(2 / sqrt(3)) a**2 / D**2 + 4 a / (2 D) + 1``.
    Random placement jams well below this bound (roughly at 60% of it).

    Parameters
    ----------
    image_size : int
        Side of the square image in pixels.
    radius : int
        The smallest circle radius in pixels.

    Returns
    -------
    int
        No request for more circles than this can succeed.

    Examples
    --------
    >>> max_circles(image_size=64, radius=4)
    43
    >>> max_circles(image_size=9, radius=4)
    1
    """
    image_size = positive_int("image_size", image_size)
    radius = positive_int("radius", radius)
    side = image_size - 1 - 2 * radius
    if side < 0:
        return 0
    spacing = 2 * radius + GAP
    bound = 2 / math.sqrt(3) * side**2 / spacing**2 + 2 * side / spacing + 1
    return math.floor(bound)


def _labels(
    n_images: int, counts: np.ndarray, balanced: bool, rng: np.random.Generator
) -> np.ndarray:
    if not balanced:
        return rng.choice(counts, size=n_images)
    if n_images % len(counts):
        lower = n_images - n_images % len(counts)
        raise ValueError(
            f"n_images must be a multiple of len(counts)={len(counts)} when balanced=True, "
            f"got {n_images} (try {lower or len(counts)} or {lower + len(counts)})"
        )
    return rng.permutation(np.repeat(counts, n_images // len(counts)))


def _radii(labels: np.ndarray, low: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """Radii per circle slot, largest first in each image (big circles are placed first)."""
    width = max(int(labels.max()), 1)
    radii = rng.integers(low, high + 1, size=(len(labels), width))
    return -np.sort(-radii, axis=1)


def _try_place(
    labels: np.ndarray, radii: np.ndarray, image_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One attempt of random sequential placement for every image at once.

    At each step every unfinished image draws ``_CANDIDATES`` centres for its
    next circle and keeps the first one that clears all circles placed so far.
    Returns which images got all their circles, and the (row, col) centres.
    """
    n, width = radii.shape
    rows = np.full((n, width), _FAR, dtype=np.int32)
    cols = np.full((n, width), _FAR, dtype=np.int32)
    placed = np.zeros(n, dtype=np.int64)
    # squared centre distance must exceed need[r1 + r2] (the bound is irrational, never hit)
    need = np.floor((np.arange(2 * int(radii.max()) + 1) + GAP) ** 2).astype(np.int32)
    live = np.flatnonzero(labels > 0)
    for _ in range(-(-int(_BUDGET * labels.max() + 500) // _CANDIDATES)):
        if not live.size:
            break
        slot, top = placed[live], int(placed[live].max())
        r = radii[live, slot]
        shape = (live.size, _CANDIDATES)
        cand_r = rng.integers(r[:, None], (image_size - r)[:, None], size=shape, dtype=np.int32)
        cand_c = rng.integers(r[:, None], (image_size - r)[:, None], size=shape, dtype=np.int32)
        d_r = rows[live, None, :top] - cand_r[:, :, None]
        d_c = cols[live, None, :top] - cand_c[:, :, None]
        clear = d_r * d_r + d_c * d_c > need[radii[live, None, :top] + r[:, None, None]]
        ok = clear.all(axis=2)
        first = ok.argmax(axis=1)
        hit = ok[np.arange(live.size), first]
        rows[live[hit], slot[hit]] = cand_r[hit, first[hit]]
        cols[live[hit], slot[hit]] = cand_c[hit, first[hit]]
        placed[live[hit]] += 1
        live = live[placed[live] < labels[live]]
    return placed >= labels, np.stack([rows, cols], axis=2)


def _place(
    labels: np.ndarray, radii: np.ndarray, image_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Place every image's circles; images that jam start afresh, at most MAX_ATTEMPTS times."""
    centres = np.full((*radii.shape, 2), _FAR, dtype=np.int32)
    todo = np.arange(len(labels))
    for _ in range(MAX_ATTEMPTS):
        done, found = _try_place(labels[todo], radii[todo], image_size, rng)
        centres[todo[done]] = found[done]
        todo = todo[~done]
        if not todo.size:
            return centres
    raise ValueError(
        f"counts: could not place {labels[todo[0]]} circles in a {image_size}-px image "
        f"after {MAX_ATTEMPTS} fresh starts; lower counts or radius, or raise image_size"
    )


def _stamp(radius: int, image_size: int) -> np.ndarray:
    """Flat-index offsets of a disk of the given radius around its centre pixel."""
    from skimage.draw import disk

    side = 2 * radius + 1
    rows, cols = disk((radius, radius), radius + 0.5, shape=(side, side))
    return (rows - radius) * image_size + (cols - radius)


def _draw(
    labels: np.ndarray, radii: np.ndarray, centres: np.ndarray, image_size: int
) -> np.ndarray:
    images = np.zeros((len(labels), image_size, image_size), dtype=np.uint8)
    stamps = {int(r): _stamp(int(r), image_size) for r in np.unique(radii)}
    for start in range(0, len(labels), _DRAW_CHUNK):
        stop = min(start + _DRAW_CHUNK, len(labels))
        chunk = images[start:stop].reshape(-1)  # a view: writes land in images
        used = np.arange(radii.shape[1]) < labels[start:stop, None]
        for r, offsets in stamps.items():
            img, slot = np.nonzero(used & (radii[start:stop] == r))
            rows, cols = centres[start + img, slot].T
            base = img * image_size**2 + rows * image_size + cols
            chunk[(base[:, None] + offsets[None, :]).ravel()] = FOREGROUND
    return images


def make_circles(
    n_images: int,
    *,
    counts: Iterable[int] = range(1, 6),
    image_size: int = 64,
    radius: int | tuple[int, int] = 4,
    seed: int = 0,
    balanced: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw images of separate filled circles, labelled by how many there are.

    Every circle lies fully inside the image, and between any two circles there
    is at least one background pixel in every direction (diagonals included),
    so the circles never overlap or touch and the count is unambiguous under
    4- or 8-connectivity.  A disk of radius ``r`` is the set of pixels closer
    than ``r + 0.5`` to its integer centre (``skimage.draw.disk``), so it is
    ``2r + 1`` pixels wide.

    Parameters
    ----------
    n_images : int
        Number of images.  With ``balanced=True`` it must be a multiple of
        ``len(counts)``; no remainder is dropped or padded silently.
    counts : iterable of int
        The possible numbers of circles, for example ``range(45, 51)``.
    image_size : int
        Side of the square images in pixels.
    radius : int or (int, int)
        Circle radius in pixels, or an inclusive ``(min, max)`` range from
        which each circle draws its own radius uniformly.  Random radii stop
        the total amount of ink from giving the count away.
    seed : int
        Seed of the generator; the same arguments give the same images.
    balanced : bool
        If true every count appears exactly ``n_images / len(counts)`` times
        (in shuffled order); if false counts are drawn independently.

    Returns
    -------
    images : numpy.ndarray
        uint8 array of shape (n_images, image_size, image_size), 0 for the
        background and 255 (:data:`FOREGROUND`) for the circles.  Divide by
        255 for floats in [0, 1].
    labels : numpy.ndarray
        int64 array of shape (n_images,), the number of circles in each image.

    Raises
    ------
    ValueError
        If an argument is out of range, if the largest count exceeds the
        packing bound :func:`max_circles`, or if placement keeps jamming after
        :data:`MAX_ATTEMPTS` fresh starts.

    Examples
    --------
    >>> images, labels = make_circles(4, counts=[1, 2], image_size=16, radius=2, seed=0)
    >>> images.shape, images.dtype, sorted(labels.tolist())
    ((4, 16, 16), dtype('uint8'), [1, 1, 2, 2])
    >>> count_components(images).tolist() == labels.tolist()
    True
    >>> make_circles(2, counts=[10], image_size=16, radius=2)
    Traceback (most recent call last):
    ...
    ValueError: counts: at most 7 circles of radius 2 fit in a 16-px image ...
    """
    n_images = positive_int("n_images", n_images)
    counts_arr = _counts(counts)
    image_size = positive_int("image_size", image_size)
    low, high = _radius_range(radius)
    seed = non_negative_int("seed", seed)
    if not isinstance(balanced, bool):
        raise TypeError(f"balanced must be a bool, got {type(balanced).__name__}")
    if image_size < 2 * high + 1:
        raise ValueError(f"image_size must be at least 2 * radius + 1 = {2 * high + 1}")
    limit = max_circles(image_size=image_size, radius=low)
    if counts_arr.max() > limit:
        raise ValueError(
            f"counts: at most {limit} circles of radius {low} fit in a {image_size}-px image "
            f"with a clear gap (packing bound); got max(counts)={counts_arr.max()}"
        )
    rng = np.random.default_rng(seed)
    labels = _labels(n_images, counts_arr, balanced, rng)
    radii = _radii(labels, low, high, rng)
    centres = _place(labels, radii, image_size, rng)
    return _draw(labels, radii, centres, image_size), labels


def count_components(images: np.ndarray, *, connectivity: int = 2) -> int | np.ndarray:
    """Count the connected blobs of non-zero pixels, with ``skimage.measure.label``.

    Parameters
    ----------
    images : array_like
        One image (H, W) or a stack (N, H, W); non-zero pixels are foreground.
    connectivity : {1, 2}
        1 joins pixels that share an edge, 2 also joins diagonal neighbours.

    Returns
    -------
    int or numpy.ndarray
        The number of blobs, or one number per image for a stack.

    Examples
    --------
    >>> image = np.zeros((5, 5), dtype=np.uint8)
    >>> image[0, 0] = image[1, 1] = image[4, 4] = 255
    >>> count_components(image), count_components(image, connectivity=1)
    (2, 3)
    """
    from skimage.measure import label

    stack = array("images", images, ndim=(2, 3), dtype_kind="biuf")
    if isinstance(connectivity, bool) or connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity!r}")
    if stack.ndim == 2:
        return int(label(stack != 0, connectivity=connectivity).max())
    return np.array([label(im != 0, connectivity=connectivity).max() for im in stack])


__all__ = ["FOREGROUND", "GAP", "MAX_ATTEMPTS", "count_components", "make_circles", "max_circles"]
