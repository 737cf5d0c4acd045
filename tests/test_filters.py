"""Tests for lessonlib.filters: hand convolution and Gabor banks against torch, scipy, skimage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal
from skimage import data as skdata
from skimage import filters as skfilters
from skimage.transform import downscale_local_mean

from lessonlib import filters
from lessonlib.filters import (
    KERNELS,
    GaborKernel,
    convolve2d,
    gabor_bank,
    gabor_features,
    gabor_kernel,
    gabor_magnitude,
    named_kernel,
    sliding_windows,
    texture_patches,
)


def _torch_conv(image, kernel, padding, stride):
    x = torch.from_numpy(image)[None, None]
    w = torch.from_numpy(kernel)[None, None]
    return torch.nn.functional.conv2d(x, w, padding=padding, stride=stride)[0, 0].numpy()


# --------------------------------------------------------------------- convolution


@pytest.mark.parametrize("kernel_shape", [(3, 3), (2, 4), (5, 3), (1, 1)])
@pytest.mark.parametrize("padding", [0, 1, 3])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_convolve2d_matches_torch_conv2d(kernel_shape, padding, stride):
    rng = np.random.default_rng(20261123)
    image = rng.normal(size=(11, 13))
    kernel = rng.normal(size=kernel_shape)
    ours = convolve2d(image, kernel, padding=padding, stride=stride)
    expected = _torch_conv(image, kernel, padding, stride)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


# torch warns that an even kernel with padding="same" costs an extra padded copy
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("kernel_shape", [(3, 3), (2, 2), (4, 3)])
def test_same_padding_matches_torch_same(kernel_shape):
    rng = np.random.default_rng(7)
    image = rng.normal(size=(9, 10))
    kernel = rng.normal(size=kernel_shape)
    ours = convolve2d(image, kernel, padding="same")
    assert ours.shape == image.shape
    np.testing.assert_allclose(ours, _torch_conv(image, kernel, "same", 1), atol=1e-12)


@pytest.mark.parametrize("kernel_shape", [(3, 3), (5, 5), (3, 5)])
@pytest.mark.parametrize("stride", [1, 2])
def test_convolve2d_matches_scipy_correlate2d(kernel_shape, stride):
    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, size=(12, 15)).astype(np.uint8)
    kernel = rng.normal(size=kernel_shape)
    as_float = image.astype(float)
    k_rows, k_cols = kernel_shape
    full_pad = convolve2d(image, kernel, padding=k_rows - 1, stride=stride)
    if k_rows == k_cols:  # one int padding only covers square "full"
        full = signal.correlate2d(as_float, kernel, mode="full")[::stride, ::stride]
        np.testing.assert_allclose(full_pad, full, atol=1e-9)
    valid = signal.correlate2d(as_float, kernel, mode="valid")[::stride, ::stride]
    np.testing.assert_allclose(convolve2d(image, kernel, stride=stride), valid, atol=1e-9)
    np.testing.assert_allclose(
        convolve2d(image, kernel, padding="valid", stride=stride), valid, atol=1e-9
    )
    if stride == 1:
        same = signal.correlate2d(as_float, kernel, mode="same")
        np.testing.assert_allclose(convolve2d(image, kernel, padding="same"), same, atol=1e-9)


def test_sliding_windows_walks_every_output_pixel():
    rng = np.random.default_rng(3)
    image, kernel = rng.normal(size=(7, 8)), rng.normal(size=(3, 2))
    stops = list(sliding_windows(image, kernel, padding=1, stride=2))
    out = convolve2d(image, kernel, padding=1, stride=2)
    assert [(s.row, s.col) for s in stops] == [
        (row, col) for row in range(out.shape[0]) for col in range(out.shape[1])
    ]
    padded = np.pad(image, 1)
    for row, col, window, value in stops:
        np.testing.assert_array_equal(window, padded[2 * row : 2 * row + 3, 2 * col : 2 * col + 2])
        assert value == pytest.approx(float(np.sum(window * kernel)))
        assert value == out[row, col]
    assert not stops[0].window.flags.writeable


def test_named_kernels_are_the_seed_kernels():
    np.testing.assert_array_equal(
        named_kernel("horizontal_edge"), [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    )
    np.testing.assert_array_equal(named_kernel("diagonal_edge"), np.eye(3))
    expected_edge = -np.ones((3, 3))
    expected_edge[1, 1] = 8
    np.testing.assert_array_equal(named_kernel("edge_detect"), expected_edge)
    copy = named_kernel("edge_detect")
    copy[:] = 0
    assert KERNELS["edge_detect"][1, 1] == 8
    assert not any(k.flags.writeable for k in KERNELS.values())
    assert set(KERNELS) == {"horizontal_edge", "diagonal_edge", "edge_detect"}


def test_named_kernels_respond_as_their_names_say():
    bright_square = np.zeros((10, 10))
    bright_square[2:8, 2:8] = 1
    horizontal = convolve2d(bright_square, named_kernel("horizontal_edge"))
    # strong on the top and bottom edges, silent inside and along the flat middle rows
    assert horizontal[0:2, 2:6].min() < -3 and horizontal[5:7, 2:6].max() > 3
    assert np.all(horizontal[2:5, :] == 0)
    assert np.all(convolve2d(bright_square, named_kernel("edge_detect"))[2:4, 2:4] == 0)
    diagonal = np.eye(6)
    assert convolve2d(diagonal, named_kernel("diagonal_edge")).max() == 3
    assert convolve2d(np.fliplr(diagonal), named_kernel("diagonal_edge")).max() == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(image=np.zeros((2, 3, 3))), ValueError, "image"),
        (dict(image=np.array([["a"]])), TypeError, "image"),
        (dict(kernel=np.ones(3)), ValueError, "kernel"),
        (dict(kernel=np.ones((6, 6))), ValueError, "kernel"),
        (dict(stride=0), ValueError, "stride"),
        (dict(stride=1.5), TypeError, "stride"),
        (dict(padding=-1), ValueError, "padding"),
        (dict(padding=1.0), TypeError, "padding"),
        (dict(padding="full"), ValueError, "padding"),
        (dict(padding="same", stride=2), ValueError, "stride"),
    ],
)
def test_convolution_rejects_bad_input(kwargs, error, match):
    args = dict(image=np.zeros((5, 5)), kernel=np.ones((3, 3)), padding=0, stride=1) | kwargs
    image, kernel = args.pop("image"), args.pop("kernel")
    with pytest.raises(error, match=match):
        convolve2d(image, kernel, **args)
    with pytest.raises(error, match=match):
        sliding_windows(image, kernel, **args)  # fails at the call, before iterating


def test_named_kernel_rejects_unknown_name():
    with pytest.raises(ValueError, match="name"):
        named_kernel("sobel")


# --------------------------------------------------------------------------- Gabor


@pytest.mark.parametrize("frequency", [0.05, 0.25, 0.86])
@pytest.mark.parametrize("theta", [0.0, np.pi / 4, 1.9, np.pi / 2, 3.0])
@pytest.mark.parametrize("sigma", [0.3, 1.7, 3.0])
def test_gabor_kernel_equals_skimage(frequency, theta, sigma):
    ours = gabor_kernel(frequency=frequency, theta=theta, sigma=sigma)
    theirs = skfilters.gabor_kernel(frequency, theta=theta, sigma_x=sigma, sigma_y=sigma)
    assert ours.shape == theirs.shape
    assert ours.dtype == np.complex128
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_gabor_bank_kernels_equal_skimage_in_seed_order():
    thetas, freqs, sigmas = (0, np.pi / 4), (0.1, 0.4), (1, 3)
    bank = gabor_bank(thetas=thetas, frequencies=freqs, sigmas=sigmas, n_stds=2.5)
    expected = [(t, f, s) for t in thetas for f in freqs for s in sigmas]
    assert [(g.theta, g.frequency, g.sigma) for g in bank] == expected
    for g in bank:
        theirs = skfilters.gabor_kernel(
            g.frequency, theta=g.theta, sigma_x=g.sigma, sigma_y=g.sigma, n_stds=2.5
        )
        np.testing.assert_allclose(g.kernel, theirs, rtol=1e-12, atol=1e-15)
    assert bank[-1].label == "theta=0.79, f=0.40, sigma=3.00"


@pytest.fixture(scope="module")
def camera_small():
    return downscale_local_mean(skdata.camera().astype(float) / 255, (8, 8))  # 64x64


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "wrap", "constant"])
@pytest.mark.parametrize(("frequency", "theta", "sigma"), [(0.1, 0.0, 3.0), (0.4, 1.0, 1.0)])
def test_gabor_magnitude_matches_skimage_gabor(camera_small, mode, frequency, theta, sigma):
    kernel = gabor_kernel(frequency=frequency, theta=theta, sigma=sigma)
    ours = gabor_magnitude(camera_small, kernel, mode=mode, cval=0.25)
    real, imag = skfilters.gabor(
        camera_small, frequency, theta=theta, sigma_x=sigma, sigma_y=sigma, mode=mode, cval=0.25
    )
    np.testing.assert_allclose(ours, np.hypot(real, imag), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "mirror", "wrap"])
def test_gabor_magnitude_with_kernel_larger_than_image(mode):
    image = np.random.default_rng(5).random((7, 9))
    bank = gabor_bank(thetas=[0.5], frequencies=[0.2], sigmas=[4.0])
    assert bank[0].kernel.shape[0] > 2 * image.shape[0]
    real, imag = skfilters.gabor(image, 0.2, theta=0.5, sigma_x=4.0, sigma_y=4.0, mode=mode)
    ours = gabor_magnitude(image, bank[0], mode=mode)
    np.testing.assert_allclose(ours, np.hypot(real, imag), rtol=1e-9, atol=1e-12)


def test_gabor_features_are_means_and_stds_of_magnitudes(camera_small):
    bank = gabor_bank(thetas=[0, np.pi / 2], frequencies=[0.2], sigmas=[1.5])
    images = np.stack([camera_small, camera_small.T, 1 - camera_small])
    feats = gabor_features(images, bank=bank, standardize=False)
    assert feats.shape == (3, 4)
    for i, image in enumerate(images):
        for k, g in enumerate(bank):
            magnitude = gabor_magnitude(image, g)
            assert feats[i, 2 * k] == pytest.approx(magnitude.mean())
            assert feats[i, 2 * k + 1] == pytest.approx(magnitude.std())
    # the transposed image swaps the roles of the two orientations
    np.testing.assert_allclose(feats[1, [0, 1]], feats[0, [2, 3]], rtol=1e-9)
    # standardising removes brightness and contrast; plain arrays work as a bank
    raw = gabor_features(images[:1] * 3 + 7, bank=[g.kernel for g in bank])
    np.testing.assert_allclose(raw, gabor_features(images[:1], bank=bank), rtol=1e-9)


def test_gabor_features_classify_textures():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    patches = texture_patches(patch_size=32, n_per_image=30, seed=1)
    bank = gabor_bank(thetas=[0, np.pi / 4, np.pi / 2], frequencies=[0.1, 0.3], sigmas=[2.0])
    train = gabor_features(patches.train_images, bank=bank)
    test = gabor_features(patches.test_images, bank=bank)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(train, patches.train_labels)
    assert clf.score(test, patches.test_labels) >= 0.9  # 0.93-0.96 over seeds 0-4


def test_texture_patches_train_and_test_share_no_pixel():
    size = 40
    patches = texture_patches(patch_size=size, n_per_image=25, seed=3)
    assert patches.class_names == ("brick", "grass", "gravel")
    assert patches.train_images.shape == patches.test_images.shape == (75, size, size)
    assert np.bincount(patches.train_labels).tolist() == [25, 25, 25]
    np.testing.assert_array_equal(patches.train_labels, patches.test_labels)
    assert (patches.train_origins[:, 0] + size <= 256).all()
    assert (patches.test_origins[:, 0] >= 256).all()
    # every patch really is the photo at its origin
    photos = [getattr(skdata, name)() / 255 for name in patches.class_names]
    for split in ("train", "test"):
        images = getattr(patches, f"{split}_images")
        origins = getattr(patches, f"{split}_origins")
        labels = getattr(patches, f"{split}_labels")
        for image, (row, col), label in zip(images, origins, labels, strict=True):
            np.testing.assert_allclose(image, photos[label][row : row + size, col : col + size])
    again = texture_patches(patch_size=size, n_per_image=25, seed=3)
    np.testing.assert_array_equal(again.test_origins, patches.test_origins)
    other = texture_patches(patch_size=size, n_per_image=25, seed=4)
    assert not np.array_equal(other.train_origins, patches.train_origins)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(frequency=0.0, sigma=1.0), ValueError, "frequency"),
        (dict(frequency=0.1, sigma=-1.0), ValueError, "sigma"),
        (dict(frequency=0.1, sigma=1.0, theta=float("nan")), ValueError, "theta"),
        (dict(frequency=0.1, sigma=1.0, theta="0"), TypeError, "theta"),
        (dict(frequency=0.1, sigma=1.0, n_stds=0), ValueError, "n_stds"),
    ],
)
def test_gabor_kernel_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        gabor_kernel(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(thetas=[]), ValueError, "thetas"),
        (dict(frequencies=0.1), TypeError, "frequencies"),
        (dict(sigmas="1"), TypeError, "sigmas"),
        (dict(sigmas=[1, None]), TypeError, "sigmas"),
        (dict(sigmas=[0]), ValueError, "sigma"),
    ],
)
def test_gabor_bank_rejects_bad_input(kwargs, error, match):
    args = dict(thetas=[0], frequencies=[0.1], sigmas=[1]) | kwargs
    with pytest.raises(error, match=match):
        gabor_bank(**args)


def test_gabor_magnitude_and_features_reject_bad_input():
    kernel = gabor_kernel(frequency=0.2, sigma=1.0)
    with pytest.raises(ValueError, match="image"):
        gabor_magnitude(np.zeros((2, 8, 8)), kernel)
    with pytest.raises(ValueError, match="kernel"):
        gabor_magnitude(np.zeros((8, 8)), np.ones((4, 4)))
    with pytest.raises(ValueError, match="mode"):
        gabor_magnitude(np.zeros((8, 8)), kernel, mode="same")
    with pytest.raises(ValueError, match="images"):
        gabor_features(np.zeros((8, 8)), bank=[kernel])
    with pytest.raises(TypeError, match="bank"):
        gabor_features(np.zeros((1, 8, 8)), bank=[])
    with pytest.raises(TypeError, match="bank"):
        gabor_features(np.zeros((1, 8, 8)), bank=kernel)
    with pytest.raises(ValueError, match="mode"):
        gabor_features(np.zeros((1, 8, 8)), bank=[kernel], mode="valid")
    assert isinstance(gabor_bank(thetas=[0], frequencies=[0.2], sigmas=[1])[0], GaborKernel)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(patch_size=257), ValueError, "patch_size"),
        (dict(patch_size=0), ValueError, "patch_size"),
        (dict(n_per_image=0), ValueError, "n_per_image"),
        (dict(seed=-1), ValueError, "seed"),
    ],
)
def test_texture_patches_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        texture_patches(**kwargs)


def test_module_lists_its_border_modes():
    assert set(filters.GABOR_MODES) == {"reflect", "mirror", "nearest", "wrap", "constant"}
