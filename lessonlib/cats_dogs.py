"""Cats vs dogs from scratch: seed 004's small convnet and a balanced Oxford-IIIT Pet split.

Seed 004 trains a four-block convnet (3,453,121 parameters at 150 x 150 px)
on 2,000 cat and dog photos, first plainly, then with augmentation and dropout.
Its Kaggle data is not freely downloadable; the course uses torchvision's
``OxfordIIITPet`` with ``target_types="binary-category"`` instead (about one
cat to two dogs), pools its two official splits and draws a balanced 2,000 /
1,000 / 1,000 split.  The resized images are cached as one ``.npz`` file.

Offline (the quick profile, or ``LESSONLIB_OFFLINE=1``) there are no pet
photos: :func:`load_cats_vs_dogs` then returns a small stand-in of random-noise
images with the same shapes, so that the lesson's code runs end to end.  Its
accuracies mean nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lessonlib._validate import array, non_negative_int, positive_int, probability
from lessonlib.augment import SmallSplit
from lessonlib.cache import DEFAULT_TIMEOUT, cache_dir, load_arrays, save_arrays
from lessonlib.profiles import Profile, is_offline
from lessonlib.profiles import profile as get_profile
from lessonlib.progress import progress

CLASSES = ("cat", "dog")
SEED_SIZES = (2000, 1000, 1000)
SEED_PARAMS = 3_453_121
PETS_SOURCE = "torchvision OxfordIIITPet (binary-category), balanced"
STAND_IN_SOURCE = "offline stand-in: random blocky noise (no cats, no dogs)"
_BLOCK = 10  # pixels per noise block: coarse noise keeps the lesson's figures small
_WIDTHS = (32, 64, 128, 128)


def feature_side(image_size: int) -> int:
    """Side of the last feature map: four times (3x3 valid convolution, then 2x2 pooling).

    Examples
    --------
    >>> feature_side(150)  # 148 -> 74 -> 72 -> 36 -> 34 -> 17 -> 15 -> 7
    7
    """
    side = positive_int("image_size", image_size)
    for _ in _WIDTHS:
        side = (side - 2) // 2
    if side < 1:
        raise ValueError(f"image_size must be at least 46 pixels, got {image_size}")
    return side


class CatsDogsConvNet(nn.Module):
    """Seed 004's cats-vs-dogs convnet in PyTorch.

    ``features`` holds four blocks of 3x3 convolution (32, 64, 128, 128
    filters), ReLU and 2x2 max-pooling; ``head`` flattens, applies dropout
    (if any), a dense layer of 512 units and one output unit, the seed's
    sigmoid logit ``z``.  ``forward`` returns the two logits ``(0, z)``: their
    softmax is ``(1 - sigmoid(z), sigmoid(z))``, so softmax cross-entropy on
    them equals the seed's binary cross-entropy, and the classification tools
    of :mod:`lessonlib.training` work unchanged, with no extra parameter.
    """

    def __init__(self, *, image_size: int, dropout: float):
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 3
        for width in _WIDTHS:
            blocks += [nn.Conv2d(channels, width, 3), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*blocks)
        side = feature_side(image_size)
        head: list[nn.Module] = [nn.Flatten()]
        if dropout:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(channels * side * side, 512), nn.ReLU(), nn.Linear(512, 1)]
        self.head = nn.Sequential(*head)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        """Return the seed's single logit ``z`` (``sigmoid(z)`` = P(dog)), shape ``(N,)``."""
        return self.head(self.features(x))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return two-class logits ``(0, z)``, shape ``(N, 2)``."""
        z = self.logit(x)
        return torch.stack([torch.zeros_like(z), z], dim=1)


def convnet(*, dropout: float = 0.0, image_size: int = 150) -> CatsDogsConvNet:
    """Build seed 004's cats-vs-dogs convnet in PyTorch.

    Parameters
    ----------
    dropout : float
        Dropout rate before the dense layer (the seed's second model uses 0.5).
    image_size : int
        Input side in pixels; the dense layer's size depends on it.

    Returns
    -------
    CatsDogsConvNet
        Takes float ``(N, 3, image_size, image_size)`` and returns two logits.

    Examples
    --------
    >>> from lessonlib.models_torch import count_params
    >>> count_params(convnet()), count_params(convnet(dropout=0.5))
    (3453121, 3453121)
    >>> convnet()(torch.zeros(2, 3, 150, 150)).shape
    torch.Size([2, 2])
    """
    dropout = probability("dropout", dropout)
    return CatsDogsConvNet(image_size=image_size, dropout=dropout)


def keras_convnet(*, dropout: float = 0.0, image_size: int = 150):
    """Build the same network in Keras 3, as the seed wrote it (sigmoid output).

    Examples
    --------
    >>> keras_convnet().count_params()
    3453121
    """
    from lessonlib.models_keras import import_keras

    keras = import_keras()
    layers = keras.layers
    dropout = probability("dropout", dropout)
    feature_side(image_size)
    stack: list[Any] = [keras.Input((image_size, image_size, 3))]
    for i, width in enumerate(_WIDTHS, start=1):
        stack += [
            layers.Conv2D(width, 3, activation="relu", name=f"conv{i}"),
            layers.MaxPooling2D(2, name=f"pool{i}"),
        ]
    stack.append(layers.Flatten(name="flatten"))
    if dropout:
        stack.append(layers.Dropout(dropout, name="dropout"))
    stack += [
        layers.Dense(512, activation="relu", name="dense"),
        layers.Dense(1, activation="sigmoid", name="dog_probability"),
    ]
    return keras.Sequential(stack, name="cats_dogs_convnet")


def _sizes(sizes: Sequence[int]) -> tuple[int, int, int]:
    if not isinstance(sizes, (tuple, list)) or len(sizes) != 3:
        raise ValueError(f"sizes must be (n_train, n_val, n_test), got {sizes!r}")
    out = tuple(positive_int("sizes", s) for s in sizes)
    if any(s % 2 for s in out):
        raise ValueError(f"sizes must be even (half cats, half dogs), got {sizes!r}")
    return out  # type: ignore[return-value]


def balanced_indices(
    labels: np.ndarray, *, sizes: Sequence[int], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick disjoint train / validation / test indices with half of each split per class.

    Parameters
    ----------
    labels : numpy.ndarray
        ``0`` (cat) or ``1`` (dog) for every image of the pool.
    sizes : (int, int, int)
        Images in the train, validation and test splits; each must be even.
    seed : int
        Seeds the random choice.

    Examples
    --------
    >>> labels = np.array([0] * 5 + [1] * 9)
    >>> tr, va, te = balanced_indices(labels, sizes=(4, 2, 2), seed=0)
    >>> [np.bincount(labels[s]).tolist() for s in (tr, va, te)]
    [[2, 2], [1, 1], [1, 1]]
    >>> len(set(tr) | set(va) | set(te))
    8
    """
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    n_train, n_val, n_test = _sizes(sizes)
    rng = np.random.default_rng(non_negative_int("seed", seed))
    cuts = np.cumsum([n_train // 2, n_val // 2, n_test // 2])
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in range(len(CLASSES)):
        idx = rng.permutation(np.flatnonzero(labels == label))
        if len(idx) < cuts[-1]:
            raise ValueError(
                f"sizes {tuple(sizes)} need {cuts[-1]} images of class {CLASSES[label]!r}, "
                f"the pool has {len(idx)}"
            )
        for part, chunk in zip(parts, np.split(idx[: cuts[-1]], cuts[:-1]), strict=True):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def _binary_labels(dataset: Any) -> np.ndarray:
    """Cat/dog labels of a dataset without decoding its images when possible."""
    known = getattr(dataset, "_bin_labels", None)  # torchvision's OxfordIIITPet keeps them
    if known is not None and len(known) == len(dataset):
        return np.asarray(known, dtype=np.int64)
    return np.array([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def _resized(image: Any, image_size: int) -> np.ndarray:
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image, dtype=np.uint8))
    image = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def split_from_datasets(
    datasets: Sequence[Any], *, sizes: Sequence[int], image_size: int, seed: int
) -> SmallSplit:
    """Pool cat/dog datasets, draw a balanced split and resize the chosen images.

    Parameters
    ----------
    datasets : sequence of datasets
        Each item is ``(image, label)`` with label 0 (cat) or 1 (dog), such as
        ``OxfordIIITPet(..., target_types="binary-category")``.
    sizes : (int, int, int)
        Train, validation and test images (even numbers).
    image_size : int
        Images are resized to ``image_size`` x ``image_size``, as the seed's
        ``target_size=(150, 150)`` did (the aspect ratio is not kept).
    seed : int
        Seeds the choice of images.

    Returns
    -------
    SmallSplit
        ``uint8`` ``(N, image_size, image_size, 3)`` images and ``int64`` labels.
    """
    image_size = positive_int("image_size", image_size)
    if not isinstance(datasets, (list, tuple)) or not datasets:
        raise TypeError("datasets must be a non-empty list of datasets")
    owners = [(d, i) for d in datasets for i in range(len(d))]
    labels = np.concatenate([_binary_labels(d) for d in datasets])
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("datasets must have labels 0 (cat) and 1 (dog) only")
    splits = balanced_indices(labels, sizes=sizes, seed=seed)
    images = {}
    for k in progress(np.concatenate(splits), desc="resizing pet photos"):
        dataset, i = owners[k]
        images[int(k)] = _resized(dataset[i][0], image_size)
    x_tr, x_va, x_te = (np.stack([images[int(k)] for k in s]) for s in splits)
    y_tr, y_va, y_te = (labels[s] for s in splits)
    return SmallSplit(x_tr, y_tr, x_va, y_va, x_te, y_te, PETS_SOURCE, CLASSES)


def stand_in(*, sizes: Sequence[int], image_size: int, seed: int) -> SmallSplit:
    """Return random-noise images with cat/dog labels: the offline stand-in.

    The shapes, dtypes and class balance equal those of the real split, so
    code written for one runs on the other; no model can learn anything real
    from it.  The noise comes in 10 x 10 pixel blocks of one random colour.

    Examples
    --------
    >>> s = stand_in(sizes=(4, 2, 2), image_size=50, seed=0)
    >>> s.x_train.shape, s.x_train.dtype, np.bincount(s.y_train).tolist()
    ((4, 50, 50, 3), dtype('uint8'), [2, 2])
    """
    sizes = _sizes(sizes)
    image_size = positive_int("image_size", image_size)
    rng = np.random.default_rng(non_negative_int("seed", seed))
    cells = -(-image_size // _BLOCK)
    parts = []
    for n in sizes:
        coarse = rng.integers(0, 256, size=(n, cells, cells, 3), dtype=np.uint8)
        x = coarse.repeat(_BLOCK, axis=1).repeat(_BLOCK, axis=2)[:, :image_size, :image_size]
        parts += [np.ascontiguousarray(x), np.tile(np.arange(len(CLASSES), dtype=np.int64), n // 2)]
    return SmallSplit(*parts, STAND_IN_SOURCE, CLASSES)


def download_pets(*, root: Any = None, timeout: float = DEFAULT_TIMEOUT) -> list[Any]:
    """Download (once) both splits of torchvision's Oxford-IIIT Pet, with cat/dog labels.

    Raises
    ------
    OSError or RuntimeError
        When the download fails.
    """
    from torchvision import datasets

    from lessonlib.data import _socket_timeout

    root = root if root is not None else cache_dir("oxford_pets")
    with _socket_timeout(timeout):
        return [
            datasets.OxfordIIITPet(root, split=split, target_types="binary-category", download=True)
            for split in ("trainval", "test")
        ]


def _cache_path(sizes: tuple[int, int, int], image_size: int, seed: int):
    n_tr, n_va, n_te = sizes
    return cache_dir("cats_vs_dogs") / f"pets_{n_tr}_{n_va}_{n_te}_{image_size}px_{seed}.npz"


def load_cats_vs_dogs(
    cfg: Profile | str | None = None,
    *,
    sizes: Sequence[int] = SEED_SIZES,
    image_size: int = 150,
    seed: int = 0,
) -> SmallSplit:
    """Return a balanced cats-vs-dogs split for a profile.

    The full profile downloads Oxford-IIIT Pet into the lessonlib cache and
    draws ``sizes`` images (seed 004's 2,000 / 1,000 / 1,000 by default); the
    resized split is cached, so later calls are fast.  The quick profile, and
    any profile with ``LESSONLIB_OFFLINE=1``, gets :func:`stand_in`; a failed
    download falls back to it with one printed notice.

    Examples
    --------
    >>> load_cats_vs_dogs("quick", sizes=(4, 2, 2), image_size=50).source
    'offline stand-in: random blocky noise (no cats, no dogs)'
    """
    cfg = get_profile(cfg) if cfg is None or isinstance(cfg, str) else cfg
    if not isinstance(cfg, Profile):
        raise TypeError(f"cfg must be a Profile, a profile name or None, got {type(cfg).__name__}")
    sizes = _sizes(sizes)
    image_size = positive_int("image_size", image_size)
    seed = non_negative_int("seed", seed)
    if cfg.name == "quick" or is_offline():
        return stand_in(sizes=sizes, image_size=image_size, seed=seed)
    path = _cache_path(sizes, image_size, seed)
    cached = load_arrays(path)
    if cached is not None:
        return SmallSplit(**cached, source=PETS_SOURCE, classes=CLASSES)
    try:
        pets = download_pets()
    except (OSError, RuntimeError) as err:
        print(f"lessonlib: Oxford-IIIT Pet download failed ({err}); using the random stand-in.")
        return stand_in(sizes=sizes, image_size=image_size, seed=seed)
    split = split_from_datasets(pets, sizes=sizes, image_size=image_size, seed=seed)
    fields = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
    save_arrays(path, **{name: getattr(split, name) for name in fields})
    return split
