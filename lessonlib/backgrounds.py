"""Digits on textured backgrounds: data sets for a Clever-Hans experiment.

A network that may choose between two cues that both predict the label
learns the easier one.  Seed 001 suspected its deer were recognised by the
woods behind them.  This module builds a controlled version of that
situation from offline data: MNIST digits composited on patches of
scikit-image's ``grass``, ``brick`` and ``gravel`` textures.

* ``pairing="matched"``: every class has its own texture (class ``k`` gets
  texture ``k``), so the background alone gives the class away;
* ``pairing="swapped"``: class ``k`` gets texture ``(k + 1) % K``, the
  test that exposes a network which learned the background;
* ``pairing="random"``: each image gets a random texture, a control in
  which the background carries no information;
* ``pairing="split"``: the left half of each background comes from one
  texture and the right half from another, a probe for where the network
  finds its evidence.

scikit-image's textures are grey.  By default each one is tinted with a
colour of its own (green grass, red brick, blue-grey gravel), as a real
background would be; ``tint=False`` keeps them grey.  Training sets take
their patches from the top half of each texture and test sets from the
bottom half, so no test background was seen during training.

:func:`mask_share` measures which fraction of a Grad-CAM map falls inside a
region, for example one half of a ``"split"`` background.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from lessonlib._validate import array, non_negative_int, one_of, positive_int

TEXTURE_TINTS: dict[str, tuple[float, float, float]] = {
    "grass": (0.45, 0.85, 0.35),
    "brick": (0.90, 0.45, 0.35),
    "gravel": (0.60, 0.60, 0.75),
}
"""RGB colour that multiplies each grey texture when ``tint=True``."""

PAIRINGS = ("matched", "swapped", "random", "split")
SPLITS = ("train", "test")

__all__ = [
    "PAIRINGS",
    "SPLITS",
    "TEXTURE_TINTS",
    "BackgroundSet",
    "assign_textures",
    "composite",
    "make_background_set",
    "mask_share",
    "texture",
    "texture_patches",
]


@dataclass(frozen=True)
class BackgroundSet:
    """Digits composited on textures, with the textures each image got.

    Attributes
    ----------
    images : ndarray (N, size, size, 3), uint8
        The composites, channels last.
    labels : ndarray (N,), int64
        Class of each image: the position of its digit in ``classes``.
    left_textures, right_textures : ndarray (N,), int64
        Index into ``texture_names`` of the texture behind the left and the
        right half of each image (equal, except for ``pairing="split"``).
    classes : tuple of str
        The digits, as class names.
    texture_names : tuple of str
        The textures; under ``pairing="matched"`` class ``k`` gets texture ``k``.
    pairing : str
        How textures were assigned (see the module docstring).
    """

    images: np.ndarray
    labels: np.ndarray
    left_textures: np.ndarray
    right_textures: np.ndarray
    classes: tuple[str, ...]
    texture_names: tuple[str, ...]
    pairing: str

    def channels_first(self) -> np.ndarray:
        """Return the images as float32 ``(N, 3, size, size)`` in [0, 1], for torch."""
        return np.ascontiguousarray(self.images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def _texture_name(name: object) -> str:
    return one_of("name", name, TEXTURE_TINTS)


@functools.cache
def _grey(name: str) -> np.ndarray:
    """Read a scikit-image texture once, as read-only float32 in [0, 1]."""
    from skimage import data as skdata

    grey = getattr(skdata, name)().astype(np.float32) / 255.0
    grey.flags.writeable = False
    return grey


def texture(name: str, *, tint: bool = True) -> np.ndarray:
    """Return one of scikit-image's textures as a float32 RGB image in [0, 1].

    Parameters
    ----------
    name : {"grass", "brick", "gravel"}
        The texture (512 x 512 pixels).
    tint : bool
        Multiply the grey texture by its colour in :data:`TEXTURE_TINTS`.

    Returns
    -------
    ndarray (512, 512, 3), float32

    Examples
    --------
    >>> grass = texture("grass")
    >>> grass.shape, grass.dtype, bool(grass[..., 1].mean() > grass[..., 0].mean())
    ((512, 512, 3), dtype('float32'), True)
    >>> bool(np.all(texture("brick", tint=False)[..., 0] == texture("brick", tint=False)[..., 2]))
    True
    """
    name = _texture_name(name)
    grey = _grey(name)
    colour = np.asarray(TEXTURE_TINTS[name] if tint else (1.0, 1.0, 1.0), dtype=np.float32)
    return grey[..., None] * colour


def texture_patches(
    name: str, *, n: int, size: int = 32, split: str = "train", tint: bool = True, seed: int = 0
) -> np.ndarray:
    """Cut ``n`` random square patches out of one texture.

    Parameters
    ----------
    name : {"grass", "brick", "gravel"}
        The texture.
    n : int
        Number of patches.
    size : int
        Side of each patch in pixels, at most 256.
    split : {"train", "test"}
        Cut from the top half of the texture (``"train"``) or from the
        bottom half (``"test"``), so the two never share a pixel.
    tint : bool
        See :func:`texture`.
    seed : int
        Seed of the random patch positions.

    Returns
    -------
    ndarray (n, size, size, 3), float32 in [0, 1]

    Examples
    --------
    >>> patches = texture_patches("gravel", n=4, size=8, seed=1)
    >>> patches.shape
    (4, 8, 8, 3)
    >>> texture_patches("gravel", n=1, size=300)
    Traceback (most recent call last):
    ...
    ValueError: size must be at most 256 (half a texture), got 300
    """
    image = texture(name, tint=tint)
    n = positive_int("n", n)
    size = positive_int("size", size)
    split = one_of("split", split, SPLITS)
    half = image.shape[0] // 2
    if size > half:
        raise ValueError(f"size must be at most {half} (half a texture), got {size}")
    rng = np.random.default_rng(seed)
    top = 0 if split == "train" else half
    rows = rng.integers(top, top + half - size + 1, size=n)
    cols = rng.integers(0, image.shape[1] - size + 1, size=n)
    offsets = np.arange(size)
    return image[(rows[:, None] + offsets)[:, :, None], (cols[:, None] + offsets)[:, None, :]]


def composite(digits: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
    """Draw white digits, centred, over colour backgrounds.

    Each digit's grey value is its opacity: a pixel of value ``v`` becomes
    ``(1 - v/255) * background + v/255 * white``.

    Parameters
    ----------
    digits : ndarray (N, h, w), uint8
        Grey digits, strokes bright (as in MNIST).
    backgrounds : ndarray (N, size, size, 3), float in [0, 1]
        One background per digit, at least as large as the digits.

    Returns
    -------
    ndarray (N, size, size, 3), uint8

    Examples
    --------
    >>> digit = np.array([[[0, 255], [255, 0]]], np.uint8)
    >>> out = composite(digit, np.full((1, 4, 4, 3), 0.5))
    >>> out[0, 1:3, 1:3, 0]
    array([[128, 255],
           [255, 128]], dtype=uint8)
    """
    digits = array("digits", digits, ndim=3, dtype_kind="u")
    backgrounds = array("backgrounds", backgrounds, ndim=4, dtype_kind="f")
    n, h, w = digits.shape
    if backgrounds.shape[0] != n or backgrounds.shape[3] != 3:
        raise ValueError(
            f"backgrounds must have shape ({n}, size, size, 3) to match digits, "
            f"got {backgrounds.shape}"
        )
    rows, cols = backgrounds.shape[1:3]
    if rows < h or cols < w:
        raise ValueError(
            f"backgrounds must be at least as large as the digits ({h}x{w}), got {rows}x{cols}"
        )
    if backgrounds.min() < 0 or backgrounds.max() > 1:
        raise ValueError("backgrounds must lie in [0, 1]")
    alpha = np.zeros((n, rows, cols, 1), np.float32)
    top, left = (rows - h) // 2, (cols - w) // 2
    alpha[:, top : top + h, left : left + w, 0] = digits / 255.0
    mixed = (1.0 - alpha) * backgrounds + alpha
    return np.round(mixed * 255.0).astype(np.uint8)


def assign_textures(
    labels: np.ndarray, *, n_textures: int, pairing: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Choose the texture behind the left and right half of each image.

    Parameters
    ----------
    labels : ndarray (N,) of int
        Class of each image, in ``[0, n_textures)``.
    n_textures : int
        Number of textures (one per class), at least 2.
    pairing : {"matched", "swapped", "random", "split"}
        See the module docstring.
    seed : int
        Seed for ``"random"`` and ``"split"``.

    Returns
    -------
    left, right : ndarray (N,), int64

    Examples
    --------
    >>> labels = np.array([0, 1, 2])
    >>> assign_textures(labels, n_textures=3, pairing="swapped")[0].tolist()
    [1, 2, 0]
    >>> left, right = assign_textures(labels, n_textures=3, pairing="split", seed=0)
    >>> bool(np.all(left != right))
    True
    """
    labels = array("labels", labels, ndim=1, dtype_kind="iu").astype(np.int64)
    n_textures = positive_int("n_textures", n_textures)
    pairing = one_of("pairing", pairing, PAIRINGS)
    if n_textures < 2:
        raise ValueError(f"n_textures must be at least 2, got {n_textures}")
    if labels.min() < 0 or labels.max() >= n_textures:
        raise ValueError(f"labels must lie in [0, {n_textures - 1}], one texture per class")
    rng = np.random.default_rng(seed)
    if pairing == "matched":
        left = labels.copy()
    elif pairing == "swapped":
        left = (labels + 1) % n_textures
    else:
        left = rng.integers(0, n_textures, size=len(labels))
    right = left.copy()
    if pairing == "split":
        right = (left + rng.integers(1, n_textures, size=len(labels))) % n_textures
    return left, right


