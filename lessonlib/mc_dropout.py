"""MC dropout in practice: sample only the random part of a network, and the Keras pitfall.

:func:`lessonlib.uncertainty.mc_predict` sends every input through the whole
network ``S`` times.  In seed 001's MC dropout net (and its variational net),
everything before the dense head is deterministic: the convolutions give the
same features in every pass, and only the layers after ``flatten`` draw random
numbers.  :func:`split_model` cuts a torch ``nn.Sequential`` there, and
:func:`mc_predict_head` computes the features once and samples only the head,
which gives the same samples (with the same seed) in a fraction of the time.

The Keras pitfall: ``model(x, training=True)`` switches dropout on, but it
also puts batch norm in training mode, where each batch is normalised with
its own statistics and the moving averages learnt in training are updated.
:func:`with_identity_batchnorm` inserts a batch-norm layer that does nothing
in inference mode into a trained Keras model, so that the damage done by
:func:`naive_keras_mc` (the ``training=True`` loop) can be measured against
:func:`lessonlib.uncertainty.mc_predict`, which keeps batch norm in inference
mode.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from lessonlib._validate import array, non_negative_int, positive_int
from lessonlib.uncertainty import mc_predict


def _torch_sequential(model: Any) -> Any:
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(model, torch.nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential, got {type(model).__name__}")
    return torch


def _stochastic_types() -> tuple[type, ...]:
    from torch import nn

    from lessonlib.models_cifar3 import _torch_latent_class

    dropout = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
    return (*dropout, nn.FeatureAlphaDropout, _torch_latent_class())


def split_model(model: Any, *, after: str = "flatten") -> tuple[Any, Any]:
    """Cut a torch ``nn.Sequential`` into a deterministic body and a random head.

    Parameters
    ----------
    model : torch.nn.Sequential
        A network whose children are named, as the builders of
        :mod:`lessonlib.models_cifar3` name them.
    after : str
        Name of the last child of the body.

    Returns
    -------
    tuple of torch.nn.Sequential
        ``(body, head)``; they share the model's parameters, and
        ``head(body(x))`` equals ``model(x)``.

    Raises
    ------
    ValueError
        If ``after`` names no child, or if the body holds a dropout or latent
        layer (its randomness would then be frozen by computing it once).

    Examples
    --------
    >>> from lessonlib.models_cifar3 import mc_dropout_net
    >>> body, head = split_model(mc_dropout_net(n_train=100))
    >>> list(dict(body.named_children()))[-1], list(dict(head.named_children()))[:2]
    ('flatten', ['dense1', 'dense1_relu'])
    """
    _torch_sequential(model)
    if not isinstance(after, str):
        raise TypeError(f"after must be a str, got {type(after).__name__}")
    names = [name for name, _ in model.named_children()]
    if after not in names:
        raise ValueError(f"after must name a child of model, one of {names}; got {after!r}")
    cut = names.index(after) + 1
    body, head = model[:cut], model[cut:]
    random_layers = [n for n, m in body.named_modules() if isinstance(m, _stochastic_types())]
    if random_layers:
        raise ValueError(
            f"after={after!r} puts the random layer(s) {random_layers} in the body; cut earlier"
        )
    return body, head


def _features(body: Any, x: Any, batch_size: int) -> np.ndarray:
    """Run the body once in evaluation mode (modes restored), in batches."""
    import torch

    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = array("x", x, dtype_kind="uif").astype(np.float32, copy=False)
    if x.ndim < 2:
        raise ValueError(f"x must have a batch dimension, got shape {x.shape}")
    modes = [(m, m.training) for m in body.modules()]
    param = next(body.parameters(), None)
    device = param.device if param is not None else "cpu"
    out = []
    try:
        body.eval()
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                chunk = torch.from_numpy(x[start : start + batch_size]).to(device)
                out.append(body(chunk).float().cpu().numpy())
    finally:
        for m, mode in modes:
            m.train(mode)
    return np.concatenate(out)


def mc_predict_head(
    model: Any,
    x: Any,
    *,
    samples: int,
    after: str = "flatten",
    batch_size: int = 1024,
    seed: int | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Return MC samples like :func:`~lessonlib.uncertainty.mc_predict`, computing the body once.

    The body (up to and including the child ``after``) runs once per input
    in evaluation mode; the head runs ``samples`` times with its dropout on
    (and a variational net's latent layer sampling).  With the same ``seed``
    and ``batch_size`` the result equals ``mc_predict(model, x, ...)``, because
    the body draws no random numbers.

    Parameters
    ----------
    model : torch.nn.Sequential
        A classifier returning logits.
    x : array_like or torch.Tensor
        Inputs ``(N, C, H, W)`` in the model's layout.
    samples : int
        Number of stochastic passes ``S``.
    after : str
        Where to cut; see :func:`split_model`.
    batch_size : int
        Rows per forward call, for the body and for the head.
    seed : int, optional
        Seed for the dropout masks.
    show_progress : bool
        Show a progress bar over the head's forward calls.

    Returns
    -------
    numpy.ndarray
        ``float32`` probabilities of shape ``(S, N, C)``.

    Examples
    --------
    >>> import torch
    >>> from lessonlib.models_cifar3 import mc_dropout_net
    >>> net = mc_dropout_net(n_train=100, input_shape=(1, 28, 28), num_classes=10)
    >>> x = torch.rand(3, 1, 28, 28)
    >>> fast = mc_predict_head(net, x, samples=50, seed=0, show_progress=False)
    >>> slow = mc_predict(net, x, samples=50, seed=0, show_progress=False)
    >>> fast.shape, bool(abs(fast - slow).max() < 1e-6)
    ((50, 3, 10), True)
    """
    samples = positive_int("samples", samples)
    batch_size = positive_int("batch_size", batch_size)
    if seed is not None:
        seed = non_negative_int("seed", seed)
    body, head = split_model(model, after=after)
    features = _features(body, x, batch_size)
    return mc_predict(
        head,
        features,
        samples=samples,
        batch_size=batch_size,
        seed=seed,
        show_progress=show_progress,
    )


