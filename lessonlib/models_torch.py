"""PyTorch models of the course.

Builders take keyword-only settings, in the style of torchvision: small
helpers, then a private factory, then thin public builders.
"""

from __future__ import annotations

import torch
from torch import nn

from lessonlib._validate import positive_int


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Return the number of parameters of a torch model.

    Examples
    --------
    >>> count_params(nn.Linear(3, 2))
    8
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _conv_stack(*, in_channels: int, pooling: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, 32, 3), nn.ReLU()]
    if pooling:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.Conv2d(32, 64, 3), nn.ReLU()]
    if pooling:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.Conv2d(64, 64, 3), nn.ReLU()]
    return layers


class MnistConvNet(nn.Module):
    """Seed 004's MNIST convnet: conv32-pool-conv64-pool-conv64 (+ dense64-dense10).

    ``features`` holds the convolutional part, ``head`` the dense part (or an
    identity when built without a head).  The model returns logits; apply a
    softmax for probabilities.
    """

    def __init__(self, *, in_channels: int, num_classes: int, pooling: bool, head: bool):
        super().__init__()
        self.features = nn.Sequential(*_conv_stack(in_channels=in_channels, pooling=pooling))
        side = 3 if pooling else 22
        if head:
            self.head: nn.Module = nn.Sequential(
                nn.Flatten(),
                nn.Linear(64 * side * side, 64),
                nn.ReLU(),
                nn.Linear(64, num_classes),
            )
        else:
            self.head = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits (with a head) or the last feature map (without)."""
        return self.head(self.features(x))


def mnist_convnet(
    *, num_classes: int = 10, in_channels: int = 1, pooling: bool = True, head: bool = True
) -> MnistConvNet:
    """Build seed 004's MNIST convnet in PyTorch.

    Parameters
    ----------
    num_classes : int
        Output classes of the dense head.
    in_channels : int
        Input channels (1 for grey digits).
    pooling : bool
        With the two 2x2 max-pooling layers (the seed model) or without them.
    head : bool
        With the flatten-dense64-dense10 head.

    Returns
    -------
    MnistConvNet
        Expects ``(N, in_channels, 28, 28)`` float input and returns logits.

    Examples
    --------
    >>> count_params(mnist_convnet(head=False)), count_params(mnist_convnet())
    (55744, 93322)
    >>> mnist_convnet(pooling=False, head=False)(torch.zeros(1, 1, 28, 28)).shape
    torch.Size([1, 64, 22, 22])
    """
    num_classes = positive_int("num_classes", num_classes)
    in_channels = positive_int("in_channels", in_channels)
    return MnistConvNet(
        in_channels=in_channels, num_classes=num_classes, pooling=pooling, head=head
    )


def last_conv(model: MnistConvNet) -> nn.Conv2d:
    """Return the last convolution of an :class:`MnistConvNet` (for Grad-CAM)."""
    if not isinstance(model, MnistConvNet):
        raise TypeError(f"model must be an MnistConvNet, got {type(model).__name__}")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    return convs[-1]


def summary(model: nn.Module, input_size: tuple[int, ...]) -> str:
    """Return a Keras-style table of a model's leaf layers, output shapes and parameters.

    Parameters
    ----------
    model : torch.nn.Module
        The model to describe.
    input_size : tuple of int
        Shape of one input batch, for example ``(1, 1, 28, 28)``.

    Examples
    --------
    >>> print(summary(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), (1, 2, 2)))
    layer          output shape         params
    ------------------------------------------
    0 (Flatten)    (1, 4)                    0
    1 (Linear)     (1, 2)                   10
    ------------------------------------------
    total params: 10
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(input_size, tuple) or not all(
        isinstance(s, int) and s > 0 for s in input_size
    ):
        raise ValueError(f"input_size must be a tuple of positive ints, got {input_size!r}")
    rows: list[tuple[str, str, int]] = []
    hooks = []
    for name, module in model.named_modules():
        if name and not list(module.children()):

            def hook(mod, _inp, out, name=name):
                params = sum(p.numel() for p in mod.parameters())
                rows.append((f"{name} ({type(mod).__name__})", str(tuple(out.shape)), params))

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(torch.zeros(input_size))
    finally:
        for handle in hooks:
            handle.remove()
        model.train(was_training)
    width = max([len(r[0]) for r in rows] + [12]) + 2
    lines = [f"{'layer':<{width}} {'output shape':<16} {'params':>10}", "-" * (width + 28)]
    lines += [f"{n:<{width}} {s:<16} {p:>10,}" for n, s, p in rows]
    lines += ["-" * (width + 28), f"total params: {count_params(model):,}"]
    return "\n".join(lines)
