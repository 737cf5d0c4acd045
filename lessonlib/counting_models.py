"""Small counting networks trained from scratch, their augmentations and their scores.

Lesson 9 asks why a CNN counts 1-5 circles almost perfectly and 45-50 barely
better than chance.  This module holds the pieces the lesson trains and
measures:

* :func:`counting_cnn` - three 3x3 convolutions and a *sum* over all positions
  (:class:`SumPool2d`): a count is a sum of local evidence, so the network adds
  up what it finds instead of averaging it away;
* :func:`train_counter` - trains one either as a classifier (one output per
  count, cross-entropy) or as a regressor (one number, squared error) and
  returns a :class:`Counter` that predicts counts;
* :func:`dihedral` and :func:`zoom_crop` - an augmentation that keeps every
  circle (flips and quarter turns) and one that can crop circles away (a
  random zoom-in, like fastai's default ``zoom``); :func:`lost_circles`
  counts the circles the second one crops away;
* :func:`count_report` - exact-count accuracy, mean absolute error and the
  share of errors that are off by one;
* :func:`linear_probe` - logistic regression on frozen features, run on one
  BLAS thread (on a small CPU, BLAS threads that spin-wait make a 1,280-feature
  fit about 20 times slower).

Images are ``uint8`` arrays ``(N, H, W)`` or ``(N, H, W, 1)``, or floats in
[0, 1]; augmentations act on float tensors ``(N, C, H, W)`` in a batch.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lessonlib._validate import array, one_of, positive_float, positive_int
from lessonlib.data import to_float
from lessonlib.progress import progress

TASKS = ("classify", "regress")
Augment = Callable[..., torch.Tensor]

__all__ = [
    "POOLINGS",
    "TASKS",
    "CountReport",
    "Counter",
    "SumPool2d",
    "count_report",
    "counting_cnn",
    "dihedral",
    "linear_probe",
    "lost_circles",
    "plot_count_confusions",
    "plot_count_readout",
    "train_counter",
    "zoom_crop",
]


# --------------------------------------------------------------------------- the network


class SumPool2d(nn.Module):
    """Add up each channel over all rows and columns, then divide by ``scale``.

    Global *average* pooling divides by the number of positions, so one more
    object changes the result less the larger the image; a sum keeps each
    object's contribution fixed.  ``scale`` only keeps the numbers moderate.

    Examples
    --------
    >>> SumPool2d(scale=2.0)(torch.ones(1, 3, 4, 4))
    tensor([[8., 8., 8.]])
    """

    def __init__(self, *, scale: float = 16.0):
        super().__init__()
        self.scale = positive_float("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(2, 3)) / self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


POOLINGS = ("sum", "mean")


def counting_cnn(
    *,
    num_outputs: int,
    width: int = 8,
    hidden: int = 32,
    in_channels: int = 1,
    pooling: str = "sum",
) -> nn.Sequential:
    """Build a three-convolution counting network with a globally pooled head.

    Three blocks of 3x3 convolution (padding 1), batch norm and ReLU, with
    ``width``, ``2 * width`` and ``4 * width`` filters and 2x2 max-pooling
    after the first two; then a global pooling over all positions
    (:class:`SumPool2d` by default), and a head of ``hidden`` ReLU units and
    a linear output.  Any image side divisible by 4 works.

    Parameters
    ----------
    num_outputs : int
        One per class for a classifier, 1 for a regressor.
    width : int
        Filters of the first convolution.
    hidden : int
        Units of the head's hidden layer.
    in_channels : int
        1 for grey images.
    pooling : {"sum", "mean"}
        Global sum (:class:`SumPool2d`) or the usual global average.

    Returns
    -------
    torch.nn.Sequential
        With named children ``conv1, bn1, relu1, pool1, conv2, bn2, relu2,
        pool2, conv3, bn3, relu3, global_pool, head``; ``relu3`` gives the
        last feature maps (the Grad-CAM target).

    Examples
    --------
    >>> net = counting_cnn(num_outputs=5)
    >>> net(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 5])
    >>> sum(p.numel() for p in net.parameters())  # 96 + 1,200 + 4,704 + 1,056 + 165
    7221
    """
    num_outputs = positive_int("num_outputs", num_outputs)
    width, hidden = positive_int("width", width), positive_int("hidden", hidden)
    in_channels = positive_int("in_channels", in_channels)
    pooling = one_of("pooling", pooling, POOLINGS)
    w1, w2, w3 = width, 2 * width, 4 * width
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i, (c_in, c_out) in enumerate([(in_channels, w1), (w1, w2), (w2, w3)], start=1):
        layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, 3, padding=1)
        layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
        layers[f"relu{i}"] = nn.ReLU()
        if i < 3:
            layers[f"pool{i}"] = nn.MaxPool2d(2)
    mean = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    layers["global_pool"] = SumPool2d() if pooling == "sum" else mean
    layers["head"] = nn.Sequential(nn.Linear(w3, hidden), nn.ReLU(), nn.Linear(hidden, num_outputs))
    return nn.Sequential(layers)


# --------------------------------------------------------------------------- augmentations


def _batch(x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor batch (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {tuple(x.shape)}")
    return x


def _coin(n: int, generator: torch.Generator | None) -> torch.Tensor:
    return (torch.rand(n, generator=generator) < 0.5).view(n, 1, 1, 1)


def dihedral(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip and turn each square image by a random one of the 8 symmetries of a square.

    A left-right flip, an up-down flip and a transpose, each with probability
    1/2, reach all eight; no pixel leaves the image, so no circle is lost.

    Examples
    --------
    >>> x = torch.arange(4.0).view(1, 1, 2, 2)
    >>> out = dihedral(x.repeat(8, 1, 1, 1), generator=torch.Generator().manual_seed(0))
    >>> sorted(out.flatten(1).sum(1).tolist()) == [6.0] * 8
    True
    """
    x = _batch(x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"x must hold square images, got {tuple(x.shape[-2:])}")
    n = x.shape[0]
    x = torch.where(_coin(n, generator), x.flip(-1), x)
    x = torch.where(_coin(n, generator), x.flip(-2), x)
    return torch.where(_coin(n, generator), x.transpose(-1, -2), x)


