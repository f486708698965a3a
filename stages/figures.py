"""Figures logged to the MLflow run: training curves, confusion matrix, ROC and PR curves,
and a gallery of misclassified test images. Pure builders: data in, matplotlib Figure out.

DVC renders the same data from CSV with its own templates (`dvc plots show`); these PNGs
are for the MLflow UI, where runs are compared side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn import metrics as skm  # noqa: E402
from sklearn.preprocessing import label_binarize  # noqa: E402


def training_curves(history: pd.DataFrame) -> Figure:
    """Loss and accuracy per epoch, train vs validation."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for column, style in ((metric, "-o"), (f"val_{metric}", "--o")):
            if column in history:
                ax.plot(history["epoch"], history[column], style, label=column)
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> Figure:
    matrix = skm.confusion_matrix(y_true, y_pred, labels=list(range(len(classes))))
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 3, 1.2 * len(classes) + 2.5))
    skm.ConfusionMatrixDisplay(matrix, display_labels=list(classes)).plot(ax=ax, colorbar=False, cmap="Blues")
    ax.set_title("Test confusion matrix")
    fig.tight_layout()
    return fig


def _one_vs_rest(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]):
    """(name, truth, score) per curve: the positive class for 2 classes, every class otherwise."""
    if len(classes) == 2:
        return [(classes[1], (y_true == 1).astype(int), probs[:, 1])]
    onehot = label_binarize(y_true, classes=list(range(len(classes))))
    return [(name, onehot[:, i], probs[:, i]) for i, name in enumerate(classes)]


def roc_pr_curves(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> Figure:
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.5))
    for name, truth, score in _one_vs_rest(y_true, probs, classes):
        if truth.min() == truth.max():  # a class absent from the test split has no curve
            continue
        skm.RocCurveDisplay.from_predictions(truth, score, name=name, ax=roc_ax)
        skm.PrecisionRecallDisplay.from_predictions(truth, score, name=name, ax=pr_ax)
    roc_ax.plot([0, 1], [0, 1], ":", color="grey")
    roc_ax.set_title("ROC (test)")
    pr_ax.set_title("Precision-recall (test)")
    fig.tight_layout()
    return fig


def misclassified_gallery(
    files: Sequence[Path | str], y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str], limit: int = 16
) -> Figure:
    """The most confidently wrong test images, each titled true -> predicted (probability)."""
    y_pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    wrong = wrong[np.argsort(-probs[wrong, y_pred[wrong]])][:limit]
    columns = 4
    rows = max(1, int(np.ceil(len(wrong) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    if len(wrong) == 0:
        axes[0, 0].text(0, 0.5, "no misclassified test images", fontsize=12)
    for ax, index in zip(axes.ravel(), wrong, strict=False):  # spare axes stay blank
        with Image.open(files[index]) as image:
            ax.imshow(image.convert("RGB"))
        ax.set_title(f"{classes[y_true[index]]} -> {classes[y_pred[index]]}\n"
                     f"p={probs[index, y_pred[index]]:.2f} {Path(files[index]).name}", fontsize=8)
    fig.suptitle(f"Misclassified test images ({(y_pred != y_true).sum()} of {len(y_true)})")
    fig.tight_layout()
    return fig


def augmentation_grid(originals: np.ndarray, variants: list[np.ndarray]) -> Figure:
    """One row per image: the original, then each augmented variant (uint8 arrays)."""
    rows, columns = len(originals), 1 + len(variants)
    fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2 * rows), squeeze=False)
    for row in range(rows):
        for column in range(columns):
            ax = axes[row, column]
            ax.imshow(originals[row] if column == 0 else variants[column - 1][row])
            ax.axis("off")
            if row == 0:
                ax.set_title("original" if column == 0 else f"augmented {column}", fontsize=9)
    if not variants:
        fig.suptitle("augmentation is off (augment.enabled: false)")
    fig.tight_layout()
    return fig
