"""Convolution by hand, named kernels and Gabor filter banks (lesson 1, seed 004).

A convolutional layer slides a small kernel over an image and, at every stop,
sums the element-wise product of the kernel with the window under it.  Deep
learning libraries call this "convolution" although, strictly, it is a
cross-correlation: the kernel is not flipped.  :func:`convolve2d` does exactly
that, one window at a time, and :func:`sliding_windows` yields every window so
that a widget can show the kernel moving.

Gabor kernels (a Gaussian envelope times a complex wave) were the hand-made
texture detectors of classical computer vision.  :func:`gabor_bank` builds a
family of them, :func:`gabor_magnitude` measures the local response
``sqrt(real**2 + imag**2)`` and :func:`gabor_features` turns an image into a
short feature vector for a texture classifier, the pre-CNN baseline of the
lesson.  :func:`texture_patches` cuts train and test patches from the
brick, grass and gravel photos of scikit-image without sharing a pixel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from types import MappingProxyType
from typing import Literal, NamedTuple

import numpy as np

from lessonlib._validate import array, non_negative_int, one_of, positive_float, positive_int
from lessonlib.progress import progress

Padding = int | Literal["same", "valid"]

GABOR_MODES = ("reflect", "mirror", "nearest", "wrap", "constant")
# scipy.ndimage boundary names -> numpy.pad names for the same extension
_NP_PAD_MODE = {
    "reflect": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap",
    "constant": "constant",
}
TEXTURES = ("brick", "grass", "gravel")


def _frozen(values: list[list[int]]) -> np.ndarray:
    kernel = np.array(values, dtype=float)
    kernel.flags.writeable = False
    return kernel


KERNELS: MappingProxyType = MappingProxyType(
    {
        # positive above, negative below: bright-over-dark horizontal edges
        "horizontal_edge": _frozen([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]),
        # ones on the main diagonal: strokes running top-left to bottom-right
        "diagonal_edge": _frozen([[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        # centre minus its eight neighbours: zero on flat areas, large at edges
        "edge_detect": _frozen([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    }
)
"""The three 3x3 kernels of seed 004, read-only, keyed by name."""


def named_kernel(name: str) -> np.ndarray:
    """Return a writable copy of one of the seed's 3x3 kernels.

    Parameters
    ----------
    name : {"horizontal_edge", "diagonal_edge", "edge_detect"}
        Kernel name (the keys of :data:`KERNELS`).

    Returns
    -------
    numpy.ndarray
        A (3, 3) float array.

    Examples
    --------
    >>> named_kernel("edge_detect")
    array([[-1., -1., -1.],
           [-1.,  8., -1.],
           [-1., -1., -1.]])
    >>> float(named_kernel("horizontal_edge").sum())
    0.0
    """
    return KERNELS[one_of("name", name, KERNELS)].copy()


class Window(NamedTuple):
    """One stop of the kernel: output position, the window under it, and the result."""

    row: int
    col: int
    window: np.ndarray
    value: float


def _pad_widths(kernel_shape: tuple[int, int], padding: Padding) -> list[tuple[int, int]]:
    """Zero-padding (before, after) for rows and columns."""
    if isinstance(padding, str):
        one_of("padding", padding, ("same", "valid"))
        if padding == "valid":
            return [(0, 0), (0, 0)]
        # like torch's padding="same": the odd pixel of an even kernel goes after
        return [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_shape]
    if isinstance(padding, bool) or not isinstance(padding, Integral):
        raise TypeError(f"padding must be an int or 'same'/'valid', got {type(padding).__name__}")
    pad = non_negative_int("padding", padding)
    return [(pad, pad), (pad, pad)]


def _prepare(
    image: object, kernel: object, padding: Padding, stride: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int], int]:
    """Check the inputs; return the padded image, the kernel, the output shape and stride."""
    img = array("image", image, ndim=2, dtype_kind="biuf").astype(float)
    ker = array("kernel", kernel, ndim=2, dtype_kind="biuf").astype(float)
    stride = positive_int("stride", stride)
    if padding == "same" and stride != 1:
        raise ValueError(f"padding='same' needs stride=1, got stride={stride}")
    padded = np.pad(img, _pad_widths(ker.shape, padding))
    if any(p < k for p, k in zip(padded.shape, ker.shape, strict=True)):
        raise ValueError(
            f"kernel of shape {ker.shape} is larger than the padded image {padded.shape}; "
            "add padding or use a smaller kernel"
        )
    out_shape = tuple((p - k) // stride + 1 for p, k in zip(padded.shape, ker.shape, strict=True))
    padded.flags.writeable = False
    return padded, ker, out_shape, stride


def _stops(
    padded: np.ndarray, ker: np.ndarray, out_shape: tuple[int, int], stride: int
) -> Iterator[Window]:
    """Visit the output pixels row by row; multiply and sum one window each time."""
    k_rows, k_cols = ker.shape
    for row in range(out_shape[0]):
        for col in range(out_shape[1]):
            top, left = row * stride, col * stride
            window = padded[top : top + k_rows, left : left + k_cols]
            yield Window(row, col, window, float(np.sum(window * ker)))


def sliding_windows(
    image: np.ndarray, kernel: np.ndarray, *, padding: Padding = 0, stride: int = 1
) -> Iterator[Window]:
    """Yield every stop of the kernel as it slides over the image.

    The output position ``(row, col)`` reads the window whose top-left corner
    sits at ``(row * stride, col * stride)`` of the zero-padded image.

    Parameters
    ----------
    image : array_like
        A 2-D grey image.
    kernel : array_like
        A 2-D kernel, not flipped (cross-correlation, as in CNN layers).
    padding : int or {"same", "valid"}
        Zeros added on every side, ``"valid"`` (no padding, the default 0) or
        ``"same"`` (output as large as the input; needs ``stride=1``).
    stride : int
        Step between two windows, in pixels.

    Yields
    ------
    Window
        ``(row, col, window, value)``, row by row; ``window`` is a read-only view
        of the padded image and ``value`` is ``sum(window * kernel)``.

    Examples
    --------
    >>> image = np.arange(16).reshape(4, 4)
    >>> stops = list(sliding_windows(image, np.ones((2, 2)), stride=2))
    >>> [(s.row, s.col, s.value) for s in stops]
    [(0, 0, 10.0), (0, 1, 18.0), (1, 0, 42.0), (1, 1, 50.0)]
    >>> stops[1].window
    array([[2., 3.],
           [6., 7.]])
    """
    # checked eagerly, so a bad argument fails at the call, not at the first next()
    prepared = _prepare(image, kernel, padding, stride)
    return _stops(*prepared)


def convolve2d(
    image: np.ndarray, kernel: np.ndarray, *, padding: Padding = 0, stride: int = 1
) -> np.ndarray:
    """Slide a kernel over a grey image, one window at a time, as a CNN layer does.

    The output has ``(H + pad_before + pad_after - kh) // stride + 1`` rows, and
    likewise for columns.  This is written for reading, not for speed: it runs a
    Python loop over the output pixels (about a second for a 512x512 image).

    Parameters
    ----------
    image : array_like
        A 2-D grey image (any real dtype; computed in float64).
    kernel : array_like
        A 2-D kernel, not flipped (cross-correlation, like
        ``torch.nn.functional.conv2d``).
    padding : int or {"same", "valid"}
        Zeros added on every side; ``"valid"`` means none, ``"same"`` keeps
        the input size and needs ``stride=1``.
    stride : int
        Step between two windows, in pixels.

    Returns
    -------
    numpy.ndarray
        The float64 feature map.

    Raises
    ------
    ValueError
        If the kernel does not fit in the padded image, ``stride`` is not
        positive, ``padding`` is negative, or the arrays are not 2-D.

    Examples
    --------
    >>> square = np.zeros((6, 6)); square[2:4, 2:4] = 1
    >>> convolve2d(square, named_kernel("horizontal_edge"))
    array([[-1., -3., -3., -1.],
           [-1., -3., -3., -1.],
           [ 1.,  3.,  3.,  1.],
           [ 1.,  3.,  3.,  1.]])
    >>> convolve2d(square, np.ones((3, 3)), padding=1, stride=2).shape
    (3, 3)
    """
    padded, ker, out_shape, stride = _prepare(image, kernel, padding, stride)
    out = np.empty(out_shape)
    for stop in _stops(padded, ker, out_shape, stride):
        out[stop.row, stop.col] = stop.value
    return out


# --------------------------------------------------------------------------- Gabor


@dataclass(frozen=True)
class GaborKernel:
    """A complex Gabor kernel with the parameters that made it.

    Attributes
    ----------
    theta : float
        Orientation in radians; ``0`` makes the wave run along the columns
        (so it responds to vertical stripes).
    frequency : float
        Spatial frequency of the wave, in cycles per pixel.
    sigma : float
        Standard deviation of the (round) Gaussian envelope, in pixels.
    kernel : numpy.ndarray
        The complex128 kernel, square and of odd side.
    """

    theta: float
    frequency: float
    sigma: float
    kernel: np.ndarray

    @property
    def label(self) -> str:
        """A short text for plot titles."""
        return f"theta={self.theta:.2f}, f={self.frequency:.2f}, sigma={self.sigma:.2f}"


def gabor_kernel(
    *, frequency: float, theta: float = 0.0, sigma: float, n_stds: float = 3.0
) -> np.ndarray:
    """Build a complex Gabor kernel by hand: a round Gaussian times a complex wave.

    ``g(row, col) = exp(-(row**2 + col**2) / (2 sigma**2)) / (2 pi sigma**2)
    * exp(2j pi frequency u)`` with ``u = col cos(theta) + row sin(theta)``, on a
    square grid reaching ``n_stds`` standard deviations along the wave.  With
    ``sigma_x = sigma_y = sigma`` this is the kernel of
    ``skimage.filters.gabor_kernel``.

    Parameters
    ----------
    frequency : float
        Cycles per pixel, > 0.
    theta : float
        Orientation in radians.
    sigma : float
        Envelope standard deviation in pixels, > 0.
    n_stds : float
        Half-size of the grid, in standard deviations.

    Returns
    -------
    numpy.ndarray
        A complex128 array of odd side ``2 * half + 1``.

    Examples
    --------
    >>> g = gabor_kernel(frequency=0.25, sigma=1.0)
    >>> g.shape, g.dtype
    ((7, 7), dtype('complex128'))
    >>> bool(np.allclose(g[3, 3], 1 / (2 * np.pi)))
    True
    """
    frequency = positive_float("frequency", frequency)
    sigma = positive_float("sigma", sigma)
    n_stds = positive_float("n_stds", n_stds)
    theta = _finite("theta", theta)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    half = math.ceil(max(abs(n_stds * sigma * cos_t), abs(n_stds * sigma * sin_t), 1))
    rows, cols = np.mgrid[-half : half + 1, -half : half + 1]
    along_wave = cols * cos_t + rows * sin_t
    envelope = np.exp(-(rows**2 + cols**2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    return envelope * np.exp(2j * np.pi * frequency * along_wave)


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _numbers(name: str, values: Iterable[float]) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    out = [_finite(name, v) for v in values]
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out


def gabor_bank(
    *,
    thetas: Sequence[float],
    frequencies: Sequence[float],
    sigmas: Sequence[float],
    n_stds: float = 3.0,
) -> list[GaborKernel]:
    """Build one Gabor kernel per combination of orientation, frequency and sigma.

    Parameters
    ----------
    thetas : sequence of float
        Orientations in radians.
    frequencies : sequence of float
        Frequencies in cycles per pixel.
    sigmas : sequence of float
        Envelope standard deviations in pixels.
    n_stds : float
        Kernel half-size in standard deviations.

    Returns
    -------
    list of GaborKernel
        ``len(thetas) * len(frequencies) * len(sigmas)`` kernels, theta varying
        slowest and sigma fastest (the seed's order).

    Examples
    --------
    >>> bank = gabor_bank(thetas=[0, np.pi / 4], frequencies=[0.1, 0.4], sigmas=[1, 3])
    >>> len(bank)
    8
    >>> bank[1].label
    'theta=0.00, f=0.10, sigma=3.00'
    """
    settings = [
        _numbers("thetas", thetas),
        _numbers("frequencies", frequencies),
        _numbers("sigmas", sigmas),
    ]
    return [
        GaborKernel(t, f, s, gabor_kernel(frequency=f, theta=t, sigma=s, n_stds=n_stds))
        for t in settings[0]
        for f in settings[1]
        for s in settings[2]
    ]


def _kernel_array(kernel: object) -> np.ndarray:
    if isinstance(kernel, GaborKernel):
        kernel = kernel.kernel
    ker = array("kernel", kernel, ndim=2, dtype_kind="biufc")
    if ker.shape[0] % 2 == 0 or ker.shape[1] % 2 == 0:
        raise ValueError(f"kernel must have odd sides so it has a centre, got {ker.shape}")
    return ker.astype(complex)


def gabor_magnitude(
    image: np.ndarray,
    kernel: np.ndarray | GaborKernel,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
) -> np.ndarray:
    """Return the Gabor response magnitude ``sqrt(real**2 + imag**2)`` at every pixel.

    The image is convolved with the real and the imaginary part of the kernel
    (both at once, through one FFT convolution of the padded image); the
    magnitude is then insensitive to the phase of the wave, so it lights up
    wherever the texture has the kernel's orientation and frequency.  The
    result equals ``numpy.hypot(*skimage.filters.gabor(image, ..., mode=mode))``.

    Parameters
    ----------
    image : array_like
        A 2-D grey image.
    kernel : array_like or GaborKernel
        A complex kernel with odd sides.
    mode : {"reflect", "mirror", "nearest", "wrap", "constant"}
        How the image is extended past its border, with the names of
        ``scipy.ndimage`` (``"reflect"`` repeats the edge pixel: ``dcba|abcd|dcba``).
    cval : float
        Fill value for ``mode="constant"``.

    Returns
    -------
    numpy.ndarray
        A float64 array with the shape of ``image``.

    Examples
    --------
    >>> stripes = np.tile([0.0, 1.0], (8, 4))  # vertical stripes, period 2
    >>> along = gabor_magnitude(stripes, gabor_kernel(frequency=0.5, sigma=1.0))
    >>> across = gabor_magnitude(stripes, gabor_kernel(frequency=0.5, theta=np.pi / 2, sigma=1.0))
    >>> bool(along.mean() > 10 * across.mean())
    True
    """
    from scipy.signal import fftconvolve

    img = array("image", image, ndim=2, dtype_kind="biuf").astype(float)
    ker = _kernel_array(kernel)
    mode = one_of("mode", mode, GABOR_MODES)
    widths = [(k // 2, k // 2) for k in ker.shape]
    extra = {"constant_values": float(cval)} if mode == "constant" else {}
    padded = np.pad(img, widths, mode=_NP_PAD_MODE[mode], **extra)
    return np.abs(fftconvolve(padded, ker, mode="valid"))


def gabor_features(
    images: np.ndarray,
    *,
    bank: Sequence[GaborKernel | np.ndarray],
    mode: str = "reflect",
    standardize: bool = True,
) -> np.ndarray:
    """Describe each image by the mean and spread of its Gabor response magnitudes.

    Parameters
    ----------
    images : array_like
        A stack of grey images, shape (N, H, W).
    bank : sequence of GaborKernel or complex arrays
        The kernels, for example from :func:`gabor_bank`.
    mode : str
        Border handling, see :func:`gabor_magnitude`.
    standardize : bool
        Rescale each image to mean 0 and standard deviation 1 first, so the
        features describe texture rather than brightness and contrast.

    Returns
    -------
    numpy.ndarray
        Shape (N, 2 * len(bank)): column ``2k`` is the mean and column
        ``2k + 1`` the standard deviation of the magnitude for kernel ``k``.

    Examples
    --------
    >>> bank = gabor_bank(thetas=[0, np.pi / 2], frequencies=[0.25], sigmas=[2])
    >>> rng = np.random.default_rng(0)
    >>> feats = gabor_features(rng.random((3, 16, 16)), bank=bank)
    Gabor features: 3/3 done in ... s
    >>> feats.shape
    (3, 4)
    """
    stack = array("images", images, ndim=3, dtype_kind="biuf").astype(float)
    if isinstance(bank, (np.ndarray, GaborKernel)) or not isinstance(bank, Sequence) or not bank:
        raise TypeError("bank must be a non-empty list of Gabor kernels")
    kernels = [_kernel_array(k) for k in bank]
    mode = one_of("mode", mode, GABOR_MODES)
    features = np.empty((len(stack), 2 * len(kernels)))
    for i, image in enumerate(progress(stack, desc="Gabor features")):
        if standardize:
            image = (image - image.mean()) / (image.std() or 1.0)
        for k, kernel in enumerate(kernels):
            magnitude = gabor_magnitude(image, kernel, mode=mode)
            features[i, 2 * k : 2 * k + 2] = magnitude.mean(), magnitude.std()
    return features


# --------------------------------------------------------------------------- textures


@dataclass(frozen=True)
class TexturePatches:
    """Patches cut from texture photos, with train and test from disjoint halves.

    Attributes
    ----------
    train_images, test_images : numpy.ndarray
        Float64 patches in [0, 1], shape (n, patch_size, patch_size).
    train_labels, test_labels : numpy.ndarray
        Integer class indices into ``class_names``.
    train_origins, test_origins : numpy.ndarray
        Top-left corner (row, col) of each patch in its source photo.
    class_names : tuple of str
        The texture names, in label order.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    train_origins: np.ndarray
    test_origins: np.ndarray
    class_names: tuple[str, ...]


def _cut_patches(
    photo: np.ndarray, rows: tuple[int, int], size: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``n`` random size x size patches whose rows all lie in ``rows``."""
    top = rng.integers(rows[0], rows[1] - size + 1, size=n)
    left = rng.integers(0, photo.shape[1] - size + 1, size=n)
    patches = np.stack([photo[r : r + size, c : c + size] for r, c in zip(top, left, strict=True)])
    return patches, np.stack([top, left], axis=1)


def texture_patches(
    *, patch_size: int = 32, n_per_image: int = 20, seed: int = 0
) -> TexturePatches:
    """Cut labelled texture patches from scikit-image's brick, grass and gravel photos.

    Each 512x512 photo is split into a top half (rows 0-255), where the training
    patches are cut, and a bottom half (rows 256-511) for the test patches, so
    no pixel is shared between a training and a test patch.  Inside a half the
    patches are placed at random and may overlap each other.  The photos ship
    with scikit-image, so this works offline.

    Parameters
    ----------
    patch_size : int
        Side of the square patches, at most 256.
    n_per_image : int
        Patches per photo in each split.
    seed : int
        Seed of the random patch positions.

    Returns
    -------
    TexturePatches
        ``3 * n_per_image`` training and as many test patches, grouped by class.

    Examples
    --------
    >>> data = texture_patches(patch_size=16, n_per_image=2, seed=0)
    >>> data.train_images.shape, data.test_labels.tolist()
    ((6, 16, 16), [0, 0, 1, 1, 2, 2])
    >>> data.class_names
    ('brick', 'grass', 'gravel')
    """
    from skimage import data as skdata
    from skimage.util import img_as_float

    patch_size = positive_int("patch_size", patch_size)
    n_per_image = positive_int("n_per_image", n_per_image)
    rng = np.random.default_rng(non_negative_int("seed", seed))
    photos = [img_as_float(getattr(skdata, name)()) for name in TEXTURES]
    half = min(p.shape[0] for p in photos) // 2
    if patch_size > half:
        raise ValueError(f"patch_size must be at most {half} (half a photo), got {patch_size}")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("xtr", "otr", "xte", "ote")}
    for photo in photos:
        for split, rows in (("tr", (0, half)), ("te", (half, 2 * half))):
            patches, origins = _cut_patches(photo, rows, patch_size, n_per_image, rng)
            parts["x" + split].append(patches)
            parts["o" + split].append(origins)
    labels = np.repeat(np.arange(len(TEXTURES)), n_per_image)
    return TexturePatches(
        train_images=np.concatenate(parts["xtr"]),
        train_labels=labels,
        test_images=np.concatenate(parts["xte"]),
        test_labels=labels.copy(),
        train_origins=np.concatenate(parts["otr"]),
        test_origins=np.concatenate(parts["ote"]),
        class_names=TEXTURES,
    )
