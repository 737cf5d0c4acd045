"""Uncertainty from stochastic forward passes: MC dropout, its summaries, and calibration.

MC dropout keeps the dropout layers of a trained network switched on at test
time.  Each forward pass then drops a different random subset of units, and
the spread of ``S`` such predictions says how sure the network is.
:func:`mc_predict` returns the ``S`` passes as an array of shape
``(S, N, C)``: samples, inputs, classes.  The summaries reduce it:

* :func:`predictive_mean` averages the passes: the prediction to report;
* :func:`predictive_entropy` is the entropy of that mean: all uncertainty;
* :func:`expected_entropy` is the mean entropy of single passes: the part
  that stays however many passes are taken (noise in the data);
* :func:`mutual_information` is their difference (BALD): the part due to not
  knowing the weights, which more training data would reduce;
* :func:`class_spread` gives quantiles per class, for the seed's box plots.

Calibration asks whether a confidence of 80% is right 80% of the time:
:func:`reliability_diagram_data` bins predictions by confidence and
:func:`expected_calibration_error` sums the gaps.

**The batch-norm pitfall.**  ``model.train()`` in torch and
``model(x, training=True)`` in Keras switch on dropout, but they also switch
batch norm to training mode: each batch is normalised with its own
statistics, and the running averages learnt in training are overwritten.
:func:`mc_predict` switches on the dropout layers only.  In torch it puts the
model in evaluation mode and the dropout modules back in training mode
(restoring every module's mode afterwards).  In Keras, where a layer cannot be
given its own mode from outside, it runs a copy of the model in which each
``Dropout`` layer is replaced by :class:`MCDropout`, a dropout layer that is
always on, and calls the copy with ``training=False``.

Entropies are in nats (natural logarithm); with ``C`` classes they lie in
``[0, log C]``.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import entr

from lessonlib._validate import array, non_negative_int, positive_int
from lessonlib.progress import progress

_PROB_TOL = 1e-3


# --------------------------------------------------------------------------------------
# MC prediction


def _framework(model: Any) -> str:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        return "keras"
    raise TypeError(f"model must be a torch.nn.Module or a keras.Model, got {type(model).__name__}")


def _as_inputs(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    arr = array("x", x, dtype_kind="uif")
    if arr.ndim < 2:
        raise ValueError(f"x must have a batch dimension, got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def _chunks(n_inputs: int, samples: int, batch_size: int, show_progress: bool) -> Iterator[Any]:
    """Yield the rows of ``x`` for each forward call; row ``s * N + n`` is pass s of input n."""
    total = n_inputs * samples
    starts = range(0, total, batch_size)
    if show_progress and len(starts) > 1:
        starts = progress(starts, desc="MC forward passes")
    for start in starts:
        yield np.arange(start, min(start + batch_size, total)) % n_inputs


def _check_outputs(out: np.ndarray, rows: int) -> None:
    if out.ndim != 2 or out.shape[0] != rows:
        raise ValueError(f"model must return (batch, classes) outputs, got shape {out.shape}")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _mc_torch(model, x, *, samples, batch_size, from_logits, seed, show_progress) -> np.ndarray:
    import torch
    from torch import nn

    dropout_types = (
        nn.Dropout,
        nn.Dropout1d,
        nn.Dropout2d,
        nn.Dropout3d,
        nn.AlphaDropout,
        nn.FeatureAlphaDropout,
    )
    modes = [(m, m.training) for m in model.modules()]
    param = next(model.parameters(), None)
    xt = torch.from_numpy(x).to(param.device if param is not None else "cpu")
    rng = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    out = []
    try:
        model.eval()
        for m in model.modules():
            if isinstance(m, dropout_types):
                m.train()
        with rng, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            for rows in _chunks(len(x), samples, batch_size, show_progress):
                chunk = xt[torch.from_numpy(rows)]
                if chunk.ndim == 4:  # convolutions and pooling run faster channels-last on CPU
                    chunk = chunk.contiguous(memory_format=torch.channels_last)
                z = model(chunk)
                _check_outputs(z, len(rows))
                out.append((torch.softmax(z, dim=-1) if from_logits else z).float().cpu().numpy())
    finally:
        for m, mode in modes:
            m.train(mode)
    return np.concatenate(out)


@functools.cache
def _mc_dropout_class() -> type:
    from lessonlib.models_cifar3 import _keras

    keras = _keras()

    @keras.saving.register_keras_serializable(package="lessonlib")
    class MCDropout(keras.layers.Dropout):
        """A Keras ``Dropout`` layer that drops units at test time too.

        It ignores the ``training`` flag: seed 001's ``layer_dropout(...)(training=TRUE)``.
        A model built with it gives a new answer at every ``predict``, while
        batch norm and other layers keep their usual test-time behaviour.
        """

        def call(self, inputs, training=None):
            return super().call(inputs, training=True)

    MCDropout.__module__ = __name__
    MCDropout.__qualname__ = "MCDropout"
    return MCDropout


def _always_on_copy(model: Any, seed: int | None) -> Any:
    """Clone a Keras model with every Dropout layer replaced by an always-on MCDropout."""
    from lessonlib.models_cifar3 import _keras

    keras = _keras()
    mc_dropout = _mc_dropout_class()
    seeds = iter(range(seed if seed is not None else 0, sys.maxsize))

    def clone_layer(layer):
        config = layer.get_config()
        if seed is not None and "seed" in config:
            config["seed"] = next(seeds)
        if type(layer) in (keras.layers.Dropout, mc_dropout):
            return mc_dropout.from_config(config)
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=clone_layer)
    except (ValueError, TypeError, NotImplementedError) as err:
        raise TypeError(
            "model must be a Sequential or functional keras.Model: mc_predict clones it to "
            f"switch its dropout on ({err})"
        ) from err
    copy.set_weights(model.get_weights())
    return copy


def _mc_keras(model, x, *, samples, batch_size, from_logits, seed, show_progress) -> np.ndarray:
    from lessonlib.models_cifar3 import _keras

    to_numpy = _keras().ops.convert_to_numpy
    stochastic = _always_on_copy(model, seed)
    out = []
    for rows in _chunks(len(x), samples, batch_size, show_progress):
        z = to_numpy(stochastic(x[rows], training=False))
        _check_outputs(z, len(rows))
        out.append(_softmax(z) if from_logits else z)
    return np.concatenate(out).astype(np.float32, copy=False)


def mc_predict(
    model: Any,
    x: Any,
    *,
    samples: int,
    batch_size: int = 1024,
    from_logits: bool = True,
    seed: int | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Return ``samples`` stochastic forward passes, with dropout on and batch norm in eval mode.

    The passes are batched: ``x`` is repeated ``samples`` times and sent
    through the model ``batch_size`` rows at a time, so 1,000 passes over a
    few images take a handful of forward calls.  Each row gets its own dropout
    mask, which is what makes the passes independent.

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
        A classifier; in Keras, a Sequential or functional model (dropout
        inside a nested sub-model is not switched on).  The model and its
        modes are left as they were.
    x : array_like or torch.Tensor
        A batch of inputs in the model's layout, ``(N, ...)``.
    samples : int
        Number of stochastic passes ``S``.
    batch_size : int
        Rows per forward call (of the ``S * N`` in total).
    from_logits : bool
        Apply a softmax to the outputs (the models of this course return
        logits); set False for a model that already ends in a softmax.
    seed : int, optional
        Seed for the dropout masks, for repeatable samples.  torch's global
        random state is left untouched when it is given.
    show_progress : bool
        Show a progress bar when more than one forward call is needed.

    Returns
    -------
    numpy.ndarray
        ``float32`` probabilities of shape ``(S, N, C)``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5),
    ...                           torch.nn.Linear(8, 3)).eval()
    >>> probs = mc_predict(net, torch.ones(2, 4), samples=100, seed=0)
    >>> probs.shape, bool(probs.std(axis=0).max() > 0), net.training
    ((100, 2, 3), True, False)
    """
    framework = _framework(model)
    samples = positive_int("samples", samples)
    batch_size = positive_int("batch_size", batch_size)
    if seed is not None:
        seed = non_negative_int("seed", seed)
    x = _as_inputs(x)
    run = _mc_torch if framework == "torch" else _mc_keras
    out = run(
        model,
        x,
        samples=samples,
        batch_size=batch_size,
        from_logits=bool(from_logits),
        seed=seed,
        show_progress=show_progress,
    )
    return out.reshape(samples, len(x), -1)


