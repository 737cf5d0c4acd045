"""The one-step gradient-sign attack (FGSM) on input images.

Goodfellow, Shlens and Szegedy (2015) moved every input value by the same
small amount ``epsilon`` in the direction that increases the loss fastest
under a per-pixel budget:

.. math:: x_\\text{adv} = x + \\epsilon \\, \\operatorname{sign}(\\nabla_x L(f(x), y)).

Unlike random noise, this perturbation is chosen by the model's own gradient,
so it can flip predictions while changing no pixel by more than ``epsilon``.

Examples
--------
>>> import torch
>>> net = torch.nn.Linear(2, 2)
>>> with torch.no_grad():
...     _ = net.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]])); _ = net.bias.zero_()
>>> fgsm(net, torch.tensor([[0.6, 0.4]]), torch.tensor([0]), epsilon=0.15)
tensor([[0.4500, 0.5500]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lessonlib._validate import positive_int


def fgsm(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    epsilon: float,
    clamp: tuple[float, float] | None = None,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """Return ``inputs`` moved by ``epsilon`` along the sign of the loss gradient.

    The model runs in eval mode (its own mode is restored afterwards), and the
    gradient is taken with ``torch.autograd.grad``, so the parameters'
    ``.grad`` fields are left untouched.  Gradients are enabled inside, so the
    call also works within ``torch.no_grad()``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``inputs`` to logits.
    inputs : torch.Tensor
        A float batch, in whatever space the model expects (for example
        pixels in [0, 1] when the model normalises them itself).
    targets : torch.Tensor
        ``int64`` labels whose loss the attack increases (the true labels).
    epsilon : float
        Size of the step for every input value, >= 0 (0 returns a copy).
    clamp : (float, float), optional
        Clip the result to this range, e.g. ``(0.0, 1.0)`` for pixels.
    loss_fn : callable, optional
        ``loss_fn(logits, targets)``; cross-entropy by default.
    batch_size : int
        Inputs per forward and backward pass.

    Returns
    -------
    torch.Tensor
        The adversarial inputs, detached, with the shape and dtype of ``inputs``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise TypeError("inputs must be a floating-point torch.Tensor")
    if not isinstance(targets, torch.Tensor) or targets.dtype != torch.int64:
        raise TypeError("targets must be an int64 torch.Tensor of class labels")
    if targets.shape != inputs.shape[:1]:
        raise ValueError(
            f"targets must have one label per input, got {tuple(targets.shape)} "
            f"for {inputs.shape[0]} inputs"
        )
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon < 0:
        raise ValueError(f"epsilon must be a number >= 0, got {epsilon!r}")
    if clamp is not None and (len(clamp) != 2 or not clamp[0] < clamp[1]):
        raise ValueError(f"clamp must be a (low, high) pair with low < high, got {clamp!r}")
    batch_size = positive_int("batch_size", batch_size)
    loss_fn = loss_fn or nn.functional.cross_entropy
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        chunks = [
            _step(model, inputs[i : i + batch_size], targets[i : i + batch_size], loss_fn, epsilon)
            for i in range(0, len(inputs), batch_size)
        ]
    finally:
        for module, mode in modes.items():
            module.training = mode
    out = torch.cat(chunks) if chunks else inputs.detach().clone()
    return out.clamp(*clamp) if clamp is not None else out


def _step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[..., Any], eps: float
) -> torch.Tensor:
    with torch.enable_grad():  # also works when called under torch.no_grad()
        x = x.detach().clone().requires_grad_(True)
        loss = loss_fn(model(x), y)
        (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).detach()
