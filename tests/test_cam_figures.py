"""Tests for lessonlib.cam_figures: the step-by-step figure and the rows of overlays."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from lessonlib.cam_figures import plot_cam_rows, plot_cam_steps
from lessonlib.gradcam import CamSteps, GradCAM


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def steps() -> CamSteps:
    """Grad-CAM steps of a tiny random network on two 12x12 images."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)
    )
    cam = GradCAM(net, net[1])
    cam(torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(1)), [0, 2])
    return cam.steps


def test_steps_figure_shows_top_channels_weights_and_each_step(steps):
    image = np.zeros((12, 12, 3))
    fig = plot_cam_steps(image, steps, index=1, n_channels=5, title="demo")
    titles = [ax.get_title() for ax in fig.axes]
    contribution = steps.weights[1] * steps.activations[1].mean(axis=(1, 2))
    order = np.argsort(contribution)[::-1][:5]
    assert titles[:5] == [f"channel {k}, weight {steps.weights[1][k]:.2g}" for k in order]
    assert "channel weights, sorted" in titles and "after the ReLU" in titles
    assert "upsampled, over the image" in titles
    assert fig._suptitle.get_text() == "demo"
    # the signed sum is drawn on a symmetric scale, so zero sits in the middle of the colours
    signed_ax = next(ax for ax in fig.axes if ax.get_title() == "weighted sum")
    low, high = signed_ax.images[0].get_clim()
    assert low == pytest.approx(-high)
    expected = np.einsum("k,krc->rc", steps.weights[1], steps.activations[1])
    np.testing.assert_allclose(signed_ax.images[0].get_array(), expected)
    weights_ax = fig.axes[5]
    np.testing.assert_allclose(weights_ax.lines[0].get_ydata(), np.sort(steps.weights[1])[::-1])


def test_steps_figure_skips_channels_that_are_zero_everywhere():
    act = np.zeros((1, 3, 2, 2))
    act[0, 1] = 1.0  # only channel 1 is active
    weights = np.array([[5.0, 1.0, 3.0]])  # channel 0 has the largest weight but adds nothing
    low = np.maximum(np.einsum("nk,nkrc->nrc", weights, act), 0)
    steps = CamSteps(np.zeros((1, 2)), None, act, act, weights, low, np.zeros((1, 4, 4)))
    fig = plot_cam_steps(np.zeros((4, 4)), steps, n_channels=1)
    assert fig.axes[0].get_title() == "channel 1, weight 1"


def test_steps_figure_bad_inputs(steps):
    with pytest.raises(TypeError, match="steps must be a CamSteps"):
        plot_cam_steps(np.zeros((12, 12)), {"maps": 1})
    with pytest.raises(ValueError, match="index must be below the batch size 2"):
        plot_cam_steps(np.zeros((12, 12)), steps, index=2)
    with pytest.raises(ValueError, match="image must have the maps' size"):
        plot_cam_steps(np.zeros((10, 10)), steps)
    with pytest.raises(ValueError, match="n_channels"):
        plot_cam_steps(np.zeros((12, 12)), steps, n_channels=0)


def test_rows_layout_labels_and_overlays():
    images = np.random.default_rng(0).random((3, 5, 5, 3))
    hot = np.ones((3, 5, 5))
    fig = plot_cam_rows(
        images, {"model A": hot, "model B": hot * 0}, titles=["x", "y", "z"], suptitle="s"
    )
    axes = np.array(fig.axes).reshape(3, 3)
    assert [ax.get_title() for ax in axes[0]] == ["x", "y", "z"]
    assert axes[1, 0].get_ylabel() == "model A" and axes[2, 0].get_ylabel() == "model B"
    np.testing.assert_allclose(axes[0, 1].images[0].get_array(), images[1])
    blended = axes[1, 1].images[0].get_array()
    assert blended.shape == (5, 5, 3) and not np.allclose(blended, images[1])


def test_rows_bad_inputs():
    one = np.zeros((2, 4, 4))
    with pytest.raises(ValueError, match="images must not be empty"):
        plot_cam_rows([], {"a": []})
    with pytest.raises(TypeError, match="maps must be a non-empty mapping"):
        plot_cam_rows(one, [one])
    with pytest.raises(ValueError, match=r"maps\['a'\] must have one map per image \(2\)"):
        plot_cam_rows(one, {"a": one[:1]})
    with pytest.raises(ValueError, match="titles must be one str per image"):
        plot_cam_rows(one, {"a": one}, titles="ab")
    with pytest.raises(ValueError, match="alpha"):
        plot_cam_rows(one, {"a": one}, alpha=2.0)
    with pytest.raises(ValueError, match="cam must lie in"):
        plot_cam_rows(one, {"a": one + 2})
