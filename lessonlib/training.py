"""Training loops: torch by hand, Keras through ``model.fit``, one history shape.

The torch side follows torchvision's reference scripts: ``train_one_epoch``
and ``evaluate`` (under ``torch.inference_mode``), tied together by :func:`fit`.
Keras histories are converted by :func:`history_from_keras` so that one plotting
function serves both frameworks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lessonlib._validate import array, positive_int
from lessonlib.data import to_float
from lessonlib.progress import progress

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass
class History:
    """Per-epoch loss and accuracy, for training and validation.

    Examples
    --------
    >>> h = History(loss=[1.0, 0.5], accuracy=[0.6, 0.8], val_loss=[0.9, 0.7],
    ...             val_accuracy=[0.7, 0.75])
    >>> h.epochs, h.best_epoch
    (2, 2)
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """Number of recorded epochs."""
        return len(self.loss)

    @property
    def best_epoch(self) -> int:
        """1-based epoch with the highest validation accuracy."""
        if not self.val_accuracy:
            raise ValueError("history has no validation accuracy to pick a best epoch from")
        return int(np.argmax(self.val_accuracy)) + 1

    def append(self, **values: float) -> None:
        """Add one epoch's values (keys from ``HISTORY_KEYS``)."""
        for key, value in values.items():
            getattr(self, key).append(float(value))


def make_loader(
    images: np.ndarray, labels: np.ndarray, *, batch_size: int, shuffle: bool = False, seed: int = 0
) -> DataLoader:
    """Wrap ``uint8`` or float images and integer labels in a torch ``DataLoader``.

    Images become ``float32`` ``(N, C, H, W)`` in [0, 1]; shuffling uses its own
    seeded generator, so the order is repeatable.

    Examples
    --------
    >>> loader = make_loader(np.zeros((5, 28, 28), np.uint8), np.arange(5), batch_size=2)
    >>> [tuple(x.shape) for x, _ in loader]
    [(2, 1, 28, 28), (2, 1, 28, 28), (1, 1, 28, 28)]
    """
    images = array("images", images, ndim=(3, 4), dtype_kind="uif")
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    batch_size = positive_int("batch_size", batch_size)
    if len(images) != len(labels):
        raise ValueError(
            f"labels must have one entry per image, got {len(labels)} for {len(images)}"
        )
    channels_first = (
        images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3)
    )
    x = torch.from_numpy(
        to_float(images.transpose(0, 2, 3, 1) if channels_first else images, channels_last=False)
    )
    dataset = TensorDataset(x.float(), torch.from_numpy(labels.astype(np.int64)))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _check_model(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    *,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable | None = None,
    device: str = "cpu",
    after_train_mode: Callable[[nn.Module], Any] | None = None,
) -> tuple[float, float]:
    """Train for one pass over ``loader``; return mean loss and accuracy.

    ``after_train_mode`` is called right after ``model.train()``, for example
    :func:`lessonlib.pretrained.freeze_batchnorm` to keep batch-norm statistics frozen.
    """
    _check_model(model)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model.train()
    if after_train_mode is not None:
        after_train_mode(model)
    total, correct, loss_sum = 0, 0, 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = loss_fn(logits, y)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        total += len(y)
    if total == 0:
        raise ValueError("loader must yield at least one batch")
    return loss_sum / total, correct / total


def evaluate(
    model: nn.Module, loader: DataLoader, *, loss_fn: Callable | None = None, device: str = "cpu"
) -> tuple[float, float]:
    """Return mean loss and accuracy of ``model`` on ``loader`` (eval mode, no grad)."""
    _check_model(model)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    with torch.inference_mode():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss_sum += loss_fn(logits, y).item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            total += len(y)
    if total == 0:
        raise ValueError("loader must yield at least one batch")
    return loss_sum / total, correct / total


def predict_proba(
    model: nn.Module, images: np.ndarray, *, batch_size: int = 256, device: str = "cpu"
) -> np.ndarray:
    """Return softmax probabilities ``(N, C)`` of a torch classifier on images."""
    _check_model(model)
    images = array("images", images, ndim=(3, 4), dtype_kind="uif")
    loader = make_loader(images, np.zeros(len(images), np.int64), batch_size=batch_size)
    model.eval()
    out = []
    with torch.inference_mode():
        for x, _ in loader:
            out.append(torch.softmax(model(x.to(device)), dim=1).cpu().numpy())
    return np.concatenate(out)


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    loss_fn: Callable | None = None,
    scheduler: Any | None = None,
    keep_best: bool = False,
    device: str = "cpu",
    desc: str = "training",
    after_train_mode: Callable[[nn.Module], Any] | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs with a progress bar; return its :class:`History`.

    Parameters
    ----------
    keep_best : bool
        Reload the weights of the epoch with the best validation accuracy at
        the end (seed 002's "best epoch kept").
    scheduler : optional
        A learning-rate scheduler stepped once per epoch.
    """
    epochs = positive_int("epochs", epochs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model.to(device)
    history = History()
    best_state, best_acc = None, -1.0
    bar = progress(range(epochs), desc=desc)
    for _ in bar:
        loss, acc = train_one_epoch(
            model,
            train_loader,
            optimizer=optimizer,
            loss_fn=loss_fn,
            device=device,
            after_train_mode=after_train_mode,
        )
        val_loss, val_acc = evaluate(model, val_loader, loss_fn=loss_fn, device=device)
        history.append(loss=loss, accuracy=acc, val_loss=val_loss, val_accuracy=val_acc)
        bar.set_postfix(loss=round(loss, 4), val_acc=round(val_acc, 4))
        if scheduler is not None:
            scheduler.step()
        if keep_best and val_acc > best_acc:
            best_acc, best_state = val_acc, copy.deepcopy(model.state_dict())
    if keep_best and best_state is not None:
        model.load_state_dict(best_state)
    return history


def history_from_keras(keras_history: Any) -> History:
    """Convert a Keras ``History`` (or its ``.history`` dict) into a :class:`History`.

    Examples
    --------
    >>> h = history_from_keras({"loss": [0.5], "accuracy": [0.9],
    ...                         "val_loss": [0.4], "val_accuracy": [0.92]})
    >>> h.val_accuracy
    [0.92]
    """
    logs = getattr(keras_history, "history", keras_history)
    if not isinstance(logs, dict):
        raise TypeError(f"keras_history must be a Keras History or dict, got {type(logs).__name__}")
    missing = [k for k in HISTORY_KEYS if k not in logs]
    if missing:
        raise ValueError(
            f"keras_history lacks {missing}; compile with metrics=['accuracy'] and validate"
        )
    return History(**{k: [float(v) for v in logs[k]] for k in HISTORY_KEYS})


def keras_progress(*, epochs: int, desc: str = "training"):
    """Return a Keras callback that drives a lessonlib progress bar, one step per epoch."""
    from lessonlib.models_keras import import_keras

    keras = import_keras()

    epochs = positive_int("epochs", epochs)

    class _Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = progress(total=epochs, desc=desc)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix(
                loss=round(float(logs.get("loss", np.nan)), 4),
                val_acc=round(float(logs.get("val_accuracy", np.nan)), 4),
            )
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return _Progress()