# --------------------------------------------------------------------------------------
# summaries


def _probs(name: str, probs: Any, ndim: int) -> np.ndarray:
    """Check an array of probabilities over the last axis; return it as float64."""
    arr = array(name, probs, ndim=ndim, dtype_kind="uif").astype(np.float64)
    if not np.all(np.isfinite(arr)) or arr.min() < -_PROB_TOL or arr.max() > 1 + _PROB_TOL:
        raise ValueError(f"{name} must hold probabilities in [0, 1]")
    if not np.allclose(arr.sum(axis=-1), 1.0, atol=_PROB_TOL):
        raise ValueError(f"{name} must sum to 1 over its last axis (the classes)")
    return np.clip(arr, 0.0, 1.0)


def predictive_mean(probs: Any) -> np.ndarray:
    """Average ``(S, N, C)`` MC probabilities over the samples, giving ``(N, C)``.

    Examples
    --------
    >>> predictive_mean([[[1.0, 0.0]], [[0.5, 0.5]]])
    array([[0.75, 0.25]])
    """
    return _probs("probs", probs, 3).mean(axis=0)


def predictive_entropy(probs: Any) -> np.ndarray:
    """Entropy (nats) of the predictive mean of ``(S, N, C)`` probabilities: ``(N,)``.

    This is the total uncertainty: ``H[mean_s p_s]``.

    Examples
    --------
    >>> predictive_entropy([[[1.0, 0.0]], [[0.0, 1.0]]]).round(4)  # log 2
    array([0.6931])
    """
    return entr(predictive_mean(probs)).sum(axis=-1)


