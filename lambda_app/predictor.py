"""Turns a validated feature matrix into anomaly scores and 0/1 predictions.

The model is the compact ONNX graph training compiles from the scikit-learn forest
(training/compile.py): one C++ tree-ensemble pass, no scikit-learn or scipy at serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

INPUT_NAME = "features"
OUTPUT_NAME = "score"


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray
    scores: np.ndarray


class Predictor:
    """Scores rows with an ONNX Runtime session; ``score >= threshold`` is an anomaly.

    The score is the anomaly score of the original Isolation Forest paper, in (0, 1],
    higher meaning more anomalous (``-IsolationForest.score_samples``).
    """

    def __init__(self, session: Any, threshold: float) -> None:
        self._session = session
        self.threshold = float(threshold)

    @classmethod
    def from_onnx(cls, model: bytes, threshold: float, threads: int = 1) -> Predictor:
        """Build the session once per container; ``threads`` should match the function's vCPUs."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        return cls(session, threshold)

    def input_shapes(self) -> list[list[Any]]:
        return [list(node.shape) for node in self._session.get_inputs()]

    def predict(self, features: np.ndarray) -> Prediction:
        inputs = {INPUT_NAME: features.astype(np.float32, copy=False)}
        scores = self._session.run([OUTPUT_NAME], inputs)[0].astype(np.float64)
        labels = (scores >= self.threshold).astype(np.int64)
        return Prediction(labels=labels, scores=scores)
