"""Inputs a classifier was not trained on: rotated images and natural-image patches.

Two probes of what MC dropout's uncertainty is good for:

* :func:`rotate_images` and :func:`rotation_sweep` turn test images step by
  step (Gal and Ghahramani's rotated digit) and record the MC predictive
  mean, entropy and mutual information at each angle;
* :func:`photo_patches` and :func:`lfw_faces` cut images that belong to no
  class of the training set from the photos that ship with scikit-image,
  resized to the training images' size, so that their predictive entropy can
  be compared with that of the test set.

Both work offline and return ``uint8`` images in the layout of
:mod:`lessonlib.data`: ``(N, H, W)`` grey or ``(N, H, W, 3)`` colour.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lessonlib._validate import array, non_negative_int, positive_int
from lessonlib.data import to_float
from lessonlib.uncertainty import mc_predict, mutual_information, predictive_entropy

PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "moon",
    "page",
    "rocket",
    "text",
)
"""The scikit-image photos and textures :func:`photo_patches` cuts from (all bundled)."""


def _channels(channels: Any) -> int:
    channels = positive_int("channels", channels)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return channels


def _to_uint8(images: np.ndarray, channels: int) -> np.ndarray:
    """Floats in [0, 1], grey ``(N, H, W)``, to uint8 in the requested channel layout."""
    out = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=-1) if channels == 3 else out


def rotate_images(image: Any, *, angles: Sequence[float]) -> np.ndarray:
    """Return one image rotated anticlockwise by each angle (degrees), same size and dtype.

    Corners that come from outside the image are filled with 0 (black), as
    in the digits' background; bilinear interpolation keeps strokes smooth.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` or ``(H, W, C)``.
    angles : sequence of float
        Rotation angles in degrees.

    Returns
    -------
    numpy.ndarray
        ``(len(angles), H, W[, C])``, the dtype of ``image``.

    Examples
    --------
    >>> img = np.zeros((5, 5), np.uint8); img[0, 2] = 200  # a dot at the top
    >>> turned = rotate_images(img, angles=[0, 90, 180])
    >>> turned.shape, int(turned[1, 2, 0]), int(turned[2, 4, 2])  # left, then bottom
    ((3, 5, 5), 200, 200)
    """
    from scipy import ndimage

    image = array("image", image, ndim=(2, 3), dtype_kind="uif")
    angles = array("angles", angles, ndim=1, dtype_kind="uif").astype(np.float64)
    src = image.astype(np.float64)
    out = [ndimage.rotate(src, a, axes=(1, 0), reshape=False, order=1) for a in angles]
    out = np.stack(out)
    if image.dtype.kind in "ui":
        info = np.iinfo(image.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(image.dtype)


@dataclass(frozen=True)
class RotationSweep:
    """MC predictions for images turned step by step.

    Attributes
    ----------
    angles : numpy.ndarray
        ``(A,)`` angles in degrees.
    images : numpy.ndarray
        ``(K, A, H, W[, C])`` the rotated images.
    mean : numpy.ndarray
        ``(K, A, C)`` MC predictive mean per image and angle.
    entropy, mutual_information : numpy.ndarray
        ``(K, A)`` predictive entropy and mutual information (nats).
    """

    angles: np.ndarray
    images: np.ndarray
    mean: np.ndarray
    entropy: np.ndarray
    mutual_information: np.ndarray


def _is_torch(model: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def rotation_sweep(
    model: Any,
    images: Any,
    *,
    angles: Sequence[float],
    samples: int,
    seed: int | None = None,
    after: str | None = None,
) -> RotationSweep:
    """Rotate each image through ``angles`` and summarise ``samples`` MC passes at each angle.

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
        A classifier returning logits, with dropout (or another random layer).
    images : array_like
        ``(K, H, W)`` or ``(K, H, W, C)`` images in :mod:`lessonlib.data`'s
        layout (``uint8`` or floats in [0, 1]); the layout the model needs
        (channels first for torch) is made here.
    angles : sequence of float
        Angles in degrees.
    samples : int
        MC passes per rotated image.
    seed : int, optional
        Seed for the dropout masks.
    after : str, optional
        For a torch ``nn.Sequential``: compute the layers up to this child
        once and sample only the rest (:func:`lessonlib.mc_dropout.mc_predict_head`).

    Returns
    -------
    RotationSweep

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8),
    ...                           torch.nn.Dropout(0.5), torch.nn.Linear(8, 3))
    >>> sweep = rotation_sweep(net, np.ones((2, 4, 4), np.uint8), angles=[0, 90],
    ...                        samples=20, seed=0, after="0")
    >>> sweep.mean.shape, sweep.entropy.shape, sweep.images.shape
    ((2, 2, 3), (2, 2), (2, 2, 4, 4))
    """
    images = array("images", images, ndim=(3, 4), dtype_kind="uif")
    samples = positive_int("samples", samples)
    if seed is not None:
        seed = non_negative_int("seed", seed)
    turned = np.stack([rotate_images(img, angles=angles) for img in images])
    k, a = turned.shape[:2]
    flat = turned.reshape(k * a, *turned.shape[2:])
    torch_model = _is_torch(model)
    x = to_float(flat, channels_last=not torch_model)
    if after is not None:
        from lessonlib.mc_dropout import mc_predict_head

        if not torch_model:
            raise TypeError("after is only supported for torch models")
        probs = mc_predict_head(
            model, x, samples=samples, after=after, seed=seed, show_progress=False
        )
    else:
        probs = mc_predict(model, x, samples=samples, seed=seed, show_progress=False)
    return RotationSweep(
        angles=np.asarray(angles, dtype=np.float64),
        images=turned,
        mean=probs.mean(axis=0).reshape(k, a, -1),
        entropy=predictive_entropy(probs).reshape(k, a),
        mutual_information=mutual_information(probs).reshape(k, a),
    )


@functools.cache
def _grey_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as grey floats in [0, 1]."""
    from skimage import color, data, util

    img = getattr(data, name)()
    if img.ndim == 3:
        img = color.rgb2gray(img[..., :3])
    return util.img_as_float(img)


