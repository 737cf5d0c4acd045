"""Classifier heads trained on frozen embeddings, and the seed's feature perturbations.

Seed 000 put a small dense network on ResNet-50 ``avg_pool`` embeddings: two
hidden layers of 256 ReLU units, each followed by dropout 0.5, trained with
RMSprop at a learning rate of 5e-4 for 8 epochs (Keras' default batch of 32).
:func:`dense_head` builds it in PyTorch and :func:`fit_dense_head` trains it;
:func:`keras_rmsprop` sets torch's RMSprop to Keras' defaults (``rho = 0.9``,
``epsilon = 1e-7``; torch's own defaults are 0.99 and 1e-8).

The seed then tested how the head copes with damaged embeddings: it added 2 to
100 random features of every image (:func:`add_to_random_features`) and set
600 random features to zero (:func:`zero_random_features`).

Examples
--------
>>> head = dense_head(8, 3)
>>> [type(m).__name__ for m in head]
['Linear', 'ReLU', 'Dropout', 'Linear', 'ReLU', 'Dropout', 'Linear']
>>> add_to_random_features(np.zeros((2, 5), np.float32), n_features=2, value=2.0, seed=0).sum(1)
array([4., 4.], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lessonlib._validate import array, non_negative_int, positive_float, positive_int, probability
from lessonlib.training import History, fit


def dense_head(
    in_features: int, num_classes: int, *, hidden: int = 256, layers: int = 2, dropout: float = 0.5
) -> nn.Sequential:
    """Return seed 000's dense head: ``layers`` x (Linear, ReLU, Dropout), then Linear.

    The output is logits (the softmax lives in the loss), so
    ``nn.CrossEntropyLoss`` trains it.

    Parameters
    ----------
    in_features : int
        Length of the embedding (2,048 for ResNet-50, 1,280 for Lite0).
    num_classes : int
        Number of classes.
    hidden : int
        Units per hidden layer.
    layers : int
        Number of hidden layers.
    dropout : float
        Dropout rate after each hidden layer, in [0, 1).

    Examples
    --------
    >>> sum(p.numel() for p in dense_head(2048, 22).parameters())
    595990
    """
    in_features = positive_int("in_features", in_features)
    num_classes = positive_int("num_classes", num_classes)
    hidden = positive_int("hidden", hidden)
    layers = positive_int("layers", layers)
    dropout = probability("dropout", dropout)
    modules: list[nn.Module] = []
    width = in_features
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    modules.append(nn.Linear(width, num_classes))
    return nn.Sequential(*modules)


def keras_rmsprop(params: Any, *, lr: float = 5e-4) -> torch.optim.RMSprop:
    """Return torch's RMSprop with Keras' defaults (``alpha = rho = 0.9``, ``eps = 1e-7``).

    Examples
    --------
    >>> opt = keras_rmsprop(nn.Linear(2, 2).parameters())
    >>> opt.defaults["lr"], opt.defaults["alpha"], opt.defaults["eps"]
    (0.0005, 0.9, 1e-07)
    """
    return torch.optim.RMSprop(params, lr=positive_float("lr", lr), alpha=0.9, eps=1e-7)


def _check_features(name: str, features: Any) -> np.ndarray:
    arr = array(name, features, ndim=2, dtype_kind="uif")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _check_pair(features: Any, labels: Any, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    x = _check_features(f"{prefix}features", features)
    y = array(f"{prefix}labels", labels, ndim=1, dtype_kind="iu")
    if len(x) != len(y):
        raise ValueError(
            f"{prefix}labels must have one entry per row of {prefix}features, "
            f"got {len(y)} for {len(x)}"
        )
    return x, y


def feature_loader(
    features: Any, labels: Any, *, batch_size: int, shuffle: bool = False, seed: int = 0
) -> DataLoader:
    """Wrap an embedding matrix ``(N, D)`` and labels in a ``DataLoader``.

    Examples
    --------
    >>> loader = feature_loader(np.zeros((5, 3)), np.arange(5), batch_size=2)
    >>> [tuple(x.shape) for x, _ in loader]
    [(2, 3), (2, 3), (1, 3)]
    """
    x, y = _check_pair(features, labels, "")
    batch_size = positive_int("batch_size", batch_size)
    dataset = TensorDataset(
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        torch.from_numpy(y.astype(np.int64)),
    )
    generator = torch.Generator().manual_seed(non_negative_int("seed", seed))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def fit_dense_head(
    train_features: Any,
    train_labels: Any,
    val_features: Any,
    val_labels: Any,
    *,
    epochs: int = 8,
    lr: float = 5e-4,
    batch_size: int = 32,
    hidden: int = 256,
    dropout: float = 0.5,
    seed: int = 0,
    desc: str = "dense head",
) -> tuple[nn.Sequential, History]:
    """Train seed 000's dense head on embeddings; return it (in eval mode) and its history.

    The number of classes is ``max(label) + 1`` over both label arrays.  The
    head is initialised and the batches are shuffled from ``seed``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(64, 4)).astype(np.float32); y = (x[:, 0] > 0).astype(int)
    >>> head, hist = fit_dense_head(x, y, x, y, epochs=2, hidden=8)
    dense head: 2/2 done in ... s [...]
    >>> hist.epochs, head.training
    (2, False)
    """
    x_train, y_train = _check_pair(train_features, train_labels, "train_")
    x_val, y_val = _check_pair(val_features, val_labels, "val_")
    if x_train.shape[1] != x_val.shape[1]:
        raise ValueError(
            f"val_features must have {x_train.shape[1]} columns like train_features, "
            f"got {x_val.shape[1]}"
        )
    torch.manual_seed(non_negative_int("seed", seed))
    n_classes = int(max(y_train.max(), y_val.max())) + 1
    head = dense_head(x_train.shape[1], n_classes, hidden=hidden, dropout=dropout)
    train = feature_loader(x_train, y_train, batch_size=batch_size, shuffle=True, seed=seed)
    val = feature_loader(x_val, y_val, batch_size=1024)
    optimizer = keras_rmsprop(head.parameters(), lr=lr)
    history = fit(head, train, val, optimizer=optimizer, epochs=epochs, desc=desc)
    return head.eval(), history


def predict_proba(model: nn.Module, features: Any, *, batch_size: int = 1024) -> np.ndarray:
    """Return the softmax probabilities ``(N, C)`` of a head on an embedding matrix.

    Examples
    --------
    >>> p = predict_proba(nn.Linear(3, 2), np.zeros((4, 3)))
    >>> p.shape, np.allclose(p.sum(1), 1)
    ((4, 2), True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = _check_features("features", features)
    loader = feature_loader(x, np.zeros(len(x), np.int64), batch_size=batch_size)
    model.eval()
    with torch.inference_mode():
        out = [torch.softmax(model(xb), dim=1).numpy() for xb, _ in loader]
    return np.concatenate(out)


def _random_columns(shape: tuple[int, int], n_features: int, seed: int) -> np.ndarray:
    """For each row, ``n_features`` distinct random column indices, shape (rows, n_features)."""
    rows, cols = shape
    n_features = positive_int("n_features", n_features)
    if n_features > cols:
        raise ValueError(f"n_features must be at most the {cols} features, got {n_features}")
    rng = np.random.default_rng(non_negative_int("seed", seed))
    return np.argsort(rng.random((rows, cols)), axis=1)[:, :n_features]


def add_to_random_features(
    features: Any, *, n_features: int, value: float, seed: int
) -> np.ndarray:
    """Return a copy with ``value`` added to ``n_features`` random features of every row.

    Each row gets its own random choice of distinct columns.

    Examples
    --------
    >>> x = np.zeros((3, 4))
    >>> out = add_to_random_features(x, n_features=1, value=2.0, seed=0)
    >>> (out == 2).sum(1).tolist(), float(x.sum())
    ([1, 1, 1], 0.0)
    """
    x = _check_features("features", features)
    value = float(value)
    cols = _random_columns(x.shape, n_features, seed)
    out = x.astype(np.result_type(x.dtype, np.float32), copy=True)
    np.add.at(out, (np.arange(len(x))[:, None], cols), value)
    return out


def zero_random_features(features: Any, *, n_features: int, seed: int) -> np.ndarray:
    """Return a copy with ``n_features`` random features of every row set to zero.

    Examples
    --------
    >>> out = zero_random_features(np.ones((2, 5)), n_features=3, seed=0)
    >>> out.sum(1).tolist()
    [2.0, 2.0]
    """
    x = _check_features("features", features)
    cols = _random_columns(x.shape, n_features, seed)
    out = x.astype(np.result_type(x.dtype, np.float32), copy=True)
    out[np.arange(len(x))[:, None], cols] = 0
    return out
