"""Grad-CAM by hand, in PyTorch and in Keras.

Grad-CAM (Selvaraju et al., 2017) explains one class score of a CNN with a
coarse heat map over the image.  It takes four steps, each of which is a small
public function here so that a lesson can show it on its own:

1. :func:`channel_weights`: the spatial mean of the gradient of the class
   score with respect to the target layer's activation, one weight per channel;
2. :func:`weighted_map`: the weighted sum of the activation's channels,
   followed by a ReLU (only evidence *for* the class is kept);
3. :func:`upsample`: bilinear upsampling to the input's rows and columns;
4. :func:`normalise`: min-max scaling of each map to [0, 1] (an all-zero map
   stays zero).

:class:`GradCAM` gets the activation and the gradient in PyTorch with a
forward hook, as a context manager that removes its hook on exit.
:func:`gradcam_keras` does the same in Keras with ``tf.GradientTape`` on a
named layer.  :func:`overlay` and :func:`plot_cams` draw the maps over the
images.  All arrays here are channels-first, ``(N, K, rows, cols)``, except
the Keras inputs, which are channels-last like Keras itself.

torch, TensorFlow and matplotlib are imported only by the functions that use
them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np

from lessonlib._validate import array, probability

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from matplotlib.figure import Figure

__all__ = [
    "CamSteps",
    "GradCAM",
    "channel_weights",
    "gradcam_keras",
    "gradcam_keras_steps",
    "normalise",
    "overlay",
    "plot_cams",
    "upsample",
    "weighted_map",
]

Targets = int | Sequence[int] | Callable[[Any], Any] | None


# --------------------------------------------------------------------------- the four steps


def channel_weights(gradients: np.ndarray) -> np.ndarray:
    """Step 1: average the gradients over rows and columns, one weight per channel.

    Parameters
    ----------
    gradients : array of shape (N, K, rows, cols)
        Gradient of each image's class score with respect to the activation.

    Returns
    -------
    ndarray of shape (N, K)

    Examples
    --------
    >>> g = np.zeros((1, 2, 2, 2)); g[0, 0] = [[1, 3], [0, 0]]
    >>> channel_weights(g)
    array([[1., 0.]])
    """
    gradients = array("gradients", gradients, ndim=4, dtype_kind="uif")
    return gradients.mean(axis=(2, 3))


def weighted_map(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Step 2: the ReLU of the channel-weighted sum of the activation.

    Parameters
    ----------
    activations : array of shape (N, K, rows, cols)
        The target layer's output.
    weights : array of shape (N, K)
        Channel weights from :func:`channel_weights`.

    Returns
    -------
    ndarray of shape (N, rows, cols)
        Non-negative low-resolution maps.

    Examples
    --------
    >>> a = np.stack([np.eye(2), np.ones((2, 2))])[None]   # 1 image, 2 channels
    >>> weighted_map(a, np.array([[2.0, -1.0]]))
    array([[[1., 0.],
            [0., 1.]]])
    """
    activations = array("activations", activations, ndim=4, dtype_kind="uif")
    weights = array("weights", weights, ndim=2, dtype_kind="uif")
    if weights.shape != activations.shape[:2]:
        raise ValueError(
            f"weights must have shape (N, K) = {activations.shape[:2]} to match activations, "
            f"got {weights.shape}"
        )
    summed = np.einsum("nk,nkrc->nrc", weights, activations)
    return np.maximum(summed, 0.0)


def _interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Rows of linear-interpolation weights with half-pixel centres, edges clamped."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    low = np.floor(src).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = src - low
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), low), 1 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    return matrix


