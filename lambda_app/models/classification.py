"""Classifiers: the class label as it was in the training data, and each class's probability.

Graph outputs: ``label`` (rows,) of int64 or string, and ``probabilities`` (rows, n_classes) in the
order of the manifest's ``classes``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lambda_app.models.base import FLOAT_JSON_BYTES, MetricValue, OnnxModel
from lambda_app.registry import ClassLabel, Manifest, Task

MAX_CLASS_METRICS = 20
"""Per-class counts are reported for at most this many classes; the rest are summed as 'other'."""


@dataclass(frozen=True)
class ClassPrediction:
    labels: list[ClassLabel]
    probabilities: np.ndarray
    keys: list[str]  # the classes as JSON object keys, in probability-column order
    metric_names: dict[str, str]  # class key -> metric name

    @property
    def rows(self) -> int:
        return len(self.labels)

    def finite(self) -> bool:
        return bool(np.isfinite(self.probabilities).all())

    def fields(self) -> dict[str, Any]:
        keys = self.keys
        return {
            "predictions": self.labels,
            "probabilities": [dict(zip(keys, row, strict=True)) for row in self.probabilities.tolist()],
        }

    def metrics(self) -> list[MetricValue]:
        counts: Counter[str] = Counter()
        for label, count in Counter(self.labels).items():  # counted in C, then named per class
            counts[self.metric_names.get(str(label), "PredictedClass_other")] += count
        figures = [MetricValue(name, "Count", float(value)) for name, value in counts.items()]
        top = float(self.probabilities.max(axis=1).mean()) if self.rows else 0.0
        figures.append(MetricValue("TopProbabilityMean", "None", round(top, 6)))
        return figures

    def columns(self) -> dict[str, Any]:
        columns: dict[str, Any] = {"prediction": self.labels}
        for index, key in enumerate(self.keys):
            columns[f"probability_{key}"] = self.probabilities[:, index]
        return columns

    def tally(self) -> dict[str, float]:
        return {f"class {label}": float(count) for label, count in Counter(self.labels).items()}


def metric_name(key: str) -> str:
    """A CloudWatch-safe metric name for a class."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)[:64]
    return f"PredictedClass_{safe}"


class ClassificationPredictor(OnnxModel):
    task: ClassVar[Task] = "classification"
    outputs = ("label", "probabilities")

    def __init__(self, session: Any, manifest: Manifest) -> None:
        super().__init__(session, manifest)
        assert manifest.classes is not None  # the manifest's validator guarantees it
        self.classes = list(manifest.classes)
        self._keys = [str(c) for c in self.classes]
        self._metric_names = {key: metric_name(key) for key in self._keys[:MAX_CLASS_METRICS]}
        # Each key and string label is quoted, and Lambda's response escapes every quote once more.
        longest_label = max(len(json.dumps(c)) * 2 for c in self.classes)
        per_class = sum(len(json.dumps(key)) * 2 + 1 + FLOAT_JSON_BYTES + 1 for key in self._keys)
        self._row_bytes = longest_label + 1 + 2 + per_class

    def predict(self, features: np.ndarray) -> ClassPrediction:
        labels, probabilities = self.run(features)
        # int64 labels become ints, string labels (an object array) strs: the classes as trained.
        return ClassPrediction(
            labels=labels.reshape(-1).tolist(),
            probabilities=probabilities.astype(np.float64),
            keys=self._keys,
            metric_names=self._metric_names,
        )

    def max_row_bytes(self) -> int:
        return self._row_bytes