def _check_classes(classes: object) -> tuple[int, ...]:
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise TypeError(f"classes must be a sequence of digit labels, got {classes!r}")
    if len(classes) < 2 or not all(
        isinstance(c, Integral) and not isinstance(c, bool) for c in classes
    ):
        raise ValueError(f"classes must hold at least 2 integer labels, got {classes!r}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must not repeat a label, got {classes!r}")
    return tuple(int(c) for c in classes)


def make_background_set(
    digits: np.ndarray,
    labels: np.ndarray,
    *,
    classes: Sequence[int],
    textures: Sequence[str] = ("grass", "brick", "gravel"),
    pairing: str = "matched",
    split: str = "train",
    size: int = 32,
    tint: bool = True,
    seed: int = 0,
) -> BackgroundSet:
    """Composite the digits of some classes on textured backgrounds.

    Parameters
    ----------
    digits : ndarray (N, h, w), uint8
        Grey digits such as MNIST's.
    labels : ndarray (N,) of int
        Their digit labels; only the digits listed in ``classes`` are kept.
    classes : sequence of int
        The digits to keep; ``classes[k]`` becomes class ``k``.
    textures : sequence of str
        One texture name per class (see :data:`TEXTURE_TINTS`).
    pairing : {"matched", "swapped", "random", "split"}
        How textures are assigned (see the module docstring).
    split : {"train", "test"}
        Which half of each texture the patches come from.
    size : int
        Side of the output images.
    tint : bool
        Colour the textures (see :func:`texture`).
    seed : int
        Seed of the texture choice and of the patch positions.

    Returns
    -------
    BackgroundSet

    Examples
    --------
    >>> digits = np.zeros((4, 28, 28), np.uint8); labels = np.array([4, 6, 9, 1])
    >>> s = make_background_set(digits, labels, classes=(4, 6, 9), split="test")
    >>> s.images.shape, s.labels.tolist(), s.left_textures.tolist(), s.classes
    ((3, 32, 32, 3), [0, 1, 2], [0, 1, 2], ('4', '6', '9'))
    """
    digits = array("digits", digits, ndim=3, dtype_kind="u")
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    if len(digits) != len(labels):
        raise ValueError(
            f"labels must have one entry per digit, got {len(labels)} for {len(digits)}"
        )
    classes = _check_classes(classes)
    size = positive_int("size", size)
    split = one_of("split", split, SPLITS)
    seed = non_negative_int("seed", seed)
    textures = tuple(_texture_name(t) for t in textures)
    if len(textures) != len(classes):
        raise ValueError(
            f"textures must name one texture per class ({len(classes)}), got {len(textures)}"
        )
    keep = np.isin(labels, classes)
    if not keep.any():
        raise ValueError(f"labels contain none of the classes {classes}")
    digits = digits[keep]
    new_labels = np.array([classes.index(c) for c in labels[keep]], dtype=np.int64)
    left, right = assign_textures(new_labels, n_textures=len(textures), pairing=pairing, seed=seed)
    backgrounds = np.empty((len(digits), size, size, 3), np.float32)
    half = size // 2
    sides = ((slice(0, half), left), (slice(half, size), right))
    for t, name in enumerate(textures):
        for s, (side, chosen) in enumerate(sides):
            idx = np.flatnonzero(chosen == t)
            if len(idx):
                patch_seed = seed + 7919 * t + 104729 * s  # its own patches per texture and side
                patches = texture_patches(
                    name, n=len(idx), size=size, split=split, tint=tint, seed=patch_seed
                )
                backgrounds[idx, :, side] = patches[:, :, side]
    return BackgroundSet(
        images=composite(digits, backgrounds),
        labels=new_labels,
        left_textures=left,
        right_textures=right,
        classes=tuple(str(c) for c in classes),
        texture_names=textures,
        pairing=pairing,
    )


def mask_share(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Return the fraction of each map's total that lies inside a mask.

    Parameters
    ----------
    maps : ndarray (N, H, W)
        Non-negative maps, such as Grad-CAM's.
    masks : ndarray (N, H, W) or (H, W) of bool
        The region of each map (one mask is used for every map).

    Returns
    -------
    ndarray (N,), float
        In [0, 1]; NaN for an all-zero map, which has no share anywhere.

    Examples
    --------
    >>> maps = np.array([[[1.0, 3.0]], [[0.0, 0.0]]])
    >>> mask_share(maps, np.array([[False, True]])).tolist()
    [0.75, nan]
    """
    maps = array("maps", maps, ndim=3, dtype_kind="uif").astype(float)
    masks = array("masks", masks, ndim=(2, 3), dtype_kind="b")
    if masks.shape[-2:] != maps.shape[1:] or (masks.ndim == 3 and len(masks) != len(maps)):
        raise ValueError(
            f"masks must have shape {maps.shape} or {maps.shape[1:]}, got {masks.shape}"
        )
    if maps.min() < 0:
        raise ValueError("maps must be non-negative")
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)
