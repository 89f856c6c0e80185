"""The robust z-score detector: the baseline every anomaly model is judged against, publishable itself.

A row's score is its largest robust z-score over the features, ``max_j |x_j - median_j| / scale_j``,
where ``scale_j`` is 1.4826 x the median absolute deviation (the standard deviation for normal data,
unmoved by the outliers it is meant to find), or the standard deviation where the MAD is 0 (a
mostly-constant column), or 1 where both are. On labelled data it often beats the tree detectors (one
feature far out is what many anomalies are), so ``estimator = "auto"`` ranks it beside them, and when it
wins it is served like any detector: its ONNX graph is five operators (training/estimators/converters.py).

It follows scikit-learn's outlier-detector convention: ``score_samples`` is the negated largest z-score,
``decision_function = score_samples - offset_`` with ``offset_ = -cutoff``, and ``predict`` says -1
(outlier) where the decision function is negative, i.e. beyond ``cutoff`` (3.5, Iglewicz and Hoaglin's
rule for the modified z-score). The service's score is the negated decision function, ``max z - cutoff``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

MAD_TO_SIGMA = 1.4826
"""1 / Phi^-1(3/4): the MAD of normal data times this is its standard deviation."""


class RobustZScore(OutlierMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn is untyped
    """Largest per-feature robust z-score; outlier beyond ``cutoff``."""

    def __init__(self, cutoff: float = 3.5) -> None:
        self.cutoff = cutoff

    def fit(self, X: Any, y: Any = None) -> RobustZScore:
        features = validate_data(self, X, dtype=np.float64)
        self.median_ = np.median(features, axis=0)
        mad = MAD_TO_SIGMA * np.median(np.abs(features - self.median_), axis=0)
        spread = features.std(axis=0)
        self.scale_ = np.where(mad > 0, mad, np.where(spread > 0, spread, 1.0))
        self.offset_ = -float(self.cutoff)
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """The negated largest robust z-score of each row: lower is more abnormal."""
        check_is_fitted(self)
        features = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(-np.max(np.abs(features - self.median_) / self.scale_, axis=1), dtype=np.float64)

    def decision_function(self, X: Any) -> np.ndarray:
        """``cutoff`` minus the largest z-score: negative for an outlier."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        return np.where(self.decision_function(X) < 0, -1, 1)
