"""Transfer learning in two stages: a new head on a frozen backbone, then fine-tuning.

The pieces follow seeds 002 and 004:

* :func:`image_loader` feeds ``uint8`` images to a backbone, optionally with
  seed 002's augmentation (:class:`Augmentation`: pad and random crop, a small
  rotation, a horizontal flip) applied at the native resolution, then resized
  and normalised exactly as :func:`lessonlib.pretrained.preprocess` does;
* :func:`with_new_head` replaces the ImageNet classifier by batch norm and a
  linear layer, and :func:`freeze_backbone_batchnorm` freezes the pretrained
  batch-norm statistics while the new head's own batch norm keeps learning;
* :func:`sgd` builds SGD with momentum over the parameters that are trainable
  right now (after :func:`lessonlib.pretrained.set_trainable`);
* :func:`predict` collects probabilities and labels over a loader, and
  :func:`concat_histories` joins the two stages' histories for one plot;
* :func:`transfer_run` runs the whole recipe of lesson 5 on an image set:
  range test on the new head, head training, fine-tuning with ``StepLR`` and
  the best epoch kept.

Examples
--------
>>> import numpy as np
>>> from lessonlib import pretrained
>>> lite0 = pretrained.load_backbone("efficientnet_lite0")
>>> loader = image_loader(np.zeros((5, 28, 28, 3), np.uint8), np.arange(5), backbone=lite0,
...                       image_size=32, batch_size=4, augmentation=Augmentation(hflip=False))
>>> [tuple(x.shape) for x, _ in loader]
[(4, 3, 32, 32), (1, 3, 32, 32)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lessonlib import pretrained
from lessonlib._validate import array, non_negative_int, positive_float, positive_int
from lessonlib.data import ImageSplit
from lessonlib.lr_finder import LRFinderResult, lr_range_test
from lessonlib.training import History, evaluate, fit


@dataclass(frozen=True)
class Augmentation:
    """Seed 002's random training transforms, applied at the native resolution.

    Attributes
    ----------
    pad : int
        Zero padding on every side before a random crop back to the original
        size (a random shift of up to ``pad`` pixels); 0 turns it off.
    rotation : float
        Maximum rotation in degrees (uniform in ``[-rotation, rotation]``).
    hflip : bool
        Flip left-right with probability 0.5.  Leave it off for digits.
    """

    pad: int = 4
    rotation: float = 5.0
    hflip: bool = True

    def __post_init__(self) -> None:
        non_negative_int("pad", self.pad)
        if isinstance(self.rotation, bool) or not isinstance(self.rotation, (int, float)):
            raise TypeError(f"rotation must be a number, got {type(self.rotation).__name__}")
        if not 0 <= self.rotation <= 180:
            raise ValueError(f"rotation must lie in [0, 180] degrees, got {self.rotation}")
        if not isinstance(self.hflip, bool):
            raise TypeError(f"hflip must be a bool, got {type(self.hflip).__name__}")

    def transform(self, size: tuple[int, int]) -> Any:
        """Return the torchvision v2 transform for ``(rows, cols)`` uint8 images."""
        from torchvision.transforms import InterpolationMode, v2

        steps: list[Any] = []
        if self.pad:
            steps += [v2.Pad(self.pad), v2.RandomCrop(size)]
        if self.rotation:
            steps.append(v2.RandomRotation(self.rotation, InterpolationMode.BILINEAR))
        if self.hflip:
            steps.append(v2.RandomHorizontalFlip())
        return v2.Compose(steps) if steps else v2.Identity()


class _Images(Dataset):
    """``uint8`` images (N, C, H, W) with labels, transformed one at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Any):
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


class _Preprocess:
    """Collate function: stack, then resize and normalise like :func:`pretrained.preprocess`."""

    def __init__(self, backbone: pretrained.Backbone, image_size: int):
        self.backbone, self.image_size = backbone, image_size

    def __call__(self, batch: list) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack([b[0] for b in batch]).permute(0, 2, 3, 1).numpy()
        x = pretrained.preprocess(images, backbone=self.backbone, image_size=self.image_size)
        return x, torch.stack([b[1] for b in batch])


