"""Turns a validated feature matrix into anomaly scores and 0/1 predictions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class ScoringEstimator(Protocol):
    """Any fitted scikit-learn outlier detector: higher ``score_samples`` means more normal."""

    n_features_in_: int

    def score_samples(self, X: Any) -> Any: ...


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray
    scores: np.ndarray


class Predictor:
    """Scores rows with a fitted estimator; ``score >= threshold`` is an anomaly.

    The score is the negated ``score_samples`` of the estimator: for an IsolationForest
    that is the anomaly score of the original paper, in (0, 1], higher meaning more anomalous.
    """

    def __init__(self, estimator: ScoringEstimator, threshold: float) -> None:
        self.estimator = estimator
        self.threshold = float(threshold)

    def predict(self, features: np.ndarray) -> Prediction:
        scores = -np.asarray(self.estimator.score_samples(features), dtype=np.float64)
        labels = (scores >= self.threshold).astype(np.int64)
        return Prediction(labels=labels, scores=scores)
