"""Tests for lessonlib.plotting: grids, learning curves, activations and filters."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from lessonlib.plotting import (
    FIG_DPI,
    image_grid,
    plot_feature_maps,
    plot_filters,
    plot_history,
    smooth_curve,
    use_course_style,
)
from lessonlib.training import History


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(offset: float = 0.0) -> History:
    return History(
        loss=[1.0 + offset, 0.6, 0.4, 0.3],
        accuracy=[0.5, 0.7, 0.8, 0.85],
        val_loss=[1.1, 0.8, 0.7, 0.75],
        val_accuracy=[0.45, 0.65, 0.72, 0.7],
    )


def test_use_course_style_sets_rcparams():
    with matplotlib.rc_context():
        use_course_style()
        assert plt.rcParams["figure.dpi"] == FIG_DPI == 100
        assert plt.rcParams["savefig.dpi"] == 100
        assert plt.rcParams["image.cmap"] == "viridis"


# --- image_grid ---------------------------------------------------------------------------


def test_image_grid_layout_titles_and_colormap():
    images = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4)
    titles = [f"digit {i}" for i in range(10)]
    fig = image_grid(images, titles=titles, ncols=4, suptitle="Ten digits")
    assert len(fig.axes) == 10  # 3 rows of 4, the two spare axes removed
    assert [ax.get_title() for ax in fig.axes] == titles
    assert fig._suptitle.get_text() == "Ten digits"
    assert fig.get_size_inches()[0] == pytest.approx(1.4 * 4)
    shown = fig.axes[7].images[0]
    np.testing.assert_array_equal(shown.get_array(), images[7])
    assert shown.get_cmap().name == "gray"
    assert not fig.axes[0].axison


def test_image_grid_colour_images_and_few_columns():
    images = np.zeros((3, 5, 5, 3), np.float32)
    fig = image_grid(images, ncols=8)  # ncols is capped at the number of images
    assert len(fig.axes) == 3
    assert fig.get_size_inches()[0] == pytest.approx(1.4 * 3)
    assert fig.axes[0].images[0].get_array().shape == (5, 5, 3)
    assert fig._suptitle is None and fig.axes[0].get_title() == ""


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": np.zeros((4, 4))}, ValueError, "images"),
        ({"images": np.zeros((0, 4, 4))}, ValueError, "images must not be empty"),
        ({"images": np.zeros((2, 4, 4)), "titles": ["a"]}, ValueError, "titles must have one"),
        ({"images": np.zeros((2, 4, 4)), "ncols": 0}, ValueError, "ncols"),
        ({"images": "abc"}, TypeError, "images"),
    ],
)
def test_image_grid_rejects(kwargs, error, match):
    with pytest.raises(error, match=match):
        image_grid(**kwargs)


# --- smooth_curve -------------------------------------------------------------------------


def test_smooth_curve_known_answers():
    np.testing.assert_allclose(smooth_curve([1.0, 0.0, 0.0], factor=0.5), [1.0, 0.5, 0.25])
    np.testing.assert_allclose(smooth_curve([2, 4, 8], factor=0.0), [2.0, 4.0, 8.0])
    np.testing.assert_allclose(smooth_curve([3.0] * 5), [3.0] * 5)
    np.testing.assert_allclose(smooth_curve([0.0, 1.0]), [0.0, 0.2])  # default factor 0.8
    out = smooth_curve(np.array([5], np.int64))
    assert out.dtype == np.float64 and out.tolist() == [5.0]


@pytest.mark.parametrize(
    ("values", "factor", "error", "match"),
    [
        ([1.0, 2.0], 1.0, ValueError, "factor"),
        ([1.0, 2.0], -0.1, ValueError, "factor"),
        ([1.0, 2.0], "0.5", TypeError, "factor"),
        ([], 0.5, ValueError, "values must not be empty"),
        ([[1.0, 2.0]], 0.5, ValueError, "values"),
        (["a", "b"], 0.5, TypeError, "values"),
    ],
)
def test_smooth_curve_rejects(values, factor, error, match):
    with pytest.raises(error, match=match):
        smooth_curve(values, factor=factor)


# --- plot_history -------------------------------------------------------------------------


def test_plot_history_single_run_labels_and_styles():
    h = _history()
    fig = plot_history(h, title="Stripes")
    ax_loss, ax_acc = fig.axes
    assert fig._suptitle.get_text() == "Stripes"
    assert (ax_loss.get_title(), ax_acc.get_title()) == ("loss per epoch", "accuracy per epoch")
    assert (ax_loss.get_xlabel(), ax_loss.get_ylabel()) == ("epoch", "loss")
    assert (ax_acc.get_xlabel(), ax_acc.get_ylabel()) == ("epoch", "accuracy")
    train, val = ax_loss.get_lines()
    assert (train.get_label(), val.get_label()) == ("model train", "model validation")
    assert (train.get_linestyle(), val.get_linestyle()) == ("--", "-")
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(val.get_ydata(), h.val_loss)
    np.testing.assert_allclose(ax_acc.get_lines()[1].get_ydata(), h.val_accuracy)
    legend = [t.get_text() for t in ax_acc.get_legend().get_texts()]
    assert legend == ["model train", "model validation"]


def test_plot_history_two_runs_smoothed():
    runs = {"torch": _history(), "keras": _history(offset=0.5)}
    fig = plot_history(runs, smooth=0.5)
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_title() == "loss per epoch (smoothed)"
    assert ax_acc.get_title() == "accuracy per epoch (smoothed)"
    assert fig._suptitle is None
    labels = [line.get_label() for line in ax_loss.get_lines()]
    assert labels == ["torch train", "torch validation", "keras train", "keras validation"]
    np.testing.assert_allclose(
        ax_loss.get_lines()[2].get_ydata(), smooth_curve(runs["keras"].loss, factor=0.5)
    )
    np.testing.assert_allclose(ax_loss.get_lines()[2].get_ydata()[:2], [1.5, 1.05])
    colours = {
        line.get_color() if isinstance(line.get_color(), str) else tuple(line.get_color())
        for line in ax_loss.get_lines()
    }
    assert len(colours) == 2  # one colour per run


@pytest.mark.parametrize(
    ("histories", "match"),
    [
        ({}, "histories must be a History or a non-empty mapping"),
        ([_history()], "histories must be a History or a non-empty mapping"),
        ({"a": {"loss": [1.0]}}, r"histories\['a'\] must be a History, got dict"),
    ],
)
def test_plot_history_rejects(histories, match):
    with pytest.raises(TypeError, match=match):
        plot_history(histories)


def test_plot_history_names_smooth_in_errors():
    with pytest.raises(ValueError, match="smooth"):
        plot_history(_history(), smooth=1.5)


# --- feature maps and filters -------------------------------------------------------------


def test_plot_feature_maps_counts_titles_and_colormap():
    maps = np.random.default_rng(0).random((32, 6, 6)).astype(np.float32)
    fig = plot_feature_maps(maps, title="conv1 activations")
    assert len(fig.axes) == 16  # n defaults to 16
    assert [ax.get_title() for ax in fig.axes[:3]] == ["ch 0", "ch 1", "ch 2"]
    assert fig._suptitle.get_text() == "conv1 activations"
    np.testing.assert_array_equal(fig.axes[5].images[0].get_array(), maps[5])
    assert fig.axes[0].images[0].get_cmap().name == "viridis"


def test_plot_feature_maps_caps_n_at_the_channel_count():
    fig = plot_feature_maps(np.ones((3, 4, 4)), n=10, ncols=2)
    assert len(fig.axes) == 3
    assert fig.get_size_inches()[0] == pytest.approx(1.2 * 2)


@pytest.mark.parametrize(
    ("maps", "kwargs", "error", "match"),
    [
        (np.zeros((1, 3, 4, 4)), {}, ValueError, "maps"),
        (np.zeros((3, 4, 4), bool), {}, TypeError, "maps"),
        (np.zeros((3, 4, 4)), {"n": 0}, ValueError, "n must be a positive integer"),
        (np.zeros((3, 4, 4)), {"ncols": -1}, ValueError, "ncols"),
    ],
)
def test_plot_feature_maps_rejects(maps, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_feature_maps(maps, **kwargs)


def test_plot_filters_averages_input_channels():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(10, 3, 3, 3)).astype(np.float32)
    fig = plot_filters(weights, title="first-layer filters")
    assert len(fig.axes) == 10
    assert fig.axes[9].get_title() == "filter 9"
    assert fig._suptitle.get_text() == "first-layer filters"
    np.testing.assert_allclose(
        fig.axes[4].images[0].get_array(), weights[4].mean(axis=0), rtol=1e-6
    )
    assert fig.axes[0].images[0].get_cmap().name == "cividis"
    assert fig.get_size_inches()[0] == pytest.approx(1.2 * 8)


@pytest.mark.parametrize(
    ("weights", "error"),
    [(np.zeros((8, 3, 3)), ValueError), (np.zeros((8, 1, 3, 3), np.int64), TypeError)],
)
def test_plot_filters_rejects(weights, error):
    with pytest.raises(error, match="weights"):
        plot_filters(weights)
