"""Regressors: one number per row.

Graph output: ``prediction`` (rows,) or (rows, 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lambda_app.models.base import FLOAT_JSON_BYTES, MetricValue, OnnxModel
from lambda_app.registry import Task


@dataclass(frozen=True)
class RegressionPrediction:
    values: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.values)

    def finite(self) -> bool:
        return bool(np.isfinite(self.values).all())

    def fields(self) -> dict[str, Any]:
        return {"predictions": self.values.tolist()}

    def metrics(self) -> list[MetricValue]:
        mean = float(self.values.mean()) if self.rows else 0.0
        return [MetricValue("PredictionMean", "None", mean)]

    def columns(self) -> dict[str, Any]:
        return {"prediction": self.values}

    def tally(self) -> dict[str, float]:
        return {"prediction sum": float(self.values.sum())}


class RegressionPredictor(OnnxModel):
    task: ClassVar[Task] = "regression"
    outputs = ("prediction",)

    def predict(self, features: np.ndarray) -> RegressionPrediction:
        (values,) = self.run(features)
        return RegressionPrediction(values=values.reshape(-1).astype(np.float64))

    def max_row_bytes(self) -> int:
        return FLOAT_JSON_BYTES + 1