def upsample(maps: np.ndarray, *, size: tuple[int, int]) -> np.ndarray:
    """Step 3: bilinear resize of each map to ``size`` = (rows, cols).

    Pixel centres sit at half-integers, and samples beyond the border repeat
    the edge, as in ``torch.nn.functional.interpolate(..., mode="bilinear",
    align_corners=False)`` and OpenCV's ``cv2.resize``.

    Parameters
    ----------
    maps : array of shape (N, rows, cols)
    size : (int, int)
        Output rows and columns, usually the input image's.

    Returns
    -------
    ndarray of shape (N, size[0], size[1])

    Examples
    --------
    >>> upsample(np.array([[[0.0, 1.0]]]), size=(1, 4))
    array([[[0.  , 0.25, 0.75, 1.  ]]])
    """
    maps = array("maps", maps, ndim=3, dtype_kind="uif")
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, Integral) and s > 0 for s in size)
    ):
        raise ValueError(f"size must be a pair of positive ints (rows, cols), got {size!r}")
    row_m = _interpolation_matrix(maps.shape[1], int(size[0]))
    col_m = _interpolation_matrix(maps.shape[2], int(size[1]))
    return np.einsum("ri,nij,cj->nrc", row_m, maps.astype(float), col_m)


def normalise(maps: np.ndarray) -> np.ndarray:
    """Step 4: min-max scale each map to [0, 1]; a flat map (e.g. all zero) becomes zeros.

    Parameters
    ----------
    maps : array of shape (N, rows, cols)

    Returns
    -------
    ndarray of shape (N, rows, cols), float32, values in [0, 1]

    Examples
    --------
    >>> normalise(np.array([[[1.0, 2.0, 3.0]], [[0.0, 0.0, 0.0]]]))
    array([[[0. , 0.5, 1. ]],
    <BLANKLINE>
           [[0. , 0. , 0. ]]], dtype=float32)
    """
    maps = array("maps", maps, ndim=3, dtype_kind="uif").astype(float)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    flat = span <= 1e-12 * np.maximum(1.0, np.abs(low))
    scaled = np.where(flat, 0.0, (maps - low) / np.where(flat, 1.0, span))
    return scaled.astype(np.float32)


# --------------------------------------------------------------------------- shared plumbing


@dataclass(frozen=True)
class CamSteps:
    """Every intermediate of one Grad-CAM call, for teaching.

    Attributes
    ----------
    logits : ndarray (N, C)
        Model outputs.
    class_indices : ndarray (N,) of int, or None
        The explained classes (None when the target was a callable).
    activations, gradients : ndarray (N, K, rows, cols)
        The target layer's output and the gradient of the score with respect to it
        (channels-first, also for Keras).
    weights : ndarray (N, K)
        Step 1, :func:`channel_weights`.
    low_res : ndarray (N, rows, cols)
        Step 2, :func:`weighted_map` (after the ReLU).
    maps : ndarray (N, H, W)
        Steps 3 and 4: upsampled to the input size and scaled to [0, 1].
    """

    logits: np.ndarray
    class_indices: np.ndarray | None
    activations: np.ndarray
    gradients: np.ndarray
    weights: np.ndarray
    low_res: np.ndarray
    maps: np.ndarray


def _combine(
    logits: np.ndarray,
    class_indices: np.ndarray | None,
    activations: np.ndarray,
    gradients: np.ndarray,
    size: tuple[int, int],
) -> CamSteps:
    weights = channel_weights(gradients)
    low_res = weighted_map(activations, weights)
    maps = normalise(upsample(low_res, size=size))
    return CamSteps(logits, class_indices, activations, gradients, weights, low_res, maps)


def _class_indices(targets: Targets, logits: np.ndarray) -> np.ndarray | None:
    """Turn ``targets`` into one class index per image (None for a callable)."""
    n, num_classes = logits.shape
    if callable(targets):
        return None
    if targets is None:
        return logits.argmax(axis=1)
    if isinstance(targets, bool):
        raise TypeError("targets must be an int, a sequence of ints, a callable or None, got bool")
    if isinstance(targets, Integral):
        indices = np.full(n, int(targets))
    else:
        indices = np.asarray(targets)
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise TypeError(
                "targets must be an int, a sequence of ints, a callable or None, "
                f"got {type(targets).__name__} of shape {indices.shape}"
            )
        if len(indices) != n:
            raise ValueError(f"targets must give one class per image ({n}), got {len(indices)}")
    bad = (indices < 0) | (indices >= num_classes)
    if bad.any():
        raise ValueError(
            f"targets must be class indices in [0, {num_classes - 1}], got {indices[bad][0]}"
        )
    return indices.astype(int)


