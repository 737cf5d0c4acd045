"""Tests for lessonlib.analysis: error tables, galleries and the embedding map."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import confusion_matrix

from lessonlib import analysis

RNG_SEED = 31
CLASSES = ("a", "b", "c", "d")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def predictions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, random probabilities and their argmax for 40 images of 4 classes."""
    rng = np.random.default_rng(RNG_SEED)
    y = np.repeat(np.arange(4), 10)
    logits = rng.normal(size=(40, 4)) + 2.0 * np.eye(4)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs, probs.argmax(1)


@pytest.fixture
def pictures() -> np.ndarray:
    return np.random.default_rng(RNG_SEED).integers(0, 256, (40, 6, 6, 3), dtype=np.uint8)


def test_most_confused_and_errors_per_class_match_the_confusion_matrix(predictions):
    y, _, pred = predictions
    cm = confusion_matrix(y, pred, labels=range(4))
    off = cm - np.diag(np.diag(cm))
    top = analysis.most_confused(y, pred, classes=CLASSES, k=3)
    assert top[0][2] == off.max()
    assert [n for *_, n in top] == sorted(off.ravel(), reverse=True)[: len(top)]
    for true, guess, n in top:
        assert off[CLASSES.index(true), CLASSES.index(guess)] == n
    errors = analysis.errors_per_class(y, pred, classes=CLASSES)
    assert list(errors) == list(CLASSES)
    assert list(errors.values()) == off.sum(1).tolist()


def test_most_confused_without_errors_is_empty():
    assert analysis.most_confused([0, 1], [0, 1], classes=("x", "y")) == []


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([0, 1], [0, 2]), ValueError, "y_pred must hold class indices"),
        (([0, 1], [0, 1, 1]), ValueError, "y_pred must have the shape"),
        (([0.0, 1.0], [0, 1]), TypeError, "y_true must have a numeric dtype"),
    ],
)
def test_label_checks(args, error, match):
    with pytest.raises(error, match=match):
        analysis.errors_per_class(*args, classes=("x", "y"))


def test_classes_must_be_a_sequence_of_names():
    with pytest.raises(TypeError, match="classes must be"):
        analysis.errors_per_class([0], [0], classes="ab")
    with pytest.raises(TypeError, match="classes must be"):
        analysis.errors_per_class([0], [0], classes=())


def test_plot_confusions_one_panel_per_split(predictions):
    y, _, pred = predictions
    fig = analysis.plot_confusions({"train": (y, pred), "test": (y[:8], y[:8])}, classes=CLASSES,
                                   title="t")  # fmt: skip
    titles = [ax.get_title() for ax in fig.axes]
    assert (
        titles[0].startswith("train: 40 images") and titles[1] == "test: 8 images, accuracy 100.0%"
    )
    assert len(fig.axes[0].texts) == 16  # counts printed in every cell
    many = tuple(str(i) for i in range(13))
    fig = analysis.plot_confusions({"x": (np.arange(13), np.arange(13))}, classes=many)
    assert len(fig.axes[0].texts) == 0  # too many classes: colours only
    with pytest.raises(TypeError, match="splits must be"):
        analysis.plot_confusions({}, classes=CLASSES)


def test_montage_places_tiles_row_by_row():
    tiles = np.stack([np.full((2, 3), v, np.uint8) for v in (0, 51, 102)])
    out = analysis.montage(tiles, ncols=2, pad=1)
    assert out.shape == (5, 7)
    assert np.allclose(out[:2, :3], 0) and np.allclose(out[:2, 4:], 0.2)
    assert np.allclose(out[3:, :3], 0.4) and np.allclose(out[3:, 4:], 1.0)  # empty slot: white
    assert np.allclose(out[2], 1.0) and np.allclose(out[:, 3], 1.0)  # padding: white
    assert analysis.montage(np.zeros((2, 4, 4, 3)), ncols=5).shape == (4, 10, 3)


def test_plot_misclassified_draws_every_wrong_prediction(predictions, pictures):
    y, _, pred = predictions
    wrong = np.flatnonzero(pred != y)
    fig = analysis.plot_misclassified(pictures, y, pred, classes=CLASSES, ncols=4)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[1::2] == [CLASSES[p] for p in pred[wrong]]  # bold: the prediction
    assert texts[0::2] == [CLASSES[t] for t in y[wrong]]  # small: the true class
    assert str(len(wrong)) in fig.axes[0].get_title()
    fig = analysis.plot_misclassified(pictures, y, pred, classes=CLASSES, max_images=2)
    assert len(fig.axes[0].texts) == 4


def test_plot_misclassified_without_errors_and_bad_lengths(pictures):
    fig = analysis.plot_misclassified(pictures[:2], [0, 1], [0, 1], classes=CLASSES)
    assert fig.axes[0].texts[0].get_text() == "no misclassified images"
    with pytest.raises(ValueError, match="one entry per label"):
        analysis.plot_misclassified(pictures, [0, 1], [0, 1], classes=CLASSES)


