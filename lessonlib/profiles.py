"""Run profiles: one switch that scales every lesson to the machine.

``LESSONLIB_PROFILE`` selects ``quick`` (a laptop CPU, offline data, about a
minute per lesson) or ``full`` (a GPU and the network, the seeds' sizes).  When
it is unset, ``full`` is chosen if a GPU is visible and ``quick`` otherwise.
Lessons read every size from :func:`profile` and never branch on the name.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np

PROFILE_ENV = "LESSONLIB_PROFILE"
OFFLINE_ENV = "LESSONLIB_OFFLINE"
STATIC_ENV = "LESSONLIB_STATIC"


@dataclass(frozen=True)
class Profile:
    """Frozen settings that scale a lesson.

    Attributes
    ----------
    name : str
        ``"quick"`` or ``"full"``.
    epochs : int
        Training epochs for the main model of a lesson.
    n_train, n_test : int
        Training and test sample counts (``0`` means "all the data has").
    image_size : int
        Side length in pixels for lessons that resize images (pretrained nets).
    batch_size : int
        Mini-batch size.
    seed : int
        The seed every lesson passes to :func:`seed_everything`.
    device : str
        ``"cuda"`` or ``"cpu"``.
    mc_samples : int
        Stochastic forward passes for MC dropout.
    """

    name: str
    epochs: int
    n_train: int
    n_test: int
    image_size: int
    batch_size: int
    seed: int
    device: str
    mc_samples: int

    @property
    def offline(self) -> bool:
        """True when downloads are forbidden (``LESSONLIB_OFFLINE=1``)."""
        return is_offline()

    def lesson(self, number: str) -> MappingProxyType:
        """Return the read-only settings of one lesson in this profile.

        Examples
        --------
        >>> isinstance(profile("quick").lesson("02"), MappingProxyType)
        True
        >>> profile("quick").lesson("99")
        Traceback (most recent call last):
        ...
        ValueError: number must be one of '01', ..., '09'; got '99'
        """
        if number not in LESSON_SETTINGS:
            raise ValueError(f"number must be one of '01', ..., '09'; got {number!r}")
        return MappingProxyType(dict(LESSON_SETTINGS[number][self.name]))


_QUICK: dict[str, Any] = dict(
    epochs=5,
    n_train=4000,
    n_test=1000,
    image_size=64,
    batch_size=64,
    seed=20261123,
    mc_samples=100,
)
_FULL: dict[str, Any] = dict(
    epochs=5,
    n_train=60000,
    n_test=10000,
    image_size=224,
    batch_size=64,
    seed=20261123,
    mc_samples=1000,
)

# Settings that only one lesson uses: lesson number -> profile name -> settings.
# A lesson reads them with ``cfg.lesson("03")["key"]``; both profiles must define
# the same keys, so a lesson never branches on the profile name.
LESSON_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "01": {
        # bank_labels: the filter bank's three images, by class (quick: digits 0, 4, 7;
        # full: Fashion-MNIST ankle boot, shirt, dress, as in seed 004)
        "quick": {"bank_labels": (0, 4, 7), "texture_patch_size": 32, "texture_patches": 60},
        "full": {"bank_labels": (9, 6, 3), "texture_patch_size": 32, "texture_patches": 200},
    },
    "02": {
        "quick": {},
        "full": {},
    },
    "03": {
        "quick": {
            "per_class": 50,
            "val_per_class": 30,
            "digit_epochs": 20,
            "digit_batch_size": 32,
            "cats_dogs_sizes": (16, 8, 8),
            "cats_dogs_image_size": 150,
            "cats_dogs_epochs": 1,
            "cats_dogs_batch_size": 8,
            "cats_dogs_workers": 0,
        },
        "full": {
            "per_class": 50,
            "val_per_class": 30,
            "digit_epochs": 20,
            "digit_batch_size": 32,
            "cats_dogs_sizes": (2000, 1000, 1000),
            "cats_dogs_image_size": 150,
            "cats_dogs_epochs": 30,
            "cats_dogs_batch_size": 20,
            "cats_dogs_workers": 4,
        },
    },
    "04": {
        # image_set goes through lessonlib.imagesets (the quick profile gets the RGB
        # digits); n_train / n_test 0 keep the whole 60/40 split of Caltech-22.
        # head_epochs: the seed's 8; the sparser Lite0 digit embeddings need 20.
        "quick": {
            "image_set": "caltech22",
            "backbone": "efficientnet_lite0",
            "n_train": 1200,
            "n_test": 800,
            "head_epochs": 20,
        },
        "full": {
            "image_set": "caltech22",
            "backbone": "resnet50",
            "n_train": 0,
            "n_test": 0,
            "head_epochs": 8,
        },
    },
    "05": {
        # augmentation: lessonlib.finetune.Augmentation fields (no flips for digits);
        # step_size: StepLR period (the seed's 7 of 15 epochs, scaled down when quick);
        # transfer_sets: extra image sets run with the same recipe (full: Flowers102).
        "quick": {
            "image_set": "stl10",
            "backbone": "efficientnet_lite0",
            "n_train": 1000,
            "n_test": 500,
            "batch_size": 32,
            "augmentation": {"pad": 2, "rotation": 5.0, "hflip": False},
            "head_epochs": 4,
            "finetune_epochs": 4,
            "step_size": 2,
            "train_blocks": 2,
            "range_test_iters": 80,
            "transfer_sets": (),
        },
        "full": {
            "image_set": "stl10",
            "backbone": "resnet50",
            "n_train": 0,
            "n_test": 0,
            "batch_size": 64,
            "augmentation": {"pad": 4, "rotation": 5.0, "hflip": True},
            "head_epochs": 2,
            "finetune_epochs": 15,
            "step_size": 7,
            "train_blocks": 5,
            "range_test_iters": 100,
            "transfer_sets": ("flowers102",),
        },
    },
    "06": {
        # the learning-rate sweep: 2 x 3 runs of a 6-conv-layer plain convnet, SGD + momentum
        "quick": {
            "train_per_class": 300,
            "epochs": 2,
            "batch_size": 32,
            "learning_rates": (0.01, 0.05, 0.2),
            "sgd_momentum": 0.9,
        },
        "full": {
            "train_per_class": 5000,
            "epochs": 3,
            "batch_size": 32,
            "learning_rates": (0.01, 0.05, 0.2),
            "sgd_momentum": 0.9,
        },
    },
    "07": {
        "quick": {
            "mnist_epochs": 3,
            "clever_hans_epochs": 3,
            "cifar3_epochs": 4,
            "cifar3_batch_size": 64,
        },
        "full": {
            "mnist_epochs": 5,
            "clever_hans_epochs": 5,
            "cifar3_epochs": 30,
            "cifar3_batch_size": 256,
        },
    },
    "08": {
        "quick": {
            "dataset": "mnist",
            "subject": "digits",
            "expected_params": 118_090,
            "epochs": 8,
            "vnn_epochs": 3,
            "batch_size": 64,
            "box_samples": 1000,
            "rotation_class": 4,
            "rotation_images": 100,
            "ood_patches": 200,
            "ood_faces": 100,
            "keras_images": 100,
        },
        "full": {
            "dataset": "cifar3",
            "subject": "deer, frogs and trucks",
            "expected_params": 167_363,
            "epochs": 50,
            "vnn_epochs": 75,
            "batch_size": 200,
            "box_samples": 1000,
            "rotation_class": 2,
            "rotation_images": 300,
            "ood_patches": 1000,
            "ood_faces": 100,
            "keras_images": 200,
        },
    },
    "09": {
        # circles: image side, fixed radius, random-radius range, images per count
        # (train / test); feature_size: Lite0's input side; coin_*: crops of the
        # coins photo (sides drawn from coin_sizes, resized to coin_out_size).
        "quick": {
            "image_size": 64,
            "radius": 2,
            "random_radius": (1, 3),
            "train_per_count": 100,
            "test_per_count": 40,
            "epochs": 6,
            "feature_size": 64,
            "max_zoom": 1.1,
            "coin_sizes": (48, 144),
            "coin_out_size": 32,
            "coin_train": 600,
            "coin_test": 200,
        },
        "full": {
            "image_size": 128,
            "radius": 4,
            "random_radius": (2, 6),
            "train_per_count": 1000,
            "test_per_count": 200,
            "epochs": 15,
            "feature_size": 224,
            "max_zoom": 1.1,
            "coin_sizes": (48, 144),
            "coin_out_size": 64,
            "coin_train": 4000,
            "coin_test": 1000,
        },
    },
}
PROFILES: MappingProxyType = MappingProxyType({"quick": _QUICK, "full": _FULL})


def gpu_available() -> bool:
    """Return True if torch is importable and sees a CUDA device."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return bool(torch.cuda.is_available())