def _zoom_params(
    n: int, max_zoom: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random zoom factors (n,) and centre shifts (n, 2) as (col, row), in [-1, 1] units."""
    if isinstance(max_zoom, bool) or not isinstance(max_zoom, Real) or not max_zoom >= 1:
        raise ValueError(f"max_zoom must be a number >= 1, got {max_zoom!r}")
    zoom = 1 + (float(max_zoom) - 1) * torch.rand(n, generator=generator)
    room = 1 - 1 / zoom  # how far the kept square's centre may move
    shift = (2 * torch.rand(n, 2, generator=generator) - 1) * room[:, None]
    return zoom, shift


def zoom_crop(
    x: torch.Tensor, *, max_zoom: float = 1.1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zoom into each image by a random factor in [1, ``max_zoom``] at a random place.

    The kept square has side ``size / zoom`` and is resized back to ``size``
    with bilinear interpolation (``F.grid_sample``).  Whatever lies outside it
    is cropped away, circles included, so the label can become wrong.
    fastai's default transforms include such a zoom (up to 1.1).

    Examples
    --------
    >>> x = torch.zeros(1, 1, 8, 8); x[..., 0, 0] = 1.0  # a dot in the corner
    >>> g = torch.Generator().manual_seed(0)
    >>> zoom_crop(x, max_zoom=1.0, generator=g).equal(x)  # no zoom, nothing changes
    True
    >>> float(zoom_crop(x, max_zoom=2.0, generator=g).max()) < 0.5  # the dot is cut off
    True
    """
    x = _batch(x)
    zoom, shift = _zoom_params(x.shape[0], max_zoom, generator)
    theta = torch.zeros(x.shape[0], 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid.to(x.device), mode="bilinear", align_corners=False)


def lost_circles(images: np.ndarray, *, max_zoom: float = 1.1, seed: int = 0) -> np.ndarray:
    """Return, per image, how many blobs have their centre cropped away by :func:`zoom_crop`.

    It draws the same random zooms and shifts as ``zoom_crop(x, max_zoom=max_zoom,
    generator=torch.Generator().manual_seed(seed))`` on the whole batch, and
    counts the blobs whose centroid falls outside the kept square.  This is
    the rule the coin crops use: an object counts if its centre is in view.

    Parameters
    ----------
    images : array (N, H, W)
        Square images of separate blobs, ``uint8`` or floats in [0, 1].
    max_zoom : float
        As in :func:`zoom_crop`.
    seed : int
        Seeds the generator.

    Returns
    -------
    numpy.ndarray
        ``int64`` (N,): blobs whose centre leaves the picture.

    Examples
    --------
    >>> from lessonlib.counting import make_circles
    >>> x, y = make_circles(6, counts=[1, 2, 3], image_size=32, radius=3, seed=0)
    >>> lost_circles(x, max_zoom=1.0).tolist()
    [0, 0, 0, 0, 0, 0]
    >>> bool(lost_circles(x, max_zoom=3.0).sum() > 0)
    True
    """
    from skimage.measure import label, regionprops

    x = _images_tensor(images)[:, 0].numpy()
    if x.shape[1] != x.shape[2]:
        raise ValueError(f"images must be square, got {x.shape[1:]}")
    zoom, shift = _zoom_params(len(x), max_zoom, torch.Generator().manual_seed(seed))
    side = x.shape[1]
    lost = np.zeros(len(x), dtype=np.int64)
    for i, image in enumerate(x):
        centres = np.array([p.centroid for p in regionprops(label(image > 0.5))]).reshape(-1, 2)
        where = (2 * centres[:, ::-1] + 1) / side - 1  # (col, row) in grid_sample's [-1, 1]
        kept = (np.abs(where - shift[i].numpy()) < 1 / zoom[i].item()).all(axis=1)
        lost[i] = int(np.sum(~kept))
    return lost


# --------------------------------------------------------------------------- training


def _images_tensor(images: object) -> torch.Tensor:
    arr = array("images", images, ndim=(3, 4), dtype_kind="uif")
    if arr.ndim == 4 and arr.shape[-1] != 1:
        raise ValueError(f"images must be grey, (N, H, W) or (N, H, W, 1); got {arr.shape}")
    if arr.dtype.kind == "f" and not (arr.min() >= 0 and arr.max() <= 1):
        raise ValueError("images of float dtype must lie in [0, 1]")
    if arr.dtype.kind in "iu" and arr.dtype != np.uint8:
        raise TypeError(f"images must be uint8 or float in [0, 1], got {arr.dtype}")
    return torch.from_numpy(to_float(arr, channels_last=False))


@dataclass
class Counter:
    """A trained counting network and what is needed to read its outputs.

    Attributes
    ----------
    model : torch.nn.Module
        The network (from :func:`counting_cnn`), in eval mode after training.
    task : {"classify", "regress"}
        Classifiers output one logit per entry of ``classes``; regressors one
        standardised number.
    classes : tuple of int
        The counts a classifier can answer (empty for a regressor).
    mean, std : float
        The training counts' mean and standard deviation: a regressor
        predicts ``(count - mean) / std``.
    losses : list of float
        Mean training loss per epoch.
    seconds : float
        Wall time of the training.
    """

    model: nn.Module
    task: str
    classes: tuple[int, ...] = ()
    mean: float = 0.0
    std: float = 1.0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def _outputs(self, images: Any, batch_size: int) -> torch.Tensor:
        x = _images_tensor(images)
        batch_size = positive_int("batch_size", batch_size)
        self.model.eval()
        with torch.inference_mode():
            return torch.cat(
                [self.model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
            )

    def predict(self, images: Any, *, batch_size: int = 256) -> np.ndarray:
        """Return counts: ``int64`` for a classifier, ``float64`` for a regressor."""
        out = self._outputs(images, batch_size)
        if self.task == "classify":
            return np.asarray(self.classes, dtype=np.int64)[out.argmax(1).numpy()]
        return out[:, 0].double().numpy() * self.std + self.mean

    def feature_maps(self, images: Any, *, layer: str = "relu3") -> np.ndarray:
        """Return the output of the named layer (e.g. ``"relu3"``), ``(N, C, rows, cols)``."""
        names = [name for name, _ in self.model.named_children()]
        if layer not in names:
            raise ValueError(f"layer must be one of {names}, got {layer!r}")
        trunk = self.model[: names.index(layer) + 1]
        self.model.eval()
        with torch.inference_mode():
            return trunk(_images_tensor(images)).numpy()

    def pooled(self, images: Any, *, batch_size: int = 256) -> np.ndarray:
        """Return the globally pooled features that the head reads, ``(N, 4 * width)``."""
        trunk = nn.Sequential(*list(self.model.children())[:-1])
        x = _images_tensor(images)
        self.model.eval()
        with torch.inference_mode():
            parts = [trunk(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return torch.cat(parts).numpy()


def _targets(task: str, counts: np.ndarray) -> tuple[torch.Tensor, dict[str, Any]]:
    if task == "classify":
        classes = tuple(int(c) for c in np.unique(counts))
        index = np.searchsorted(classes, counts)
        return torch.from_numpy(index.astype(np.int64)), {"classes": classes}
    mean, std = float(counts.mean()), float(counts.std()) or 1.0
    target = (counts.astype(np.float32) - mean) / std
    return torch.from_numpy(target.astype(np.float32)), {"mean": mean, "std": std}


def _loss(task: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if task == "classify":
        return F.cross_entropy(out, target)
    return F.mse_loss(out[:, 0], target)


def train_counter(
    images: np.ndarray,
    counts: np.ndarray,
    *,
    task: str,
    epochs: int,
    lr: float = 1e-2,
    batch_size: int = 32,
    width: int = 8,
    pooling: str = "sum",
    augment: Augment | None = None,
    seed: int = 0,
    desc: str = "counter",
) -> Counter:
    """Train a :func:`counting_cnn` from scratch to count, with a progress bar.

    Adam with a one-cycle learning-rate schedule (warm-up, then cosine decay
    to near zero), stepped every batch.

    Parameters
    ----------
    images : array (N, H, W) or (N, H, W, 1)
        Grey images, ``uint8`` or floats in [0, 1].
    counts : array of int (N,)
        The true count of each image.
    task : {"classify", "regress"}
        One class per distinct count (cross-entropy), or one number
        (squared error on the standardised count).
    epochs, lr, batch_size, width, pooling
        Training length, peak learning rate, batch size, and the network's
        first-layer filters and global pooling (see :func:`counting_cnn`).
    augment : callable, optional
        Applied to every training batch as ``augment(x, generator=g)``, e.g.
        :func:`dihedral` or :func:`zoom_crop`.
    seed : int
        Seeds the weights, the shuffling and the augmentation.
    desc : str
        Label of the progress bar.

    Returns
    -------
    Counter

    Examples
    --------
    >>> from lessonlib.counting import make_circles
    >>> x, y = make_circles(40, counts=[1, 2], image_size=16, radius=2, seed=0)
    >>> counter = train_counter(x, y, task="regress", epochs=2, desc="demo")
    demo: 2/2 done in ... s [loss=...]
    >>> counter.predict(x[:3]).shape, counter.classes
    ((3,), ())
    """
    task = one_of("task", task, TASKS)
    x = _images_tensor(images)
    counts = array("counts", counts, ndim=1, dtype_kind="iu")
    if len(counts) != len(x):
        raise ValueError(f"counts must have one entry per image, got {len(counts)} for {len(x)}")
    epochs, batch_size = positive_int("epochs", epochs), positive_int("batch_size", batch_size)
    lr = positive_float("lr", lr)
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be callable or None, got {type(augment).__name__}")
    target, info = _targets(task, counts)
    torch.manual_seed(seed)
    outputs = len(info["classes"]) if task == "classify" else 1
    model = counting_cnn(num_outputs=outputs, width=width, in_channels=x.shape[1], pooling=pooling)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    counter, start = Counter(model=model, task=task, **info), time.perf_counter()
    bar = progress(range(epochs), desc=desc)
    for _ in bar:
        model.train()
        order, total = torch.randperm(len(x), generator=generator), 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            xb = x[idx] if augment is None else augment(x[idx], generator=generator)
            optimizer.zero_grad(set_to_none=True)
            loss = _loss(task, model(xb), target[idx])
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
        counter.losses.append(total / len(x))
        bar.set_postfix(loss=round(counter.losses[-1], 4))
    model.eval()
    counter.seconds = time.perf_counter() - start
    return counter


# --------------------------------------------------------------------------- scores


@dataclass(frozen=True)
class CountReport:
    """How well predicted counts match the truth.

    Attributes
    ----------
    accuracy : float
        Share of images whose rounded prediction is exactly right.
    mae : float
        Mean absolute error of the (unrounded) predictions, in circles.
    off_by_one : float
        Among the wrong images, the share that is off by exactly one
        (``nan`` if there are no errors).
    n : int
        Number of images.
    """

    accuracy: float
    mae: float
    off_by_one: float
    n: int


def count_report(predicted: Iterable[float], true: Iterable[int]) -> CountReport:
    """Score predicted counts against true ones.

    Examples
    --------
    >>> r = count_report([1.2, 2.0, 4.6, 7.0], [1, 2, 4, 5])
    >>> r.accuracy, round(r.mae, 2), r.off_by_one, r.n
    (0.5, 0.7, 0.5, 4)
    """
    pred = array("predicted", np.asarray(predicted), ndim=1, dtype_kind="iuf").astype(float)
    true_arr = array("true", np.asarray(true), ndim=1, dtype_kind="iu").astype(float)
    if len(pred) != len(true_arr):
        raise ValueError(
            f"predicted must have one entry per true count, got {len(pred)} for {len(true_arr)}"
        )
    miss = np.abs(np.rint(pred) - true_arr)
    wrong = miss > 0
    off = float(np.mean(miss[wrong] == 1)) if wrong.any() else float("nan")
    return CountReport(
        accuracy=float(np.mean(~wrong)),
        mae=float(np.mean(np.abs(pred - true_arr))),
        off_by_one=off,
        n=len(pred),
    )


def linear_probe(features: np.ndarray, labels: np.ndarray, *, C: float = 0.1) -> Any:
    """Fit standardisation plus multinomial logistic regression on frozen features.

    BLAS is limited to one thread during the fit: on a 2-core machine its
    spin-waiting threads make small fits many times slower.

    Parameters
    ----------
    features : array (N, D)
    labels : array of int (N,)
    C : float
        Inverse L2 strength (scikit-learn's convention).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted; use ``.predict`` and ``.score``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = np.r_[rng.normal(0, 1, (20, 3)), rng.normal(4, 1, (20, 3))]
    >>> y = np.repeat([1, 2], 20)
    >>> linear_probe(f, y).score(f, y)
    1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    features = array("features", features, ndim=2, dtype_kind="uif")
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    if len(features) != len(labels):
        raise ValueError(
            f"labels must have one entry per row of features, got {len(labels)} for {len(features)}"
        )
    C = positive_float("C", C)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
    with threadpool_limits(limits=1, user_api="blas"):
        return model.fit(features, labels)


# --------------------------------------------------------------------------- figures


def _panels(panels: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if not isinstance(panels, Mapping) or not panels:
        raise TypeError("panels must be a non-empty mapping of title -> (true, predicted)")
    out = []
    for name, pair in panels.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"panels[{name!r}] must be a (true, predicted) pair")
        true = array(f"panels[{name!r}] true", pair[0], ndim=1, dtype_kind="iu")
        other = array(f"panels[{name!r}] predicted", pair[1], ndim=1, dtype_kind="iuf")
        if len(true) != len(other):
            raise ValueError(f"panels[{name!r}] must pair arrays of equal length")
        out.append((str(name), true.astype(np.int64), other.astype(float)))
    return out


def _grid(n: int, ncols: int, size: tuple[float, float]):
    import matplotlib.pyplot as plt

    ncols = min(positive_int("ncols", ncols), n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False
    )
    for ax in axes.flat[n:]:
        ax.remove()
    return fig, axes.flat


def plot_count_confusions(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray]], *, ncols: int = 2, title: str = ""
) -> Any:
    """Draw one confusion matrix of counts per panel, true count down, predicted across.

    Predictions are rounded; the axes run over every count that occurs as a
    truth or a prediction.  Cells one step off the diagonal are outlined:
    errors of a counter that nearly works land there.

    Examples
    --------
    >>> fig = plot_count_confusions({"demo": ([1, 2, 3], [1.2, 2.6, 3.0])})
    >>> fig.axes[0].get_title()
    'demo: 67% exact'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    from matplotlib.patches import Rectangle

    items = _panels(panels)
    fig, axes = _grid(len(items), ncols, (3.6, 3.3))
    for ax, (name, true, pred) in zip(axes, items, strict=False):
        pred = np.rint(pred).astype(np.int64)
        lo, hi = min(true.min(), pred.min()), max(true.max(), pred.max())
        matrix = np.zeros((hi - lo + 1, hi - lo + 1), dtype=np.int64)
        np.add.at(matrix, (true - lo, pred - lo), 1)
        ax.imshow(matrix, cmap="viridis")
        for (i, j), value in np.ndenumerate(matrix):
            if value:
                light = value < matrix.max() / 2
                ax.text(
                    j,
                    i,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if light else "black",
                )
            if abs(i - j) == 1:
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ls=":", lw=1, ec="0.6")
                )
        ticks = np.arange(hi - lo + 1)
        ax.set_xticks(ticks, [str(t + lo) for t in ticks], fontsize=7)
        ax.set_yticks(ticks, [str(t + lo) for t in ticks], fontsize=7)
        ax.set_xlabel("predicted count")
        ax.set_ylabel("true count")
        ax.set_title(f"{name}: {np.mean(pred == true):.0%} exact", fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_count_readout(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    ylabel: str = "read-out count",
    ncols: int = 2,
    title: str = "",
) -> Any:
    """Plot a number read from each image against its true count, one panel each.

    Points are jittered sideways; the dashed line is "read-out = truth".  If
    the clouds of neighbouring counts overlap, no threshold separates them.

    Examples
    --------
    >>> fig = plot_count_readout({"demo": ([1, 1, 2], [0.9, 1.1, 2.2])})
    >>> fig.axes[0].get_xlabel()
    'true count'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    items = _panels(panels)
    fig, axes = _grid(len(items), ncols, (3.8, 3.2))
    rng = np.random.default_rng(0)
    for ax, (name, true, value) in zip(axes, items, strict=False):
        jitter = rng.uniform(-0.18, 0.18, size=len(true))
        ax.scatter(true + jitter, value, s=6, alpha=0.5, c=true, cmap="viridis")
        line = np.array([true.min() - 0.5, true.max() + 0.5])
        ax.plot(line, line, ls="--", lw=1, color="0.4")
        ax.set_xticks(np.unique(true))
        ax.set_xlabel("true count")
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
