"""XGBoost's classifier on the labels as they are in the data.

``xgboost.XGBClassifier`` only takes the classes 0..n-1 (``Invalid classes inferred from unique values
of y``), while every other classifier, the evaluation and the service answer the classes as trained
("yes"/"no", 3/5/7). This subclass numbers the classes for XGBoost and answers with them again, so
``classes_``, ``predict`` and the ONNX graph (onnxmltools writes ``classes_`` as the graph's class
labels) all speak the data's classes. Imported only when an XGBoost classifier is built: xgboost is a
training-side dependency.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xgboost import XGBClassifier as _XGBClassifier


class XGBClassifier(_XGBClassifier):
    """``xgboost.XGBClassifier`` fitted on class codes and answering the classes themselves."""

    def fit(self, X: Any, y: Any, **kwargs: Any) -> XGBClassifier:
        self.__dict__.pop("labels_", None)  # classes_ is XGBoost's 0..n-1 while it fits
        labels, codes = np.unique(np.asarray(y), return_inverse=True)
        super().fit(X, codes.reshape(-1), **kwargs)
        self.labels_ = labels
        return self

    @property
    def classes_(self) -> np.ndarray:
        labels = self.__dict__.get("labels_")
        return labels if labels is not None else np.arange(self.n_classes_)

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        codes = np.asarray(super().predict(X, **kwargs), dtype=np.int64)
        return np.asarray(self.classes_)[codes]