def is_offline() -> bool:
    """Return True when ``LESSONLIB_OFFLINE`` is set to a true value."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def is_static() -> bool:
    """Return True when widgets must not be built (``LESSONLIB_STATIC=1``)."""
    return os.environ.get(STATIC_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def profile(name: str | None = None, **overrides: Any) -> Profile:
    """Return the settings of a run profile.

    Parameters
    ----------
    name : {"quick", "full"}, optional
        Profile name.  Defaults to ``$LESSONLIB_PROFILE``, then to ``full``
        if a GPU is visible and ``quick`` otherwise.
    **overrides
        Fields to replace, for example ``epochs=1`` in a test.

    Returns
    -------
    Profile
        A frozen settings object.

    Raises
    ------
    ValueError
        If the name is not a known profile or an override is unknown.

    Examples
    --------
    >>> cfg = profile("quick")
    >>> cfg.name, cfg.n_train, cfg.n_test
    ('quick', 4000, 1000)
    >>> profile("quick", epochs=1).epochs
    1
    >>> profile("tiny")
    Traceback (most recent call last):
    ...
    ValueError: profile name must be one of 'quick', 'full'; got 'tiny'
    """
    if name is None:
        name = os.environ.get(PROFILE_ENV, "").strip() or None
    if name is None:
        name = "full" if gpu_available() else "quick"
    if not isinstance(name, str):
        raise TypeError(f"profile name must be a str, got {type(name).__name__}")
    if name not in PROFILES:
        listed = ", ".join(repr(p) for p in PROFILES)
        raise ValueError(f"profile name must be one of {listed}; got {name!r}")
    settings = dict(PROFILES[name])
    device = "cuda" if name == "full" and gpu_available() else "cpu"
    cfg = Profile(name=name, device=device, **settings)
    unknown = set(overrides) - {f for f in cfg.__dataclass_fields__}
    if unknown:
        raise ValueError(f"overrides has unknown field(s) {sorted(unknown)}")
    return replace(cfg, **overrides) if overrides else cfg


def seed_everything(seed: int) -> int:
    """Seed Python, numpy, torch and (if imported) TensorFlow/Keras.

    CPU runs after this call are repeatable.  TensorFlow is only seeded when it
    has already been imported, so a torch-only lesson never pays for importing it.

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Returns
    -------
    int
        The seed, for logging.

    Examples
    --------
    >>> import numpy as np
    >>> _ = seed_everything(7); a = np.random.rand()
    >>> _ = seed_everything(7); b = np.random.rand()
    >>> a == b
    True
    """
    import sys

    from lessonlib._validate import non_negative_int

    seed = non_negative_int("seed", seed)
    if seed >= 2**64:
        raise ValueError(f"seed must be < 2**64 (torch's limit), got {seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global state is the point
    os.environ["PYTHONHASHSEED"] = str(seed)
    import torch

    torch.manual_seed(seed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed % 2**32)
    elif "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)
    return seed
