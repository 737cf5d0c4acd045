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
        "quick": {},
        "full": {},
    },
    "02": {
        "quick": {},
        "full": {},
    },
    "03": {
        "quick": {},
        "full": {},
    },
    "04": {
        "quick": {},
        "full": {},
    },
    "05": {
        "quick": {},
        "full": {},
    },
    "06": {
        "quick": {},
        "full": {},
    },
    "07": {
        "quick": {},
        "full": {},
    },
    "08": {
        "quick": {},
        "full": {},
    },
    "09": {
        "quick": {},
        "full": {},
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