def expected_entropy(probs: Any) -> np.ndarray:
    """Mean over the samples of each pass's entropy (nats): ``(N,)``.

    This is the part of the uncertainty that each pass already shows
    (aleatoric): ``mean_s H[p_s]``.

    Examples
    --------
    >>> expected_entropy([[[1.0, 0.0]], [[0.0, 1.0]]])
    array([0.])
    """
    return entr(_probs("probs", probs, 3)).sum(axis=-1).mean(axis=0)


def mutual_information(probs: Any) -> np.ndarray:
    """Mutual information between prediction and weights (BALD), in nats: ``(N,)``.

    It is ``predictive_entropy - expected_entropy``: large when the passes
    are each confident but disagree, zero when they all agree.  Tiny negative
    values from rounding are clipped to 0.

    Examples
    --------
    >>> mutual_information([[[1.0, 0.0]], [[0.0, 1.0]]]).round(4)  # disagreeing passes
    array([0.6931])
    >>> mutual_information([[[0.5, 0.5]], [[0.5, 0.5]]])  # agreeing, unsure passes
    array([0.])
    """
    probs = _probs("probs", probs, 3)
    return np.maximum(predictive_entropy(probs) - expected_entropy(probs), 0.0)


@dataclass(frozen=True)
class ClassSpread:
    """Per-class spread of MC probabilities.

    Attributes
    ----------
    levels : numpy.ndarray
        The quantile levels, ``(Q,)``.
    quantiles : numpy.ndarray
        ``(Q, N, C)``: quantile ``levels[q]`` of class ``c``'s probability for input ``n``.
    mean, std : numpy.ndarray
        ``(N, C)`` mean and standard deviation over the samples.
    """

    levels: np.ndarray
    quantiles: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def class_spread(
    probs: Any, *, quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)
) -> ClassSpread:
    """Summarise how each class's probability varies across the MC samples.

    For the seed's box plots draw the raw samples of one input,
    ``plt.boxplot(probs[:, n, :])``, one box per class; this function gives
    the numbers behind such boxes for every input at once.

    Parameters
    ----------
    probs : array_like
        ``(S, N, C)`` MC probabilities.
    quantiles : sequence of float
        Quantile levels in [0, 1].

    Returns
    -------
    ClassSpread

    Examples
    --------
    >>> samples = [[[0.9, 0.1]], [[0.7, 0.3]], [[0.8, 0.2]]]
    >>> spread = class_spread(samples, quantiles=(0.0, 0.5, 1.0))
    >>> spread.quantiles[:, 0, 0].round(2), spread.mean.round(2)
    (array([0.7, 0.8, 0.9]), array([[0.8, 0.2]]))
    """
    probs = _probs("probs", probs, 3)
    levels = array("quantiles", quantiles, ndim=1, dtype_kind="uif").astype(np.float64)
    if levels.min() < 0 or levels.max() > 1:
        raise ValueError(f"quantiles must lie in [0, 1], got {levels.tolist()}")
    return ClassSpread(
        levels=levels,
        quantiles=np.quantile(probs, levels, axis=0),
        mean=probs.mean(axis=0),
        std=probs.std(axis=0),
    )


