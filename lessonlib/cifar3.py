"""CIFAR-3: the deer, frog and truck images of CIFAR-10 that seed 001 classifies.

Full profile: :func:`download_cifar3` fetches torchvision's CIFAR-10 into the
lessonlib cache, keeps the classes deer (4), frog (6) and truck (9), relabels
them 0, 1 and 2, and caches the result as a checksummed ``.npz`` file, so
later loads need neither the network nor the 162 MB archive.  The Toronto
host that serves CIFAR-10 has been throttled since June 2026 (about an hour
for the download), so fetch it once ahead of a class:

.. code-block:: bash

    python -m lessonlib.prefetch cifar3

Quick profile, or offline without a cached copy: :func:`standin_cifar3`
returns a stand-in of the same shapes and dtypes, built offline from the
bundled MNIST digits 4, 6 and 9 (CIFAR-10's label numbers of deer, frog and
truck) composited on random textured backgrounds.
:func:`load_cifar3` chooses between the two, like
:func:`lessonlib.data.load_mnist`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lessonlib._validate import array
from lessonlib.cache import DEFAULT_TIMEOUT, cache_dir, load_arrays, save_arrays
from lessonlib.data import ImageSplit, _resolve, _socket_timeout, bundled_mnist, subset
from lessonlib.profiles import Profile, is_offline

CIFAR3_LABELS = (4, 6, 9)
"""CIFAR-10's labels of deer, frog and truck."""
CIFAR3_CLASSES = ("deer", "frog", "truck")
CIFAR3_SOURCE = "torchvision CIFAR-10, deer/frog/truck (15,000 / 3,000)"
STANDIN_SOURCE = (
    "offline stand-in for CIFAR-3: the bundled MNIST digits 4, 6 and 9 on random textures"
)
_CACHE_FILE = "cifar3.npz"

__all__ = [
    "CIFAR3_CLASSES",
    "CIFAR3_LABELS",
    "cached_cifar3",
    "download_cifar3",
    "load_cifar3",
    "select_classes",
    "standin_cifar3",
]


