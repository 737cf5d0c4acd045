"""Tests for lessonlib.training: loaders, the torch loops, fit and the Keras bridge."""

from __future__ import annotations

import copy
import math
import re
import types

import numpy as np
import pytest
import torch
from torch import nn

from lessonlib import training
from lessonlib.training import (
    HISTORY_KEYS,
    History,
    evaluate,
    fit,
    history_from_keras,
    keras_progress,
    make_loader,
    predict_proba,
    train_one_epoch,
)

# --- a tiny separable problem -------------------------------------------------------------


def _stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """2x2 uint8 images: class 0 has a bright top row, class 1 a bright bottom row."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    bright = rng.integers(180, 256, (n, 2))
    dark = rng.integers(0, 60, (n, 2))
    images = np.empty((n, 2, 2), np.uint8)
    images[:, 0] = np.where(labels[:, None] == 0, bright, dark)
    images[:, 1] = np.where(labels[:, None] == 0, dark, bright)
    return images, labels


def _linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 2))


@pytest.fixture
def problem():
    x_train, y_train = _stripes(64, seed=1)
    x_val, y_val = _stripes(32, seed=2)
    train_loader = make_loader(x_train, y_train, batch_size=16, shuffle=True, seed=3)
    val_loader = make_loader(x_val, y_val, batch_size=16)
    return train_loader, val_loader


# --- History ------------------------------------------------------------------------------


def test_history_append_epochs_and_best_epoch():
    h = History()
    assert h.epochs == 0
    h.append(loss=1, accuracy=0.5, val_loss=0.9, val_accuracy=0.6)
    h.append(loss=np.float32(0.5), accuracy=0.8, val_loss=0.7, val_accuracy=0.75)
    h.append(loss=0.4, accuracy=0.9, val_loss=0.8, val_accuracy=0.75)
    assert h.epochs == 3
    assert h.best_epoch == 2  # 1-based, first of equal maxima
    assert all(type(v) is float for v in h.loss)


def test_history_best_epoch_needs_validation():
    with pytest.raises(ValueError, match="no validation accuracy"):
        History(loss=[1.0]).best_epoch  # noqa: B018


# --- make_loader --------------------------------------------------------------------------


def test_make_loader_uint8_grey_images():
    images = np.full((5, 28, 28), 255, np.uint8)
    images[1] = 51
    loader = make_loader(images, np.arange(5), batch_size=2)
    batches = list(loader)
    assert [tuple(x.shape) for x, _ in batches] == [(2, 1, 28, 28), (2, 1, 28, 28), (1, 1, 28, 28)]
    x, y = batches[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x[0].max().item() == 1.0 and x[1].max().item() == pytest.approx(0.2)
    assert torch.cat([y for _, y in batches]).tolist() == [0, 1, 2, 3, 4]


def test_make_loader_channels_last_uint8_becomes_channels_first():
    images = np.zeros((3, 4, 5, 3), np.uint8)
    images[..., 2] = 255  # only the last channel is lit
    x, _ = next(iter(make_loader(images, np.zeros(3, np.int32), batch_size=3)))
    assert tuple(x.shape) == (3, 3, 4, 5)
    assert x[:, 2].min().item() == 1.0 and x[:, :2].max().item() == 0.0


def test_make_loader_keeps_float_channels_first():
    rng = np.random.default_rng(0)
    images = rng.random((4, 3, 6, 6))  # float64, channels first: passed through
    x, _ = next(iter(make_loader(images, np.arange(4), batch_size=4)))
    assert x.dtype == torch.float32 and tuple(x.shape) == (4, 3, 6, 6)
    np.testing.assert_allclose(x.numpy(), images, rtol=1e-6)


def test_make_loader_shuffle_is_seeded():
    images, labels = np.zeros((20, 2, 2), np.uint8), np.arange(20)

    def order(seed, shuffle=True):
        loader = make_loader(images, labels, batch_size=6, shuffle=shuffle, seed=seed)
        return torch.cat([y for _, y in loader]).tolist()

    assert order(0, shuffle=False) == list(range(20))
    a, b, c = order(5), order(5), order(6)
    assert a == b
    assert a != c
    assert sorted(a) == list(range(20)) and a != list(range(20))


@pytest.mark.parametrize(
    ("images", "labels", "batch_size", "error", "match"),
    [
        (np.zeros((4, 4)), np.zeros(4, int), 2, ValueError, "images"),
        (np.zeros((4, 2, 2), bool), np.zeros(4, int), 2, TypeError, "images"),
        (np.zeros((0, 2, 2)), np.zeros(0, int), 2, ValueError, "images must not be empty"),
        (np.zeros((4, 2, 2)), np.zeros(4), 2, TypeError, "labels"),
        (np.zeros((4, 2, 2)), np.zeros(3, int), 2, ValueError, "labels must have one entry"),
        (np.zeros((4, 2, 2)), np.zeros(4, int), 0, ValueError, "batch_size"),
        (np.zeros((4, 2, 2)), np.zeros(4, int), 2.0, TypeError, "batch_size"),
    ],
)
def test_make_loader_rejects(images, labels, batch_size, error, match):
    with pytest.raises(error, match=match):
        make_loader(images, labels, batch_size=batch_size)


def test_make_loader_uint8_channels_first():
    x, _ = next(iter(make_loader(np.zeros((2, 1, 28, 28), np.uint8), np.arange(2), batch_size=2)))
    assert tuple(x.shape) == (2, 1, 28, 28)


# --- train_one_epoch and evaluate ---------------------------------------------------------


def test_train_one_epoch_learns_the_stripes(problem):
    train_loader, val_loader = problem
    model = _linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses, accs = [], []
    for _ in range(4):
        loss, acc = train_one_epoch(model, train_loader, optimizer=optimizer)
        losses.append(loss)
        accs.append(acc)
    assert all(isinstance(v, float) for v in losses + accs)
    assert losses[-1] < losses[0] / 2
    assert accs[-1] == 1.0
    val_loss, val_acc = evaluate(model, val_loader)
    assert val_acc == 1.0 and val_loss < losses[0]


def test_train_one_epoch_uses_the_loss_and_the_hook(problem):
    train_loader, _ = problem
    model = _linear()
    calls, modes = [], []

    def loss_fn(logits, y):
        calls.append(len(y))
        return nn.functional.cross_entropy(logits, y)

    train_one_epoch(
        model,
        train_loader,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        loss_fn=loss_fn,
        after_train_mode=lambda m: modes.append(m.training),
    )
    assert calls == [16, 16, 16, 16]
    assert modes == [True]


def test_evaluate_known_answer_for_a_zero_model():
    model = _linear()
    nn.init.zeros_(model[1].weight)
    nn.init.zeros_(model[1].bias)
    labels = np.array([0, 0, 0, 1, 1])  # tied logits: argmax says class 0
    loader = make_loader(np.zeros((5, 2, 2), np.uint8), labels, batch_size=2)
    loss, acc = evaluate(model, loader)
    assert loss == pytest.approx(math.log(2))
    assert acc == pytest.approx(0.6)


class _Recorder(nn.Module):
    """A linear model that records its mode and whether gradients were being tracked."""

    def __init__(self):
        super().__init__()
        self.inner = _linear()
        self.seen: list[tuple[bool, bool, bool]] = []

    def forward(self, x):
        self.seen.append(
            (self.training, torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        )
        return self.inner(x)


def test_evaluate_runs_in_eval_and_inference_mode_and_keeps_grads(problem):
    _, val_loader = problem
    model = _Recorder()
    model.train()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.25)
    before = copy.deepcopy(model.state_dict())
    evaluate(model, val_loader)
    assert model.seen == [(False, False, True)] * 2
    assert not model.training
    for p in model.parameters():
        assert torch.equal(p.grad, torch.full_like(p, 0.25))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_loops_reject_an_empty_loader():
    model = _linear()
    empty: list = []
    with pytest.raises(ValueError, match="loader must yield at least one batch"):
        train_one_epoch(model, empty, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="loader must yield at least one batch"):
        evaluate(model, empty)


@pytest.mark.parametrize("loop", ["train", "evaluate"])
def test_loops_reject_a_non_module(problem, loop):
    train_loader, _ = problem
    with pytest.raises(TypeError, match="model"):
        if loop == "train":
            train_one_epoch("net", train_loader, optimizer=None)
        else:
            evaluate("net", train_loader)


# --- predict_proba ------------------------------------------------------------------------


def test_predict_proba_matches_softmax_and_sums_to_one():
    images, _ = _stripes(10, seed=4)
    model = _linear(seed=5)
    model.train()
    probs = predict_proba(model, images, batch_size=3)
    assert probs.shape == (10, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    x = torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1)
    expected = torch.softmax(model(x), dim=1).detach().numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)
    assert not model.training


def test_predict_proba_rejects_bad_arguments():
    with pytest.raises(ValueError, match="images"):
        predict_proba(_linear(), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="batch_size"):
        predict_proba(_linear(), np.zeros((3, 2, 2)), batch_size=0)


def test_predict_proba_rejects_a_non_array():
    with pytest.raises(TypeError, match="images"):
        predict_proba(_linear(), 5)


# --- fit ----------------------------------------------------------------------------------


def test_fit_returns_a_history_and_prints_one_line(problem, capsys):
    train_loader, val_loader = problem
    model = _linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    history = fit(model, train_loader, val_loader, optimizer=optimizer, epochs=3, desc="stripes")
    assert isinstance(history, History) and history.epochs == 3
    for key in HISTORY_KEYS:
        assert len(getattr(history, key)) == 3
    assert history.loss[-1] < history.loss[0]
    assert history.val_accuracy[-1] == 1.0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("stripes: 3/3 done in ")
    assert lines[0].endswith(f"val_acc={history.val_accuracy[-1]:.4g}]")


def test_fit_is_repeatable(problem):
    train_loader, val_loader = problem
    runs = []
    for _ in range(2):
        model = _linear(seed=9)
        opt = torch.optim.SGD(model.parameters(), lr=0.3)
        # a fresh loader each time, so the shuffling generator starts from its seed again
        x, y = _stripes(64, seed=1)
        loader = make_loader(x, y, batch_size=16, shuffle=True, seed=3)
        runs.append(fit(model, loader, val_loader, optimizer=opt, epochs=2).loss)
    assert runs[0] == runs[1]


def _scripted_evaluate(monkeypatch, accuracies):
    """Replace evaluate with one that returns the given accuracies and snapshots the weights."""
    snapshots = []
    scripted = iter(accuracies)

    def fake(model, loader, *, loss_fn=None, device="cpu"):
        snapshots.append(copy.deepcopy(model.state_dict()))
        return 1.0, next(scripted)

    monkeypatch.setattr(training, "evaluate", fake)
    return snapshots


@pytest.mark.parametrize(
    ("accuracies", "keep_best", "kept"),
    [
        ([0.5, 0.9, 0.6], True, 1),
        ([0.5, 0.9, 0.9], True, 1),  # ties keep the earlier epoch
        ([0.5, 0.6, 0.7], True, 2),
        ([0.5, 0.9, 0.6], False, 2),
    ],
)
def test_fit_keep_best_restores_the_best_epoch(problem, monkeypatch, accuracies, keep_best, kept):
    train_loader, val_loader = problem
    snapshots = _scripted_evaluate(monkeypatch, accuracies)
    model = _linear()
    history = fit(
        model,
        train_loader,
        val_loader,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        epochs=3,
        keep_best=keep_best,
    )
    assert history.val_accuracy == accuracies
    assert not torch.equal(snapshots[0]["1.weight"], snapshots[2]["1.weight"])
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[kept][key]), key


def test_fit_steps_the_scheduler_once_per_epoch(problem):
    train_loader, val_loader = problem
    model = _linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.8)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    fit(model, train_loader, val_loader, optimizer=optimizer, epochs=3, scheduler=scheduler)
    assert scheduler.last_epoch == 3
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_fit_calls_the_hook_every_epoch_and_uses_the_loss(problem):
    train_loader, val_loader = problem
    model = _linear()
    hooked, losses = [], []

    def loss_fn(logits, y):
        losses.append(len(y))
        return nn.functional.cross_entropy(logits, y)

    fit(
        model,
        train_loader,
        val_loader,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=2,
        loss_fn=loss_fn,
        after_train_mode=lambda m: hooked.append(m.training),
    )
    assert hooked == [True, True]
    assert len(losses) == 2 * (4 + 2)  # train and validation batches both use loss_fn


@pytest.mark.parametrize(("epochs", "error"), [(0, ValueError), (-1, ValueError), (2.0, TypeError)])
def test_fit_rejects_bad_epochs(problem, epochs, error):
    model = _linear()
    with pytest.raises(error, match="epochs"):
        fit(model, *problem, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=epochs)


def test_fit_rejects_a_non_module(problem):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fit(lambda x: x, *problem, optimizer=None, epochs=1)


def test_fit_rejects_an_empty_loader(problem):
    model = _linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="loader"):
        fit(model, [], problem[1], optimizer=opt, epochs=1)


# --- Keras --------------------------------------------------------------------------------


def test_history_from_keras_dict_and_object():
    logs = {
        "loss": [np.float32(0.5), 0.25],
        "accuracy": [0.8, 0.9],
        "val_loss": [0.6, 0.4],
        "val_accuracy": [0.7, 0.85],
        "learning_rate": [1e-3, 1e-3],  # extra keys are ignored
    }
    for source in (logs, types.SimpleNamespace(history=logs)):
        h = history_from_keras(source)
        assert isinstance(h, History) and h.epochs == 2
        assert h.loss == [0.5, 0.25] and h.val_accuracy == [0.7, 0.85]
        assert h.best_epoch == 2
        assert all(type(v) is float for v in h.loss)


def test_history_from_keras_rejects_bad_input():
    with pytest.raises(TypeError, match="keras_history must be a Keras History or dict"):
        history_from_keras([0.5])
    with pytest.raises(ValueError, match=r"keras_history lacks \['val_loss', 'val_accuracy'\]"):
        history_from_keras({"loss": [1.0], "accuracy": [0.5]})


def test_keras_fit_with_progress_callback(capsys):
    from lessonlib.models_keras import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    x_train, y_train = _stripes(64, seed=1)
    x_val, y_val = _stripes(32, seed=2)
    model = keras.Sequential([keras.Input((2, 2)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    raw = model.fit(
        x_train / 255.0,
        y_train,
        validation_data=(x_val / 255.0, y_val),
        epochs=3,
        batch_size=16,
        verbose=0,
        callbacks=[keras_progress(epochs=3, desc="keras")],
    )
    history = history_from_keras(raw)
    assert history.epochs == 3
    np.testing.assert_allclose(history.val_accuracy, raw.history["val_accuracy"])
    assert history.loss[-1] < history.loss[0]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("keras: 3/3 done in ")
    assert f"val_acc={round(history.val_accuracy[-1], 4):.4g}]" in lines[0]


def test_keras_progress_without_logs(capsys):
    callback = keras_progress(epochs=2, desc="bare")
    callback.on_train_begin()
    callback.on_epoch_end(0)  # no logs: nan placeholders, no crash
    callback.on_epoch_end(1, {"loss": 0.5, "val_accuracy": 0.75})
    assert capsys.readouterr().out == ""
    callback.on_train_end()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"bare: 2/2 done in \d+\.\d s \[loss=0\.5, val_acc=0\.75\]", lines[0])


@pytest.mark.parametrize(("epochs", "error"), [(0, ValueError), (1.5, TypeError)])
def test_keras_progress_rejects_bad_epochs(epochs, error):
    with pytest.raises(error, match="epochs"):
        keras_progress(epochs=epochs)
