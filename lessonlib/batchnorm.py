"""Batch normalisation by hand, the momentum conventions, and deep plain convnets (lesson 6).

:func:`batch_norm` spells out what a batch-norm layer computes: in training mode
it normalises every channel with the mean and variance of the current batch,
then scales by ``gamma`` (``weight``) and shifts by ``beta`` (``bias``), and it
updates running averages of the batch statistics; in evaluation mode it uses
those running averages instead.  :class:`BatchNorm2dByHand` wraps it as a
``torch.nn.Module`` with the same parameters and buffers as
``torch.nn.BatchNorm2d``, and the tests check both against PyTorch and Keras.

The frameworks define *momentum* in opposite ways::

    torch:  running = (1 - momentum) * running + momentum * batch     (default 0.1)
    keras:  moving  = momentum * moving + (1 - momentum) * batch      (default 0.99)

so torch's 0.1 is Keras's 0.9 (:func:`keras_momentum`, :func:`torch_momentum`).
Torch also stores the unbiased batch variance in ``running_var``, Keras the
biased one.

:func:`plain_convnet` builds the deeper convnet of the lesson with or without
batch norm, :func:`train_recording_steps` trains it while recording the loss of
every step, :func:`compare_batch_norm` runs the learning-rate sweep, and
:func:`accuracy_one_at_a_time` shows the cost of forgetting ``model.eval()``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from lessonlib._validate import array, positive_float, positive_int, probability
from lessonlib.progress import progress
from lessonlib.training import evaluate, make_loader

__all__ = [
    "BatchNorm2dByHand",
    "SweepRun",
    "accuracy_one_at_a_time",
    "batch_norm",
    "compare_batch_norm",
    "keras_momentum",
    "keras_running_means",
    "plain_convnet",
    "plot_running_means",
    "recalibrated",
    "sweep_figure",
    "sweep_table",
    "torch_momentum",
    "torch_running_means",
    "train_recording_steps",
]


# --------------------------------------------------------------------------- the layer by hand


def _tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
    return value


def batch_norm(
    x: torch.Tensor,
    *,
    weight: torch.Tensor,
    bias: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
    channel_axis: int = 1,
    unbiased_running_var: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalise ``x`` per channel, as a batch-norm layer does; return the new running stats.

    Training mode: ``mean`` and ``var`` (biased) are taken over every axis but
    the channel axis, ``y = weight * (x - mean) / sqrt(var + eps) + bias``, and
    ``running = (1 - momentum) * running + momentum * batch`` (torch's
    convention) for the mean and for the variance.  Evaluation mode: the
    running statistics replace the batch ones and are returned unchanged.

    Parameters
    ----------
    x : torch.Tensor
        A float tensor with at least 2 dimensions.
    weight, bias : torch.Tensor
        ``gamma`` and ``beta``, one value per channel.
    running_mean, running_var : torch.Tensor
        The running statistics before this batch, one value per channel.
    training : bool
        Use (and fold in) the batch statistics, or use the running ones.
    momentum : float
        Weight of the new batch in the running averages, torch's convention.
    eps : float
        Added to the variance before the square root.
    channel_axis : int
        1 for torch's ``(N, C, H, W)``, -1 for Keras's ``(N, H, W, C)``.
    unbiased_running_var : bool
        Fold the unbiased variance ``var * n / (n - 1)`` into ``running_var``
        (torch) or the biased one (Keras).  Normalisation always uses the
        biased variance.

    Returns
    -------
    y, new_running_mean, new_running_var : torch.Tensor
        The output (differentiable) and the updated statistics (detached).

    Examples
    --------
    >>> x = torch.tensor([[1.0], [3.0]])  # two samples, one channel
    >>> one, zero = torch.ones(1), torch.zeros(1)
    >>> y, mean, var = batch_norm(x, weight=one, bias=zero, running_mean=zero,
    ...                           running_var=one, training=True, eps=0.0)
    >>> y.flatten().tolist(), mean.tolist(), var.tolist()
    ([-1.0, 1.0], [0.20000000298023224], [1.100000023841858])
    """
    x = _tensor("x", x)
    if x.dim() < 2:
        raise ValueError(f"x must have a batch and a channel axis, got shape {tuple(x.shape)}")
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, Integral):
        raise TypeError(f"channel_axis must be an int, got {type(channel_axis).__name__}")
    if not -x.dim() <= channel_axis < x.dim() or channel_axis % x.dim() == 0:
        raise ValueError(f"channel_axis must name a non-batch axis of x, got {channel_axis}")
    momentum = probability("momentum", momentum, inclusive_one=True)
    eps = float(eps) if eps == 0 else positive_float("eps", eps)
    axis = channel_axis % x.dim()
    channels = x.shape[axis]
    stats = {
        "weight": weight,
        "bias": bias,
        "running_mean": running_mean,
        "running_var": running_var,
    }
    for name, value in stats.items():
        if _tensor(name, value).shape != (channels,):
            raise ValueError(f"{name} must have shape ({channels},), got {tuple(value.shape)}")
    shape = [1] * x.dim()
    shape[axis] = channels
    reduce = [d for d in range(x.dim()) if d != axis]
    if training:
        count = x.numel() // channels
        if count < 2:
            raise ValueError("x must hold more than one value per channel in training mode")
        mean = x.mean(dim=reduce)
        var = x.var(dim=reduce, unbiased=False)
        folded = var * count / (count - 1) if unbiased_running_var else var
        new_mean = ((1 - momentum) * running_mean + momentum * mean).detach()
        new_var = ((1 - momentum) * running_var + momentum * folded).detach()
    else:
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean.detach().clone(), running_var.detach().clone()
    x_hat = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    return weight.reshape(shape) * x_hat + bias.reshape(shape), new_mean, new_var