def select_classes(
    images: np.ndarray,
    targets: Sequence[int] | np.ndarray,
    *,
    labels: Sequence[int] = CIFAR3_LABELS,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the images of some classes and number those classes 0, 1, ...

    Parameters
    ----------
    images : ndarray (N, ...)
        The images, in any layout with the image index first.
    targets : sequence or ndarray (N,) of int
        Their labels.
    labels : sequence of int
        The labels to keep; ``labels[k]`` becomes class ``k``.

    Returns
    -------
    images : ndarray
        The kept images, in their original order.
    new_labels : ndarray (M,), int64

    Examples
    --------
    >>> x = np.arange(6)[:, None]; y = [4, 0, 9, 6, 4, 1]
    >>> kept, new = select_classes(x, y)
    >>> kept.ravel().tolist(), new.tolist()
    ([0, 2, 3, 4], [0, 2, 1, 0])
    """
    images = array("images", images, ndim=(2, 3, 4))
    targets = array("targets", targets, ndim=1, dtype_kind="iu")
    if len(targets) != len(images):
        raise ValueError(
            f"targets must have one entry per image, got {len(targets)} for {len(images)}"
        )
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    if len(np.unique(labels)) != len(labels):
        raise ValueError(f"labels must not repeat a label, got {labels.tolist()}")
    keep = np.isin(targets, labels)
    lookup = {int(label): k for k, label in enumerate(labels)}
    new_labels = np.array([lookup[int(t)] for t in targets[keep]], dtype=np.int64)
    return images[keep], new_labels


def _cache_path():
    return cache_dir("cifar3") / _CACHE_FILE


def _split_from_arrays(arrays: dict[str, np.ndarray]) -> ImageSplit:
    return ImageSplit(
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        CIFAR3_SOURCE,
        CIFAR3_CLASSES,
    )


def cached_cifar3() -> ImageSplit | None:
    """Return CIFAR-3 from the lessonlib cache, or None if it was never fetched (or is corrupt).

    Examples
    --------
    >>> import os, tempfile
    >>> os.environ["LESSONLIB_CACHE"] = tempfile.mkdtemp()
    >>> cached_cifar3() is None
    True
    """
    arrays = load_arrays(_cache_path())
    keys = {"x_train", "y_train", "x_test", "y_test"}
    if arrays is None or not keys <= set(arrays):
        return None
    return _split_from_arrays(arrays)


def download_cifar3(*, timeout: float = DEFAULT_TIMEOUT) -> ImageSplit:
    """Return CIFAR-3 (15,000 training and 3,000 test images), downloading CIFAR-10 if needed.

    The filtered arrays are cached (see the module docstring); a cached copy
    is returned without touching the network.  torchvision checks the md5 of
    the archive it downloads.

    Parameters
    ----------
    timeout : float
        Socket timeout in seconds: a stalled connection fails instead of
        hanging (a slow one still takes its time).

    Returns
    -------
    ImageSplit
        ``uint8`` images ``(N, 32, 32, 3)``, ``int64`` labels 0 (deer),
        1 (frog) and 2 (truck).

    Raises
    ------
    OSError, RuntimeError
        When the download fails or the archive is corrupt.
    """
    cached = cached_cifar3()
    if cached is not None:
        return cached
    from torchvision import datasets

    root = cache_dir("cifar10")
    with _socket_timeout(timeout):
        train = datasets.CIFAR10(root, train=True, download=True)
        test = datasets.CIFAR10(root, train=False, download=True)
    x_train, y_train = select_classes(np.asarray(train.data, np.uint8), train.targets)
    x_test, y_test = select_classes(np.asarray(test.data, np.uint8), test.targets)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    save_arrays(_cache_path(), **arrays)
    return _split_from_arrays(arrays)


def standin_cifar3(*, seed: int = 0, digits: ImageSplit | None = None) -> ImageSplit:
    """Return an offline stand-in for CIFAR-3 with the same shapes and dtypes.

    The MNIST digits 4, 6 and 9 (1,200 training and 300 test digits of the
    bundled set) are composited, white, on random tinted patches of
    scikit-image's grass, brick and gravel (see :mod:`lessonlib.backgrounds`).
    The background carries no information about the class.

    Parameters
    ----------
    seed : int
        Seed of the backgrounds.
    digits : ImageSplit, optional
        The MNIST split to take the digits from; by default
        :func:`lessonlib.data.bundled_mnist`.  Pass a split you have already
        loaded to save reading it a second time.

    Examples
    --------
    >>> s = standin_cifar3()
    >>> s.x_train.shape, s.x_train.dtype, s.x_test.shape, np.bincount(s.y_test).tolist()
    ((1200, 32, 32, 3), dtype('uint8'), (300, 32, 32, 3), [100, 100, 100])
    >>> s.classes
    ('4', '6', '9')
    """
    from lessonlib.backgrounds import make_background_set

    if digits is not None and not isinstance(digits, ImageSplit):
        raise TypeError(f"digits must be an ImageSplit or None, got {type(digits).__name__}")
    mnist = bundled_mnist() if digits is None else digits
    sets = [
        make_background_set(x, y, classes=CIFAR3_LABELS, pairing="random", split=split, seed=s)
        for x, y, split, s in (
            (mnist.x_train, mnist.y_train, "train", seed),
            (mnist.x_test, mnist.y_test, "test", seed + 1),
        )
    ]
    train, test = sets
    return ImageSplit(
        train.images, train.labels, test.images, test.labels, STANDIN_SOURCE, train.classes
    )


def load_cifar3(
    cfg: Profile | str | None = None, *, standin_digits: ImageSplit | None = None
) -> ImageSplit:
    """Return CIFAR-3 for a profile, as ``uint8`` ``(N, 32, 32, 3)`` images and ``int64`` labels.

    Parameters
    ----------
    cfg : Profile, str or None
        The profile (or its name); ``None`` reads ``$LESSONLIB_PROFILE``.
    standin_digits : ImageSplit, optional
        Digits for the stand-in (see :func:`standin_cifar3`), such as the
        MNIST split a lesson has already loaded.

    Returns
    -------
    ImageSplit
        Quick profile: :func:`standin_cifar3`.  Full profile: the cached
        CIFAR-3 if there is one; else, with downloads allowed,
        :func:`download_cifar3`.  When CIFAR-10 is neither cached nor
        downloadable (``LESSONLIB_OFFLINE=1``, or a failed download), the
        stand-in, with one printed notice.  Cut to ``cfg.n_train`` /
        ``cfg.n_test`` images.

    Examples
    --------
    >>> load_cifar3("quick").source
    'offline stand-in for CIFAR-3: the bundled MNIST digits 4, 6 and 9 on random textures'
    """
    cfg = _resolve(cfg)
    split = None
    if cfg.name != "quick":
        split = cached_cifar3()
        if split is None and is_offline():
            print("lessonlib: CIFAR-10 is not cached and downloads are off; using the stand-in.")
        elif split is None:
            print("lessonlib: downloading CIFAR-10 (162 MB; its host is slow, see DATASETS).")
            try:
                split = download_cifar3()
            except (OSError, RuntimeError) as err:
                print(f"lessonlib: CIFAR-10 download failed ({err}); using the stand-in.")
    if split is None:
        split = standin_cifar3(seed=cfg.seed, digits=standin_digits)
    return subset(split, n_train=cfg.n_train, n_test=cfg.n_test)
