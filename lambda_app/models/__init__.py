"""Model kinds: one place that turns a verified manifest and its serving graph into a predictor.

Adding a task adds a module here (a predictor and its prediction) and an entry in PREDICTORS;
the route, the model store and the registry do not change. Training imports this package to
score exactly as the service does (the promotion gate, drift reports, parity).
"""

from __future__ import annotations

from lambda_app.models.anomaly import AnomalyPrediction, AnomalyPredictor
from lambda_app.models.base import INPUT_NAME, MetricValue, OnnxModel, Prediction, Predictor
from lambda_app.models.classification import ClassificationPredictor, ClassPrediction
from lambda_app.models.regression import RegressionPrediction, RegressionPredictor
from lambda_app.registry import Manifest, ManifestError

PREDICTORS: dict[str, type[AnomalyPredictor | ClassificationPredictor | RegressionPredictor]] = {
    "anomaly": AnomalyPredictor,
    "classification": ClassificationPredictor,
    "regression": RegressionPredictor,
}

# The graph's output names, per task: what training must produce.
OUTPUT_NAMES = {task: cls.outputs for task, cls in PREDICTORS.items()}


def build_predictor(manifest: Manifest, serving_graph: bytes, threads: int = 1) -> Predictor:
    """The predictor for ``manifest.task``, its session built once; raises ManifestError on a mismatch."""
    try:
        kind = PREDICTORS[manifest.task]
    except KeyError:  # pragma: no cover - the manifest schema admits only known tasks
        raise ManifestError(f"no predictor for task {manifest.task!r}") from None
    return kind(OnnxModel.session(serving_graph, threads), manifest)


__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAMES",
    "PREDICTORS",
    "AnomalyPrediction",
    "AnomalyPredictor",
    "ClassPrediction",
    "ClassificationPredictor",
    "MetricValue",
    "OnnxModel",
    "Prediction",
    "Predictor",
    "RegressionPrediction",
    "RegressionPredictor",
    "build_predictor",
]