# --------------------------------------------------------------------------------------
# the Keras batch-norm pitfall


def _keras_model(model: Any) -> Any:
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(model, keras.Sequential):
        raise TypeError(f"model must be a keras.Sequential, got {type(model).__name__}")
    return keras


def with_identity_batchnorm(model: Any, x: Any, *, after: str = "flatten") -> Any:
    """Return a copy of a Keras ``Sequential`` with a batch-norm layer inserted after ``after``.

    The new layer (named ``"batchnorm"``) has the features of ``x`` at that
    point as its moving mean and variance, and ``gamma``/``beta`` chosen so
    that in inference mode it gives its input back unchanged: the copy
    predicts exactly like ``model``.  In training mode it normalises each
    batch by the batch's own statistics, which is what ``training=True``
    does to any network with batch norm.

    Parameters
    ----------
    model : keras.Sequential
        A trained model; it is left unchanged (the copy has its own weights).
    x : array_like
        Inputs (channels last) whose features set the statistics, for
        example the training images.
    after : str
        Name of the layer after which batch norm goes.

    Returns
    -------
    keras.Sequential

    Examples
    --------
    >>> import numpy as np
    >>> from lessonlib.models_cifar3 import mc_dropout_net
    >>> net = mc_dropout_net(n_train=100, framework="keras", input_shape=(28, 28, 1),
    ...                      num_classes=10)
    >>> x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    >>> bn_net = with_identity_batchnorm(net, x)
    >>> bool(np.allclose(bn_net.predict(x, verbose=0), net.predict(x, verbose=0), atol=1e-4))
    True
    """
    keras = _keras_model(model)
    names = [layer.name for layer in model.layers]
    if after not in names:
        raise ValueError(f"after must name a layer of model, one of {names}; got {after!r}")
    x = array("x", x, dtype_kind="uif").astype(np.float32, copy=False)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    cut = names.index(after) + 1
    body = keras.Sequential([keras.Input(model.input_shape[1:]), *copy.layers[:cut]])
    features = body.predict(x, verbose=0, batch_size=256)
    features = features.reshape(len(features), -1)
    mean, var = features.mean(axis=0), features.var(axis=0)
    norm = keras.layers.BatchNormalization(name="batchnorm")
    out = keras.Sequential(
        [keras.Input(model.input_shape[1:]), *copy.layers[:cut], norm, *copy.layers[cut:]],
        name=f"{model.name}_bn",
    )
    norm.set_weights([np.sqrt(var + norm.epsilon), mean, mean, var])
    return out


def naive_keras_mc(model: Any, x: Any, *, samples: int, batch_size: int) -> np.ndarray:
    """Sample a Keras model the naive way: ``softmax(model(batch, training=True))``, S times.

    This is what ``training=True`` gives: dropout on, but batch norm (if any)
    normalising each batch with its own statistics and updating its moving
    averages.  Use :func:`lessonlib.uncertainty.mc_predict` instead; this
    function exists to show the difference.

    Parameters
    ----------
    model : keras.Model
        A classifier returning logits.
    x : array_like
        Inputs, channels last.
    samples : int
        Number of passes over ``x``.
    batch_size : int
        Images per call: the batch whose statistics batch norm uses.

    Returns
    -------
    numpy.ndarray
        ``float32`` probabilities of shape ``(S, N, C)``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(),
    ...                         keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).random((5, 4), dtype=np.float32)
    >>> probs = naive_keras_mc(net, x, samples=2, batch_size=1)
    >>> probs.shape, bool(np.allclose(probs, 1 / 3))  # one image per batch: all alike
    ((2, 5, 3), True)
    """
    from lessonlib.models_cifar3 import _keras

    keras = _keras()
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    samples = positive_int("samples", samples)
    batch_size = positive_int("batch_size", batch_size)
    x = array("x", x, dtype_kind="uif").astype(np.float32, copy=False)
    out = np.empty((samples, len(x), model.output_shape[-1]), np.float32)
    for s in range(samples):
        for start in range(0, len(x), batch_size):
            logits = model(x[start : start + batch_size], training=True)
            probs = keras.ops.softmax(logits, axis=-1)
            out[s, start : start + batch_size] = keras.ops.convert_to_numpy(probs)
    return out


__all__ = ["mc_predict_head", "naive_keras_mc", "split_model", "with_identity_batchnorm"]
