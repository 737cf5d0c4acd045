"""Tests for lessonlib.profiles: profile selection, frozen settings and seeding."""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import types

import numpy as np
import pytest
import torch

from lessonlib import profiles
from lessonlib.profiles import Profile, is_offline, is_static, profile, seed_everything


def test_quick_profile_known_values():
    cfg = profile("quick")
    assert isinstance(cfg, Profile)
    assert (cfg.name, cfg.n_train, cfg.n_test, cfg.epochs) == ("quick", 4000, 1000, 5)
    assert (cfg.image_size, cfg.batch_size, cfg.seed, cfg.mc_samples) == (64, 64, 20261123, 100)
    assert cfg.device == "cpu"


def test_full_profile_known_values_without_gpu(monkeypatch):
    monkeypatch.setattr(profiles, "gpu_available", lambda: False)
    cfg = profile("full")
    assert (cfg.name, cfg.n_train, cfg.n_test, cfg.image_size) == ("full", 60000, 10000, 224)
    assert cfg.device == "cpu"


def test_full_profile_uses_cuda_when_a_gpu_is_visible(monkeypatch):
    monkeypatch.setattr(profiles, "gpu_available", lambda: True)
    assert profile("full").device == "cuda"
    assert profile("quick").device == "cpu"  # quick stays on the CPU


@pytest.mark.parametrize("name", ["quick", "full"])
def test_env_var_selects_the_profile(monkeypatch, name):
    monkeypatch.setattr(profiles, "gpu_available", lambda: False)
    monkeypatch.setenv("LESSONLIB_PROFILE", f"  {name} ")  # surrounding blanks are ignored
    assert profile().name == name


def test_explicit_name_beats_env_var(monkeypatch):
    monkeypatch.setenv("LESSONLIB_PROFILE", "full")
    assert profile("quick").name == "quick"


@pytest.mark.parametrize(("gpu", "expected"), [(False, "quick"), (True, "full")])
@pytest.mark.parametrize("unset", ["delete", "blank"])
def test_default_follows_gpu_when_env_var_unset(monkeypatch, gpu, expected, unset):
    if unset == "delete":
        monkeypatch.delenv("LESSONLIB_PROFILE")
    else:
        monkeypatch.setenv("LESSONLIB_PROFILE", "   ")
    monkeypatch.setattr(profiles, "gpu_available", lambda: gpu)
    assert profile().name == expected


def test_gpu_available_matches_torch():
    assert profiles.gpu_available() is torch.cuda.is_available()


def test_unknown_name_lists_valid_ones(monkeypatch):
    with pytest.raises(ValueError, match="profile name must be one of 'quick', 'full'; got 'tiny'"):
        profile("tiny")
    monkeypatch.setenv("LESSONLIB_PROFILE", "fast")
    with pytest.raises(ValueError, match="'quick', 'full'; got 'fast'"):
        profile()


def test_non_string_name_is_a_type_error():
    with pytest.raises(TypeError, match="profile name must be a str, got int"):
        profile(3)


def test_profile_is_frozen():
    cfg = profile("quick")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 99
    assert profile("quick").epochs == 5


@pytest.mark.parametrize("number", sorted(profiles.LESSON_SETTINGS))
def test_lesson_settings_are_read_only_and_share_keys(monkeypatch, number):
    monkeypatch.setattr(profiles, "gpu_available", lambda: False)
    quick, full = profile("quick").lesson(number), profile("full").lesson(number)
    assert set(quick) == set(full)  # a lesson never branches on the profile name
    with pytest.raises(TypeError):
        quick["new_key"] = 1
    assert "new_key" not in profile("quick").lesson(number)


@pytest.mark.parametrize("number", ["99", "2", 2, None])
def test_unknown_lesson_number_is_named(number):
    with pytest.raises(ValueError, match="number must be one of"):
        profile("quick").lesson(number)