def image_loader(
    images: Any,
    labels: Any,
    *,
    backbone: pretrained.Backbone,
    image_size: int,
    batch_size: int,
    augmentation: Augmentation | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> DataLoader:
    """Return a ``DataLoader`` of normalised image tensors for ``backbone``.

    Parameters
    ----------
    images : array_like
        ``uint8`` images, ``(N, H, W, 3)`` or grey ``(N, H, W)``.
    labels : array_like of int, shape (N,)
        Class labels.
    backbone : Backbone
        Supplies the normalisation.
    image_size : int
        Side the (augmented) images are resized to.
    batch_size : int
        Images per batch.
    augmentation : Augmentation, optional
        Random transforms drawn afresh every epoch from torch's global
        generator (seed it for repeatable runs); ``None`` for none.
    shuffle : bool
        Shuffle with a generator seeded with ``seed``.

    Returns
    -------
    torch.utils.data.DataLoader
        Batches ``(x, y)``: ``float32`` ``(B, 3, image_size, image_size)`` and
        ``int64`` ``(B,)``.
    """
    images = array("images", images, ndim=(3, 4), dtype_kind="u")
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    if images.shape[-1] != 3:
        raise ValueError(f"images must have 3 channels on the last axis, got {images.shape}")
    labels = array("labels", labels, ndim=1, dtype_kind="iu")
    if len(labels) != len(images):
        raise ValueError(
            f"labels must have one entry per image, got {len(labels)} for {len(images)}"
        )
    if not isinstance(backbone, pretrained.Backbone):
        raise TypeError(f"backbone must be a Backbone, got {type(backbone).__name__}")
    image_size = positive_int("image_size", image_size)
    batch_size = positive_int("batch_size", batch_size)
    if augmentation is not None and not isinstance(augmentation, Augmentation):
        raise TypeError(
            f"augmentation must be an Augmentation or None, got {type(augmentation).__name__}"
        )
    transform = augmentation.transform(images.shape[1:3]) if augmentation else None
    return DataLoader(
        _Images(images, labels, transform),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(non_negative_int("seed", seed)),
        collate_fn=_Preprocess(backbone, image_size),
    )


def with_new_head(backbone: pretrained.Backbone | nn.Module, *, num_classes: int) -> nn.Module:
    """Return a copy of the backbone's model with a new head: batch norm, then a linear layer.

    The pretrained classifier is replaced by ``nn.Sequential(nn.BatchNorm1d(d),
    nn.Linear(d, num_classes))`` for pooled features of length ``d``.  The
    batch-norm layer standardises the pooled features, whose values share a
    large common offset; plain SGD on raw features converges slowly for that
    reason.  Unlike the backbone's batch-norm layers, this one is new, so it
    should learn the statistics of the new data: freeze the backbone's with
    :func:`freeze_backbone_batchnorm`, not with
    :func:`lessonlib.pretrained.freeze_batchnorm`.

    Examples
    --------
    >>> import torchvision
    >>> net = with_new_head(torchvision.models.resnet18(), num_classes=3)
    >>> [type(m).__name__ for m in net.fc], net.fc[1].out_features
    (['BatchNorm1d', 'Linear'], 3)
    """
    model = pretrained.replace_head(backbone, num_classes=num_classes)
    linear = pretrained.classifier_head(model)
    for name, child in model.named_children():
        if child is linear:
            norm = nn.BatchNorm1d(linear.in_features).to(linear.weight.device)
            setattr(model, name, nn.Sequential(norm, linear))
    return model


def freeze_backbone_batchnorm(model: nn.Module) -> int:
    """Freeze the statistics of every batch-norm layer outside the model's head.

    Pass it as ``after_train_mode`` to :func:`lessonlib.training.fit`.  It calls
    :func:`lessonlib.pretrained.freeze_batchnorm` on every child module except
    the classifier, so the head made by :func:`with_new_head` keeps learning
    its statistics.

    Returns
    -------
    int
        The number of batch-norm layers frozen.

    Examples
    --------
    >>> import torchvision
    >>> net = with_new_head(torchvision.models.resnet18(), num_classes=3)
    >>> freeze_backbone_batchnorm(net)
    20
    >>> _ = net.train(); net.bn1.training, net.fc[0].training
    (True, True)
    >>> _ = net(torch.zeros(2, 3, 32, 32)); net.bn1.training
    False
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    head = pretrained.classifier_head(model)
    return sum(
        pretrained.freeze_batchnorm(child) for child in model.children() if child is not head
    )


def sgd(model: nn.Module, *, lr: float, momentum: float = 0.9) -> torch.optim.SGD:
    """Return SGD with momentum over the parameters of ``model`` that require gradients.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> _ = net[0].requires_grad_(False)
    >>> opt = sgd(net, lr=0.01)
    >>> len(opt.param_groups[0]["params"]), opt.param_groups[0]["momentum"]
    (2, 0.9)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters; call set_trainable first")
    return torch.optim.SGD(params, lr=positive_float("lr", lr), momentum=momentum)


def concat_histories(*histories: History) -> History:
    """Join histories epoch after epoch (for example a head stage and a fine-tuning stage).

    Examples
    --------
    >>> a = History([1.0], [0.5], [0.9], [0.6]); b = History([0.5], [0.8], [0.7], [0.7])
    >>> concat_histories(a, b).val_accuracy
    [0.6, 0.7]
    """
    if not histories:
        raise ValueError("histories must contain at least one History")
    for i, h in enumerate(histories):
        if not isinstance(h, History):
            raise TypeError(f"histories[{i}] must be a History, got {type(h).__name__}")
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    return History(**{k: [v for h in histories for v in getattr(h, k)] for k in keys})


def predict(
    model: nn.Module, loader: DataLoader, *, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Return softmax probabilities ``(N, C)`` and labels ``(N,)`` over a loader, in eval mode.

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> loader = DataLoader(TensorDataset(torch.zeros(3, 2), torch.tensor([0, 1, 1])), batch_size=2)
    >>> probs, labels = predict(nn.Linear(2, 2), loader)
    >>> probs.shape, labels.tolist()
    ((3, 2), [0, 1, 1])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model.eval()
    probs, labels = [], []
    with torch.inference_mode():
        for x, y in loader:
            probs.append(torch.softmax(model(x.to(device)), dim=1).cpu().numpy())
            labels.append(y.numpy())
    if not probs:
        raise ValueError("loader must yield at least one batch")
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64)


@dataclass(frozen=True)
class TransferRun:
    """What :func:`transfer_run` returns.

    Attributes
    ----------
    model : torch.nn.Module
        The fine-tuned classifier, with the best fine-tuning epoch's weights.
    range_test : LRFinderResult
        The learning-rate range test of the new head.
    head_lr, finetune_lr : float
        The rates of the two stages.
    head, finetune : History
        Histories of the frozen-backbone stage and of the fine-tuning stage.
    accuracy : float
        Accuracy of the returned model on the test images.
    """

    model: nn.Module
    range_test: LRFinderResult
    head_lr: float
    finetune_lr: float
    head: History
    finetune: History
    accuracy: float


def transfer_run(
    backbone: pretrained.Backbone,
    split: ImageSplit,
    *,
    image_size: int,
    batch_size: int,
    augmentation: Augmentation | None,
    head_epochs: int,
    finetune_epochs: int,
    train_blocks: int,
    finetune_factor: float = 0.01,
    lr_range: tuple[float, float] = (1e-5, 10.0),
    range_test_iters: int = 80,
    momentum: float = 0.9,
    step_size: int = 7,
    gamma: float = 0.1,
    seed: int = 0,
    device: str = "cpu",
) -> TransferRun:
    """Fine-tune ``backbone`` on ``split`` with the two-stage recipe of lesson 5.

    1. Give the model a new head (:func:`with_new_head`), freeze everything
       else and the backbone's batch-norm statistics, and run the
       learning-rate range test over ``lr_range``; its suggestion is the
       head's rate.
    2. Train the head for ``head_epochs`` with SGD (``momentum``) and
       ``StepLR(step_size, gamma)`` on (augmented) training images.
    3. Unfreeze the last ``train_blocks`` blocks and train for
       ``finetune_epochs`` at ``finetune_factor`` times the head's rate, with
       a fresh ``StepLR``; keep the epoch with the best test accuracy.

    ``split.x_test`` serves as validation data, as in seed 002, so the
    returned accuracy is slightly optimistic.

    Raises
    ------
    RuntimeError
        If the range test stops too early to suggest a rate.
    """
    if not isinstance(split, ImageSplit):
        raise TypeError(f"split must be an ImageSplit, got {type(split).__name__}")
    finetune_factor = positive_float("finetune_factor", finetune_factor)
    torch.manual_seed(non_negative_int("seed", seed))
    common = dict(backbone=backbone, image_size=image_size, batch_size=batch_size)
    train = image_loader(
        split.x_train, split.y_train, augmentation=augmentation, shuffle=True, seed=seed, **common
    )
    test = image_loader(split.x_test, split.y_test, **common)
    model = with_new_head(backbone, num_classes=len(split.classes)).to(device)
    freeze_backbone_batchnorm(model)
    pretrained.set_trainable(model, train_blocks=0)
    finder = lr_range_test(
        model, sgd(model, lr=lr_range[0], momentum=momentum), nn.CrossEntropyLoss(), train,
        start_lr=lr_range[0], end_lr=lr_range[1], num_iter=range_test_iters, device=device,
    )  # fmt: skip
    if finder.suggestion is None:
        raise RuntimeError("the range test stopped too early to suggest a rate; widen lr_range")
    stages = []
    for epochs, blocks, lr, best, desc in (
        (head_epochs, 0, finder.suggestion, False, "head"),
        (finetune_epochs, train_blocks, finder.suggestion * finetune_factor, True, "fine-tuning"),
    ):
        pretrained.set_trainable(model, train_blocks=blocks)
        optimizer = sgd(model, lr=lr, momentum=momentum)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
        stages.append(
            fit(
                model,
                train,
                test,
                optimizer=optimizer,
                scheduler=scheduler,
                epochs=epochs,
                keep_best=best,
                device=device,
                desc=desc,
                after_train_mode=freeze_backbone_batchnorm,
            )  # fmt: skip
        )
    _, accuracy = evaluate(model, test, device=device)
    return TransferRun(
        model,
        finder,
        float(finder.suggestion),
        float(finder.suggestion * finetune_factor),
        stages[0],
        stages[1],
        float(accuracy),
    )
