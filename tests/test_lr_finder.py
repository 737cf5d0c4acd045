"""Tests for lessonlib.lr_finder: the range test by hand, checked against torch-lr-finder."""

from __future__ import annotations

import copy
import dataclasses
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lessonlib.lr_finder import LRFinderResult, lr_range_test, plot_lr_curve, suggest_lr  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread avoids fighting for the 2 shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _blobs(n: int = 256) -> TensorDataset:
    """Three Gaussian blobs in 2-D, classes in a fixed round-robin order."""
    gen = torch.Generator().manual_seed(7)
    centers = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    labels = torch.arange(n) % 3
    points = centers[labels] + 0.8 * torch.randn(n, 2, generator=gen)
    return TensorDataset(points, labels)


def _mlp(*, batch_norm: bool = False, seed: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(2, 16)]
    if batch_norm:
        layers += [nn.BatchNorm1d(16), nn.Dropout(0.2)]
    layers += [nn.ReLU(), nn.Linear(16, 3)]
    return nn.Sequential(*layers)


def _loader() -> DataLoader:
    return DataLoader(_blobs(), batch_size=32, shuffle=False)


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    return {
        "model": copy.deepcopy(model.state_dict()),
        "optim": copy.deepcopy(optimizer.state_dict()),
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
        "params": [id(p) for p in model.parameters()],
    }


