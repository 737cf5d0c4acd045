"""Tests for lessonlib.heads: the seed's dense head and the feature perturbations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lessonlib.heads import (
    add_to_random_features,
    dense_head,
    feature_loader,
    fit_dense_head,
    keras_rmsprop,
    predict_proba,
    zero_random_features,
)

RNG_SEED = 23


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian classes in 20 dimensions."""
    rng = np.random.default_rng(RNG_SEED)
    centres = rng.normal(scale=3.0, size=(3, 20))
    y = np.repeat(np.arange(3), 60)
    x = (centres[y] + rng.normal(size=(len(y), 20))).astype(np.float32)
    return x, y


def test_dense_head_layers_and_parameter_count():
    head = dense_head(2048, 22)
    linears = [m for m in head if isinstance(m, nn.Linear)]
    dropouts = [m for m in head if isinstance(m, nn.Dropout)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2048, 256),
        (256, 256),
        (256, 22),
    ]
    assert [m.p for m in dropouts] == [0.5, 0.5]
    assert (
        sum(p.numel() for p in head.parameters())
        == 2048 * 256 + 256 + 256 * 256 + 256 + 256 * 22 + 22
    )
    assert len(dense_head(5, 2, layers=3, hidden=4, dropout=0.0)) == 10


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_features": 0}, ValueError, "in_features"),
        ({"num_classes": 2.0}, TypeError, "num_classes"),
        ({"dropout": 1.0}, ValueError, "dropout"),
        ({"layers": 0}, ValueError, "layers"),
    ],
)
def test_dense_head_rejects_bad_sizes(kwargs, error, match):
    args = {"in_features": 4, "num_classes": 2, **kwargs}
    with pytest.raises(error, match=match):
        dense_head(args.pop("in_features"), args.pop("num_classes"), **args)


def test_keras_rmsprop_uses_keras_defaults():
    opt = keras_rmsprop(nn.Linear(2, 2).parameters(), lr=1e-3)
    assert opt.defaults["alpha"] == 0.9 and opt.defaults["eps"] == 1e-7
    assert opt.defaults["lr"] == 1e-3
    with pytest.raises(ValueError, match="lr"):
        keras_rmsprop(nn.Linear(2, 2).parameters(), lr=-1.0)


def test_fit_dense_head_learns_and_is_repeatable(blobs):
    x, y = blobs
    head, history = fit_dense_head(x[::2], y[::2], x[1::2], y[1::2], epochs=5, seed=3)
    again, _ = fit_dense_head(x[::2], y[::2], x[1::2], y[1::2], epochs=5, seed=3)
    assert not head.training and history.epochs == 5
    assert history.val_accuracy[-1] > 0.95
    for a, b in zip(head.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    probs = predict_proba(head, x[1::2])
    assert probs.shape == (90, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.mean(probs.argmax(1) == y[1::2]) == pytest.approx(history.val_accuracy[-1])


def test_fit_dense_head_rejects_mismatched_inputs(blobs):
    x, y = blobs
    with pytest.raises(ValueError, match="val_features must have 20 columns"):
        fit_dense_head(x, y, x[:, :5], y)
    with pytest.raises(ValueError, match="train_labels must have one entry per row"):
        fit_dense_head(x, y[:10], x, y)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="train_features must be finite"):
        fit_dense_head(bad, y, x, y)


def test_feature_loader_and_predict_proba_checks():
    loader = feature_loader(np.ones((3, 2), np.float64), np.array([0, 1, 1]), batch_size=2)
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        predict_proba("head", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="features must have 2 dimensions"):
        predict_proba(nn.Linear(2, 2), np.zeros(2))


def test_add_to_random_features_changes_exactly_n_distinct_features_per_row():
    x = np.zeros((50, 30), np.float32)
    out = add_to_random_features(x, n_features=7, value=2.0, seed=1)
    assert out.dtype == np.float32 and out is not x and x.sum() == 0
    assert ((out == 2.0).sum(1) == 7).all() and ((out != 0).sum(1) == 7).all()
    # each row draws its own columns, and every column gets hit somewhere
    assert len({tuple(np.flatnonzero(row)) for row in out}) > 40
    assert (out != 0).any(0).all()
    assert np.array_equal(out, add_to_random_features(x, n_features=7, value=2.0, seed=1))
    assert not np.array_equal(out, add_to_random_features(x, n_features=7, value=2.0, seed=2))


def test_zero_random_features_zeroes_exactly_n_per_row():
    x = np.arange(1, 41, dtype=np.float64).reshape(2, 20)
    out = zero_random_features(x, n_features=12, seed=0)
    assert ((out == 0).sum(1) == 12).all() and (x != 0).all()
    kept = out != 0
    assert np.array_equal(out[kept], x[kept])
    ints = zero_random_features(np.ones((2, 3), np.int64), n_features=1, seed=0)
    assert ints.dtype == np.float64


@pytest.mark.parametrize("func", [add_to_random_features, zero_random_features])
def test_perturbations_reject_bad_counts(func):
    extra = {"value": 1.0} if func is add_to_random_features else {}
    with pytest.raises(ValueError, match="n_features must be at most the 4 features"):
        func(np.zeros((2, 4)), n_features=5, seed=0, **extra)
    with pytest.raises(ValueError, match="n_features must be a positive"):
        func(np.zeros((2, 4)), n_features=0, seed=0, **extra)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        func(np.zeros((2, 4)), n_features=1, seed=-1, **extra)
