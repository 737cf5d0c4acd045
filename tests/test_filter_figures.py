"""Tests for lessonlib.filter_figures: what each panel shows, and bad input."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from lessonlib import filter_figures as ff
from lessonlib.filters import convolve2d, gabor_bank, gabor_kernel, gabor_magnitude, named_kernel


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def square():
    img = np.zeros((10, 10))
    img[2:8, 2:8] = 1.0
    return img


def _image_data(ax) -> np.ndarray:
    return np.ma.filled(ax.images[0].get_array().astype(float), np.nan)


def test_sliding_step_fills_the_output_up_to_the_step(square):
    kernel = named_kernel("horizontal_edge")
    full = convolve2d(square, kernel)
    step = 20  # row 2, col 4 of the 8x8 output
    fig = ff.sliding_step_figure(square, kernel, step=step)
    assert isinstance(fig, Figure)
    ax_in, ax_k, ax_out = fig.axes[:3]
    shown = _image_data(ax_out)
    flat = shown.ravel()
    np.testing.assert_array_equal(flat[: step + 1], full.ravel()[: step + 1])
    assert np.isnan(flat[step + 1 :]).all()
    assert ax_out.get_title() == f"output (2, 4) = {full[2, 4]:g}"
    assert ax_in.get_title() == "input, window at (2, 4)"
    window = ax_in.patches[0]
    assert (window.get_x(), window.get_y(), window.get_width()) == (3.5, 1.5, 3)
    np.testing.assert_array_equal(_image_data(ax_k), kernel)
    assert [t.get_text() for t in ax_k.texts] == ["1", "2", "1", "0", "0", "0", "-1", "-2", "-1"]
    assert "Step 21 of 64" in fig.texts[0].get_text()


def test_sliding_step_colour_scale_is_symmetric(square):
    fig = ff.sliding_step_figure(square, named_kernel("edge_detect"), step=0)
    low, high = fig.axes[2].images[0].get_clim()
    assert low == -high == -5.0  # the largest |response| of edge_detect on the square
    fig = ff.sliding_step_figure(square, named_kernel("edge_detect"), step=0, vlim=8)
    assert fig.axes[2].images[0].get_clim() == (-8.0, 8.0)


def test_sliding_step_with_padding_shows_the_padded_image(square):
    fig = ff.sliding_step_figure(square, np.ones((3, 3)), step=0, padding=1)
    assert _image_data(fig.axes[0]).shape == (12, 12)
    assert _image_data(fig.axes[2]).shape == (10, 10)


def test_sliding_strip_has_one_column_per_step(square):
    kernel = named_kernel("horizontal_edge")
    full = convolve2d(square, kernel)
    steps = [0, 9, 27, 63]
    fig = ff.sliding_strip(square, kernel, steps=steps, title="strip")
    assert len(fig.axes) == 2 * len(steps)
    tops, bottoms = fig.axes[: len(steps)], fig.axes[len(steps) :]
    for step, top, bottom in zip(steps, tops, bottoms, strict=True):
        row, col = divmod(step, 8)
        assert top.get_title() == f"step {step + 1}: ({row}, {col})"
        assert bottom.get_title() == f"output = {full[row, col]:g}"
        assert np.count_nonzero(~np.isnan(_image_data(bottom))) == step + 1
    np.testing.assert_array_equal(_image_data(bottoms[-1]), full)
    assert fig.texts[0].get_text() == "strip"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"step": 64}, ValueError, r"step must lie in \[0, 63\], got 64"),
        ({"step": -1}, ValueError, "step must lie in"),
        ({"step": 1.0}, TypeError, "step must be an int"),
        ({"step": True}, TypeError, "step must be an int"),
        ({"step": 0, "vlim": 0}, ValueError, "vlim"),
    ],
)
def test_sliding_step_rejects_bad_input(square, kwargs, error, match):
    with pytest.raises(error, match=match):
        ff.sliding_step_figure(square, np.ones((3, 3)), **kwargs)


@pytest.mark.parametrize(
    ("steps", "error", "match"),
    [
        ([], ValueError, "steps must hold 1 to 8 steps, got 0"),
        (list(range(9)), ValueError, "got 9"),
        ("0", TypeError, "steps must be a sequence"),
        (5, TypeError, "steps must be a sequence"),
        ([0, 64], ValueError, "steps must lie in"),
    ],
)
def test_sliding_strip_rejects_bad_steps(square, steps, error, match):
    with pytest.raises(error, match=match):
        ff.sliding_strip(square, np.ones((3, 3)), steps=steps)


def test_response_grid_layout_and_scales():
    rng = np.random.default_rng(0)
    images = [rng.random((5, 5)), rng.random((6, 6))]
    responses = [[im * 2 - 1, -3 * im] for im in images]
    fig = ff.response_grid(
        images, responses, image_names=["a", "b"], kernel_names=["k1", "k2"], title="t"
    )
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes] == ["a", "k1", "k2", "b", "", ""]
    low, high = fig.axes[5].images[0].get_clim()
    assert high == -low == pytest.approx(np.percentile(3 * images[1], 99))
    # an all-zero map falls back to a tiny positive limit instead of failing
    fig = ff.response_grid(
        [img := np.zeros((3, 3))], [[img]], image_names=["z"], kernel_names=["k"]
    )
    assert fig.axes[1].images[0].get_clim()[1] == pytest.approx(1e-12)
    assert fig.axes[0].images[0].get_cmap().name == "gray"
    assert fig.axes[1].images[0].get_cmap().name == "cividis"


def test_response_grid_rejects_mismatched_lengths():
    img = np.zeros((3, 3))
    with pytest.raises(ValueError, match="one entry per image"):
        ff.response_grid([img], [[img]], image_names=["a", "b"], kernel_names=["k"])
    with pytest.raises(ValueError, match="one map per kernel"):
        ff.response_grid([img], [[img, img]], image_names=["a"], kernel_names=["k"])


def test_gabor_explorer_shows_kernel_and_magnitude():
    rng = np.random.default_rng(1)
    image = rng.random((20, 24)) * 50 + 100
    fig = ff.gabor_explorer_figure(image, frequency=0.3, theta=0.5, sigma=1.5)
    ax_img, ax_k, ax_mag = fig.axes[:3]
    kernel = gabor_kernel(frequency=0.3, theta=0.5, sigma=1.5)
    np.testing.assert_allclose(_image_data(ax_k), kernel.real)
    standardised = (image - image.mean()) / image.std()
    np.testing.assert_allclose(_image_data(ax_mag), gabor_magnitude(standardised, kernel))
    np.testing.assert_array_equal(_image_data(ax_img), image)
    assert "frequency=0.30, theta=0.50, sigma=1.50" in fig.texts[0].get_text()


def test_gabor_explorer_rejects_bad_parameters():
    with pytest.raises(ValueError, match="sigma"):
        ff.gabor_explorer_figure(np.eye(8), frequency=0.2, theta=0.0, sigma=0.0)
    with pytest.raises(ValueError, match="image must have 2 dimensions"):
        ff.gabor_explorer_figure(np.zeros(8), frequency=0.2, theta=0.0, sigma=1.0)


def test_gabor_bank_figure_normalises_contrast_per_kernel():
    bank = gabor_bank(thetas=[0, np.pi / 4], frequencies=[0.1, 0.4], sigmas=[1, 3])
    rng = np.random.default_rng(2)
    images = [rng.random((12, 12)) for _ in range(3)]
    magnitudes = [[gabor_magnitude(im, g) for im in images] for g in bank]
    fig = ff.gabor_bank_figure(images, bank, magnitudes, image_names=["x", "y", "z"], title="b")
    axes = np.array(fig.axes).reshape(9, 4)
    assert [ax.get_title() for ax in axes[0, 1:]] == ["x", "y", "z"]
    for row, maps in enumerate(magnitudes, start=1):
        expected = (min(m.min() for m in maps), max(m.max() for m in maps))
        for ax in axes[row, 1:]:
            assert ax.images[0].get_clim() == pytest.approx(expected)
        np.testing.assert_allclose(_image_data(axes[row, 0]), bank[row - 1].kernel.real)
    assert axes[3, 0].get_ylabel() == "theta=0.00\nf=0.40\nsigma=1.00"


def test_gabor_bank_figure_rejects_bad_input():
    bank = gabor_bank(thetas=[0], frequencies=[0.2], sigmas=[1])
    img = np.eye(6)
    with pytest.raises(ValueError, match="image_names must name every image"):
        ff.gabor_bank_figure([img], bank, [[img]], image_names=[])
    with pytest.raises(ValueError, match="magnitudes must hold 1 rows"):
        ff.gabor_bank_figure([img], bank, [[img, img]], image_names=["a"])
    with pytest.raises(TypeError, match="bank must hold GaborKernel"):
        ff.gabor_bank_figure([img], [bank[0].kernel], [[img]], image_names=["a"])