def photo_patches(
    *,
    n: int,
    size: int,
    seed: int,
    channels: int = 1,
    sides: tuple[int, int] | None = None,
    names: Sequence[str] = PHOTOS,
) -> np.ndarray:
    """Cut ``n`` random square patches from scikit-image's photos and resize them to ``size``.

    Patches are taken from the photos in turn (so every photo contributes
    about equally), each with a random side in ``sides`` and a random
    position; grey values are rescaled to the full range [0, 255] so that
    they are as bright as the digits.

    Parameters
    ----------
    n : int
        Number of patches.
    size : int
        Side of the returned patches in pixels.
    seed : int
        Seed of the random crops.
    channels : {1, 3}
        Grey ``(n, size, size)`` or grey repeated to RGB ``(n, size, size, 3)``.
    sides : tuple of int, optional
        Smallest and largest crop side; defaults to ``(2 * size, 5 * size)``.
    names : sequence of str
        Names of ``skimage.data`` functions to cut from.

    Returns
    -------
    numpy.ndarray
        ``uint8`` patches.

    Examples
    --------
    >>> patches = photo_patches(n=4, size=28, seed=0)
    >>> patches.shape, patches.dtype, int(patches.max())
    ((4, 28, 28), dtype('uint8'), 255)
    """
    from skimage.transform import resize

    n, size = positive_int("n", n), positive_int("size", size)
    seed, channels = non_negative_int("seed", seed), _channels(channels)
    low, high = sides if sides is not None else (2 * size, 5 * size)
    low, high = positive_int("sides", low), positive_int("sides", high)
    if low > high:
        raise ValueError(f"sides must be (smallest, largest), got {(low, high)}")
    if isinstance(names, str) or not names:
        raise ValueError("names must be a non-empty sequence of skimage.data photo names")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size))
    for i in range(n):
        photo = _grey_photo(names[i % len(names)])
        side = int(rng.integers(low, min(high, *photo.shape) + 1))
        row = int(rng.integers(0, photo.shape[0] - side + 1))
        col = int(rng.integers(0, photo.shape[1] - side + 1))
        patch = resize(photo[row : row + side, col : col + side], (size, size), anti_aliasing=True)
        span = patch.max() - patch.min()
        out[i] = (patch - patch.min()) / span if span > 0 else patch
    return _to_uint8(out, channels)


def lfw_faces(*, size: int, channels: int = 1, n: int = 100) -> np.ndarray:
    """Return the face patches of scikit-image's ``lfw_subset``, resized to ``size``.

    ``skimage.data.lfw_subset()`` holds 100 faces and then 100 non-faces, all
    25x25 grey patches from Labeled Faces in the Wild; this returns the first
    ``n`` faces.

    Parameters
    ----------
    size : int
        Side of the returned images.
    channels : {1, 3}
        Grey or grey repeated to RGB.
    n : int
        Number of faces, at most 100.

    Returns
    -------
    numpy.ndarray
        ``uint8`` images ``(n, size, size[, 3])``.

    Examples
    --------
    >>> faces = lfw_faces(size=28, n=5)
    >>> faces.shape, faces.dtype
    ((5, 28, 28), dtype('uint8'))
    """
    from skimage.data import lfw_subset
    from skimage.transform import resize

    size, channels, n = positive_int("size", size), _channels(channels), positive_int("n", n)
    if n > 100:
        raise ValueError(f"n must be at most 100 (lfw_subset has 100 faces), got {n}")
    faces = lfw_subset()[:n]
    resized = np.stack([resize(f, (size, size), anti_aliasing=True) for f in faces])
    return _to_uint8(resized, channels)


__all__ = [
    "PHOTOS",
    "RotationSweep",
    "lfw_faces",
    "photo_patches",
    "rotate_images",
    "rotation_sweep",
]
