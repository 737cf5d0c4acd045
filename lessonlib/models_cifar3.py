"""Seed 001's three CIFAR-3 networks (deer, frog, truck), in PyTorch and in Keras.

Each builder describes its network once, as a short list of layer specs, and
a private factory turns the list into a torch ``nn.Sequential`` or a Keras
``Sequential``.  The two versions have the same layers, the same names (up to
``conv_last`` / ``Conv_last``) and the same parameter counts:

=======================  ==========  ==============================================
builder                  parameters  layers (32x32x3 input, 3 classes)
=======================  ==========  ==============================================
:func:`cifar3_cnn`       331,331     conv32, conv64 (each + pool), dense128 x2 with
                                     dropout 0.2, dense3
:func:`mc_dropout_net`   167,363     conv32, conv64, conv128 (each + pool), dense128
                                     and dense64 with dropout 0.5 and L2, dense3
:func:`variational_net`  230,787     conv32 ('same'), conv64 (each + pool), dense64
                                     x2, Gaussian latent 32, dense64, dense3
=======================  ==========  ==============================================

The seed reports the first two counts; it gives no count for the variational
net, whose figure above follows from its layer list.  All models return
**logits**; apply a softmax for probabilities.

Torch and Keras are imported only when a model of that framework is built.
The torch layer :class:`GaussianLatent` and the Keras layer
``GaussianLatentLayer`` are created on first use and are reachable as
attributes of this module.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lessonlib._validate import one_of, positive_float, positive_int, probability

FRAMEWORKS = ("torch", "keras")


def weight_decay_from_tau(
    *, tau: float, n_train: int, dropout: float, length_scale: float = 1.0
) -> tuple[float, float]:
    """Return the L2 penalties (kernel, bias) of the MC dropout net.

    Gal and Ghahramani read a dropout network as an approximate Bayesian
    network whose weights have a Gaussian prior of length scale ``l`` and
    whose model precision is ``tau``.  The L2 penalty that matches this reading
    shrinks as the training set grows.  Seed 001 uses

    * kernels (after a dropout layer):  ``l**2 * (1 - dropout) / (tau * n_train)``
    * biases (never dropped):           ``l**2 / (tau * n_train)``

    with ``l = 1``.  Gal and Ghahramani's own formula has ``2 * tau * n_train``
    in the denominator; the seed leaves the 2 out, which is the same as a prior
    length scale ``sqrt(2)`` times larger.  The function keeps the seed's
    convention so that its numbers carry over.

    Each value is a Keras ``L2`` factor: the penalty added to the mean loss is
    ``factor * sum(w**2)``.  (A torch optimizer's ``weight_decay`` must be twice
    as large for the same effect; see :func:`weight_decay_param_groups`.)

    Parameters
    ----------
    tau : float
        Model precision; larger means less noise is expected and less shrinkage.
    n_train : int
        Number of training examples.
    dropout : float
        Drop probability of the dropout layers, in [0, 1).
    length_scale : float
        Prior length scale ``l`` of the weights.

    Returns
    -------
    tuple of float
        ``(kernel_penalty, bias_penalty)``.

    Examples
    --------
    >>> weight_decay_from_tau(tau=0.5, n_train=15_000, dropout=0.5)
    (6.666666666666667e-05, 0.00013333333333333334)
    """
    tau = positive_float("tau", tau)
    n_train = positive_int("n_train", n_train)
    dropout = probability("dropout", dropout)
    length_scale = positive_float("length_scale", length_scale)
    scale = length_scale**2 / (tau * n_train)
    return scale * (1.0 - dropout), scale


# --------------------------------------------------------------------------------------
# layer specs shared by both frameworks


@dataclass(frozen=True)
class _Spec:
    kind: str  # conv, pool, flatten, dense, dropout, latent
    name: str
    units: int = 0
    relu: bool = False
    same: bool = False  # conv padding
    penalties: tuple[float, float] | None = None  # L2 (kernel, bias) for dense layers
    rate: float = 0.0


def _cnn_specs(num_classes: int, dropout: float) -> list[_Spec]:
    return [
        _Spec("conv", "conv1", 32, relu=True),
        _Spec("pool", "pool1"),
        _Spec("conv", "conv_last", 64, relu=True),
        _Spec("pool", "pool2"),
        _Spec("flatten", "flatten"),
        _Spec("dense", "dense1", 128, relu=True),
        _Spec("dropout", "dropout1", rate=dropout),
        _Spec("dense", "dense2", 128, relu=True),
        _Spec("dropout", "dropout2", rate=dropout),
        _Spec("dense", "logits", num_classes),
    ]


def _mc_specs(num_classes: int, dropout: float, penalties: tuple[float, float]) -> list[_Spec]:
    return [
        _Spec("conv", "conv1", 32, relu=True),
        _Spec("pool", "pool1"),
        _Spec("conv", "conv2", 64, relu=True),
        _Spec("pool", "pool2"),
        _Spec("conv", "conv_last", 128, relu=True),
        _Spec("pool", "pool3"),
        _Spec("flatten", "flatten"),
        _Spec("dense", "dense1", 128, relu=True, penalties=penalties),
        _Spec("dropout", "dropout1", rate=dropout),
        _Spec("dense", "dense2", 64, relu=True, penalties=penalties),
        _Spec("dropout", "dropout2", rate=dropout),
        _Spec("dense", "logits", num_classes, penalties=penalties),
    ]


def _vnn_specs(num_classes: int, latent_dim: int, intermediate_dim: int) -> list[_Spec]:
    return [
        _Spec("conv", "conv1", 32, relu=True, same=True),
        _Spec("pool", "pool1"),
        _Spec("conv", "conv_last", 64, relu=True),
        _Spec("pool", "pool2"),
        _Spec("flatten", "flatten"),
        _Spec("dense", "dense1", intermediate_dim, relu=True),
        _Spec("dense", "dense2", intermediate_dim, relu=True),
        _Spec("latent", "latent", latent_dim),
        _Spec("dense", "decoder", intermediate_dim, relu=True),
        _Spec("dense", "logits", num_classes),
    ]


def _check_input(
    framework: str, input_shape: Any, num_classes: Any
) -> tuple[str, tuple[int, int, int], int]:
    """Validate the shared builder arguments; return framework, (rows, cols, channels), classes."""
    framework = one_of("framework", framework, FRAMEWORKS)
    num_classes = positive_int("num_classes", num_classes)
    if input_shape is None:
        input_shape = (3, 32, 32) if framework == "torch" else (32, 32, 3)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be a tuple of 3 ints, got {input_shape!r}")
    dims = [positive_int("input_shape", d) for d in input_shape]
    rows, cols, channels = dims[1:] + dims[:1] if framework == "torch" else dims
    return framework, (rows, cols, channels), num_classes


def _flat_features(specs: list[_Spec], rows: int, cols: int, input_shape: Any) -> int:
    """Return the length of the flattened feature map, or raise if the input is too small."""
    channels = 0
    for spec in specs:
        if spec.kind == "conv":
            shrink = 0 if spec.same else 2
            rows, cols, channels = rows - shrink, cols - shrink, spec.units
        elif spec.kind == "pool":
            rows, cols = rows // 2, cols // 2
        elif spec.kind == "flatten":
            break
        if rows < 1 or cols < 1:
            raise ValueError(
                f"input_shape {tuple(input_shape)} is too small: the feature map vanishes "
                f"at layer {spec.name!r}"
            )
    return rows * cols * channels


# --------------------------------------------------------------------------------------
# torch factory


@functools.cache
def _torch_latent_class() -> type:
    from torch import nn

    class GaussianLatent(nn.Module):
        """The variational net's latent layer: a Gaussian whose mean and log-variance are learnt.

        The forward pass computes ``z_mean`` and ``z_log_var`` from its input,
        returns one sample ``z = z_mean + exp(z_log_var / 2) * eps`` with
        ``eps ~ N(0, 1)``, and keeps the KL divergence of that Gaussian from
        ``N(0, 1)`` in ``self.kl`` (one value per example), for
        :func:`kl_term`.  Like the seed's sampling layer, it samples in
        training *and* in evaluation mode, so repeated predictions differ.

        The KL follows the seed: ``-0.5 * mean(1 + log_var - mean**2 - exp(log_var))``
        over the latent units.  (The usual VAE sums over the units, which
        weighs the KL ``latent_dim`` times more.)
        """

        def __init__(self, in_features: int, latent_dim: int):
            super().__init__()
            self.z_mean = nn.Linear(in_features, latent_dim)
            self.z_log_var = nn.Linear(in_features, latent_dim)
            self.kl: Any = None

        def forward(self, h):
            import torch

            mean, log_var = self.z_mean(h), self.z_log_var(h)
            self.kl = -0.5 * torch.mean(1 + log_var - mean**2 - torch.exp(log_var), dim=-1)
            return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)

    GaussianLatent.__module__ = __name__
    GaussianLatent.__qualname__ = "GaussianLatent"
    return GaussianLatent


def _torch_layer(spec: _Spec, width: int, flat: int) -> tuple[list[tuple[str, Any]], int]:
    """Return the named torch modules of one spec and the width (channels or units) after it."""
    from torch import nn

    if spec.kind == "conv":
        conv = nn.Conv2d(width, spec.units, 3, padding=1 if spec.same else 0)
        mods, width = [(spec.name, conv)], spec.units
    elif spec.kind == "pool":
        mods = [(spec.name, nn.MaxPool2d(2))]
    elif spec.kind == "flatten":
        mods, width = [(spec.name, nn.Flatten())], flat
    elif spec.kind == "dropout":
        mods = [(spec.name, nn.Dropout(spec.rate))]
    elif spec.kind == "latent":
        mods, width = [(spec.name, _torch_latent_class()(width, spec.units))], spec.units
    else:  # dense
        mods, width = [(spec.name, nn.Linear(width, spec.units))], spec.units
    if spec.relu:
        mods.append((f"{spec.name}_relu", nn.ReLU()))
    return mods, width


def _build_torch(specs: list[_Spec], shape: tuple[int, int, int], input_shape: Any) -> Any:
    from collections import OrderedDict

    from torch import nn

    rows, cols, width = shape
    flat = _flat_features(specs, rows, cols, input_shape)
    named: list[tuple[str, Any]] = []
    for spec in specs:
        mods, width = _torch_layer(spec, width, flat)
        named += mods
    model = nn.Sequential(OrderedDict(named))
    model.l2_penalties = {s.name: s.penalties for s in specs if s.penalties is not None}
    return model


# --------------------------------------------------------------------------------------
# Keras factory


def _keras() -> Any:
    from lessonlib.models_keras import import_keras

    return import_keras()


@functools.cache
def _keras_latent_class() -> type:
    keras = _keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="lessonlib")
    class GaussianLatentLayer(keras.layers.Layer):
        """Keras twin of :class:`GaussianLatent`; adds the mean KL to ``model.losses``."""

        def __init__(self, units: int, *, seed: int | None = None, **kwargs: Any):
            super().__init__(**kwargs)
            self.units, self.seed = units, seed
            self.z_mean = keras.layers.Dense(units, name="z_mean")
            self.z_log_var = keras.layers.Dense(units, name="z_log_var")
            self.seed_generator = keras.random.SeedGenerator(seed)

        def build(self, input_shape):
            self.z_mean.build(input_shape)
            self.z_log_var.build(input_shape)

        def call(self, inputs):
            mean, log_var = self.z_mean(inputs), self.z_log_var(inputs)
            kl = -0.5 * ops.mean(1 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)
            self.add_loss(ops.mean(kl))
            eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
            return mean + ops.exp(0.5 * log_var) * eps

        def compute_output_shape(self, input_shape):
            return tuple(input_shape[:-1]) + (self.units,)

        def get_config(self):
            return {**super().get_config(), "units": self.units, "seed": self.seed}

    GaussianLatentLayer.__module__ = __name__
    GaussianLatentLayer.__qualname__ = "GaussianLatentLayer"
    return GaussianLatentLayer


def _keras_layer(spec: _Spec) -> Any:
    layers = _keras().layers
    act = "relu" if spec.relu else None
    if spec.kind == "conv":
        name = "Conv_last" if spec.name == "conv_last" else spec.name
        padding = "same" if spec.same else "valid"
        return layers.Conv2D(spec.units, 3, activation=act, padding=padding, name=name)
    if spec.kind == "pool":
        return layers.MaxPooling2D(2, name=spec.name)
    if spec.kind == "flatten":
        return layers.Flatten(name=spec.name)
    if spec.kind == "dropout":
        return layers.Dropout(spec.rate, name=spec.name)
    if spec.kind == "latent":
        return _keras_latent_class()(spec.units, name=spec.name)
    regs: dict[str, Any] = {}
    if spec.penalties is not None:
        l2 = _keras().regularizers.L2
        kernel, bias = spec.penalties
        regs = {"kernel_regularizer": l2(kernel), "bias_regularizer": l2(bias)}
    return layers.Dense(spec.units, activation=act, name=spec.name, **regs)


def _build_keras(specs: list[_Spec], shape: tuple[int, int, int], input_shape: Any, name: str):
    keras = _keras()
    _flat_features(specs, shape[0], shape[1], input_shape)
    return keras.Sequential([keras.Input(shape)] + [_keras_layer(s) for s in specs], name=name)


def _build(specs: list[_Spec], framework: str, shape: tuple[int, int, int], input_shape, name: str):
    if framework == "torch":
        return _build_torch(specs, shape, input_shape)
    return _build_keras(specs, shape, input_shape, name)


# --------------------------------------------------------------------------------------
# public builders


def cifar3_cnn(
    *,
    framework: str = "torch",
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 3,
    dropout: float = 0.2,
) -> Any:
    """Build seed 001's CNN: conv32-pool-conv64-pool-dense128-dense128 with dropout 0.2.

    The last convolution is ``model.conv_last`` in torch (its ReLU is
    ``model.conv_last_relu``) and the layer ``"Conv_last"`` in Keras (ReLU
    included, as in the seed): the Grad-CAM targets.

    Parameters
    ----------
    framework : {"torch", "keras"}
        Which framework to build the model in.
    input_shape : tuple of int, optional
        ``(channels, rows, cols)`` for torch, ``(rows, cols, channels)`` for
        Keras; defaults to 32x32 RGB.
    num_classes : int
        Output classes.
    dropout : float
        Drop probability of both dropout layers.

    Returns
    -------
    torch.nn.Sequential or keras.Sequential
        A model that returns logits.  331,331 parameters at the defaults.

    Examples
    --------
    >>> from lessonlib.models_torch import count_params
    >>> count_params(cifar3_cnn())
    331331
    >>> cifar3_cnn().conv_last
    Conv2d(32, 64, kernel_size=(3, 3), stride=(1, 1))
    """
    framework, shape, num_classes = _check_input(framework, input_shape, num_classes)
    specs = _cnn_specs(num_classes, probability("dropout", dropout))
    return _build(specs, framework, shape, input_shape, "cifar3_cnn")


def mc_dropout_net(
    *,
    n_train: int,
    framework: str = "torch",
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 3,
    dropout: float = 0.5,
    tau: float = 0.5,
    length_scale: float = 1.0,
) -> Any:
    """Build seed 001's MC dropout net: three conv blocks, then dense128/64 with dropout 0.5.

    The three dense layers carry the L2 penalties of
    :func:`weight_decay_from_tau`.  In Keras they are ``kernel_regularizer``
    and ``bias_regularizer`` (so ``fit`` adds them to the loss).  In torch
    they are stored in ``model.l2_penalties`` (``{layer name: (kernel,
    bias)}``); add :func:`l2_penalty` to the loss, or pass
    :func:`weight_decay_param_groups` to the optimizer.

    The dropout layers are ordinary ones: evaluation and ``model.predict`` are
    deterministic.  The seed switches dropout on inside the model instead;
    here :func:`lessonlib.uncertainty.mc_predict` does it, and keeps batch
    norm (if any) in evaluation mode.

    Parameters
    ----------
    n_train : int
        Number of training examples; the penalties shrink as it grows.
    framework : {"torch", "keras"}
        Which framework to build the model in.
    input_shape : tuple of int, optional
        ``(channels, rows, cols)`` for torch, ``(rows, cols, channels)`` for
        Keras; defaults to 32x32 RGB.  ``(1, 28, 28)`` suits MNIST.
    num_classes : int
        Output classes.
    dropout : float
        Drop probability of both dropout layers.
    tau, length_scale : float
        See :func:`weight_decay_from_tau`.

    Returns
    -------
    torch.nn.Sequential or keras.Sequential
        A model that returns logits.  167,363 parameters at the defaults.

    Examples
    --------
    >>> from lessonlib.models_torch import count_params
    >>> count_params(mc_dropout_net(n_train=15_000))
    167363
    >>> digits = mc_dropout_net(n_train=5_000, input_shape=(1, 28, 28), num_classes=10)
    >>> digits.l2_penalties["logits"]
    (0.0002, 0.0004)
    """
    framework, shape, num_classes = _check_input(framework, input_shape, num_classes)
    penalties = weight_decay_from_tau(
        tau=tau, n_train=n_train, dropout=dropout, length_scale=length_scale
    )
    specs = _mc_specs(num_classes, dropout, penalties)
    return _build(specs, framework, shape, input_shape, "mc_dropout_net")


def variational_net(
    *,
    framework: str = "torch",
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 3,
    latent_dim: int = 32,
    intermediate_dim: int = 64,
) -> Any:
    """Build seed 001's variational net: a conv encoder, a sampled Gaussian latent, a decoder.

    The encoder (conv32 with 'same' padding, pool, conv64, pool, two dense
    layers of ``intermediate_dim``) ends in a latent layer that predicts a
    mean and a log-variance of ``latent_dim`` units and draws one sample; a
    dense layer of ``intermediate_dim`` and the output layer decode it.  The
    loss is cross-entropy plus the KL term of the latent layer: in torch use
    :func:`penalized_loss` (or add :func:`kl_term`); in Keras the layer adds
    it to ``model.losses``, so ``fit`` includes it.

    The latent layer samples at test time too, as in the seed, so repeated
    predictions differ.  (The seed draws its noise with shape ``(batch,)``,
    one value per example; here each latent unit gets its own draw, which is
    the usual reparameterisation.  Neither has parameters, so the count is
    unaffected.)  The seed gives no parameter count; its layer list gives
    230,787 in both frameworks.

    Parameters
    ----------
    framework : {"torch", "keras"}
        Which framework to build the model in.
    input_shape : tuple of int, optional
        ``(channels, rows, cols)`` for torch, ``(rows, cols, channels)`` for
        Keras; defaults to 32x32 RGB.
    num_classes : int
        Output classes.
    latent_dim, intermediate_dim : int
        Sizes of the latent Gaussian and of the dense layers around it.

    Returns
    -------
    torch.nn.Sequential or keras.Sequential
        A model that returns logits (one random draw per call).

    Examples
    --------
    >>> import torch
    >>> from lessonlib.models_torch import count_params
    >>> net = variational_net()
    >>> count_params(net), net(torch.zeros(2, 3, 32, 32)).shape, net.latent.kl.shape
    (230787, torch.Size([2, 3]), torch.Size([2]))
    """
    framework, shape, num_classes = _check_input(framework, input_shape, num_classes)
    latent_dim = positive_int("latent_dim", latent_dim)
    intermediate_dim = positive_int("intermediate_dim", intermediate_dim)
    specs = _vnn_specs(num_classes, latent_dim, intermediate_dim)
    return _build(specs, framework, shape, input_shape, "variational_net")


# --------------------------------------------------------------------------------------
# torch losses


def _torch_module(model: Any) -> Any:
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return torch


def l2_penalty(model: Any) -> Any:
    """Return the L2 penalty of a torch model built by :func:`mc_dropout_net`.

    It is ``sum(kernel_penalty * ||W||**2 + bias_penalty * ||b||**2)`` over the
    layers in ``model.l2_penalties``: exactly what Keras adds for the same
    regularizers.  Models without penalties give 0.

    Examples
    --------
    >>> import torch
    >>> net = mc_dropout_net(n_train=100)
    >>> bool(l2_penalty(net) > 0), float(l2_penalty(cifar3_cnn()))
    (True, 0.0)
    """
    torch = _torch_module(model)
    total = torch.zeros(())
    for name, (kernel, bias) in getattr(model, "l2_penalties", {}).items():
        layer = model.get_submodule(name)
        total = total + kernel * layer.weight.pow(2).sum() + bias * layer.bias.pow(2).sum()
    return total


def weight_decay_param_groups(model: Any) -> list[dict[str, Any]]:
    """Return optimizer parameter groups whose ``weight_decay`` applies ``model.l2_penalties``.

    torch's ``weight_decay`` adds ``weight_decay * w`` to the gradient, the
    gradient of ``weight_decay / 2 * w**2``, so each group gets twice the
    Keras factor.  This matches :func:`l2_penalty` for SGD and Adam (coupled
    L2), not for AdamW (decoupled decay).  Parameters without a penalty go in
    a last group with ``weight_decay=0``.

    Examples
    --------
    >>> import torch
    >>> groups = weight_decay_param_groups(mc_dropout_net(n_train=15_000))
    >>> len(groups), groups[0]["weight_decay"]
    (7, 0.00013333333333333334)

    Pass them on as ``torch.optim.SGD(groups, lr=0.01)``.
    """
    _torch_module(model)
    groups, penalised = [], set()
    for name, (kernel, bias) in getattr(model, "l2_penalties", {}).items():
        layer = model.get_submodule(name)
        groups += [
            {"params": [layer.weight], "weight_decay": 2 * kernel},
            {"params": [layer.bias], "weight_decay": 2 * bias},
        ]
        penalised |= {id(layer.weight), id(layer.bias)}
    rest = [p for p in model.parameters() if id(p) not in penalised]
    groups.append({"params": rest, "weight_decay": 0.0})
    return groups


def kl_term(model: Any) -> Any:
    """Return the KL term of a torch variational net's last forward pass.

    It is the batch mean of ``GaussianLatent.kl``, summed over the latent
    layers of ``model`` (0 if it has none).

    Raises
    ------
    ValueError
        If a latent layer has not run a forward pass yet.

    Examples
    --------
    >>> import torch
    >>> net = variational_net()
    >>> _ = net(torch.zeros(4, 3, 32, 32))
    >>> bool(kl_term(net) >= 0)
    True
    """
    torch = _torch_module(model)
    total = torch.zeros(())
    for module in model.modules():
        if isinstance(module, _torch_latent_class()):
            if module.kl is None:
                raise ValueError("model must run a forward pass before kl_term is taken")
            total = total + module.kl.mean()
    return total


def penalized_loss(model: Any) -> Callable[[Any, Any], Any]:
    """Return ``loss(logits, targets)``: cross-entropy plus :func:`l2_penalty` and :func:`kl_term`.

    This is the loss the seed trains its MC dropout and variational nets with,
    in the form that :func:`lessonlib.training.fit` takes (``loss_fn=``).

    Examples
    --------
    >>> import torch
    >>> net = variational_net()
    >>> loss_fn = penalized_loss(net)
    >>> logits = net(torch.zeros(4, 3, 32, 32))
    >>> ce = torch.nn.functional.cross_entropy(logits, torch.zeros(4, dtype=torch.long))
    >>> bool(loss_fn(logits, torch.zeros(4, dtype=torch.long)) >= ce)
    True
    """
    _torch_module(model)

    def loss(logits: Any, targets: Any) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(logits, targets) + l2_penalty(model) + kl_term(model)

    return loss


# --------------------------------------------------------------------------------------
# weights across frameworks


def _keras_weight_layers(keras_model: Any) -> list[Any]:
    """Conv2D and Dense layers of a Keras model in order, latent sub-layers included."""
    found = []
    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "Dense"):
            found.append(layer)
        elif kind == "GaussianLatentLayer":
            found += [layer.z_mean, layer.z_log_var]
    return found


def copy_torch_weights(torch_model: Any, keras_model: Any) -> None:
    """Copy the weights of a torch model from this module into its Keras twin.

    Convolution kernels go from ``(out, in, kh, kw)`` to ``(kh, kw, in, out)``
    and dense kernels are transposed.  The rows of the first dense layer are
    permuted, because torch flattens channels-first and Keras channels-last.

    Raises
    ------
    ValueError
        If the two models do not have matching layers.

    Examples
    --------
    >>> import numpy as np, torch
    >>> shape = dict(input_shape=(1, 28, 28), num_classes=10)
    >>> net = mc_dropout_net(n_train=5_000, **shape).eval()
    >>> twin = mc_dropout_net(n_train=5_000, framework="keras", input_shape=(28, 28, 1),
    ...                       num_classes=10)
    >>> copy_torch_weights(net, twin)
    >>> x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    >>> with torch.no_grad():
    ...     expected = net(torch.from_numpy(x)).numpy()
    >>> got = twin(x.transpose(0, 2, 3, 1)).numpy()
    >>> bool(np.allclose(got, expected, atol=1e-5))
    True
    """
    torch = _torch_module(torch_model)
    weighted = (torch.nn.Conv2d, torch.nn.Linear)
    t_layers = [m for m in torch_model.modules() if isinstance(m, weighted)]
    k_layers = _keras_weight_layers(keras_model)
    t_kinds = ["conv" if isinstance(m, torch.nn.Conv2d) else "dense" for m in t_layers]
    k_kinds = ["conv" if type(k).__name__ == "Conv2D" else "dense" for k in k_layers]
    if t_kinds != k_kinds:
        raise ValueError(f"keras_model must have torch_model's layers {t_kinds}, got {k_kinds}")
    rows, cols, channels = keras_model.get_layer("flatten").input.shape[1:]
    first_dense = True
    for t, k in zip(t_layers, k_layers, strict=True):
        w = t.weight.detach().cpu().numpy()
        if isinstance(t, torch.nn.Conv2d):
            w = w.transpose(2, 3, 1, 0)
        else:
            w = w.T
            if first_dense:  # torch index (c, r, q) -> keras index (r, q, c)
                w = w.reshape(channels, rows, cols, -1).transpose(1, 2, 0, 3).reshape(w.shape)
                first_dense = False
        if tuple(k.kernel.shape) != w.shape:
            raise ValueError(f"keras_model layer {k.name!r} has shape {tuple(k.kernel.shape)}")
        k.set_weights([w, t.bias.detach().cpu().numpy()])


def __getattr__(name: str) -> Any:
    """Create the framework-specific layer classes on first access."""
    if name == "GaussianLatent":
        return _torch_latent_class()
    if name == "GaussianLatentLayer":
        return _keras_latent_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FRAMEWORKS",
    "cifar3_cnn",
    "copy_torch_weights",
    "kl_term",
    "l2_penalty",
    "mc_dropout_net",
    "penalized_loss",
    "variational_net",
    "weight_decay_from_tau",
    "weight_decay_param_groups",
]
