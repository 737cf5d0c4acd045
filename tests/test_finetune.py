"""Tests for lessonlib.finetune: augmentation, loaders, the new head, frozen statistics."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from lessonlib import finetune, pretrained
from lessonlib.data import ImageSplit
from lessonlib.finetune import (
    Augmentation,
    concat_histories,
    freeze_backbone_batchnorm,
    image_loader,
    predict,
    sgd,
    transfer_run,
    with_new_head,
)
from lessonlib.lr_finder import LRFinderResult
from lessonlib.training import History

RNG_SEED = 11


@pytest.fixture(scope="module")
def lite0() -> pretrained.Backbone:
    return pretrained.load_backbone("efficientnet_lite0")


@pytest.fixture
def tiny_resnet() -> pretrained.Backbone:
    """A small untrained ResNet-18 dressed as a backbone: fast, and no weights to load."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=5).eval()
    return pretrained.Backbone("resnet18", net, (0.5,) * 3, (0.5,) * 3, 512, (), net.layer4)


@pytest.fixture
def images() -> np.ndarray:
    rng = np.random.default_rng(RNG_SEED)
    return rng.integers(0, 256, size=(6, 12, 12, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- augmentation


def test_augmentation_rejects_bad_settings():
    with pytest.raises(ValueError, match="pad"):
        Augmentation(pad=-1)
    with pytest.raises(TypeError, match="pad"):
        Augmentation(pad=1.5)
    with pytest.raises(ValueError, match="rotation"):
        Augmentation(rotation=200)
    with pytest.raises(TypeError, match="rotation"):
        Augmentation(rotation="5")
    with pytest.raises(TypeError, match="hflip"):
        Augmentation(hflip=1)


def test_no_augmentation_is_the_identity(images):
    transform = Augmentation(pad=0, rotation=0, hflip=False).transform((12, 12))
    x = torch.from_numpy(images[0]).permute(2, 0, 1)
    assert torch.equal(transform(x), x)


def test_pad_and_crop_is_a_shift_with_zero_fill(images):
    torch.manual_seed(RNG_SEED)
    transform = Augmentation(pad=2, rotation=0, hflip=False).transform((12, 12))
    x = torch.from_numpy(images[0]).permute(2, 0, 1)
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    shifts = set()
    for _ in range(30):
        out = transform(x)
        matches = [
            (r, c)
            for r in range(5)
            for c in range(5)
            if torch.equal(out, padded[:, r : r + 12, c : c + 12])
        ]
        assert matches, "output is not a shifted window of the padded image"
        shifts.add(matches[0])
    assert len(shifts) > 5  # the shift really is random


def test_hflip_alone_flips_about_half_the_time(images):
    torch.manual_seed(RNG_SEED)
    transform = Augmentation(pad=0, rotation=0, hflip=True).transform((12, 12))
    x = torch.from_numpy(images[0]).permute(2, 0, 1)
    outs = [transform(x) for _ in range(200)]
    flipped = sum(torch.equal(o, x.flip(-1)) for o in outs)
    assert all(torch.equal(o, x) or torch.equal(o, x.flip(-1)) for o in outs)
    assert 70 <= flipped <= 130


# --------------------------------------------------------------------------- loaders


def test_loader_without_augmentation_equals_preprocess(lite0, images):
    loader = image_loader(images, np.arange(6), backbone=lite0, image_size=20, batch_size=4)
    x = torch.cat([b[0] for b in loader])
    y = torch.cat([b[1] for b in loader])
    expected = pretrained.preprocess(images, backbone=lite0, image_size=20)
    assert torch.equal(x, expected) and y.tolist() == list(range(6)) and y.dtype == torch.int64


def test_loader_accepts_grey_images_and_shuffles_repeatably(lite0, images):
    grey = images[..., 0]
    kwargs = dict(backbone=lite0, image_size=8, batch_size=6, shuffle=True, seed=3)
    first = next(iter(image_loader(grey, np.arange(6), **kwargs)))[1].tolist()
    again = next(iter(image_loader(grey, np.arange(6), **kwargs)))[1].tolist()
    assert first == again and sorted(first) == list(range(6)) and first != list(range(6))


def test_augmented_batches_differ_between_epochs(lite0, images):
    torch.manual_seed(RNG_SEED)
    loader = image_loader(images, np.zeros(6, int), backbone=lite0, image_size=12,
                          batch_size=6, augmentation=Augmentation(pad=3))  # fmt: skip
    a, b = (next(iter(loader))[0] for _ in range(2))
    assert a.shape == (6, 3, 12, 12) and not torch.equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": np.zeros((2, 4, 4, 3), np.float32)}, TypeError, "images must have a numeric"),
        ({"images": np.zeros((2, 4, 4, 3), np.uint16)}, TypeError, "images must be uint8"),
        ({"images": np.zeros((2, 4, 4, 2), np.uint8)}, ValueError, "3 channels"),
        ({"labels": np.arange(3)}, ValueError, "one entry per image"),
        ({"backbone": "lite0"}, TypeError, "backbone must be a Backbone"),
        ({"augmentation": {"pad": 2}}, TypeError, "augmentation must be an Augmentation"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_loader_rejects_bad_arguments(lite0, kwargs, error, match):
    args = dict(images=np.zeros((2, 4, 4, 3), np.uint8), labels=np.arange(2), backbone=lite0,
                image_size=4, batch_size=2)  # fmt: skip
    args.update(kwargs)
    with pytest.raises(error, match=match):
        image_loader(args.pop("images"), args.pop("labels"), **args)


# --------------------------------------------------------------------------- the head


def test_new_head_on_lite0_leaves_the_backbone_alone(lite0):
    before = copy.deepcopy(lite0.model.state_dict())
    model = with_new_head(lite0, num_classes=4)
    assert isinstance(model.classifier, nn.Sequential)
    assert isinstance(model.classifier[0], nn.BatchNorm1d) and model.classifier[1].out_features == 4
    assert isinstance(lite0.model.classifier, nn.Linear)
    assert all(torch.equal(v, lite0.model.state_dict()[k]) for k, v in before.items())
    out = model.eval()(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 4)


def test_new_head_is_trained_by_set_trainable(tiny_resnet):
    model = with_new_head(tiny_resnet, num_classes=3)
    n = pretrained.set_trainable(model, train_blocks=0)
    assert n == 2 * 512 + 512 * 3 + 3  # batch-norm scale and shift, then the linear layer
    assert pretrained.classifier_head(model) is model.fc


def test_freeze_backbone_batchnorm_spares_the_head(tiny_resnet):
    model = with_new_head(tiny_resnet, num_classes=3)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert freeze_backbone_batchnorm(model) == n_bn == 20
    stored = model.bn1.running_mean.clone()
    head_stats = model.fc[0].running_mean.clone()
    model.train()(torch.randn(4, 3, 32, 32) * 3 + 1)
    assert torch.equal(model.bn1.running_mean, stored) and not model.bn1.training
    assert not torch.equal(model.fc[0].running_mean, head_stats) and model.fc[0].training


def test_freeze_backbone_batchnorm_rejects_non_modules():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        freeze_backbone_batchnorm("resnet")


def test_sgd_takes_only_trainable_parameters(tiny_resnet):
    model = with_new_head(tiny_resnet, num_classes=3)
    pretrained.set_trainable(model, train_blocks=0)
    opt = sgd(model, lr=0.1, momentum=0.5)
    (group,) = opt.param_groups
    assert len(group["params"]) == 4 and group["lr"] == 0.1 and group["momentum"] == 0.5
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        sgd(model, lr=0.1)
    with pytest.raises(ValueError, match="lr must be a positive"):
        sgd(nn.Linear(2, 2), lr=0.0)
    with pytest.raises(TypeError, match="model must be"):
        sgd([nn.Parameter(torch.zeros(1))], lr=0.1)


def test_concat_histories_and_its_errors():
    a = History([1.0, 0.9], [0.5, 0.6], [1.1, 1.0], [0.4, 0.5])
    b = History([0.5], [0.8], [0.7], [0.7])
    joined = concat_histories(a, b)
    assert joined.epochs == 3 and joined.loss == [1.0, 0.9, 0.5] and joined.best_epoch == 3
    with pytest.raises(ValueError, match="at least one"):
        concat_histories()
    with pytest.raises(TypeError, match=r"histories\[1\] must be a History"):
        concat_histories(a, {"loss": []})


def test_predict_returns_probabilities_and_labels_in_order(tiny_resnet, images):
    loader = image_loader(images, np.arange(6) % 2, backbone=tiny_resnet, image_size=32,
                          batch_size=4)  # fmt: skip
    probs, labels = predict(tiny_resnet.model, loader)
    assert probs.shape == (6, 5) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert labels.tolist() == [0, 1, 0, 1, 0, 1]
    with pytest.raises(TypeError, match="model must be"):
        predict("net", loader)
    with pytest.raises(ValueError, match="at least one batch"):
        predict(tiny_resnet.model, [])


# --------------------------------------------------------------------------- the recipe


def _split(n_per_class: int = 16) -> ImageSplit:
    """Two easy classes: dark and bright noise."""
    rng = np.random.default_rng(RNG_SEED)
    y = np.repeat([0, 1], n_per_class)
    x = (rng.integers(0, 80, (len(y), 16, 16, 3)) + 150 * y[:, None, None, None]).astype(np.uint8)
    return ImageSplit(x, y, x[::2], y[::2], "toy", ("dark", "bright"))


def test_transfer_run_end_to_end(tiny_resnet):
    before = copy.deepcopy(tiny_resnet.model.state_dict())
    run = transfer_run(
        tiny_resnet, _split(), image_size=32, batch_size=8, augmentation=Augmentation(pad=1),
        head_epochs=2, finetune_epochs=2, train_blocks=1, finetune_factor=0.1,
        lr_range=(1e-4, 10.0), range_test_iters=30, step_size=1, seed=1,
    )  # fmt: skip
    assert run.head.epochs == 2 and run.finetune.epochs == 2
    assert run.finetune_lr == pytest.approx(run.head_lr * 0.1)
    assert run.head_lr == run.range_test.suggestion
    assert isinstance(run.model.fc, nn.Sequential) and run.model.fc[1].out_features == 2
    assert 0.0 <= run.accuracy <= 1.0
    assert run.accuracy == pytest.approx(max(run.finetune.val_accuracy))  # best epoch kept
    assert all(torch.equal(v, tiny_resnet.model.state_dict()[k]) for k, v in before.items())


def test_transfer_run_needs_a_suggestion(tiny_resnet, monkeypatch):
    empty = LRFinderResult(np.ones(3), np.ones(3), np.ones(3), None, True)
    monkeypatch.setattr(finetune, "lr_range_test", lambda *a, **k: empty)
    with pytest.raises(RuntimeError, match="too early"):
        transfer_run(tiny_resnet, _split(4), image_size=16, batch_size=4, augmentation=None,
                     head_epochs=1, finetune_epochs=1, train_blocks=1)  # fmt: skip


def test_transfer_run_rejects_bad_inputs(tiny_resnet):
    split = _split(4)
    kwargs = dict(image_size=16, batch_size=4, augmentation=None, head_epochs=1,
                  finetune_epochs=1, train_blocks=1)  # fmt: skip
    with pytest.raises(TypeError, match="split must be an ImageSplit"):
        transfer_run(tiny_resnet, dataclasses.asdict(split), **kwargs)
    with pytest.raises(ValueError, match="finetune_factor"):
        transfer_run(tiny_resnet, split, finetune_factor=0.0, **kwargs)
