"""Tests for lessonlib.cats_dogs: the seed-004 convnet and the balanced Oxford-IIIT Pet split.

No test touches the network: the downloader is monkeypatched, and a fake pet
dataset (PIL images of two solid colours) stands in for torchvision's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lessonlib import cats_dogs
from lessonlib.augment import SmallSplit, make_loader, seed004_torch
from lessonlib.cats_dogs import (
    CLASSES,
    PETS_SOURCE,
    SEED_PARAMS,
    STAND_IN_SOURCE,
    CatsDogsConvNet,
    balanced_indices,
    convnet,
    feature_side,
    keras_convnet,
    load_cats_vs_dogs,
    split_from_datasets,
    stand_in,
)
from lessonlib.models_torch import count_params
from lessonlib.profiles import profile
from lessonlib.training import evaluate, fit

# (9 * in + 1) * out for each 3x3 convolution, then the dense layers
CONVS = (9 * 3 + 1) * 32 + (9 * 32 + 1) * 64 + (9 * 64 + 1) * 128 + (9 * 128 + 1) * 128
DENSE = (7 * 7 * 128 + 1) * 512 + (512 + 1) * 1


class FakePets:
    """A stand-in for OxfordIIITPet: PIL images, label 0 (cat, dark) or 1 (dog, bright)."""

    def __init__(self, labels, *, with_bin_labels=True, size=(40, 30), as_array=False):
        self.labels = list(labels)
        self.size = size
        self.as_array = as_array
        self.reads = 0
        if with_bin_labels:
            self._bin_labels = list(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        self.reads += 1
        value = 40 if self.labels[i] == 0 else 220
        img = np.full((self.size[1], self.size[0], 3), value, np.uint8)
        img[0, 0] = i % 256  # a per-image mark
        return (img if self.as_array else Image.fromarray(img)), self.labels[i]


# --- the model --------------------------------------------------------------------------


def test_parameter_count_is_the_seeds():
    assert CONVS + DENSE == SEED_PARAMS == 3_453_121
    assert count_params(convnet()) == SEED_PARAMS
    assert count_params(convnet(dropout=0.5)) == SEED_PARAMS
    assert count_params(convnet().features) == CONVS


def test_feature_side_and_other_sizes():
    assert feature_side(150) == 7
    assert feature_side(64) == 2
    assert count_params(convnet(image_size=64)) == CONVS + (2 * 2 * 128 + 1) * 512 + 513
    with pytest.raises(ValueError, match="image_size"):
        feature_side(40)
    with pytest.raises(ValueError, match="image_size"):
        convnet(image_size=0)


def test_layers_follow_the_seed():
    model = convnet(dropout=0.5)
    assert isinstance(model, CatsDogsConvNet)
    kinds = [type(m).__name__ for m in model.features]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d"] * 4
    assert [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)] == [
        32, 64, 128, 128,
    ]  # fmt: skip
    head = [type(m).__name__ for m in model.head]
    assert head == ["Flatten", "Dropout", "Linear", "ReLU", "Linear"]
    assert model.head[1].p == 0.5
    assert "Dropout" not in [type(m).__name__ for m in convnet().head]


def test_two_logits_reproduce_the_sigmoid_and_binary_cross_entropy():
    torch.manual_seed(0)
    model = convnet(image_size=50)
    x = torch.rand(4, 3, 50, 50)
    y = torch.tensor([0, 1, 1, 0])
    logits = model(x)
    z = model.logit(x)
    assert tuple(logits.shape) == (4, 2) and tuple(z.shape) == (4,)
    assert torch.equal(logits[:, 0], torch.zeros(4))
    assert torch.allclose(torch.softmax(logits, 1)[:, 1], torch.sigmoid(z), atol=1e-6)
    ce = nn.functional.cross_entropy(logits, y)
    bce = nn.functional.binary_cross_entropy_with_logits(z, y.float())
    assert torch.allclose(ce, bce, atol=1e-6)


def test_bad_dropout():
    with pytest.raises(ValueError, match="dropout"):
        convnet(dropout=1.0)
    with pytest.raises(TypeError, match="dropout"):
        convnet(dropout="0.5")


def test_keras_twin_counts_the_same():
    model = keras_convnet()
    assert model.count_params() == SEED_PARAMS
    assert keras_convnet(dropout=0.5).count_params() == SEED_PARAMS
    assert model.output_shape == (None, 1)
    names = [layer.name for layer in keras_convnet(dropout=0.5).layers]
    assert names[-3:] == ["dropout", "dense", "dog_probability"]


def test_one_training_step_with_augmentation_runs():
    split = stand_in(sizes=(4, 2, 2), image_size=50, seed=0)
    torch.manual_seed(0)
    model = convnet(dropout=0.5, image_size=50)
    train = make_loader(
        split.x_train,
        split.y_train,
        batch_size=2,
        shuffle=True,
        transform=seed004_torch(size=50),
    )
    val = make_loader(split.x_val, split.y_val, batch_size=2)
    history = fit(
        model, train, val, optimizer=torch.optim.RMSprop(model.parameters(), lr=1e-4), epochs=1
    )
    assert history.epochs == 1 and 0.0 <= history.val_accuracy[0] <= 1.0
    assert 0.0 <= evaluate(model, val)[1] <= 1.0


# --- balanced indices -------------------------------------------------------------------


def test_balanced_indices_are_balanced_disjoint_and_repeatable():
    labels = np.array([0] * 30 + [1] * 70)
    tr, va, te = balanced_indices(labels, sizes=(20, 10, 10), seed=3)
    for part, n in ((tr, 20), (va, 10), (te, 10)):
        assert len(part) == n and np.bincount(labels[part]).tolist() == [n // 2, n // 2]
        assert (np.diff(part) > 0).all()
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    again = balanced_indices(labels, sizes=(20, 10, 10), seed=3)
    assert all((a == b).all() for a, b in zip(again, (tr, va, te), strict=True))
    other = balanced_indices(labels, sizes=(20, 10, 10), seed=4)
    assert not (other[0] == tr).all()


@pytest.mark.parametrize(
    ("sizes", "match"),
    [((20, 10, 10), "class 'cat'"), ((3, 2, 2), "even"), ((2, 2), "n_train"), ((0, 2, 2), "sizes")],
)
def test_balanced_indices_errors(sizes, match):
    labels = np.array([0] * 10 + [1] * 90)
    with pytest.raises(ValueError, match=match):
        balanced_indices(labels, sizes=sizes, seed=0)


# --- the split from (fake) datasets -----------------------------------------------------


def test_split_from_datasets_pools_balances_and_resizes():
    a = FakePets([0] * 6 + [1] * 10)
    b = FakePets([0] * 4 + [1] * 12, with_bin_labels=False)
    split = split_from_datasets([a, b], sizes=(8, 4, 4), image_size=20, seed=0)
    assert isinstance(split, SmallSplit)
    assert split.x_train.shape == (8, 20, 20, 3) and split.x_train.dtype == np.uint8
    assert split.x_val.shape == (4, 20, 20, 3) and split.x_test.shape == (4, 20, 20, 3)
    for x, y in ((split.x_train, split.y_train), (split.x_val, split.y_val)):
        assert np.bincount(y).tolist() == [len(y) // 2] * 2
        # dark images are cats, bright ones dogs: labels travel with their images
        assert ((x[:, 10, 10, 0] > 128) == (y == 1)).all()
    assert split.source == PETS_SOURCE and split.classes == CLASSES
    # labels of `a` come from _bin_labels, so only chosen images were decoded from it
    assert a.reads <= 16


def test_split_from_datasets_accepts_numpy_images():
    pets = FakePets([0, 1] * 4, as_array=True, size=(12, 12))
    split = split_from_datasets([pets], sizes=(4, 2, 2), image_size=6, seed=1)
    assert split.x_train.shape == (4, 6, 6, 3) and split.x_train.dtype == np.uint8


def test_split_from_datasets_rejects_other_labels_and_bad_input():
    with pytest.raises(ValueError, match="labels 0"):
        split_from_datasets([FakePets([0, 1, 2, 1])], sizes=(2, 2, 2), image_size=8, seed=0)
    with pytest.raises(TypeError, match="datasets"):
        split_from_datasets([], sizes=(2, 2, 2), image_size=8, seed=0)


# --- the stand-in and the profile switch ------------------------------------------------


def test_stand_in_shapes_and_balance():
    s = stand_in(sizes=(6, 4, 2), image_size=48, seed=1)
    assert s.x_train.shape == (6, 48, 48, 3) and s.x_test.shape == (2, 48, 48, 3)
    assert [np.bincount(y).tolist() for y in (s.y_train, s.y_val, s.y_test)] == [
        [3, 3], [2, 2], [1, 1],
    ]  # fmt: skip
    assert s.source == STAND_IN_SOURCE and s.y_train.dtype == np.int64
    block = s.x_train[:, :10, :10].reshape(6, -1, 3)
    assert (block == block[:, :1]).all()  # one colour per 10 x 10 block
    assert len(np.unique(s.x_train.reshape(-1, 3), axis=0)) > 10


def test_quick_profile_uses_the_stand_in_without_downloading(monkeypatch):
    def boom(**_kwargs):
        raise AssertionError("no download in the quick profile")

    monkeypatch.setattr(cats_dogs, "download_pets", boom)
    s = load_cats_vs_dogs(profile("quick"), sizes=(4, 2, 2), image_size=50, seed=0)
    assert s.source == STAND_IN_SOURCE
    monkeypatch.setenv("LESSONLIB_OFFLINE", "1")
    assert load_cats_vs_dogs("full", sizes=(4, 2, 2), image_size=50).source == STAND_IN_SOURCE


def test_full_profile_downloads_splits_and_caches(monkeypatch):
    monkeypatch.setenv("LESSONLIB_OFFLINE", "0")
    calls = []

    def fake_download(**_kwargs):
        calls.append(1)
        return [FakePets([0] * 8 + [1] * 20), FakePets([0] * 8 + [1] * 20)]

    monkeypatch.setattr(cats_dogs, "download_pets", fake_download)
    full = profile("full")
    first = load_cats_vs_dogs(full, sizes=(8, 4, 4), image_size=24, seed=5)
    assert first.source == PETS_SOURCE and first.x_train.shape == (8, 24, 24, 3)
    second = load_cats_vs_dogs(full, sizes=(8, 4, 4), image_size=24, seed=5)
    assert len(calls) == 1  # the second call reads the cache
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert (getattr(first, name) == getattr(second, name)).all()
    assert second.classes == CLASSES


def test_full_profile_falls_back_when_the_download_fails(monkeypatch, capsys):
    monkeypatch.setenv("LESSONLIB_OFFLINE", "0")

    def failing(**_kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(cats_dogs, "download_pets", failing)
    s = load_cats_vs_dogs("full", sizes=(4, 2, 2), image_size=50)
    assert s.source == STAND_IN_SOURCE
    assert "download failed" in capsys.readouterr().out


def test_download_pets_asks_torchvision_for_both_splits(monkeypatch, tmp_path):
    from torchvision import datasets

    seen = []

    class Recorder:
        def __init__(self, root, *, split, target_types, download):
            seen.append((str(root), split, target_types, download))

    monkeypatch.setattr(datasets, "OxfordIIITPet", Recorder)
    out = cats_dogs.download_pets(root=tmp_path)
    assert len(out) == 2
    assert [s[1:] for s in seen] == [
        ("trainval", "binary-category", True), ("test", "binary-category", True),
    ]  # fmt: skip
    cats_dogs.download_pets()
    assert seen[-1][0].endswith("oxford_pets")


def test_load_cats_vs_dogs_validates_arguments():
    with pytest.raises(TypeError, match="cfg"):
        load_cats_vs_dogs(3)
    with pytest.raises(ValueError, match="even"):
        load_cats_vs_dogs("quick", sizes=(3, 2, 2))
    with pytest.raises(ValueError, match="image_size"):
        load_cats_vs_dogs("quick", image_size=0)