class BatchNorm2dByHand(nn.Module):
    """A 2-D batch-norm layer written with :func:`batch_norm`.

    It has the parameters (``weight``, ``bias``) and buffers (``running_mean``,
    ``running_var``, ``num_batches_tracked``) of ``torch.nn.BatchNorm2d``, so
    state dicts load across in both directions.

    Parameters
    ----------
    num_features : int
        Channels of the input ``(N, C, H, W)``.
    momentum : float
        Torch's convention: the weight of the new batch in the running averages.
    eps : float
        Added to the variance before the square root.

    Examples
    --------
    >>> layer = BatchNorm2dByHand(3)
    >>> sorted(layer.state_dict()) == sorted(nn.BatchNorm2d(3).state_dict())
    True
    >>> layer(torch.randn(4, 3, 5, 5)).shape
    torch.Size([4, 3, 5, 5])
    """

    def __init__(self, num_features: int, *, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.num_features = positive_int("num_features", num_features)
        self.momentum = probability("momentum", momentum, inclusive_one=True)
        self.eps = positive_float("eps", eps)
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise a batch ``(N, C, H, W)``; in training mode also update the buffers."""
        if _tensor("x", x).dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"x must have shape (N, {self.num_features}, H, W), got {tuple(x.shape)}"
            )
        y, new_mean, new_var = batch_norm(
            x,
            weight=self.weight,
            bias=self.bias,
            running_mean=self.running_mean,
            running_var=self.running_var,
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )
        if self.training:
            with torch.no_grad():
                self.running_mean.copy_(new_mean)
                self.running_var.copy_(new_var)
                self.num_batches_tracked.add_(1)
        return y

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


# --------------------------------------------------------------------------- momentum


def keras_momentum(torch_value: float) -> float:
    """Return the Keras momentum that matches a torch batch-norm momentum.

    Examples
    --------
    >>> round(keras_momentum(0.1), 12)
    0.9
    """
    return 1.0 - probability("torch_value", torch_value, inclusive_one=True)


def torch_momentum(keras_value: float) -> float:
    """Return the torch momentum that matches a Keras batch-norm momentum.

    Examples
    --------
    >>> round(torch_momentum(0.99), 12)  # Keras's default is torch's 0.01
    0.01
    """
    return 1.0 - probability("keras_value", keras_value, inclusive_one=True)


def _batches(batches: Iterable[np.ndarray]) -> list[np.ndarray]:
    out = [array("batches", b, ndim=4, dtype_kind="f") for b in batches]
    if not out:
        raise ValueError("batches must hold at least one batch")
    return out


def torch_running_means(layer: nn.Module, batches: Iterable[np.ndarray]) -> np.ndarray:
    """Feed channels-first batches to a torch batch-norm layer in training mode.

    Returns
    -------
    numpy.ndarray
        ``running_mean`` after each batch, shape ``(len(batches), C)``.

    Examples
    --------
    >>> x = np.full((2, 1, 2, 2), 10.0, np.float32)
    >>> torch_running_means(nn.BatchNorm2d(1, momentum=0.5), [x, x]).ravel().tolist()
    [5.0, 7.5]
    """
    if not isinstance(layer, nn.Module) or not hasattr(layer, "running_mean"):
        raise TypeError(f"layer must be a torch batch-norm layer, got {type(layer).__name__}")
    layer.train()
    trace = []
    with torch.no_grad():
        for batch in _batches(batches):
            layer(torch.from_numpy(np.ascontiguousarray(batch)))
            trace.append(layer.running_mean.detach().cpu().numpy().copy())
    return np.stack(trace)


def keras_running_means(layer, batches: Iterable[np.ndarray]) -> np.ndarray:
    """Feed channels-last batches to a Keras ``BatchNormalization`` with ``training=True``.

    Returns
    -------
    numpy.ndarray
        ``moving_mean`` after each batch, shape ``(len(batches), C)``.
    """
    if not hasattr(layer, "moving_mean") and not hasattr(layer, "build"):
        raise TypeError(f"layer must be a Keras BatchNormalization, got {type(layer).__name__}")
    trace = []
    for batch in _batches(batches):
        layer(batch, training=True)
        trace.append(np.array(layer.moving_mean.numpy(), copy=True))
    return np.stack(trace)


# --------------------------------------------------------------------------- the deeper convnet


def plain_convnet(
    *,
    batch_norm: bool,
    widths: Sequence[int] = (8, 8, 16, 16, 32, 32),
    pool_after: Sequence[int] = (1, 3),
    num_classes: int = 10,
    in_channels: int = 1,
    he_init: bool = True,
) -> nn.Sequential:
    """Build a plain (no shortcut) stack of 3x3 convolutions, with or without batch norm.

    Each convolution (padding 1) is followed by ``BatchNorm2d`` when
    ``batch_norm`` is true (the convolution then has no bias: the batch-norm
    shift replaces it), then by a ReLU; a 2x2 max-pooling follows the layers
    listed in ``pool_after``.  Global average pooling and one linear layer make
    the head.  The default has 6 convolutional layers; for 28x28 digits the
    maps are 28, 14 and 7 pixels wide.

    Parameters
    ----------
    batch_norm : bool
        Insert ``BatchNorm2d`` after every convolution.
    widths : sequence of int
        Output channels of each convolution, 1 to 16 layers.
    pool_after : sequence of int
        0-based indices of the convolutions followed by max-pooling.
    num_classes, in_channels : int
        Output classes and input channels.
    he_init : bool
        Draw the convolution weights from He's normal initialisation for ReLU
        networks (variance ``2 / fan_in``), so that without batch norm the signal
        keeps its scale from layer to layer.  ``False`` keeps PyTorch's default,
        whose variance ``1 / (3 fan_in)`` shrinks the signal at every layer.

    Returns
    -------
    torch.nn.Sequential

    Examples
    --------
    >>> from lessonlib.models_torch import count_params
    >>> count_params(plain_convnet(batch_norm=False)), count_params(plain_convnet(batch_norm=True))
    (18370, 18482)
    """
    for name, flag in (("batch_norm", batch_norm), ("he_init", he_init)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"widths must be a sequence of ints, got {type(widths).__name__}")
    if not 1 <= len(widths) <= 16:
        raise ValueError(f"widths must list 1 to 16 layers, got {len(widths)}")
    widths = [positive_int("widths", w) for w in widths]
    pools = {int(i) for i in pool_after}
    if not pools <= set(range(len(widths))):
        raise ValueError(f"pool_after must index the {len(widths)} layers, got {sorted(pools)}")
    num_classes = positive_int("num_classes", num_classes)
    channels = positive_int("in_channels", in_channels)
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        conv = nn.Conv2d(channels, width, 3, padding=1, bias=not batch_norm)
        if he_init:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        layers.append(conv)
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU())
        if i in pools:
            layers.append(nn.MaxPool2d(2))
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


def train_recording_steps(
    model: nn.Module,
    loader: DataLoader,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    desc: str = "training",
    device: str = "cpu",
) -> np.ndarray:
    """Train with cross-entropy and return the loss of every step.

    Training stops early when the loss stops being finite (the run diverged);
    the remaining steps are then recorded as NaN.

    Returns
    -------
    numpy.ndarray
        ``epochs * len(loader)`` training losses, one per mini-batch.

    Examples
    --------
    >>> import os; os.environ["LESSONLIB_STATIC"] = "1"
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> loader = make_loader(np.ones((4, 2, 2), np.float32), np.array([0, 1, 0, 1]), batch_size=2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> train_recording_steps(model, loader, optimizer=opt, epochs=2, desc="demo").shape
    demo: 4/4 done in ... s [loss=...]
    (4,)
    """
    epochs = positive_int("epochs", epochs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    loss_fn = nn.CrossEntropyLoss()
    model.to(device)
    total = epochs * len(loader)
    losses = np.full(total, np.nan)
    bar = progress(total=total, desc=desc)
    step = 0
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            if not torch.isfinite(loss):
                bar.set_postfix(loss="diverged")
                bar.close()
                return losses
            loss.backward()
            optimizer.step()
            losses[step] = loss.item()
            step += 1
            bar.update(1)
        bar.set_postfix(loss=round(float(np.nanmean(losses[step - len(loader) : step])), 4))
    bar.close()
    return losses


@dataclass(frozen=True)
class SweepRun:
    """One training run of the learning-rate sweep.

    Attributes
    ----------
    batch_norm : bool
        Whether the network had batch norm.
    lr : float
        The learning rate.
    step_losses : numpy.ndarray
        Training loss of every step (NaN after a divergence).
    test_accuracy : float
        Accuracy on the test set in evaluation mode (NaN if the run diverged).
    model : torch.nn.Module
        The trained network.
    """

    batch_norm: bool
    lr: float
    step_losses: np.ndarray
    test_accuracy: float
    model: nn.Module

    @property
    def diverged(self) -> bool:
        """True if the loss became infinite or NaN during training."""
        return bool(np.isnan(self.step_losses).any())


def compare_batch_norm(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    learning_rates: Sequence[float],
    epochs: int,
    batch_size: int,
    seed: int,
    momentum: float = 0.9,
    widths: Sequence[int] = (8, 8, 16, 16, 32, 32),
    pool_after: Sequence[int] = (1, 3),
    he_init: bool = True,
    device: str = "cpu",
) -> list[SweepRun]:
    """Train :func:`plain_convnet` without and with batch norm at each learning rate.

    Every run starts from the same seed, sees the same batches in the same order
    and uses SGD with the given (heavy-ball) momentum.  ``widths``,
    ``pool_after`` and ``he_init`` are passed to :func:`plain_convnet`.

    Returns
    -------
    list of SweepRun
        For each learning rate, the run without batch norm, then the run with it.
    """
    rates = [positive_float("learning_rates", lr) for lr in learning_rates]
    if not rates:
        raise ValueError("learning_rates must not be empty")
    test_loader = make_loader(x_test, y_test, batch_size=500)
    runs = []
    for lr in rates:
        for with_bn in (False, True):
            torch.manual_seed(seed)
            model = plain_convnet(
                batch_norm=with_bn, widths=widths, pool_after=pool_after, he_init=he_init
            )
            loader = make_loader(x_train, y_train, batch_size=batch_size, shuffle=True, seed=seed)
            optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
            label = f"{'with' if with_bn else 'without'} BN, lr={lr:g}"
            losses = train_recording_steps(
                model, loader, optimizer=optimizer, epochs=epochs, desc=label, device=device
            )
            diverged = np.isnan(losses).any()
            accuracy = np.nan if diverged else evaluate(model, test_loader, device=device)[1]
            runs.append(SweepRun(with_bn, lr, losses, float(accuracy), model))
    return runs


def sweep_table(runs: Sequence[SweepRun]):
    """Tabulate a sweep: one row per learning rate, test accuracy without and with BN.

    Returns
    -------
    pandas.DataFrame
        Columns ``"without BN"`` and ``"with BN"``, indexed by learning rate;
        a diverged run is NaN.
    """
    import pandas as pd

    if not runs or not all(isinstance(r, SweepRun) for r in runs):
        raise TypeError("runs must be a non-empty list of SweepRun")
    table = pd.DataFrame(
        [
            {"learning rate": r.lr, "with BN" if r.batch_norm else "without BN": r.test_accuracy}
            for r in runs
        ]
    )
    table = table.groupby("learning rate").first()
    return table[[c for c in ("without BN", "with BN") if c in table.columns]]


def sweep_figure(runs: Sequence[SweepRun], *, smooth: int = 10, title: str = ""):
    """Plot the per-step training loss of a sweep: one panel per learning rate.

    Parameters
    ----------
    runs : sequence of SweepRun
        From :func:`compare_batch_norm`.
    smooth : int
        Width of the running mean over steps (1 shows raw losses).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if not runs or not all(isinstance(r, SweepRun) for r in runs):
        raise TypeError("runs must be a non-empty list of SweepRun")
    smooth = positive_int("smooth", smooth)
    rates = sorted({r.lr for r in runs})
    fig, axes = plt.subplots(1, len(rates), figsize=(3.6 * len(rates), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    colours = {False: plt.get_cmap("viridis")(0.15), True: plt.get_cmap("viridis")(0.7)}
    for ax, lr in zip(axes, rates, strict=True):
        for run in (r for r in runs if r.lr == lr):
            losses = run.step_losses
            kernel = np.ones(smooth) / smooth
            shown = np.convolve(losses, kernel, mode="valid") if len(losses) >= smooth else losses
            name = "with BN" if run.batch_norm else "without BN"
            result = "diverged" if run.diverged else f"test acc {run.test_accuracy:.0%}"
            ax.plot(
                np.arange(len(shown)) + smooth,
                shown,
                color=colours[run.batch_norm],
                label=f"{name} ({result})",
            )
        ax.set_title(f"learning rate {lr:g}")
        ax.set_xlabel("training step")
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"training loss (mean of {smooth} steps)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the pitfall


def accuracy_one_at_a_time(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    train_mode: bool,
    device: str = "cpu",
) -> float:
    """Classify images one at a time (batches of size 1) in train or eval mode.

    In train mode every batch-norm layer normalises the single image with its
    own statistics (and updates its running averages), which is what happens
    when ``model.eval()`` is forgotten.  The model is copied first, so the
    caller's network and its running averages stay as they were.

    Returns
    -------
    float
        The accuracy.

    Examples
    --------
    >>> model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.LazyLinear(2))
    >>> x, y = np.zeros((3, 8, 8), np.uint8), np.array([0, 1, 0])
    >>> 0.0 <= accuracy_one_at_a_time(model, x, y, train_mode=True) <= 1.0
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(train_mode, bool):
        raise TypeError(f"train_mode must be a bool, got {type(train_mode).__name__}")
    work = copy.deepcopy(model).to(device)
    work.train(train_mode)
    loader = make_loader(images, labels, batch_size=1)
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((work(x.to(device)).argmax(1).cpu() == y).sum())
    return correct / len(loader.dataset)


def recalibrated(
    model: nn.Module, images: np.ndarray, *, batch_size: int = 500, device: str = "cpu"
) -> nn.Module:
    """Return a copy of ``model`` whose batch-norm running statistics are recomputed.

    Every batch-norm layer forgets its running averages and replaces them with
    the plain average of the batch statistics over one pass of ``images`` with
    the final weights (``momentum=None`` in torch), in training mode and
    without gradients.  The weights do not change, and the copy is returned in
    evaluation mode with the layers' original momentum.

    Examples
    --------
    >>> model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))
    >>> images = np.full((4, 3, 3), 255, np.uint8)
    >>> fresh = recalibrated(model, images, batch_size=2)
    >>> fresh[1].running_mean.shape, fresh.training, fresh[1].momentum
    (torch.Size([1]), False, 0.1)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    work = copy.deepcopy(model).to(device)
    layers = [m for m in work.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        raise ValueError("model has no batch-norm layer to recalibrate")
    saved = [m.momentum for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over the pass
    work.train()
    loader = make_loader(images, np.zeros(len(images), np.int64), batch_size=batch_size)
    with torch.no_grad():
        for x, _ in loader:
            work(x.to(device))
    for layer, momentum in zip(layers, saved, strict=True):
        layer.momentum = momentum
    return work.eval()


def plot_running_means(traces: dict[str, np.ndarray], *, batch_means: np.ndarray, title: str = ""):
    """Plot running means batch by batch, with the batch means they average.

    Parameters
    ----------
    traces : dict of str to 1-D array
        One curve per layer setting, for example from :func:`torch_running_means`.
    batch_means : 1-D array
        The mean of each batch, drawn as dots.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_running_means({"a": np.arange(3.0)}, batch_means=np.ones(3))
    >>> fig.axes[0].get_xlabel(), len(fig.axes[0].lines)
    ('batch', 2)
    """
    import matplotlib.pyplot as plt

    if not isinstance(traces, dict) or not traces:
        raise TypeError("traces must be a non-empty dict of name to 1-D array")
    batch_means = array("batch_means", batch_means, ndim=1, dtype_kind="f")
    steps = np.arange(1, len(batch_means) + 1)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    ax.plot(steps, batch_means, "o", color="0.6", markersize=4, label="mean of each batch")
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(traces)))
    styles = ["-", "--", "-.", ":"]
    for i, (colour, (name, trace)) in enumerate(zip(colours, traces.items(), strict=True)):
        trace = array(f"traces[{name!r}]", trace, ndim=1, dtype_kind="f")
        if len(trace) != len(batch_means):
            raise ValueError(f"traces[{name!r}] must have one value per batch ({len(steps)})")
        ax.plot(
            steps, trace, styles[i % 4], color=colour, linewidth=2.5 - 0.4 * (i % 4), label=name
        )
    ax.set_xlabel("batch")
    ax.set_ylabel("running mean")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