def test_overrides_replace_fields_and_keep_the_rest():
    cfg = profile("quick", epochs=1, batch_size=8)
    assert (cfg.epochs, cfg.batch_size, cfg.n_train) == (1, 8, 4000)
    assert profile("quick").epochs == 5  # the table itself is untouched


def test_unknown_override_is_named():
    with pytest.raises(ValueError, match=r"overrides has unknown field\(s\) \['epoch', 'lr'\]"):
        profile("quick", epoch=1, lr=0.1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), (" YES ", True), ("on", True), ("0", False), ("", False)],
)
def test_is_offline_and_is_static_parse_flags(monkeypatch, raw, expected):
    monkeypatch.setenv("LESSONLIB_OFFLINE", raw)
    monkeypatch.setenv("LESSONLIB_STATIC", raw)
    assert is_offline() is expected
    assert is_static() is expected
    assert profile("quick").offline is expected


def test_flags_are_false_when_unset(monkeypatch):
    monkeypatch.delenv("LESSONLIB_OFFLINE")
    monkeypatch.delenv("LESSONLIB_STATIC")
    assert not is_offline()
    assert not is_static()


def _draws():
    return (
        random.random(),
        np.random.rand(3).tolist(),  # noqa: NPY002 - the legacy global state is what is seeded
        torch.rand(3).tolist(),
        torch.nn.Linear(3, 2).weight.detach().clone(),
    )


def test_seed_everything_repeats_python_numpy_torch(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    assert seed_everything(11) == 11
    first = _draws()
    seed_everything(11)
    second = _draws()
    seed_everything(12)
    third = _draws()
    assert first[:3] == second[:3]
    torch.testing.assert_close(first[3], second[3], rtol=0, atol=0)
    assert first[0] != third[0] and first[1] != third[1] and first[2] != third[2]
    assert not torch.equal(first[3], third[3])
    assert os.environ["PYTHONHASHSEED"] == "12"


def test_seed_everything_accepts_seeds_beyond_32_bits(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    seed_everything(2**40 + 3)
    a = np.random.rand()  # noqa: NPY002
    seed_everything(3)  # numpy sees seed % 2**32
    assert np.random.rand() == a  # noqa: NPY002


@pytest.mark.parametrize(("seed", "error"), [(-1, ValueError), (1.5, TypeError), ("1", TypeError)])
def test_seed_everything_rejects_bad_seeds(seed, error):
    with pytest.raises(error, match="seed"):
        seed_everything(seed)


def test_seed_everything_rejects_huge_seed_by_name(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    with pytest.raises(ValueError, match="seed"):
        seed_everything(2**64)


def test_seed_everything_seeds_keras_when_imported(monkeypatch):
    from lessonlib.models_keras import import_keras

    keras = import_keras()
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)

    def draw():
        layer = keras.layers.Dense(2)
        layer.build((None, 3))
        return (
            keras.ops.convert_to_numpy(keras.random.uniform((4,))),
            keras.ops.convert_to_numpy(layer.kernel),
        )

    seed_everything(5)
    u1, k1 = draw()
    seed_everything(5)
    u2, k2 = draw()
    seed_everything(6)
    u3, _ = draw()
    np.testing.assert_array_equal(u1, u2)
    np.testing.assert_array_equal(k1, k2)
    assert not np.array_equal(u1, u3)


def test_seed_everything_seeds_tensorflow_without_keras(monkeypatch):
    calls = []
    fake_tf = types.SimpleNamespace(random=types.SimpleNamespace(set_seed=calls.append))
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", fake_tf)
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    seed_everything(9)
    assert calls == [9]


def test_seed_everything_prefers_keras_and_reduces_the_seed(monkeypatch):
    calls = []
    fake_keras = types.SimpleNamespace(utils=types.SimpleNamespace(set_random_seed=calls.append))
    monkeypatch.setitem(sys.modules, "keras", fake_keras)
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    seed_everything(2**32 + 4)
    assert calls == [4]
