"""evaluate: score the held-out test split once, write DVC metrics and plots, log them to MLflow.

Outputs: reports/metrics.json (accuracy, precision, recall, f1, roc_auc, loss on the test
split), reports/plots/confusion.csv (actual,predicted per image) and reports/plots/roc.csv.
For more than two classes, precision/recall/F1 are macro averages and ROC AUC is
one-vs-rest macro; the ROC curve is micro-averaged.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn import metrics as skm  # noqa: E402
from sklearn.preprocessing import label_binarize  # noqa: E402

from stages import paths, tracking  # noqa: E402
from stages.errors import PipelineError, run_main  # noqa: E402
from stages.files import atomic_path, write_json  # noqa: E402
from stages.manifest import read_manifest  # noqa: E402
from stages.params import Params, load_params  # noqa: E402


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """(n, classes) probabilities from the model's outputs (one sigmoid unit for 2 classes)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        return np.hstack([1.0 - outputs, outputs])
    return outputs


def compute_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    n_classes = probs.shape[1]
    y_pred = probs.argmax(axis=1)
    labels = list(range(n_classes))
    average = "binary" if n_classes == 2 else "macro"
    present = len(np.unique(y_true)) == n_classes  # AUC is undefined with a class missing
    if n_classes == 2:
        auc = skm.roc_auc_score(y_true, probs[:, 1]) if present else float("nan")
    else:
        auc = skm.roc_auc_score(y_true, probs, multi_class="ovr", labels=labels) if present else float("nan")
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, average=average, labels=labels, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, average=average, labels=labels, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, average=average, labels=labels, zero_division=0)),
        "roc_auc": float(auc),
        "loss": float(skm.log_loss(y_true, np.clip(probs, 1e-7, 1 - 1e-7), labels=labels)),
        "n_test": int(len(y_true)),
    }


def confusion_rows(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """One row per test image, in the shape DVC's confusion template reads."""
    return pd.DataFrame({"actual": [classes[i] for i in y_true],
                         "predicted": [classes[i] for i in probs.argmax(axis=1)]})


def roc_points(y_true: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    n_classes = probs.shape[1]
    if n_classes == 2:
        fpr, tpr, _ = skm.roc_curve(y_true, probs[:, 1])
    else:
        onehot = label_binarize(y_true, classes=list(range(n_classes)))
        fpr, tpr, _ = skm.roc_curve(onehot.ravel(), probs.ravel())
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def run(params: Params) -> dict[str, float]:
    import keras

    from stages.dataset import make_dataset
    from stages.train import split_files

    info = tracking.read_run_info()
    classes = info["classes"]
    manifest = read_manifest(paths.VALIDATED, produced_by="validate")
    files, y_true = split_files(manifest, "test", classes)
    if not files:
        raise PipelineError("the test split is empty: raise data.split.test or add images")
    model = keras.models.load_model(paths.MODEL)
    dataset = make_dataset(files, y_true, info["image_size"], params.train.batch_size)
    probs = class_probabilities(model.predict(dataset, verbose=0))
    y_true = np.asarray(y_true)

    scores = compute_metrics(y_true, probs)
    write_json(paths.METRICS, scores)
    for frame, target in ((confusion_rows(y_true, probs, classes), paths.CONFUSION),
                          (roc_points(y_true, probs), paths.ROC)):
        with atomic_path(target) as tmp:
            frame.to_csv(tmp, index=False)

    with tracking.resume_run():
        mlflow.log_metrics({f"test_{k}": v for k, v in scores.items()})
        for artifact in (paths.METRICS, paths.CONFUSION, paths.ROC, paths.HISTORY):
            mlflow.log_artifact(str(artifact), artifact_path="reports")
        log_figures(files, y_true, probs, classes)
    print("evaluate: " + ", ".join(f"{k}={v:.4g}" for k, v in scores.items()))
    return scores


def log_figures(files: list[str], y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> None:
    """The PNGs the MLflow UI shows for this run (DVC renders its own from the CSVs)."""
    import matplotlib.pyplot as plt

    from stages import figures

    made = {
        "plots/training_curves.png": figures.training_curves(pd.read_csv(paths.HISTORY)),
        "plots/confusion_matrix.png": figures.confusion_matrix(y_true, probs.argmax(axis=1), classes),
        "plots/roc_pr_curves.png": figures.roc_pr_curves(y_true, probs, classes),
        "plots/misclassified.png": figures.misclassified_gallery(files, y_true, probs, classes),
    }
    for name, figure in made.items():
        mlflow.log_figure(figure, name)
        plt.close(figure)


def main() -> None:
    run_main("evaluate", lambda: run(load_params()))


if __name__ == "__main__":
    main()