def _assert_same_tree(a: object, b: object, where: str = "") -> None:
    """Compare nested dicts/lists of tensors and plain values exactly."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_same_tree(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _assert_restored(model: nn.Module, optimizer: torch.optim.Optimizer, before: dict) -> None:
    after = _snapshot(model, optimizer)
    _assert_same_tree(before["model"], after["model"], "model")
    _assert_same_tree(before["optim"], after["optim"], "optimizer")
    _assert_same_tree(before["grads"], after["grads"], "grads")
    assert after["modes"] == before["modes"]
    assert after["params"] == before["params"]
    # the optimizer still drives the model's own parameter objects
    held = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert held == before["params"]


def _warm_up(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 3) -> None:
    """Take a few steps so that momentum buffers and gradients exist."""
    x, y = _blobs().tensors
    for i in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(
            model(x[i * 32 : (i + 1) * 32]), y[i * 32 : (i + 1) * 32]
        ).backward()
        optimizer.step()


# ---------------------------------------------------------------------------
# agreement with torch-lr-finder


def _oracle(model: nn.Module, *, start_lr: float, end_lr: float, num_iter: int) -> tuple:
    from torch_lr_finder import LRFinder

    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    finder = LRFinder(model, optimizer, nn.CrossEntropyLoss())
    finder.range_test(
        _loader(),
        start_lr=start_lr,
        end_lr=end_lr,
        num_iter=num_iter,
        step_mode="exp",
        smooth_f=0.05,
        diverge_th=5,
    )
    _, suggestion = finder.plot(ax=Figure().add_subplot(), skip_start=10, skip_end=5)
    return np.array(finder.history["lr"]), np.array(finder.history["loss"]), suggestion


@pytest.mark.parametrize("seed", [3, 5])
def test_curve_and_suggestion_agree_with_torch_lr_finder(seed):
    ref_model = _mlp(seed=seed)
    model = copy.deepcopy(ref_model)
    ref_lrs, ref_losses, ref_suggestion = _oracle(ref_model, start_lr=1e-4, end_lr=10, num_iter=100)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    res = lr_range_test(
        model, optimizer, nn.CrossEntropyLoss(), _loader(), start_lr=1e-4, end_lr=10, num_iter=100
    )

    # both sweeps diverge near the end, within a step or two of each other
    assert res.stopped_early
    assert abs(len(res.lrs) - len(ref_lrs)) <= 2
    k = min(len(res.lrs), len(ref_lrs))
    np.testing.assert_allclose(res.lrs[:k], ref_lrs[:k], rtol=1e-12)

    # identical training steps: the oracle's raw losses, recovered from its
    # un-corrected moving average, equal ours
    ref_raw = np.r_[ref_losses[0], (ref_losses[1:k] - 0.95 * ref_losses[: k - 1]) / 0.05]
    np.testing.assert_allclose(res.raw_losses[:k], ref_raw, rtol=1e-6, atol=1e-7)

    # the only difference is the start of the average: fastai's bias correction
    # versus torch-lr-finder's "start at the first loss"
    unbiased = [res.raw_losses[0]]
    for loss in res.raw_losses[1:k]:
        unbiased.append(0.05 * loss + 0.95 * unbiased[-1])
    np.testing.assert_allclose(unbiased, ref_losses[:k], rtol=1e-6)
    assert np.corrcoef(res.losses[:k], ref_losses[:k])[0, 1] > 0.999

    # the suggestion: same rule, within a factor of 2 (here the same grid point)
    assert suggest_lr(ref_lrs, ref_losses) == pytest.approx(ref_suggestion, rel=1e-12)
    assert ref_suggestion / 2 <= res.suggestion <= 2 * ref_suggestion
    assert 1e-3 < res.suggestion < 1.0


# ---------------------------------------------------------------------------
# restoring the model and the optimizer


def _optimizers(params):
    params = list(params)
    return {
        "sgd": torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-4),
        "adam": torch.optim.Adam(params, lr=3e-3),
    }


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("end_lr", [1.0, 1e4], ids=["full-sweep", "diverges"])
def test_model_and_optimizer_restored_exactly(kind, end_lr):
    model = _mlp(batch_norm=True)
    optimizer = _optimizers(model.parameters())[kind]
    _warm_up(model, optimizer)
    model.eval()
    before = _snapshot(model, optimizer)
    assert before["optim"]["state"], "warm-up should have created optimizer state"

    res = lr_range_test(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        _loader(),
        start_lr=1e-4,
        end_lr=end_lr,
        num_iter=60,
    )

    assert res.stopped_early == (end_lr > 1e3)
    _assert_restored(model, optimizer, before)
    assert optimizer.param_groups[0]["lr"] == (0.05 if kind == "sgd" else 3e-3)
    assert "initial_lr" not in optimizer.param_groups[0]


def test_fresh_optimizer_state_stays_empty_and_training_continues_identically():
    model = _mlp()
    twin = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    lr_range_test(model, optimizer, nn.CrossEntropyLoss(), _loader(), num_iter=30)
    assert optimizer.state_dict()["state"] == {}
    assert all(p.grad is None for p in model.parameters())

    # training after the test is the same as training without it
    twin_opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    _warm_up(model, optimizer)
    _warm_up(twin, twin_opt)
    _assert_same_tree(model.state_dict(), twin.state_dict())


def test_state_restored_when_the_criterion_raises():
    model = _mlp(batch_norm=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    _warm_up(model, optimizer)
    before = _snapshot(model, optimizer)
    calls = []

    def flaky(outputs, targets):
        calls.append(1)
        if len(calls) == 7:
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(outputs, targets)

    with pytest.raises(RuntimeError, match="boom"):
        lr_range_test(model, optimizer, flaky, _loader(), start_lr=1e-3, end_lr=10, num_iter=20)
    _assert_restored(model, optimizer, before)


# ---------------------------------------------------------------------------
# the sweep itself


class _CountingBatches:
    """Three fixed batches; counts how often it is iterated."""

    def __init__(self):
        x, y = _blobs(96).tensors
        self.batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 96, 32)]
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)


def test_lrs_are_exponential_and_short_loader_is_cycled():
    loader = _CountingBatches()
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    res = lr_range_test(
        model, optimizer, nn.CrossEntropyLoss(), loader, start_lr=1e-3, end_lr=1e-1, num_iter=10
    )
    assert res.lrs.shape == (10,) and not res.stopped_early
    assert res.lrs[0] == pytest.approx(1e-3) and res.lrs[-1] == pytest.approx(1e-1)
    np.testing.assert_allclose(res.lrs[1:] / res.lrs[:-1], 10 ** (2 / 9))
    assert loader.passes == 4  # ceil(10 / 3)
    # the batches repeat every three steps; at tiny rates the losses nearly repeat too
    assert res.raw_losses[3] == pytest.approx(res.raw_losses[0], rel=0.05)


@pytest.mark.parametrize("smooth", [0.0, 0.05, 0.3])
def test_smoothed_loss_is_bias_corrected_moving_average(smooth):
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    res = lr_range_test(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        _loader(),
        start_lr=1e-3,
        end_lr=1.0,
        num_iter=25,
        smooth=smooth,
    )
    beta, avg, expected = 1 - smooth, 0.0, []
    for i, loss in enumerate(res.raw_losses):
        avg = beta * avg + (1 - beta) * loss
        expected.append(loss if smooth == 0 else avg / (1 - beta ** (i + 1)))
    np.testing.assert_allclose(res.losses, expected, rtol=1e-12)
    assert res.losses[0] == pytest.approx(res.raw_losses[0])  # no pull towards zero
    assert res.best_loss == pytest.approx(min(expected))


def test_stops_after_divergence_and_keeps_the_diverging_step():
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    res = lr_range_test(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        _loader(),
        start_lr=1e-2,
        end_lr=1e6,
        num_iter=80,
        diverge_threshold=3.0,
        skip_start=100,
    )
    assert res.stopped_early and len(res.lrs) < 80
    running_best = np.minimum.accumulate(res.losses)
    assert res.losses[-1] > 3.0 * running_best[-1]
    assert np.all(res.losses[:-1] <= 3.0 * running_best[:-1])
    assert res.suggestion is None  # skip_start leaves no points to choose from


def test_non_finite_loss_stops_without_recording_it():
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def goes_nan(outputs, targets):
        calls.append(1)
        loss = nn.functional.cross_entropy(outputs, targets)
        return loss * float("nan") if len(calls) > 12 else loss

    res = lr_range_test(
        model, optimizer, goes_nan, _loader(), num_iter=40, skip_start=2, skip_end=2
    )
    assert res.stopped_early and len(res.raw_losses) == 12
    assert np.all(np.isfinite(res.losses)) and res.suggestion is not None
    with pytest.raises(ValueError, match="criterion"):
        lr_range_test(model, optimizer, lambda out, tgt: out.sum() * math.inf, _loader())


def test_result_is_frozen_and_read_only():
    model = _mlp()
    res = lr_range_test(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        _loader(),
        num_iter=20,
        device=torch.device("cpu"),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.suggestion = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        res.losses[0] = 0.0
    assert res.lrs.dtype == np.float64


# ---------------------------------------------------------------------------
# the suggestion rule


def test_suggest_lr_finds_the_steepest_drop_per_decade():
    lrs = np.logspace(-5, 1, 61)
    losses = 1.0 - np.tanh(2 * (np.log10(lrs) + 2))  # steepest at lr = 1e-2
    assert suggest_lr(lrs, losses, skip_start=0, skip_end=0) == pytest.approx(1e-2)
    # the trimmed end is ignored even if it falls faster
    losses[-3:] = [-10.0, -20.0, -30.0]
    assert suggest_lr(lrs, losses, skip_start=0, skip_end=5) == pytest.approx(1e-2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            dict(lrs=[1e-3, 1e-2, 1e-1], losses=[1, 2, 3], skip_start=1, skip_end=1),
            ValueError,
            "lrs",
        ),
        (dict(lrs=[1e-3, 1e-2], losses=[1, 2, 3]), ValueError, "losses"),
        (
            dict(lrs=[1e-2, 1e-3, 1e-1], losses=[1, 2, 3], skip_start=0, skip_end=0),
            ValueError,
            "lrs",
        ),
        (
            dict(lrs=[0.0, 1e-3, 1e-1], losses=[1, 2, 3], skip_start=0, skip_end=0),
            ValueError,
            "lrs",
        ),
        (dict(lrs=[1e-3, 1e-2, 1e-1], losses=[1, 2, 3], skip_start=-1), ValueError, "skip_start"),
        (dict(lrs=[1e-3, 1e-2, 1e-1], losses=[1, 2, 3], skip_end=1.5), TypeError, "skip_end"),
        (dict(lrs="fast", losses=[1, 2, 3]), TypeError, "lrs"),
    ],
)
def test_suggest_lr_bad_inputs(kwargs, error, match):
    lrs, losses = kwargs.pop("lrs"), kwargs.pop("losses")
    with pytest.raises(error, match=match):
        suggest_lr(lrs, losses, **kwargs)


# ---------------------------------------------------------------------------
# bad inputs


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        (dict(model="net"), TypeError, "model"),
        (dict(optimizer=None), TypeError, "optimizer"),
        (dict(criterion=3), TypeError, "criterion"),
        (dict(loader=5), TypeError, "loader"),
        (dict(loader=[]), ValueError, "loader"),
        (dict(num_iter=0), ValueError, "num_iter"),
        (dict(num_iter=-5), ValueError, "num_iter"),
        (dict(num_iter=1), ValueError, "num_iter"),
        (dict(num_iter=10.0), TypeError, "num_iter"),
        (dict(start_lr=0.0), ValueError, "start_lr"),
        (dict(start_lr="1e-3"), TypeError, "start_lr"),
        (dict(start_lr=1.0, end_lr=1.0), ValueError, "end_lr"),
        (dict(start_lr=1.0, end_lr=0.1), ValueError, "end_lr"),
        (dict(end_lr=math.inf), ValueError, "end_lr"),
        (dict(smooth=1.0), ValueError, "smooth"),
        (dict(smooth=-0.1), ValueError, "smooth"),
        (dict(diverge_threshold=1.0), ValueError, "diverge_threshold"),
        (dict(skip_start=-1), ValueError, "skip_start"),
        (dict(device=0), TypeError, "device"),
    ],
)
def test_lr_range_test_bad_inputs(override, error, match):
    model = _mlp()
    args = dict(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        criterion=nn.CrossEntropyLoss(),
        loader=_loader(),
    )
    args.update(override)
    with pytest.raises(error, match=match):
        lr_range_test(**args)


def test_bad_loader_contents_and_foreign_optimizer():
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _blobs(64).tensors
    crit = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match="loader"):  # a one-shot generator runs dry
        lr_range_test(model, optimizer, crit, ((x, y) for _ in range(2)), num_iter=5)
    with pytest.raises(TypeError, match="loader"):  # batches must be (inputs, targets)
        lr_range_test(model, optimizer, crit, [x, x], num_iter=5)
    with pytest.raises(TypeError, match="criterion"):  # criterion must give a scalar
        lr_range_test(model, optimizer, nn.CrossEntropyLoss(reduction="none"), [(x, y)])
    other = torch.optim.SGD(_mlp().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="optimizer"):
        lr_range_test(model, other, crit, [(x, y)])
    assert optimizer.param_groups[0]["lr"] == 0.1


# ---------------------------------------------------------------------------
# plotting


def test_plot_lr_curve_labels_and_marks_the_suggestion():
    model = _mlp()
    res = lr_range_test(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        _loader(),
        start_lr=1e-4,
        end_lr=10,
        num_iter=60,
    )
    ax = plot_lr_curve(res)
    assert ax.get_xscale() == "log"
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert len(ax.get_lines()) == 3  # raw, smoothed, suggestion line
    (marker,) = ax.collections
    np.testing.assert_allclose(marker.get_offsets()[0][0], res.suggestion)
    assert f"{res.suggestion:.2g}" in ax.get_legend().get_texts()[-1].get_text()
    plt.close(ax.figure)

    bare = LRFinderResult(res.lrs[:5], res.losses[:5], res.raw_losses[:5], None, True)
    ax = plot_lr_curve(bare, ax=Figure().add_subplot(), show_raw=False)
    assert len(ax.get_lines()) == 1 and not ax.collections


def test_plot_lr_curve_bad_input():
    with pytest.raises(TypeError, match="result"):
        plot_lr_curve({"lrs": [1e-3], "losses": [1.0]})


class _PairNet(nn.Module):
    """Takes its input as a dict holding a tuple, to exercise nested batches."""

    def __init__(self):
        super().__init__()
        self.body = _mlp()

    def forward(self, batch):
        left, right = batch["pair"]
        return self.body(left + right)


def test_nested_inputs_are_moved_and_passed_through():
    x, y = _blobs(64).tensors
    batches = [
        ({"pair": [x[:32] / 2, x[:32] / 2]}, y[:32]),
        ({"pair": (x[32:], 0 * x[32:])}, y[32:]),
    ]
    model = _PairNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    res = lr_range_test(
        model, optimizer, nn.CrossEntropyLoss(), batches, num_iter=4, skip_start=0, skip_end=0
    )
    assert res.lrs.shape == (4,) and res.suggestion in res.lrs
