"""Shared test set-up: an empty cache, offline, static widgets, quiet TensorFlow."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see lessonlib/__init__.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

try:  # triton must load before TensorFlow, or torch.optim segfaults later
    import triton  # noqa: F401, E402
except ImportError:  # pragma: no cover
    pass
import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Give every test its own cache folder, forbid downloads, and turn widgets static."""
    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("LESSONLIB_OFFLINE", "1")
    monkeypatch.setenv("LESSONLIB_STATIC", "1")
    monkeypatch.setenv("LESSONLIB_PROFILE", "quick")
