"""Data augmentation: transform pipelines, on-the-fly datasets and small splits.

Augmentation makes new training images from old ones by transformations that
keep the label: a digit rotated by ten degrees is still the same digit.  The
transforms are random and are applied when an image is read, so every epoch
sees a fresh variant of every image (:class:`ArrayDataset`, :func:`make_loader`).

Pipelines:

* :func:`digit_transform` - small rotations, shifts and zooms for digits;
* :func:`seed004_torch` and :func:`seed004_keras` - seed 004's settings
  (rotation 40, shifts 0.2, shear 0.2, zoom 0.2, horizontal flip, nearest
  fill) in torchvision transforms v2 and in Keras 3 preprocessing layers;
* :func:`stl10_train_transform` / :func:`stl10_eval_transform` - seed 002's
  STL-10 pipeline (pad 4, random crop 96, resize 224, rotation 5, horizontal
  flip, ImageNet normalisation).

Every torch transform here takes a ``uint8`` image: a numpy array ``(H, W)`` or
``(H, W, C)``, a PIL image or a ``(C, H, W)`` tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from lessonlib._validate import array, non_negative_int, one_of, positive_int

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Seed 004's ImageDataGenerator settings, in the seed's own units.
SEED004 = {
    "rotation_range": 40,
    "width_shift_range": 0.2,
    "height_shift_range": 0.2,
    "shear_range": 0.2,
    "zoom_range": 0.2,
    "horizontal_flip": True,
    "fill_mode": "nearest",
}


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def _fraction(name: str, value: object) -> float:
    value = _non_negative(name, value)
    if value >= 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return value


def _size(name: str, value: object) -> tuple[int, int]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return positive_int(name, value[0]), positive_int(name, value[1])
    side = positive_int(name, value)
    return side, side


def shear_degrees(factor: float) -> float:
    """Convert a shear factor (Keras' unit) into a shear angle in degrees (torchvision's).

    A shear factor ``s`` moves a pixel ``s`` times its distance from the centre
    line sideways, which is the shear angle ``atan(s)``.

    Examples
    --------
    >>> round(shear_degrees(0.2), 2)
    11.31
    """
    return math.degrees(math.atan(_non_negative("factor", factor)))


def digit_transform(
    *, rotation: float = 12.0, shift: float = 0.1, zoom: float = 0.1, shear: float = 0.0
) -> v2.Transform:
    """Return a label-preserving random affine transform for digits.

    Small rotations, shifts and zooms leave a digit readable as itself.  No
    flip: a mirrored or upside-down digit can be another digit.

    Parameters
    ----------
    rotation : float
        Largest rotation in degrees (either direction).
    shift : float
        Largest shift as a fraction of the image side, in each direction.
    zoom : float
        Scale factors are drawn from ``[1 - zoom, 1 + zoom]``.
    shear : float
        Largest shear angle in degrees.

    Returns
    -------
    torchvision.transforms.v2.Transform
        Works on ``(H, W)`` numpy images and ``(1, H, W)`` tensors; the
        uncovered border is filled with black (0), the digits' background.

    Examples
    --------
    >>> digit = np.zeros((28, 28), np.uint8); digit[8:20, 12:16] = 255
    >>> out = digit_transform()(digit)
    >>> tuple(out.shape), out.dtype
    ((1, 28, 28), torch.uint8)
    >>> digit_transform(zoom=1.5)
    Traceback (most recent call last):
    ...
    ValueError: zoom must lie in [0, 1), got 1.5
    """
    rotation = _non_negative("rotation", rotation)
    shift = _fraction("shift", shift)
    zoom = _fraction("zoom", zoom)
    shear = _non_negative("shear", shear)
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomAffine(
                degrees=rotation,
                translate=(shift, shift),
                scale=(1 - zoom, 1 + zoom),
                shear=shear or None,
                interpolation=v2.InterpolationMode.BILINEAR,
                fill=0,
            ),
        ]
    )


def seed004_torch(
    *,
    size: int | tuple[int, int] = 150,
    rotation: float = 40.0,
    shift: float = 0.2,
    shear: float = 0.2,
    zoom: float = 0.2,
    horizontal_flip: bool = True,
    fill: str = "nearest",
) -> v2.Compose:
    """Return seed 004's augmentation in torchvision transforms v2.

    The image is resized to ``size``, then rotated, shifted, sheared and
    zoomed by one random affine map, and flipped left-right half the time.
    torchvision fills uncovered pixels with a constant only; Keras'
    ``fill_mode="nearest"`` repeats the nearest edge pixel instead.  To get the
    same look, ``fill="nearest"`` pads the image by its own size on every side
    with copies of the edge pixels, transforms the padded image (with the shift
    scaled down so it is the same number of pixels) and crops the centre back.

    Parameters
    ----------
    size : int or (int, int)
        Output (rows, cols); the seed used 150 x 150.
    rotation : float
        Largest rotation in degrees.
    shift : float
        Largest shift as a fraction of the width and of the height.
    shear : float
        Largest shear *factor* (Keras' unit); converted with :func:`shear_degrees`.
    zoom : float
        Scale factors are drawn from ``[1 - zoom, 1 + zoom]``.
    horizontal_flip : bool
        Flip left-right with probability 0.5.
    fill : {"nearest", "constant"}
        Repeat edge pixels, or fill with black.

    Examples
    --------
    >>> cat = np.full((60, 80, 3), 200, np.uint8)
    >>> out = seed004_torch(size=32)(cat)
    >>> tuple(out.shape), out.dtype, int(out.min())  # nearest fill: no black corners
    ((3, 32, 32), torch.uint8, 200)
    >>> seed004_torch(fill="wrap")
    Traceback (most recent call last):
    ...
    ValueError: fill must be one of 'nearest', 'constant'; got 'wrap'
    """
    rows, cols = _size("size", size)
    rotation = _non_negative("rotation", rotation)
    shift = _fraction("shift", shift)
    zoom = _fraction("zoom", zoom)
    degrees = shear_degrees(shear)
    fill = one_of("fill", fill, ["nearest", "constant"])
    pad = max(rows, cols) if fill == "nearest" else 0
    # RandomAffine shifts by a fraction of the image it sees; after padding, that
    # image is larger, so the fraction shrinks to keep the same shift in pixels.
    translate = (shift * cols / (cols + 2 * pad), shift * rows / (rows + 2 * pad))
    steps: list[Any] = [v2.ToImage(), v2.Resize((rows, cols), antialias=True)]
    if pad:
        steps.append(v2.Pad(pad, padding_mode="edge"))
    steps.append(
        v2.RandomAffine(
            degrees=rotation,
            translate=translate,
            scale=(1 - zoom, 1 + zoom),
            shear=degrees or None,
            interpolation=v2.InterpolationMode.BILINEAR,
            fill=0,
        )
    )
    if pad:
        steps.append(v2.CenterCrop((rows, cols)))
    if horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


def seed004_keras(
    *,
    rotation: float = 40.0,
    shift: float = 0.2,
    shear: float = 0.2,
    zoom: float = 0.2,
    horizontal_flip: bool = True,
    fill: str = "nearest",
    seed: int | None = None,
):
    """Return seed 004's augmentation as Keras 3 preprocessing layers.

    The settings have the same meaning as in :func:`seed004_torch`; the
    function converts them to each layer's unit: ``RandomRotation`` takes a
    fraction of a full turn (40 degrees is 40/360), ``RandomShear`` a shear
    factor, ``RandomZoom`` a signed fraction.  The layers only transform when
    called with ``training=True`` (as inside ``model.fit``); at inference they
    pass images through unchanged.

    Returns
    -------
    keras.Sequential
        Takes float ``(N, H, W, C)`` batches.

    Examples
    --------
    >>> aug = seed004_keras(seed=0)
    >>> [layer.__class__.__name__ for layer in aug.layers]  # doctest: +NORMALIZE_WHITESPACE
    ['RandomRotation', 'RandomTranslation', 'RandomShear', 'RandomZoom', 'RandomFlip']
    >>> x = np.ones((1, 16, 16, 3), np.float32)
    >>> bool((np.asarray(aug(x, training=False)) == x).all())
    True
    """
    from lessonlib.models_keras import import_keras

    keras = import_keras()
    layers = keras.layers
    rotation = _non_negative("rotation", rotation)
    shift = _fraction("shift", shift)
    shear = _non_negative("shear", shear)
    zoom = _fraction("zoom", zoom)
    fill = one_of("fill", fill, ["nearest", "constant"])
    if seed is not None:
        seed = non_negative_int("seed", seed)
    stack = [
        layers.RandomRotation(rotation / 360.0, fill_mode=fill, seed=seed),
        layers.RandomTranslation(shift, shift, fill_mode=fill, seed=seed),
        layers.RandomShear(x_factor=shear, y_factor=0.0, fill_mode=fill, seed=seed),
        layers.RandomZoom(zoom, fill_mode=fill, seed=seed),
    ]
    if horizontal_flip:
        stack.append(layers.RandomFlip("horizontal", seed=seed))
    return keras.Sequential(stack, name="seed004_augmentation")


def stl10_train_transform(
    *,
    pad: int = 4,
    crop: int = 96,
    size: int = 224,
    rotation: float = 5.0,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """Return seed 002's STL-10 training pipeline in transforms v2.

    Pad by ``pad`` pixels, take a random ``crop`` x ``crop`` window (so the
    object moves by up to ``pad`` pixels), resize to ``size``, rotate by up to
    ``rotation`` degrees, flip left-right half the time, scale to [0, 1] and
    normalise each channel with ImageNet's mean and standard deviation.

    Examples
    --------
    >>> out = stl10_train_transform()(np.zeros((96, 96, 3), np.uint8))
    >>> tuple(out.shape), out.dtype
    ((3, 224, 224), torch.float32)
    >>> round(float(out[0, 100, 100]), 3)  # a black pixel: (0 - 0.485) / 0.229
    -2.118
    """
    pad = non_negative_int("pad", pad)
    crop = positive_int("crop", crop)
    size = positive_int("size", size)
    rotation = _non_negative("rotation", rotation)
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Pad(pad),
            v2.RandomCrop(crop),
            v2.Resize(size, antialias=True),
            v2.RandomRotation(rotation),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def stl10_eval_transform(
    *,
    size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """Return seed 002's STL-10 test pipeline: resize and normalise, nothing random.

    Examples
    --------
    >>> img = np.zeros((96, 96, 3), np.uint8)
    >>> t = stl10_eval_transform()
    >>> bool(torch.equal(t(img), t(img)))
    True
    """
    size = positive_int("size", size)
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(size, antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def denormalize(
    image: torch.Tensor | np.ndarray,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Undo a per-channel normalisation for display: ``(C, H, W)`` -> ``(H, W, C)`` in [0, 1].

    Examples
    --------
    >>> x = stl10_eval_transform(size=4)(np.full((4, 4, 3), 255, np.uint8))
    >>> denormalize(x).shape, bool(np.allclose(denormalize(x), 1.0))
    ((4, 4, 3), True)
    """
    x = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else image
    x = array("image", x, ndim=3, dtype_kind="f")
    if x.shape[0] != len(mean) or len(mean) != len(std):
        raise ValueError(
            f"image must have one channel per mean/std entry, got shape {x.shape} "
            f"for {len(mean)} means and {len(std)} stds"
        )
    out = x * np.asarray(std)[:, None, None] + np.asarray(mean)[:, None, None]
    return np.clip(out.transpose(1, 2, 0), 0.0, 1.0)


def _as_uint8_image(image: np.ndarray) -> np.ndarray:
    return array("image", image, ndim=(2, 3), dtype_kind="u")


def _to_numpy_image(out: Any) -> np.ndarray:
    """``(C, H, W)`` tensor -> ``(H, W)`` (one channel) or ``(H, W, C)`` numpy array."""
    x = out.detach().cpu().numpy().transpose(1, 2, 0)
    return x[..., 0] if x.shape[-1] == 1 else x


def variants(image: np.ndarray, transform: Callable, *, n: int, seed: int) -> np.ndarray:
    """Return ``n`` random variants of one image under a torch transform.

    Parameters
    ----------
    image : numpy.ndarray
        A ``uint8`` image ``(H, W)`` or ``(H, W, C)``.
    transform : callable
        A torchvision transform that returns a ``(C, H, W)`` tensor.
    n : int
        Number of variants.
    seed : int
        Seeds torch's generator first, so the gallery is repeatable.

    Returns
    -------
    numpy.ndarray
        ``(n, H', W')`` or ``(n, H', W', C)``, in the transform's dtype.

    Examples
    --------
    >>> digit = np.zeros((28, 28), np.uint8); digit[8:20, 12:16] = 255
    >>> out = variants(digit, digit_transform(), n=4, seed=0)
    >>> out.shape, out.dtype
    ((4, 28, 28), dtype('uint8'))
    >>> bool((out == variants(digit, digit_transform(), n=4, seed=0)).all())
    True
    """
    image = _as_uint8_image(image)
    n = positive_int("n", n)
    if not callable(transform):
        raise TypeError(f"transform must be callable, got {type(transform).__name__}")
    steps = v2.Compose([v2.ToImage(), transform])
    torch.manual_seed(non_negative_int("seed", seed))
    return np.stack([_to_numpy_image(steps(image)) for _ in range(n)])


def keras_variants(image: np.ndarray, layers: Callable, *, n: int) -> np.ndarray:
    """Return ``n`` random variants of one ``uint8`` image under Keras augmentation layers.

    The image is repeated ``n`` times in one batch and passed through
    ``layers(batch, training=True)``; every image of a batch gets its own
    random transformation.  Returns ``uint8`` ``(n, H, W, C)``.

    Examples
    --------
    >>> img = np.full((16, 16, 3), 100, np.uint8)
    >>> out = keras_variants(img, seed004_keras(seed=1), n=3)
    >>> out.shape, out.dtype, int(out.min())
    ((3, 16, 16, 3), dtype('uint8'), 100)
    """
    image = _as_uint8_image(image)
    n = positive_int("n", n)
    if not callable(layers):
        raise TypeError(f"layers must be callable, got {type(layers).__name__}")
    x = image[..., None] if image.ndim == 2 else image
    batch = np.repeat(x[None].astype(np.float32), n, axis=0)
    out = np.asarray(layers(batch, training=True))
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out[..., 0] if image.ndim == 2 else out


def apply_each(images: np.ndarray, transform: Callable) -> np.ndarray:
    """Apply a torch transform to each ``uint8`` image of a batch; return ``uint8`` numpy.

    Examples
    --------
    >>> x = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    >>> apply_each(x, v2.RandomHorizontalFlip(p=1.0))[0].tolist()
    [[1, 0], [3, 2]]
    """
    images = array("images", images, ndim=(3, 4), dtype_kind="u")
    if not callable(transform):
        raise TypeError(f"transform must be callable, got {type(transform).__name__}")
    steps = v2.Compose([v2.ToImage(), transform])
    out = np.stack([_to_numpy_image(steps(img)) for img in images])
    if out.dtype != np.uint8:
        raise TypeError(f"transform must return uint8 images, got {out.dtype}")
    return out


class ArrayDataset(Dataset):
    """``uint8`` images and labels as a torch dataset, transformed when an item is read.

    Because the random transform runs in ``__getitem__``, each epoch draws a
    new variant of every image; nothing is stored twice.  Items are
    ``float32`` ``(C, H, W)`` tensors in [0, 1] (or whatever float the
    transform returns) and ``int64`` labels.

    Parameters
    ----------
    images : numpy.ndarray
        ``uint8`` ``(N, H, W)`` or ``(N, H, W, C)``.
    labels : numpy.ndarray
        Integer labels ``(N,)``.
    transform : callable, optional
        Takes and returns a ``(C, H, W)`` ``uint8`` image tensor.

    Examples
    --------
    >>> ds = ArrayDataset(np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 2]))
    >>> x, y = ds[1]
    >>> len(ds), tuple(x.shape), x.dtype, int(y)
    (3, (1, 28, 28), torch.float32, 1)
    """

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, *, transform: Callable | None = None
    ):
        images = array("images", images, ndim=(3, 4), dtype_kind="u")
        labels = array("labels", labels, ndim=1, dtype_kind="iu")
        if len(images) != len(labels):
            raise ValueError(
                f"labels must have one entry per image, got {len(labels)} for {len(images)}"
            )
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        chw = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        self.images = torch.from_numpy(np.ascontiguousarray(chw))
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.transform = transform
        self._to_float = v2.ToDtype(torch.float32, scale=True)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = tv_tensors.Image(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        return self._to_float(image).as_subclass(torch.Tensor), self.labels[index]


def make_loader(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    transform: Callable | None = None,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
) -> DataLoader:
    """Return a ``DataLoader`` over an :class:`ArrayDataset`, augmenting on the fly.

    Without a transform the batches are those of
    :func:`lessonlib.training.make_loader` (up to float rounding).  Shuffling uses its own seeded
    generator; the random transforms draw from torch's global generator, so
    seed it (``torch.manual_seed``) before training for a repeatable run.

    Examples
    --------
    >>> x = np.zeros((5, 28, 28), np.uint8); y = np.arange(5)
    >>> loader = make_loader(x, y, batch_size=2, transform=digit_transform(), shuffle=True)
    >>> [tuple(xb.shape) for xb, _ in loader]
    [(2, 1, 28, 28), (2, 1, 28, 28), (1, 1, 28, 28)]
    """
    batch_size = positive_int("batch_size", batch_size)
    num_workers = non_negative_int("num_workers", num_workers)
    dataset = ArrayDataset(images, labels, transform=transform)
    generator = torch.Generator().manual_seed(non_negative_int("seed", seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
    )


@dataclass(frozen=True)
class SmallSplit:
    """Train, validation and test images for a small-data experiment.

    Attributes
    ----------
    x_train, x_val, x_test : numpy.ndarray
        ``uint8`` images ``(N, H, W)`` or ``(N, H, W, 3)``.
    y_train, y_val, y_test : numpy.ndarray
        ``int64`` labels.
    source : str
        Where the images came from.
    classes : tuple of str
        Class names, indexed by label.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    classes: tuple[str, ...]


def small_split(split: Any, *, per_class: int, val_per_class: int, seed: int) -> SmallSplit:
    """Cut a small, class-balanced training set and a validation set from a larger one.

    Both come from the training images of ``split`` and do not overlap; the
    test images are kept whole, as the held-out set.

    Parameters
    ----------
    split : lessonlib.data.ImageSplit
        For example :func:`lessonlib.data.load_mnist`.
    per_class, val_per_class : int
        Training and validation images per class.
    seed : int
        Seeds the random choice.

    Examples
    --------
    >>> from lessonlib.data import ImageSplit
    >>> x = np.arange(12, dtype=np.uint8).reshape(12, 1, 1); y = np.repeat([0, 1], 6)
    >>> s = small_split(ImageSplit(x, y, x[:2], y[:2], "toy", ("a", "b")),
    ...                 per_class=2, val_per_class=3, seed=0)
    >>> np.bincount(s.y_train).tolist(), np.bincount(s.y_val).tolist()
    ([2, 2], [3, 3])
    >>> bool(set(s.x_train.ravel()) & set(s.x_val.ravel()))
    False
    """
    for attr in ("x_train", "y_train", "x_test", "y_test"):
        if not hasattr(split, attr):
            raise TypeError(f"split must have x_train/y_train/x_test/y_test, lacks {attr}")
    per_class = positive_int("per_class", per_class)
    val_per_class = positive_int("val_per_class", val_per_class)
    labels = array("split.y_train", split.y_train, ndim=1, dtype_kind="iu")
    rng = np.random.default_rng(non_negative_int("seed", seed))
    train_idx, val_idx = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if len(idx) < per_class + val_per_class:
            raise ValueError(
                f"per_class + val_per_class = {per_class + val_per_class} exceeds the "
                f"{len(idx)} training images of class {label}"
            )
        picked = rng.permutation(idx)
        train_idx.append(picked[:per_class])
        val_idx.append(picked[per_class : per_class + val_per_class])
    tr, va = np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))
    return SmallSplit(
        split.x_train[tr],
        labels[tr].astype(np.int64),
        split.x_train[va],
        labels[va].astype(np.int64),
        split.x_test,
        np.asarray(split.y_test).astype(np.int64),
        getattr(split, "source", ""),
        tuple(getattr(split, "classes", ())),
    )
