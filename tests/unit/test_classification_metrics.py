"""Holdout metrics of a classifier whose classes do not sort as strings in their column order: numbers
(10 sorts before 9 as text) and a model file's classes named in the file's order."""

from __future__ import annotations

import numpy as np
import pytest

from training.tasks.classification import classification_metrics


@pytest.mark.parametrize(
    "classes", [[8, 9, 10], ["barolo", "grignolino", "barbera"]], ids=["numbers", "file-order"]
)
def test_log_loss_and_auc_read_each_probability_column_as_its_class(classes: list[object]) -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]])
    truth = np.array([classes[0], classes[1], classes[2], classes[0]], dtype=object)
    predicted = np.array([classes[i] for i in np.argmax(probabilities, axis=1)], dtype=object)
    metrics = classification_metrics(truth, predicted, probabilities, classes)  # type: ignore[arg-type]
    expected = -np.mean(np.log([0.7, 0.8, 0.6, 0.6]))
    assert metrics["log_loss"] == pytest.approx(expected)
    assert metrics["roc_auc"] == pytest.approx(1.0)  # every row's own class has its highest probability
    assert metrics["accuracy"] == 1.0
