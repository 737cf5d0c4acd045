"""The learning-rate range test, written out by hand.

Leslie Smith's range test (Smith 2017, popularised by fastai's ``lr_find``)
trains for a short while with a learning rate that grows exponentially from
``start_lr`` to ``end_lr``, one step per mini-batch, and records the training
loss at every step.  The loss is noisy, so it is smoothed with an exponential
moving average.  While the rate is too small the loss barely moves; in a good
range it falls quickly; once the rate is too large it shoots up, and the test
stops.  A sensible first guess for training is the rate where the smoothed loss
falls fastest.

The test trains the model, so :func:`lr_range_test` snapshots the model and
the optimizer first and puts both back afterwards, even when it stops early or
raises.  Only the random number generators move on (dropout and shuffling draw
from them).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np

from lessonlib import _validate as v
from lessonlib.progress import progress

__all__ = ["LRFinderResult", "lr_range_test", "plot_lr_curve", "suggest_lr"]


@dataclass(frozen=True, eq=False)
class LRFinderResult:
    """The curve recorded by :func:`lr_range_test`.

    Attributes
    ----------
    lrs : numpy.ndarray
        Learning rate used at each recorded step (read-only, float64).
    losses : numpy.ndarray
        Smoothed training loss at each step (bias-corrected moving average).
    raw_losses : numpy.ndarray
        The mini-batch loss at each step, before smoothing.
    suggestion : float or None
        Rate where the smoothed loss falls fastest (see :func:`suggest_lr`), or
        ``None`` when the test stopped too early to leave enough points.
    stopped_early : bool
        True when the test stopped because the loss diverged.
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float | None
    stopped_early: bool

    @property
    def best_loss(self) -> float:
        """Lowest smoothed loss of the sweep."""
        return float(np.min(self.losses))


def suggest_lr(lrs: Any, losses: Any, *, skip_start: int = 10, skip_end: int = 5) -> float:
    """Return the learning rate where the loss curve falls most steeply.

    The rule is the one of ``torch-lr-finder`` and fastai's ``steep`` choice:
    drop the first ``skip_start`` and last ``skip_end`` points (the start is
    flat and noisy, the end is the blow-up), take the slope of the loss against
    ``log10(lr)`` with :func:`numpy.gradient` (central differences), and return
    the rate at the most negative slope.  On an exponential sweep the points are
    evenly spaced in ``log10(lr)``, so this is also the steepest drop per step.

    Parameters
    ----------
    lrs : array_like, shape (n,)
        Strictly increasing positive learning rates.
    losses : array_like, shape (n,)
        Smoothed loss at each rate.
    skip_start, skip_end : int
        Points to ignore at the start and at the end of the curve.

    Returns
    -------
    float
        The suggested learning rate, one of ``lrs``.

    Examples
    --------
    >>> lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    >>> losses = [1.0, 0.98, 0.6, 0.5, 3.0]
    >>> suggest_lr(lrs, losses, skip_start=0, skip_end=1)
    0.01
    """
    skip_start = v.non_negative_int("skip_start", skip_start)
    skip_end = v.non_negative_int("skip_end", skip_end)
    lrs = v.array("lrs", lrs, ndim=1, dtype_kind="uif").astype(np.float64)
    losses = v.array("losses", losses, ndim=1, dtype_kind="uif").astype(np.float64)
    if losses.shape != lrs.shape:
        raise ValueError(f"losses must have the shape of lrs {lrs.shape}, got {losses.shape}")
    if lrs[0] <= 0 or np.any(np.diff(lrs) <= 0):
        raise ValueError("lrs must be positive and strictly increasing")
    needed = skip_start + skip_end + 2
    if lrs.size < needed:
        raise ValueError(
            f"lrs has {lrs.size} points; need at least {needed} "
            f"(skip_start + skip_end + 2) to suggest a rate"
        )
    keep = slice(skip_start, lrs.size - skip_end)
    slope = np.gradient(losses[keep], np.log10(lrs[keep]))
    return float(lrs[keep][np.argmin(slope)])


