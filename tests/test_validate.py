"""Tests for lessonlib._validate: every check names the argument it rejects."""

from __future__ import annotations

import numpy as np
import pytest

from lessonlib._validate import (
    array,
    non_negative_int,
    one_of,
    positive_float,
    positive_int,
    probability,
)


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(200)])
def test_positive_int_accepts_and_returns_int(value):
    out = positive_int("epochs", value)
    assert out == int(value)
    assert type(out) is int


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-2, ValueError), (1.0, TypeError), ("3", TypeError), (True, TypeError)],
)
def test_positive_int_rejects(value, error):
    with pytest.raises(error, match="epochs"):
        positive_int("epochs", value)


def test_non_negative_int_accepts_zero():
    assert non_negative_int("seed", 0) == 0
    assert type(non_negative_int("seed", np.int32(5))) is int


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (2.5, TypeError), (False, TypeError), (None, TypeError)]
)
def test_non_negative_int_rejects(value, error):
    with pytest.raises(error, match="seed"):
        non_negative_int("seed", value)


def test_positive_float_accepts_ints_and_floats():
    assert positive_float("lr", 3) == 3.0
    assert type(positive_float("lr", 3)) is float
    assert positive_float("lr", np.float32(0.5)) == 0.5


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0.0, ValueError),
        (-1e-3, ValueError),
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        ("0.1", TypeError),
        (True, TypeError),
    ],
)
def test_positive_float_rejects(value, error):
    with pytest.raises(error, match="lr"):
        positive_float("lr", value)


def test_probability_bounds():
    assert probability("p", 0) == 0.0
    assert probability("p", 0.999) == 0.999
    assert probability("p", 1, inclusive_one=True) == 1.0
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\)"):
        probability("p", 1)
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        probability("p", 1.5, inclusive_one=True)


@pytest.mark.parametrize(
    ("value", "error"),
    [(-0.1, ValueError), (float("nan"), ValueError), ("0.5", TypeError), (True, TypeError)],
)
def test_probability_rejects(value, error):
    with pytest.raises(error, match="dropout"):
        probability("dropout", value)


def test_array_accepts_lists_tuples_and_array_likes():
    assert array("x", [[1, 2], [3, 4]], ndim=2).shape == (2, 2)
    assert array("x", (1.0, 2.0), ndim=1, dtype_kind="f").dtype == np.float64
    assert array("x", np.float32(2.0)).shape == ()  # numpy scalars have __array__
    assert array("x", np.zeros((0, 3)), non_empty=False).shape == (0, 3)
    assert array("x", np.zeros((2, 3, 4)), ndim=[3, 4]).ndim == 3


def test_array_rejects_non_arrays():
    with pytest.raises(TypeError, match="images must be an array, got str"):
        array("images", "not an array")
    with pytest.raises(TypeError, match="images"):
        array("images", 5)


def test_array_rejects_wrong_rank_dtype_and_empty():
    with pytest.raises(ValueError, match=r"images must have 3 dimensions, got shape \(2, 2\)"):
        array("images", np.zeros((2, 2)), ndim=3)
    with pytest.raises(TypeError, match="labels must have a numeric dtype of kind 'iu'"):
        array("labels", np.zeros(3), dtype_kind="iu")
    with pytest.raises(TypeError, match="images"):
        array("images", np.zeros(3, bool), dtype_kind="uif")
    with pytest.raises(ValueError, match="images must not be empty"):
        array("images", np.zeros((0, 28, 28)), ndim=3)


def test_one_of_accepts_and_lists_choices():
    assert one_of("head", "b", ("a", "b")) == "b"
    assert one_of("head", "a", iter(["a"])) == "a"  # any iterable of choices
    with pytest.raises(ValueError, match="head must be one of 'a', 'b'; got 'c'"):
        one_of("head", "c", ["a", "b"])
    with pytest.raises(TypeError, match="head must be a str, got int"):
        one_of("head", 1, ["a", "b"])