def test_top_confident_matches_sorting_each_column(predictions):
    _, probs, _ = predictions
    top = analysis.top_confident(probs, k=5)
    assert top.shape == (4, 5)
    for c in range(4):
        assert np.array_equal(top[c], np.argsort(-probs[:, c], kind="stable")[:5])
    with pytest.raises(ValueError, match="k must be at most the 40 images"):
        analysis.top_confident(probs, k=41)
    with pytest.raises(ValueError, match="probs must hold probabilities"):
        analysis.top_confident(probs * 2, k=1)


def test_plot_top_confident_one_row_per_class(predictions, pictures):
    y, probs, _ = predictions
    fig = analysis.plot_top_confident(pictures, probs, classes=CLASSES, y_true=y, k=3)
    assert len(fig.axes) == 12
    assert [fig.axes[3 * c].get_ylabel() for c in range(4)] == list(CLASSES)
    top = analysis.top_confident(probs, k=3)
    for c in range(4):
        for j, i in enumerate(top[c]):
            title = fig.axes[3 * c + j].get_title()
            assert title.startswith(f"p={probs[i, c]:.2f}")
            assert ("true:" in title) == (y[i] != c)
    with pytest.raises(ValueError, match="one column per class"):
        analysis.plot_top_confident(pictures, probs, classes=CLASSES[:3])


def test_most_wrong_orders_by_true_or_rival_probability(predictions):
    y, probs, pred = predictions
    for label in range(4):
        idx = analysis.most_wrong(probs, y, label=label, k=40)
        assert set(idx) == set(np.flatnonzero((y == label) & (pred != label)))
        assert np.all(np.diff(probs[idx, label]) >= 0)
        rival = analysis.most_wrong(probs, y, label=label, k=40, toward=(label + 1) % 4)
        assert set(rival) == set(idx) and np.all(np.diff(probs[rival, (label + 1) % 4]) <= 0)
    assert len(analysis.most_wrong(probs, y, label=0, k=1)) <= 1
    with pytest.raises(ValueError, match="label must be < 4"):
        analysis.most_wrong(probs, y, label=4)
    with pytest.raises(ValueError, match="toward must be < 4"):
        analysis.most_wrong(probs, y, label=0, toward=9)
    with pytest.raises(ValueError, match="one row per image"):
        analysis.most_wrong(probs[:5], y, label=0)


def test_plot_predictions_titles(predictions, pictures):
    y, probs, pred = predictions
    fig = analysis.plot_predictions(pictures, probs, y, [0, 5], classes=CLASSES, title="x")
    for ax, i in zip(fig.axes, [0, 5], strict=True):
        true_line, pred_line = ax.get_title().split("\n")
        assert true_line == f"true {CLASSES[y[i]]}: {probs[i, y[i]]:.2f}"
        assert pred_line == f"pred {CLASSES[pred[i]]}: {probs[i, pred[i]]:.2f}"
    empty = analysis.plot_predictions(pictures, probs, y, [], classes=CLASSES)
    assert empty.axes[0].texts[0].get_text() == "no images to show"


def test_pca_embedding_matches_scikit_learn():
    x = np.random.default_rng(RNG_SEED).normal(size=(50, 8)) @ np.diag(np.arange(1, 9))
    coords, explained = analysis.pca_embedding(x, n_components=3)
    ref = PCA(n_components=3).fit(x)
    assert np.allclose(explained, ref.explained_variance_ratio_)
    assert np.allclose(np.abs(coords), np.abs(ref.transform(x)), atol=1e-8)
    with pytest.raises(ValueError, match="n_components must be at most 8"):
        analysis.pca_embedding(x, n_components=9)


def test_centre_distances_known_answer():
    pts = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [0.0, 3.0]])
    labels = [0, 1, 2, 3]
    pairs = analysis.closest_classes(pts, labels, classes=CLASSES, k=2)
    assert pairs == [("a", "b", 2.0), ("a", "d", 3.0)]
    dist = analysis.nearest_centre_distances(pts, labels, classes=CLASSES)
    assert dist == {"a": 2.0, "b": 2.0, "c": 8.0, "d": 3.0}
    with pytest.raises(ValueError, match="at least two classes"):
        analysis.nearest_centre_distances(pts[:1], [0], classes=CLASSES)
    with pytest.raises(ValueError, match="one entry per row"):
        analysis.closest_classes(pts, [0, 1], classes=CLASSES)


def test_plot_embedding_names_each_class_at_its_centre():
    pts = np.array([[0.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    fig = analysis.plot_embedding(pts, [0, 0, 2], classes=("x", "y", "z"), title="map")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["x", "z"]  # class "y" has no points
    assert ax.texts[0].get_position() == (0.0, 1.0)
    assert ax.get_xlabel() == "PC 1" and ax.get_title() == "map"
    with pytest.raises(ValueError, match="at least 2 columns"):
        analysis.plot_embedding(pts[:, :1], [0, 0, 2], classes=("x", "y", "z"))
