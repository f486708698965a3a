import numpy as np
import pytest

from stages.evaluate import class_probabilities, compute_metrics, confusion_rows, roc_points


def test_binary_metrics_from_sigmoid_outputs():
    y_true = np.array([0, 0, 1, 1])
    probs = class_probabilities(np.array([[0.1], [0.6], [0.8], [0.4]]))
    assert probs.shape == (4, 2)
    scores = compute_metrics(y_true, probs)
    assert scores["accuracy"] == 0.5
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5
    assert scores["roc_auc"] == pytest.approx(0.75)
    assert scores["n_test"] == 4 and scores["loss"] > 0


def test_perfect_multiclass_metrics():
    y_true = np.array([0, 1, 2, 2])
    probs = np.eye(3)[y_true] * 0.9 + 0.1 / 3
    scores = compute_metrics(y_true, probs)
    assert scores["accuracy"] == scores["f1"] == scores["roc_auc"] == 1.0
    assert len(roc_points(y_true, probs)) >= 2


def test_confusion_rows_use_class_names():
    rows = confusion_rows(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]), ["cats", "dogs"])
    assert rows.to_dict("list") == {"actual": ["cats", "dogs"], "predicted": ["cats", "cats"]}