def lr_range_test(
    model: Any,
    optimizer: Any,
    criterion: Callable[..., Any],
    loader: Iterable,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    smooth: float = 0.05,
    diverge_threshold: float = 5.0,
    skip_start: int = 10,
    skip_end: int = 5,
    device: Any = "cpu",
) -> LRFinderResult:
    """Run the learning-rate range test and restore the model and optimizer.

    Step ``i`` (of ``num_iter``) trains on one mini-batch with every parameter
    group at ``start_lr * (end_lr / start_lr) ** (i / (num_iter - 1))``.  The
    loader is restarted whenever it runs out.  The smoothed loss is the
    bias-corrected exponential moving average ``avg = (1 - smooth) * avg +
    smooth * loss``, divided by ``1 - (1 - smooth) ** (i + 1)`` (fastai's
    smoothing with ``beta = 1 - smooth``).  The test stops after the first step
    whose smoothed loss exceeds ``diverge_threshold`` times the best one so far
    (that step is kept), or before recording a non-finite loss.

    Parameters
    ----------
    model : torch.nn.Module
        The network; it is trained during the test and restored afterwards.
    optimizer : torch.optim.Optimizer
        Optimizer over (a subset of) ``model``'s parameters. Its learning rate
        is overridden during the test and restored afterwards.
    criterion : callable
        ``criterion(outputs, targets)`` returns a scalar loss tensor (>= 0).
    loader : iterable
        Yields ``(inputs, targets, ...)`` batches, e.g. a ``DataLoader``. It
        must be re-iterable if it has fewer than ``num_iter`` batches.
    start_lr, end_lr : float
        Bounds of the sweep, ``0 < start_lr < end_lr``.
    num_iter : int
        Number of steps (>= 2).
    smooth : float
        Weight of the newest loss in the moving average, in [0, 1); 0 turns
        smoothing off. The default matches ``torch-lr-finder``'s ``smooth_f``.
    diverge_threshold : float
        Stop once the smoothed loss exceeds this multiple (> 1) of the best.
    skip_start, skip_end : int
        Passed to :func:`suggest_lr`.
    device : str or torch.device
        Where the test runs; the model returns to its own device afterwards.

    Returns
    -------
    LRFinderResult
        Learning rates, smoothed and raw losses, the suggestion, and whether
        the loss diverged.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(64, 2); y = (x[:, 0] > 0).long()
    >>> model = torch.nn.Linear(2, 2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    >>> res = lr_range_test(model, opt, torch.nn.functional.cross_entropy, batches,
    ...                     start_lr=1e-3, end_lr=10, num_iter=20, skip_start=2, skip_end=2)
    LR range test: 20/20 done in ... s [lr=10, loss=...]
    >>> res.lrs.shape, float(res.lrs[0]), float(res.lrs[-1])
    ((20,), 0.001, 10.0)
    >>> 1e-3 < res.suggestion < 10, opt.param_groups[0]["lr"]
    (True, 0.1)
    """
    device = _check_args(model, optimizer, criterion, loader, device)
    start_lr = v.positive_float("start_lr", start_lr)
    end_lr = v.positive_float("end_lr", end_lr)
    if start_lr >= end_lr:
        raise ValueError(f"end_lr must be larger than start_lr, got {end_lr} <= {start_lr}")
    num_iter = v.positive_int("num_iter", num_iter)
    if num_iter < 2:
        raise ValueError(f"num_iter must be at least 2, got {num_iter}")
    smooth = v.probability("smooth", smooth)
    diverge_threshold = v.positive_float("diverge_threshold", diverge_threshold)
    if diverge_threshold <= 1:
        raise ValueError(f"diverge_threshold must be > 1, got {diverge_threshold}")
    skip_start = v.non_negative_int("skip_start", skip_start)
    skip_end = v.non_negative_int("skip_end", skip_end)

    lrs = [start_lr * (end_lr / start_lr) ** (i / (num_iter - 1)) for i in range(num_iter)]
    with _restored(model, optimizer, device):
        raw, smoothed, stopped = _sweep(
            model, optimizer, criterion, loader, lrs, smooth, diverge_threshold, device
        )
    lrs_arr, losses, raw_arr = (_frozen(a) for a in (lrs[: len(raw)], smoothed, raw))
    suggestion = None
    if len(raw) >= skip_start + skip_end + 2:
        suggestion = suggest_lr(lrs_arr, losses, skip_start=skip_start, skip_end=skip_end)
    return LRFinderResult(lrs_arr, losses, raw_arr, suggestion, stopped)


