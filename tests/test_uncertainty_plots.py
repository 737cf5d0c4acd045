"""Tests for lessonlib.uncertainty_plots: what each figure draws, and bad input."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from lessonlib.ood import RotationSweep
from lessonlib.uncertainty import reliability_diagram_data
from lessonlib.uncertainty_plots import (
    plot_entropy_histograms,
    plot_mc_boxes,
    plot_reliability,
    plot_rotation_sweep,
    plot_spread_comparison,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _samples(s: int = 40, n: int = 3, c: int = 4, seed: int = 0) -> np.ndarray:
    return (
        np.random.default_rng(seed).dirichlet(np.arange(1, c + 1), size=(s, n)).astype(np.float32)
    )


def test_mc_boxes_one_row_per_image_with_a_box_per_class_and_the_mean():
    probs = _samples(n=2)
    fig = plot_mc_boxes(
        np.zeros((2, 6, 6, 3), np.uint8), probs, class_names=list("abcd"),
        titles=["first", "second"], suptitle="demo",
    )  # fmt: skip
    assert len(fig.axes) == 4
    ax_img, ax_box = fig.axes[0], fig.axes[1]
    assert ax_img.get_title() == "first" and fig.axes[2].get_title() == "second"
    assert [t.get_text() for t in ax_box.get_xticklabels()] == list("abcd")
    assert ax_box.get_title() == "40 stochastic passes"
    means = [line for line in ax_box.lines if line.get_label() == "MC mean"]
    np.testing.assert_allclose(means[0].get_ydata(), probs[:, 0].mean(axis=0), rtol=1e-6)
    assert fig._suptitle.get_text() == "demo"


def _sweep(k: int = 2) -> RotationSweep:
    angles = np.array([0.0, 60, 120, 180])
    mean = np.zeros((k, 4, 3))
    mean[:, :, 0] = [0.9, 0.6, 0.3, 0.05]
    mean[:, :, 1] = 1 - mean[:, :, 0] - 0.02
    mean[:, :, 2] = 0.02  # never reaches min_probability
    entropy = np.tile([0.3, 0.7, 0.9, 0.6], (k, 1))
    return RotationSweep(angles, np.zeros((k, 4, 5, 5)), mean, entropy, entropy / 2)


def test_rotation_sweep_figure_lines():
    fig = plot_rotation_sweep(_sweep(), class_names=["x", "y", "z"], thumbnails=4, title="t")
    ax_p, ax_h = fig.axes[-2:]
    assert [line.get_label() for line in ax_p.lines] == ["x", "y"]  # z stays below 0.1
    labels = [line.get_label() for line in ax_h.lines]
    assert labels[:2] == ["this image", "mean of 2 images"]
    np.testing.assert_allclose(ax_h.lines[0].get_ydata(), [0.3, 0.7, 0.9, 0.6])
    assert [ax.get_title() for ax in fig.axes[:4]] == ["0°", "60°", "120°", "180°"]


def test_rotation_sweep_figure_single_image_has_no_mean_line():
    fig = plot_rotation_sweep(_sweep(k=1), class_names=["x", "y", "z"], thumbnails=2)
    labels = [line.get_label() for line in fig.axes[-1].lines]
    assert "this image" in labels and not any(lab.startswith("mean of") for lab in labels)


def test_reliability_panels_titles_and_bars():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=200)
    labels = rng.integers(0, 3, 200)
    a = reliability_diagram_data(probs, labels)
    b = reliability_diagram_data(probs, probs.argmax(1))
    fig = plot_reliability({"random": a, "perfect labels": b}, title="cal")
    assert fig.axes[0].get_title() == f"random: ECE {a.ece:.3f}"
    assert fig.axes[1].get_title().startswith("perfect labels: ECE")
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    np.testing.assert_allclose(heights, sorted(a.accuracy[a.counts > 0]))


def test_entropy_histograms_are_densities_with_one_entry_per_set():
    values = {"test": np.full(50, 0.2), "ood": np.linspace(1.0, 2.2, 40)}
    fig = plot_entropy_histograms(values, num_classes=10, bins=10)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0].startswith("test (n=50, median 0.20)") and texts[1].startswith("ood (n=40")
    assert ax.get_xlim()[1] >= np.log(10)
    assert ax.get_title() == "Predictive entropy by input set"


def test_spread_comparison_boxes_and_spread_histograms():
    narrow = np.repeat(_samples(s=1, n=5), 30, axis=0)  # every pass identical: spread 0
    wide = _samples(s=30, n=5, seed=1)
    fig = plot_spread_comparison({"narrow": narrow, "wide": wide}, index=2, class_names="abcd")
    ax_box, ax_hist = fig.axes
    texts = [t.get_text() for t in ax_hist.get_legend().get_texts()]
    assert texts[0] == "narrow (median 0.000)" and texts[1].startswith("wide (median 0.")
    assert ax_box.get_title() == "One input, 30 passes each"
    assert ax_hist.get_title() == "All 5 inputs"


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: plot_mc_boxes(np.zeros((2, 4, 4)), _samples(n=3), class_names="abcd"),
         ValueError, "probs must be"),
        (lambda: plot_mc_boxes(np.zeros((3, 4, 4)), _samples(), class_names="abc"),
         ValueError, "class_names must have 4"),
        (lambda: plot_mc_boxes(np.zeros((3, 4, 4)), _samples(), class_names="abcd",
                               titles=["a"]), ValueError, "titles must have 3"),
        (lambda: plot_rotation_sweep("sweep", class_names="abc"), TypeError,
         "sweep must be a RotationSweep"),
        (lambda: plot_rotation_sweep(_sweep(), class_names="abc", index=5), ValueError,
         "index must be below 2"),
        (lambda: plot_reliability({}), TypeError, "data must be a non-empty mapping"),
        (lambda: plot_reliability({"a": 1}), TypeError, "data\\['a'\\] must be ReliabilityData"),
        (lambda: plot_entropy_histograms({"a": [0.1]}, num_classes=0), ValueError,
         "num_classes must be a positive"),
        (lambda: plot_spread_comparison({"a": _samples(), "b": _samples(n=4)}, index=0,
                                        class_names="abcd"), ValueError, "same \\(N, C\\)"),
        (lambda: plot_spread_comparison({"a": _samples()}, index=3, class_names="abcd"),
         ValueError, "index must be below 3"),
    ],
)  # fmt: skip
def test_figures_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
