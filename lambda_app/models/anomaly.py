"""Anomaly detectors: ``score >= threshold`` is an anomaly (1), anything else normal (0).

Graph outputs: ``score`` (rows,), higher is more anomalous. For an IsolationForest it is the
original paper's score in (0, 1] (the compact graph of training/estimators/convert.py); for the other
detectors it is the negated decision function, whose scale the manifest's ``score`` states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lambda_app.models.base import FLOAT_JSON_BYTES, MetricValue, OnnxModel
from lambda_app.registry import Manifest, Task


@dataclass(frozen=True)
class AnomalyPrediction:
    labels: np.ndarray
    scores: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.labels)

    def finite(self) -> bool:
        return bool(np.isfinite(self.scores).all())

    def fields(self) -> dict[str, Any]:
        return {"predictions": self.labels.tolist(), "scores": self.scores.tolist()}

    def metrics(self) -> list[MetricValue]:
        return [MetricValue("Anomalies", "Count", float(self.labels.sum()))]

    def columns(self) -> dict[str, Any]:
        return {"prediction": self.labels, "score": self.scores}

    def tally(self) -> dict[str, float]:
        return {"anomalies": float(self.labels.sum())}


class AnomalyPredictor(OnnxModel):
    task: ClassVar[Task] = "anomaly"
    outputs = ("score",)

    def __init__(self, session: Any, manifest: Manifest) -> None:
        super().__init__(session, manifest)
        assert manifest.threshold is not None  # the manifest's validator guarantees it
        self.threshold = float(manifest.threshold)

    def predict(self, features: np.ndarray) -> AnomalyPrediction:
        (scores,) = self.run(features)
        scores = scores.reshape(-1).astype(np.float64)
        return AnomalyPrediction(labels=(scores >= self.threshold).astype(np.int64), scores=scores)

    def max_row_bytes(self) -> int:
        return len("0,") + FLOAT_JSON_BYTES + 1
