"""Doctest environment for lessonlib: offline, static, a throw-away cache."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see lessonlib/__init__.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ["LESSONLIB_OFFLINE"] = "1"
os.environ["LESSONLIB_STATIC"] = "1"
os.environ.setdefault("LESSONLIB_PROFILE", "quick")
try:  # triton must load before TensorFlow, or torch.optim segfaults later
    import triton  # noqa: F401, E402
except ImportError:  # pragma: no cover
    pass
import matplotlib  # noqa: E402

matplotlib.use("Agg")
os.environ.setdefault("LESSONLIB_CACHE", tempfile.mkdtemp(prefix="lessonlib-doctest-"))


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure after each test and doctest."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