# --------------------------------------------------------------------------------------
# calibration


@dataclass(frozen=True)
class ReliabilityData:
    """Predictions binned by confidence, for a reliability diagram.

    Attributes
    ----------
    edges : numpy.ndarray
        ``(n_bins + 1,)`` bin edges on [0, 1]; bin ``b`` holds confidences in
        ``(edges[b], edges[b + 1]]`` (the first bin also holds 0).
    confidence, accuracy : numpy.ndarray
        ``(n_bins,)`` mean confidence and accuracy per bin (NaN for empty bins).
    counts : numpy.ndarray
        ``(n_bins,)`` number of predictions per bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: ``sum_b counts_b / N * |accuracy_b - confidence_b|``."""
        full = self.counts > 0
        gaps = np.abs(self.accuracy[full] - self.confidence[full])
        return float(np.sum(self.counts[full] / self.counts.sum() * gaps))


def reliability_diagram_data(probs: Any, labels: Any, *, n_bins: int = 10) -> ReliabilityData:
    """Bin predictions by confidence (their top probability) and measure each bin's accuracy.

    A calibrated model has accuracy equal to confidence in every bin: its
    diagram lies on the diagonal.

    Parameters
    ----------
    probs : array_like
        ``(N, C)`` probabilities, for example the :func:`predictive_mean` of MC samples.
    labels : array_like
        ``(N,)`` true class indices.
    n_bins : int
        Number of equal-width confidence bins on [0, 1].

    Returns
    -------
    ReliabilityData

    Examples
    --------
    >>> probs = [[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]]
    >>> data = reliability_diagram_data(probs, [0, 1, 0, 0], n_bins=5)
    >>> data.counts, data.accuracy[[2, 4]], round(data.ece, 3)
    (array([0, 0, 2, 0, 2]), array([1. , 0.5]), 0.4)
    """
    probs = _probs("probs", probs, 2)
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    n_bins = positive_int("n_bins", n_bins)
    if len(labels) != len(probs):
        raise ValueError(f"labels must have one entry per row of probs, got {len(labels)}")
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ValueError(
            f"labels must lie in [0, {probs.shape[1]}), got {labels.min()}..{labels.max()}"
        )
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins) / counts
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / counts
    return ReliabilityData(edges=edges, confidence=mean_conf, accuracy=accuracy, counts=counts)


def expected_calibration_error(probs: Any, labels: Any, *, n_bins: int = 10) -> float:
    """Return the expected calibration error of ``(N, C)`` probabilities against labels.

    It is the average gap between confidence and accuracy over
    ``n_bins`` equal-width confidence bins, each weighted by its share of
    the predictions (Guo et al., 2017).  0 means perfectly calibrated.

    Examples
    --------
    >>> probs = [[0.8, 0.2]] * 5
    >>> expected_calibration_error(probs, [0, 0, 0, 0, 1])  # 80% sure, 80% right
    0.0
    >>> round(expected_calibration_error(probs, [0, 1, 0, 1, 1]), 3)  # 80% sure, 40% right
    0.4
    """
    return reliability_diagram_data(probs, labels, n_bins=n_bins).ece


def __getattr__(name: str) -> Any:
    """Create the Keras :class:`MCDropout` layer on first access (importing Keras)."""
    if name == "MCDropout":
        return _mc_dropout_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ClassSpread",
    "ReliabilityData",
    "class_spread",
    "expected_calibration_error",
    "expected_entropy",
    "mc_predict",
    "mutual_information",
    "predictive_entropy",
    "predictive_mean",
    "reliability_diagram_data",
]
