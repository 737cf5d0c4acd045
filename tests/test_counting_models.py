"""Tests for lessonlib.counting_models: the sum-pooled counter, its training, augmentations."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from skimage.measure import label, regionprops
from torch import nn

from lessonlib import counting_models as cm
from lessonlib.counting import count_components, make_circles

SEED = 20261123


@pytest.fixture(scope="module")
def small_circles():
    """Train and test images of 1-3 circles, 32 px."""
    x, y = make_circles(240, counts=[1, 2, 3], image_size=32, radius=3, seed=3)
    return x[:180], y[:180], x[180:], y[180:]


# --------------------------------------------------------------------------- network


def test_sum_pool_adds_every_position_and_scales():
    x = torch.arange(8.0).view(1, 2, 2, 2)
    assert torch.equal(cm.SumPool2d(scale=1.0)(x), torch.tensor([[6.0, 22.0]]))
    assert torch.allclose(cm.SumPool2d()(x), torch.tensor([[6.0, 22.0]]) / 16)
    assert "scale=16" in repr(cm.SumPool2d())


def test_sum_pool_keeps_one_objects_share_whatever_the_image_size():
    """One active position contributes the same to a sum over 8x8 or 32x32 maps."""
    for side in (8, 32):
        x = torch.zeros(1, 1, side, side)
        x[0, 0, 3, 3] = 1.0
        assert cm.SumPool2d(scale=1.0)(x).item() == 1.0


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "2"])
def test_sum_pool_rejects_bad_scale(bad):
    with pytest.raises((TypeError, ValueError), match="scale"):
        cm.SumPool2d(scale=bad)


def test_counting_cnn_layers_and_parameter_count():
    net = cm.counting_cnn(num_outputs=6, width=4, hidden=10)
    names = [name for name, _ in net.named_children()]
    assert names == [
        *["conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "pool2"],
        *["conv3", "bn3", "relu3", "global_pool", "head"],
    ]
    # convs 40 + 296 + 1,168; batch norms 8 + 16 + 32; head 170 + 66
    assert sum(p.numel() for p in net.parameters()) == 1796
    assert net(torch.zeros(3, 1, 32, 32)).shape == (3, 6)
    assert cm.counting_cnn(num_outputs=1, in_channels=3)(torch.zeros(1, 3, 16, 16)).shape == (1, 1)


def test_counting_cnn_mean_pooling_is_the_sum_over_the_number_of_positions():
    torch.manual_seed(0)
    summed = cm.counting_cnn(num_outputs=2, width=2).eval()
    averaged = cm.counting_cnn(num_outputs=2, width=2, pooling="mean").eval()
    averaged.load_state_dict(summed.state_dict())
    x = torch.rand(3, 1, 16, 16)
    trunk_sum, trunk_mean = summed[:-1](x), averaged[:-1](x)
    assert torch.allclose(trunk_sum, trunk_mean * 4 * 4 / 16)  # 4x4 positions, scale 16


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_outputs": 0}, "num_outputs"),
        ({"num_outputs": 2, "width": 1.5}, "width"),
        ({"num_outputs": 2, "pooling": "max"}, "pooling"),
    ],
)
def test_counting_cnn_rejects_bad_sizes(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        cm.counting_cnn(**kwargs)


# --------------------------------------------------------------------------- augmentations


def test_dihedral_reaches_all_eight_symmetries_and_keeps_pixels():
    image = torch.arange(9.0).view(1, 1, 3, 3)
    out = cm.dihedral(image.repeat(400, 1, 1, 1), generator=torch.Generator().manual_seed(0))
    seen = {tuple(o.flatten().tolist()) for o in out}
    assert len(seen) == 8
    assert all(sorted(s) == list(range(9)) for s in seen)


def test_dihedral_rejects_non_square_and_non_tensors():
    with pytest.raises(ValueError, match="square"):
        cm.dihedral(torch.zeros(1, 1, 2, 3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        cm.dihedral(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="x must have shape"):
        cm.dihedral(torch.zeros(2, 2))


def test_zoom_crop_matches_a_crop_and_resize_by_hand():
    """A 2x zoom on the centre of a 4x4 image equals upsampling its middle 2x2 block."""
    x = torch.arange(16.0).view(1, 1, 4, 4)
    g = torch.Generator().manual_seed(0)
    zoom, shift = cm._zoom_params(1, 2.0, torch.Generator().manual_seed(0))
    out = cm.zoom_crop(x, max_zoom=2.0, generator=g)
    # rebuild with grid_sample from the same parameters
    z, (s_col, s_row) = zoom.item(), shift[0].tolist()
    theta = torch.tensor([[[1 / z, 0.0, s_col], [0.0, 1 / z, s_row]]])
    grid = nn.functional.affine_grid(theta, [1, 1, 4, 4], align_corners=False)
    expected = nn.functional.grid_sample(x, grid, align_corners=False)
    assert torch.allclose(out, expected)
    assert 1.0 <= z <= 2.0 and max(abs(s_col), abs(s_row)) <= 1 - 1 / z


def test_zoom_crop_never_adds_circles_and_sometimes_removes_some():
    x, y = make_circles(300, counts=range(20, 26), image_size=48, radius=2, seed=0)
    out = cm.zoom_crop(
        torch.from_numpy(x[:, None] / 255.0).float(),
        max_zoom=1.3,
        generator=torch.Generator().manual_seed(1),
    )
    visible = count_components((out[:, 0] > 0.5).numpy().astype(np.uint8))
    assert np.all(visible <= y)
    assert np.any(visible < y)


@pytest.mark.parametrize("bad", [0.9, "1.1", True])
def test_zoom_crop_rejects_bad_zoom(bad):
    with pytest.raises(ValueError, match="max_zoom"):
        cm.zoom_crop(torch.zeros(1, 1, 4, 4), max_zoom=bad)


def test_lost_circles_agrees_with_geometry():
    """Centres kept by the zoom are exactly those inside the kept square (checked by hand)."""
    x, _ = make_circles(48, counts=range(20, 26), image_size=48, radius=2, seed=4)
    lost = cm.lost_circles(x, max_zoom=1.5, seed=9)
    zoom, shift = cm._zoom_params(len(x), 1.5, torch.Generator().manual_seed(9))
    for i in range(len(x)):
        z, (s_col, s_row) = zoom[i].item(), shift[i].tolist()
        lo_row, hi_row = 24 * (s_row - 1 / z + 1) - 0.5, 24 * (s_row + 1 / z + 1) - 0.5
        lo_col, hi_col = 24 * (s_col - 1 / z + 1) - 0.5, 24 * (s_col + 1 / z + 1) - 0.5
        centres = [p.centroid for p in regionprops(label(x[i] > 0))]
        out = sum(not (lo_row < r < hi_row and lo_col < c < hi_col) for r, c in centres)
        assert lost[i] == out


def test_lost_circles_is_consistent_with_the_zoomed_images():
    x, y = make_circles(120, counts=range(20, 26), image_size=48, radius=2, seed=5)
    lost = cm.lost_circles(x, max_zoom=1.2, seed=3)
    out = cm.zoom_crop(
        torch.from_numpy(x[:, None] / 255.0).float(),
        max_zoom=1.2,
        generator=torch.Generator().manual_seed(3),
    )
    visible = count_components((out[:, 0] > 0.5).numpy().astype(np.uint8))
    assert np.all(visible >= y - lost)  # every kept centre is still visible
    assert np.all(cm.lost_circles(x, max_zoom=1.0) == 0)


def test_lost_circles_rejects_non_square_images():
    with pytest.raises(ValueError, match="square"):
        cm.lost_circles(np.zeros((2, 4, 6), np.uint8))


# --------------------------------------------------------------------------- training


def test_classifier_counts_small_numbers(small_circles):
    x_train, y_train, x_test, y_test = small_circles
    counter = cm.train_counter(x_train, y_train, task="classify", epochs=8, seed=SEED, desc="t")
    assert counter.classes == (1, 2, 3)
    pred = counter.predict(x_test)
    assert pred.dtype == np.int64 and set(pred.tolist()) <= {1, 2, 3}
    assert cm.count_report(pred, y_test).accuracy >= 0.8
    assert len(counter.losses) == 8 and counter.losses[-1] < counter.losses[0]
    assert counter.seconds > 0 and not counter.model.training


def test_regressor_predicts_counts_in_circles(small_circles):
    x_train, y_train, x_test, y_test = small_circles
    counter = cm.train_counter(x_train, y_train, task="regress", epochs=8, seed=SEED, desc="t")
    assert counter.classes == ()
    assert counter.mean == pytest.approx(y_train.mean())
    assert counter.std == pytest.approx(y_train.std())
    pred = counter.predict(x_test)
    assert pred.dtype == np.float64
    assert cm.count_report(pred, y_test).mae <= 0.5


def test_training_is_repeatable_and_uses_the_augmentation(small_circles):
    x_train, y_train, *_ = small_circles
    calls = []

    def spy(x, *, generator):
        calls.append(x.shape[0])
        return cm.dihedral(x, generator=generator)

    a = cm.train_counter(x_train[:64], y_train[:64], task="regress", epochs=1, augment=spy, seed=1)
    b = cm.train_counter(x_train[:64], y_train[:64], task="regress", epochs=1, augment=spy, seed=1)
    assert calls == [32, 32, 32, 32]
    assert a.losses == b.losses
    assert np.array_equal(a.predict(x_train[:8]), b.predict(x_train[:8]))


def test_train_counter_shows_one_progress_line(small_circles, capsys):
    x_train, y_train, *_ = small_circles
    cm.train_counter(x_train[:32], y_train[:32], task="classify", epochs=2, desc="demo bar")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demo bar: 2/2 done in")


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"task": "count"}, ValueError, "task"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"augment": "flip"}, TypeError, "augment"),
    ],
)
def test_train_counter_rejects_bad_settings(small_circles, kwargs, error, name):
    x_train, y_train, *_ = small_circles
    settings = {"task": "classify", "epochs": 1} | kwargs
    with pytest.raises(error, match=name):
        cm.train_counter(x_train[:8], y_train[:8], **settings)


def test_train_counter_rejects_bad_data():
    x = np.zeros((4, 16, 16), np.uint8)
    with pytest.raises(ValueError, match="counts must have one entry per image"):
        cm.train_counter(x, np.array([1, 2]), task="regress", epochs=1)
    with pytest.raises(ValueError, match="grey"):
        cm.train_counter(
            np.zeros((4, 16, 16, 3), np.uint8), np.ones(4, int), task="regress", epochs=1
        )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cm.train_counter(np.full((4, 16, 16), 2.0), np.ones(4, int), task="regress", epochs=1)
    with pytest.raises(TypeError, match="uint8"):
        cm.train_counter(x.astype(np.int32), np.ones(4, int), task="regress", epochs=1)


def test_feature_maps_and_pooled_features(small_circles):
    x_train, y_train, *_ = small_circles
    counter = cm.train_counter(x_train[:32], y_train[:32], task="classify", epochs=1, width=4)
    maps = counter.feature_maps(x_train[:2], layer="relu3")
    assert maps.shape == (2, 16, 8, 8) and maps.min() >= 0
    pooled = counter.pooled(x_train[:2])
    np.testing.assert_allclose(pooled, maps.sum(axis=(2, 3)) / 16, rtol=1e-5)
    with pytest.raises(ValueError, match="layer must be one of"):
        counter.feature_maps(x_train[:2], layer="conv9")


# --------------------------------------------------------------------------- scores


def test_count_report_by_hand():
    report = cm.count_report(
        np.array([45.4, 46.6, 49.0, 50.2, 44.0]), np.array([45, 46, 47, 50, 48])
    )
    assert report.accuracy == pytest.approx(0.4)
    assert report.mae == pytest.approx((0.4 + 0.6 + 2 + 0.2 + 4) / 5)
    assert report.off_by_one == pytest.approx(1 / 3)  # the three errors are 1, 2 and 4 off
    assert report.n == 5


def test_count_report_without_errors_has_no_off_by_one_share():
    report = cm.count_report([1, 2, 3], [1, 2, 3])
    assert report.accuracy == 1.0 and math.isnan(report.off_by_one)


def test_count_report_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="predicted must have one entry"):
        cm.count_report([1.0, 2.0], [1])


def test_linear_probe_matches_plain_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    features = rng.normal(size=(120, 6))
    labels = (features[:, 0] + 0.3 * rng.normal(size=120) > 0).astype(int) + 3
    probe = cm.linear_probe(features, labels, C=0.5)
    scaled = StandardScaler().fit_transform(features)
    plain = LogisticRegression(C=0.5, max_iter=1000).fit(scaled, labels)
    assert np.array_equal(probe.predict(features), plain.predict(scaled))
    assert set(probe.classes_) == {3, 4}


def test_linear_probe_rejects_bad_input():
    with pytest.raises(ValueError, match="labels must have one entry"):
        cm.linear_probe(np.zeros((3, 2)), np.zeros(2, int))
    with pytest.raises(ValueError, match="C must be"):
        cm.linear_probe(np.zeros((3, 2)), np.zeros(3, int), C=0)


# --------------------------------------------------------------------------- figures


def test_plot_count_confusions_counts_every_pair():
    fig = cm.plot_count_confusions(
        {"a": ([45, 46, 47, 47], [45.0, 47.2, 47.0, 44.0]), "b": ([1, 2], [1, 2])}, title="t"
    )
    first = fig.axes[0]
    matrix = first.images[0].get_array()
    assert matrix.shape == (4, 4)  # counts 44..47
    assert int(matrix.sum()) == 4 and first.get_title() == "a: 50% exact"
    assert [t.get_text() for t in first.get_xticklabels()] == ["44", "45", "46", "47"]
    assert fig._suptitle.get_text() == "t"
    plt.close(fig)


def test_plot_count_readout_one_panel_per_entry():
    fig = cm.plot_count_readout({"x": ([1, 2], [1.0, 2.0]), "y": ([3, 4], [3.0, 4.0])}, ncols=1)
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "y"
    plt.close(fig)


@pytest.mark.parametrize(
    "panels",
    [{}, [("a", ([1], [1]))], {"a": ([1, 2], [1])}, {"a": ([1],)}],
)
def test_plots_reject_bad_panels(panels):
    with pytest.raises((TypeError, ValueError), match="panels"):
        cm.plot_count_confusions(panels)
