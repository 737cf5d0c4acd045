"""Argument checks shared by the public functions of lessonlib.

Every check raises ``TypeError`` or ``ValueError`` whose message names the
argument and says what was expected, so that a student sees at once what to fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int, or raise if it is not a positive integer.

    Examples
    --------
    >>> positive_int("epochs", 3)
    3
    >>> positive_int("epochs", 0)
    Traceback (most recent call last):
    ...
    ValueError: epochs must be a positive integer, got 0
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def non_negative_int(name: str, value: object) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not a positive number."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def probability(name: str, value: object, *, inclusive_one: bool = False) -> float:
    """Return ``value`` as a float in [0, 1) (or [0, 1]), or raise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    upper_ok = value <= 1 if inclusive_one else value < 1
    if not (0 <= value and upper_ok):
        bound = "[0, 1]" if inclusive_one else "[0, 1)"
        raise ValueError(f"{name} must lie in {bound}, got {value}")
    return float(value)


def array(
    name: str,
    value: object,
    *,
    ndim: int | Iterable[int] | None = None,
    dtype_kind: str | None = None,
    non_empty: bool = True,
) -> np.ndarray:
    """Return ``value`` as a numpy array after checking its rank and dtype kind.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    value : array_like
        The value to check.
    ndim : int or iterable of int, optional
        Accepted numbers of dimensions.
    dtype_kind : str, optional
        Accepted numpy dtype kinds, for example ``"uif"`` for numbers.
    non_empty : bool
        Reject arrays with no elements.

    Examples
    --------
    >>> array("images", np.zeros((2, 3)), ndim=2).shape
    (2, 3)
    >>> array("images", np.zeros(3), ndim=(3, 4))
    Traceback (most recent call last):
    ...
    ValueError: images must have 3 or 4 dimensions, got shape (3,)
    """
    if not isinstance(value, (np.ndarray, list, tuple)) and not hasattr(value, "__array__"):
        raise TypeError(f"{name} must be an array, got {type(value).__name__}")
    arr = np.asarray(value)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            wanted = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {wanted} dimensions, got shape {arr.shape}")
    if dtype_kind is not None and arr.dtype.kind not in dtype_kind:
        raise TypeError(f"{name} must have a numeric dtype of kind {dtype_kind!r}, got {arr.dtype}")
    if non_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return arr


def one_of(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError``.

    Examples
    --------
    >>> one_of("profile", "quick", ["quick", "full"])
    'quick'
    >>> one_of("profile", "fast", ["quick", "full"])
    Traceback (most recent call last):
    ...
    ValueError: profile must be one of 'quick', 'full'; got 'fast'
    """
    options = list(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return value