def plot_lr_curve(result: LRFinderResult, *, ax: Any = None, show_raw: bool = True) -> Any:
    """Draw the loss against the learning rate (log scale) and mark the suggestion.

    Parameters
    ----------
    result : LRFinderResult
        What :func:`lr_range_test` returned.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when omitted.
    show_raw : bool
        Also draw the unsmoothed mini-batch losses, faintly.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> res = LRFinderResult(np.logspace(-3, 0, 4), np.array([1.0, 0.8, 0.3, 0.9]),
    ...                      np.array([1.0, 0.7, 0.2, 1.1]), 0.01, False)
    >>> ax = plot_lr_curve(res)
    >>> ax.get_xscale(), ax.get_xlabel()
    ('log', 'learning rate (log scale)')
    """
    if not isinstance(result, LRFinderResult):
        raise TypeError(f"result must be an LRFinderResult, got {type(result).__name__}")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    if show_raw:
        ax.plot(result.lrs, result.raw_losses, color="0.75", lw=1, label="mini-batch loss")
    ax.plot(result.lrs, result.losses, color="#0072B2", lw=2, label="smoothed loss")
    if result.suggestion is not None:
        idx = int(np.argmin(np.abs(result.lrs - result.suggestion)))
        ax.axvline(result.suggestion, color="#D55E00", ls="--", lw=1)
        ax.scatter(
            [result.suggestion],
            [result.losses[idx]],
            color="#D55E00",
            zorder=3,
            label=f"steepest descent: lr = {result.suggestion:.2g}",
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate range test")
    ax.legend()
    return ax


# ---------------------------------------------------------------------------
# helpers


def _check_args(model: Any, optimizer: Any, criterion: Any, loader: Any, device: Any) -> Any:
    """Check the objects handed to :func:`lr_range_test`; return the torch device."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    if not callable(criterion):
        raise TypeError(f"criterion must be callable, got {type(criterion).__name__}")
    if not isinstance(loader, Iterable):
        raise TypeError(f"loader must be an iterable of batches, got {type(loader).__name__}")
    if isinstance(loader, Sized) and len(loader) == 0:
        raise ValueError("loader must yield at least one batch, got an empty loader")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    owned = {id(p) for p in model.parameters()}
    for group in optimizer.param_groups:
        if any(id(p) not in owned for p in group["params"]):
            raise ValueError("optimizer must only hold parameters of model")
    return torch.device(device)


class _restored:
    """Context manager: snapshot model and optimizer, give them back on exit."""

    def __init__(self, model: Any, optimizer: Any, device: Any):
        self.model, self.optimizer, self.device = model, optimizer, device

    def __enter__(self) -> None:
        params = list(self.model.parameters())
        self.home = params[0].device if params else self.device
        self.model_state = copy.deepcopy(self.model.state_dict())
        self.optim_state = copy.deepcopy(self.optimizer.state_dict())
        self.grads = [None if p.grad is None else p.grad.detach().clone() for p in params]
        self.modes = [m.training for m in self.model.modules()]
        self.model.to(self.device)

    def __exit__(self, *exc: object) -> None:
        self.model.to(self.home)
        self.model.load_state_dict(self.model_state)
        self.optimizer.load_state_dict(self.optim_state)
        for p, g in zip(self.model.parameters(), self.grads, strict=True):
            p.grad = g
        for m, mode in zip(self.model.modules(), self.modes, strict=True):
            m.training = mode


def _sweep(
    model: Any,
    optimizer: Any,
    criterion: Callable[..., Any],
    loader: Iterable,
    lrs: list[float],
    smooth: float,
    diverge_threshold: float,
    device: Any,
) -> tuple[list[float], list[float], bool]:
    """Train one batch per rate; return raw losses, smoothed losses, stopped flag."""
    batches = _cycle(loader)
    model.train()
    raw: list[float] = []
    smoothed: list[float] = []
    avg, best, stopped = 0.0, math.inf, False
    with progress(total=len(lrs), desc="LR range test") as bar:
        for i, lr in enumerate(lrs):
            loss = _train_step(model, optimizer, criterion, next(batches), lr, device)
            if not math.isfinite(loss):
                if i == 0:
                    raise ValueError(
                        f"criterion gave a non-finite loss ({loss}) on the first batch"
                    )
                stopped = True
                break
            avg = (1 - smooth) * avg + smooth * loss
            value = loss if smooth == 0 else avg / (1 - (1 - smooth) ** (i + 1))
            raw.append(loss)
            smoothed.append(value)
            best = min(best, value)
            bar.update()
            bar.set_postfix(lr=lr, loss=value)
            if value > diverge_threshold * best:
                stopped = True
                break
    return raw, smoothed, stopped


def _train_step(
    model: Any, optimizer: Any, criterion: Callable[..., Any], batch: Any, lr: float, device: Any
) -> float:
    """Set the rate, take one optimizer step on ``batch``, return the loss."""
    import torch

    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError(f"loader must yield (inputs, targets) pairs, got {type(batch).__name__}")
    inputs, targets = _to_device(batch[0], device), _to_device(batch[1], device)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad()
    loss = criterion(model(inputs), targets)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError("criterion must return a scalar tensor")
    loss.backward()
    optimizer.step()
    return float(loss.item())


def _cycle(loader: Iterable) -> Iterator:
    """Yield batches forever, restarting ``loader`` whenever it runs out."""
    while True:
        fresh = True
        for batch in loader:
            fresh = False
            yield batch
        if fresh:
            raise ValueError("loader must yield at least one batch (it is empty or exhausted)")


def _to_device(obj: Any, device: Any) -> Any:
    """Move a tensor, or tensors nested in lists, tuples and dicts, to ``device``."""
    if hasattr(obj, "to"):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_device(o, device) for k, o in obj.items()}
    return obj


def _frozen(values: Any) -> np.ndarray:
    """Return ``values`` as a read-only float64 array."""
    arr = np.array(values, dtype=np.float64)
    arr.flags.writeable = False
    return arr
