"""Keras 3 twins of the course's models.

The layers carry the same names as the roles in the torch models, so that
weights can be copied across (see :func:`copy_torch_weights`).
"""

from __future__ import annotations

import numpy as np

from lessonlib._validate import positive_int


def import_keras():
    """Import and return Keras 3 (TensorFlow backend), safely beside PyTorch.

    Loading TensorFlow before PyTorch's compiler stack (triton) makes the
    process crash later with a segmentation fault, the first time torch imports
    triton (for example when an optimizer is built).  This function imports
    triton first when it is installed, then Keras, with TensorFlow's C++ start-up
    logs hidden.  Lessons and lessonlib modules import Keras through it.

    Examples
    --------
    >>> import_keras().__name__
    'keras'
    """
    import os
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import triton  # noqa: F401  (must be loaded before TensorFlow)
    except ImportError:  # pragma: no cover - CPU-only torch builds have no triton
        pass
    if (
        "tensorflow" not in sys.modules
        and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE"
    ):
        _limit_torch_threads()
    import keras

    return keras


def _limit_torch_threads() -> None:  # pragma: no cover - depends on import order
    """Keep torch usable beside TensorFlow when OMP_WAIT_POLICY came too late.

    ``import lessonlib`` sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads; if
    torch was imported first, the two OpenMP pools would spin against each other,
    so torch is limited to one thread instead (a small cost, not a 25x one).
    """
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
        print("lessonlib: torch was imported first; using 1 torch thread beside TensorFlow.")


_keras = import_keras


def mnist_convnet(
    *, num_classes: int = 10, in_channels: int = 1, pooling: bool = True, head: bool = True
):
    """Build seed 004's MNIST convnet in Keras (channels last).

    The convolutional layers are named ``conv1``, ``conv2`` and ``conv3``
    (the last one is the Grad-CAM target), the dense layers ``dense1`` and
    ``logits``.  The model returns logits, like its torch twin.

    Parameters
    ----------
    num_classes : int
        Output classes of the dense head.
    in_channels : int
        Input channels (1 for grey digits).
    pooling : bool
        With the two 2x2 max-pooling layers (the seed model) or without them.
    head : bool
        With the flatten-dense64-dense head.

    Returns
    -------
    keras.Sequential
        Expects ``(N, 28, 28, in_channels)`` float input.

    Examples
    --------
    >>> mnist_convnet(head=False).count_params(), mnist_convnet().count_params()
    (55744, 93322)
    >>> mnist_convnet(pooling=False, head=False).output_shape
    (None, 22, 22, 64)
    """
    keras = _keras()
    layers = keras.layers
    num_classes = positive_int("num_classes", num_classes)
    in_channels = positive_int("in_channels", in_channels)
    stack = [
        keras.Input((28, 28, in_channels)),
        layers.Conv2D(32, 3, activation="relu", name="conv1"),
    ]
    if pooling:
        stack.append(layers.MaxPooling2D(2, name="pool1"))
    stack.append(layers.Conv2D(64, 3, activation="relu", name="conv2"))
    if pooling:
        stack.append(layers.MaxPooling2D(2, name="pool2"))
    stack.append(layers.Conv2D(64, 3, activation="relu", name="conv3"))
    if head:
        stack += [
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="dense1"),
            layers.Dense(num_classes, name="logits"),
        ]
    name = "mnist_convnet" if pooling else "mnist_convnet_no_pool"
    return keras.Sequential(stack, name=name)


def copy_torch_weights(torch_model, keras_model) -> None:
    """Copy the weights of a torch ``MnistConvNet`` into its Keras twin.

    Convolution kernels go from ``(out, in, kh, kw)`` to ``(kh, kw, in, out)``.
    The first dense layer's rows are permuted because torch flattens
    channels-first and Keras channels-last.  Afterwards both models compute
    the same function (up to float rounding).

    Raises
    ------
    ValueError
        If the two models do not have matching layers.
    """
    import torch

    t_convs = [m for m in torch_model.features if isinstance(m, torch.nn.Conv2d)]
    t_dense = [m for m in torch_model.head.modules() if isinstance(m, torch.nn.Linear)]
    k_convs = [layer for layer in keras_model.layers if layer.__class__.__name__ == "Conv2D"]
    k_dense = [layer for layer in keras_model.layers if layer.__class__.__name__ == "Dense"]
    if len(t_convs) != len(k_convs) or len(t_dense) != len(k_dense):
        raise ValueError(
            "keras_model must have the same conv/dense layers as torch_model, got "
            f"{len(k_convs)}/{len(k_dense)} vs {len(t_convs)}/{len(t_dense)}"
        )
    updates = []
    for t, k in zip(t_convs, k_convs, strict=True):
        w = t.weight.detach().cpu().numpy().transpose(2, 3, 1, 0)
        updates.append((k, [w, t.bias.detach().cpu().numpy()]))
    for i, (t, k) in enumerate(zip(t_dense, k_dense, strict=True)):
        w = t.weight.detach().cpu().numpy().T  # (in, out)
        if i == 0:
            channels = t_convs[-1].out_channels
            side = int(round(np.sqrt(w.shape[0] // channels)))
            # torch flat index c*side*side + r*side + q  ->  keras r*side*channels + q*channels + c
            w = w.reshape(channels, side, side, -1).transpose(1, 2, 0, 3).reshape(w.shape[0], -1)
        updates.append((k, [w, t.bias.detach().cpu().numpy()]))
    for k, weights in updates:  # check every shape before changing anything
        wanted = [tuple(v.shape) for v in k.get_weights()]
        if wanted != [v.shape for v in weights]:
            raise ValueError(
                f"keras_model layer {k.name} has weight shapes {wanted}, but torch_model "
                f"gives {[v.shape for v in weights]}"
            )
    for k, weights in updates:
        k.set_weights(weights)