def _check_scores(scores: Any, n: int) -> None:
    shape = tuple(scores.shape)
    if shape != (n,):
        raise ValueError(
            f"targets (a callable) must return one scalar per image, shape ({n},), got {shape}"
        )


# --------------------------------------------------------------------------- PyTorch


class GradCAM:
    """Grad-CAM for a PyTorch model, as a context manager over one target layer.

    Inside ``with GradCAM(model, target_layer) as cam:`` a forward hook on
    ``target_layer`` keeps its output; each call ``cam(x, targets)`` runs the
    model, differentiates the chosen class scores with ``torch.autograd.grad``
    (which leaves the parameters' ``.grad`` untouched) and returns the maps.
    The hook is removed when the block exits, also on an exception, which is
    re-raised, never swallowed.  Calling ``cam`` outside a ``with`` block
    registers and removes the hook around that single call.

    During a call the model is put in eval mode (so batch norm does not mix the
    images of a batch) and its previous mode is restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits of shape (N, C).
    target_layer : torch.nn.Module or str
        A submodule of ``model`` with a 4-D output (N, K, rows, cols), or its
        dotted name as in ``model.named_modules()``.

    Attributes
    ----------
    steps : CamSteps or None
        Every intermediate of the last call; ``activations``, ``gradients``,
        ``weights``, ``low_res``, ``logits`` and ``class_indices`` are
        shortcuts to its fields.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
    ...                     nn.Flatten(), nn.Linear(4, 3))
    >>> with GradCAM(net, net[1]) as cam:
    ...     maps = cam(torch.rand(2, 1, 8, 8), targets=[0, 2])
    >>> maps.shape, cam.weights.shape, cam.activations.shape
    ((2, 8, 8), (2, 4), (2, 4, 6, 6))
    >>> bool(maps.min() >= 0 and maps.max() <= 1), len(net[1]._forward_hooks)
    (True, 0)
    """

    def __init__(self, model: torch.nn.Module, target_layer: torch.nn.Module | str):
        from torch import nn

        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.target_layer = _resolve_torch_layer(model, target_layer)
        self.steps: CamSteps | None = None
        self._handle = None
        self._captured: list[Any] = []

    # -- hooks
    def __enter__(self) -> GradCAM:
        if self._handle is not None:
            raise RuntimeError("this GradCAM is already active; do not nest its with-blocks")
        self._handle = self.target_layer.register_forward_hook(self._keep_output)
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> bool:
        self.remove_hooks()
        self._captured = []
        return False  # never swallow an exception

    def remove_hooks(self) -> None:
        """Remove the forward hook (safe to call more than once)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _keep_output(self, module, inputs, output) -> Any:
        self._captured.append(output)
        # Hand the rest of the network a copy, so that an in-place op downstream
        # (e.g. ReLU(inplace=True) after a hooked conv) cannot overwrite the kept tensor.
        return output.clone() if hasattr(output, "clone") else None

    # -- the computation
    def __call__(self, x: torch.Tensor | np.ndarray, targets: Targets = None) -> np.ndarray:
        """Return Grad-CAM maps of shape (N, H, W) in [0, 1] for a batch ``x`` (N, C, H, W).

        ``targets`` is a class index for every image, one index per image, None
        (each image's top class), or a callable mapping the logits (N, C) to one
        score per image (N,).
        """
        if self._handle is None:
            with self:
                return self(x, targets)
        x = self._as_batch(x)
        was_training = self.model.training
        self.model.eval()
        try:
            self.steps = self._run(x, targets)
        finally:
            self.model.train(was_training)
            self._captured = []
        return self.steps.maps

    def _as_batch(self, x: Any) -> torch.Tensor:
        import torch

        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(array("x", x, ndim=4, dtype_kind="uif"))
        if x.ndim != 4:
            raise ValueError(
                f"x must be a batch of shape (N, C, H, W); got shape {tuple(x.shape)} "
                "(add a batch dimension with x[None] or x.unsqueeze(0))"
            )
        param = next(self.model.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        device = param.device if param is not None else x.device
        # a leaf that needs a gradient, so the graph exists even for frozen models
        return x.detach().to(device=device, dtype=dtype).requires_grad_(True)

    def _run(self, x: torch.Tensor, targets: Targets) -> CamSteps:
        import torch

        self._captured = []
        with torch.enable_grad():
            logits = self.model(x)
            activation = self._single_activation()
            if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
                raise ValueError(f"model must return logits of shape (N, C), got {logits.shape}")
            logits_np = logits.detach().cpu().numpy()
            indices = _class_indices(targets, logits_np)
            if indices is None:
                scores = targets(logits)
                _check_scores(scores, x.shape[0])
            else:
                scores = logits[torch.arange(x.shape[0]), torch.as_tensor(indices)]
            (grads,) = torch.autograd.grad(scores.sum(), activation)
        act_np = activation.detach().cpu().double().numpy()
        grad_np = grads.detach().cpu().double().numpy()
        return _combine(logits_np, indices, act_np, grad_np, tuple(x.shape[-2:]))

    def _single_activation(self) -> torch.Tensor:
        if len(self._captured) != 1:
            raise ValueError(
                f"target_layer ran {len(self._captured)} times in one forward pass; "
                "it must run exactly once"
            )
        activation = self._captured[0]
        if not hasattr(activation, "ndim") or activation.ndim != 4:
            shape = tuple(getattr(activation, "shape", ()))
            raise ValueError(
                f"target_layer must output a 4-D tensor (N, K, rows, cols), got shape {shape}"
            )
        return activation

    # -- shortcuts to the last call's steps
    def _step(self, name: str) -> np.ndarray | None:
        if self.steps is None:
            raise RuntimeError("no Grad-CAM has been computed yet; call cam(x, targets) first")
        return getattr(self.steps, name)

    activations = property(lambda self: self._step("activations"), doc="Last activation.")
    gradients = property(lambda self: self._step("gradients"), doc="Last gradient.")
    weights = property(lambda self: self._step("weights"), doc="Last channel weights.")
    low_res = property(lambda self: self._step("low_res"), doc="Last maps before upsampling.")
    logits = property(lambda self: self._step("logits"), doc="Last logits.")
    class_indices = property(lambda self: self._step("class_indices"), doc="Last classes.")


def _resolve_torch_layer(model: torch.nn.Module, target_layer: Any) -> torch.nn.Module:
    from torch import nn

    named = dict(model.named_modules())
    if isinstance(target_layer, str):
        if target_layer not in named or target_layer == "":
            listed = ", ".join(repr(n) for n in list(named)[1:][-8:])
            raise ValueError(
                f"target_layer {target_layer!r} is not a submodule of model; "
                f"some available names: {listed}"
            )
        return named[target_layer]
    if not isinstance(target_layer, nn.Module):
        raise TypeError(
            f"target_layer must be a torch.nn.Module or its name, got {type(target_layer).__name__}"
        )
    if not any(module is target_layer for module in named.values()):
        raise ValueError(
            f"target_layer ({type(target_layer).__name__}) is not a submodule of model; "
            "pass a module from model.named_modules()"
        )
    return target_layer


# --------------------------------------------------------------------------- Keras


def _keras_layer(model: Any, layer_name: str) -> Any:
    if not isinstance(layer_name, str):
        raise TypeError(f"layer_name must be a str, got {type(layer_name).__name__}")
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        listed = ", ".join(repr(n) for n in names[-10:])
        raise ValueError(f"layer_name {layer_name!r} is not in model; available names: {listed}")
    layer = model.get_layer(layer_name)
    if len(layer.output.shape) != 4:
        raise ValueError(
            f"layer_name {layer_name!r} must name a layer with a 4-D output "
            f"(N, rows, cols, K), got shape {tuple(layer.output.shape)}"
        )
    return layer


def _keras_input(model: Any) -> Any:
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs or len(inputs) != 1:
        raise ValueError(
            "model must be built with one keras.Input (the image batch) before Grad-CAM"
        )
    return inputs[0]  # a bare tensor, not a list: Keras 3 warns on a structure mismatch


def _keras_output(model: Any) -> Any:
    # ``model.output`` is undefined for a Keras 3 Sequential; ``outputs`` works for both kinds
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        raise ValueError("model must be a built model with exactly one output (the logits)")
    return outputs[0]


def gradcam_keras_steps(
    model: Any, x: np.ndarray, *, layer_name: str, targets: Targets = None
) -> CamSteps:
    """Grad-CAM in Keras with every intermediate; see :func:`gradcam_keras`.

    The activations and gradients in the result are transposed to
    channels-first, like those of :class:`GradCAM`, so the two can be compared.
    """
    from lessonlib.models_keras import import_keras

    keras = import_keras()
    import tensorflow as tf

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    image_input, logits_output = _keras_input(model), _keras_output(model)
    layer = _keras_layer(model, layer_name)
    x = array("x", x, ndim=4, dtype_kind="uif").astype(np.float32)
    grad_model = keras.Model(image_input, [layer.output, logits_output])
    with tf.GradientTape() as tape:
        activation, logits = grad_model(x, training=False)
        if len(logits.shape) != 2:
            raise ValueError(f"model must return logits of shape (N, C), got {logits.shape}")
        logits_np = logits.numpy()
        indices = _class_indices(targets, logits_np)
        if indices is None:
            scores = targets(logits)
            _check_scores(scores, x.shape[0])
        else:
            scores = tf.gather(logits, indices, axis=1, batch_dims=1)
    grads = tape.gradient(scores, activation)
    act_np = np.transpose(activation.numpy(), (0, 3, 1, 2)).astype(float)
    grad_np = np.transpose(grads.numpy(), (0, 3, 1, 2)).astype(float)
    return _combine(logits_np, indices, act_np, grad_np, x.shape[1:3])


def gradcam_keras(
    model: Any, x: np.ndarray, *, layer_name: str, targets: Targets = None
) -> np.ndarray:
    """Grad-CAM for a Keras model, through ``tf.GradientTape`` on a named layer.

    A sub-model returns ``[layer.output, model.output]``; the tape records the
    forward pass and gives the gradient of the class scores with respect to the
    layer's output.  The remaining steps are the ones :class:`GradCAM` uses.

    Parameters
    ----------
    model : keras.Model
        A built functional or Sequential model returning logits (N, C).
    x : array of shape (N, H, W, C)
        A batch of images, channels-last.
    layer_name : str
        Name of the target layer, with a 4-D output (N, rows, cols, K).
    targets : int, sequence of int, callable or None
        A class for every image, one class per image, None (each image's top
        class), or a callable mapping the logits tensor (N, C) to scores (N,).

    Returns
    -------
    ndarray of shape (N, H, W), float32 in [0, 1]

    Examples
    --------
    >>> from lessonlib.models_keras import import_keras
    >>> keras = import_keras()
    >>> keras.utils.set_random_seed(0)
    >>> net = keras.Sequential([keras.Input((8, 8, 1)),
    ...     keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    >>> gradcam_keras(net, np.ones((2, 8, 8, 1)), layer_name="conv", targets=1).shape
    (2, 8, 8)
    """
    return gradcam_keras_steps(model, x, layer_name=layer_name, targets=targets).maps


# --------------------------------------------------------------------------- drawing


def _as_rgb(image: Any) -> np.ndarray:
    image = array("image", image, ndim=(2, 3), dtype_kind="uif")
    if image.dtype.kind in "ui" and image.max() > 1:
        image = image / 255.0
    image = image.astype(float)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.shape[2] != 3:
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3), got {image.shape}")
    if image.min() < 0 or image.max() > 1:
        raise ValueError("image must hold floats in [0, 1] or uint8 values in [0, 255]")
    return image


def _colormap(cmap: Any) -> Any:
    import matplotlib

    if isinstance(cmap, matplotlib.colors.Colormap):
        return cmap
    if not isinstance(cmap, str):
        raise TypeError(f"cmap must be a colormap name or Colormap, got {type(cmap).__name__}")
    try:
        return matplotlib.colormaps[cmap]
    except KeyError:
        raise ValueError(
            f"cmap {cmap!r} is not a matplotlib colormap; try 'viridis', 'cividis' or 'inferno'"
        ) from None


def overlay(
    image: np.ndarray, cam: np.ndarray, *, alpha: float = 0.4, cmap: Any = "viridis"
) -> np.ndarray:
    """Blend a colour-mapped Grad-CAM map over an image.

    Parameters
    ----------
    image : array (H, W), (H, W, 1) or (H, W, 3)
        Floats in [0, 1] or uint8.
    cam : array (H, W)
        A map in [0, 1], such as one row of :class:`GradCAM`'s result.
    alpha : float
        Weight of the heat map, in [0, 1]; the image gets ``1 - alpha``.
    cmap : str or matplotlib Colormap
        A colour-blind-safe map by default (``"viridis"``).

    Returns
    -------
    ndarray (H, W, 3), float in [0, 1]

    Examples
    --------
    >>> out = overlay(np.zeros((2, 2)), np.array([[0.0, 1.0], [0.5, 0.0]]), alpha=1.0)
    >>> out.shape, bool(np.allclose(out[0, 1], [0.993, 0.906, 0.144], atol=1e-3))
    ((2, 2, 3), True)
    """
    rgb = _as_rgb(image)
    cam = array("cam", cam, ndim=2, dtype_kind="uif").astype(float)
    if cam.shape != rgb.shape[:2]:
        raise ValueError(f"cam must have the image's shape {rgb.shape[:2]}, got {cam.shape}")
    if cam.min() < 0 or cam.max() > 1:
        raise ValueError(f"cam must lie in [0, 1], got [{cam.min():.3g}, {cam.max():.3g}]")
    alpha = probability("alpha", alpha, inclusive_one=True)
    heat = _colormap(cmap)(cam)[..., :3]
    return (1 - alpha) * rgb + alpha * heat


def plot_cams(
    images: Sequence[np.ndarray] | np.ndarray,
    cams: Sequence[np.ndarray] | np.ndarray,
    *,
    titles: Sequence[str] | None = None,
    alpha: float = 0.4,
    cmap: Any = "viridis",
) -> Figure:
    """Draw each image (top row) above its Grad-CAM overlay (bottom row).

    Parameters
    ----------
    images : sequence of images (H, W) or (H, W, 3)
    cams : sequence of maps (H, W), one per image
    titles : sequence of str, optional
        One title per column.
    alpha, cmap
        As in :func:`overlay`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_cams([np.zeros((4, 4))], [np.eye(4)], titles=["a"])
    >>> len(fig.axes)
    2
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib.pyplot as plt

    images, cams = list(images), list(cams)
    if len(images) == 0:
        raise ValueError("images must not be empty")
    if len(cams) != len(images):
        raise ValueError(f"cams must have one map per image ({len(images)}), got {len(cams)}")
    if titles is not None and (isinstance(titles, str) or len(titles) != len(images)):
        raise ValueError(f"titles must be one str per image ({len(images)}), got {titles!r}")
    blended = [overlay(im, cm, alpha=alpha, cmap=cmap) for im, cm in zip(images, cams, strict=True)]
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.4 * n, 4.8), squeeze=False)
    for col in range(n):
        axes[0, col].imshow(_as_rgb(images[col]))
        axes[1, col].imshow(blended[col])
        if titles is not None:
            axes[0, col].set_title(titles[col])
        for ax in axes[:, col]:
            ax.set_axis_off()
    axes[1, 0].text(
        -0.05, 0.5, "Grad-CAM", rotation=90, va="center", ha="right", transform=axes[1, 0].transAxes
    )
    fig.tight_layout()
    return fig
