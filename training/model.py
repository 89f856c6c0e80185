"""Estimator construction from the training config: no code edits to change the model."""

from __future__ import annotations

from typing import Any

from training.config import ModelConfig
from training.exceptions import ConfigError


def build_estimator(config: ModelConfig) -> Any:
    """An unfitted scikit-learn outlier detector; distance-based ones get a scaler in front.

    Every supported estimator has ``score_samples`` (higher = more normal), which is all
    the service uses.
    """
    from sklearn.covariance import EllipticEnvelope
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    params = dict(config.params)
    try:
        if config.estimator == "isolation_forest":
            return IsolationForest(**params)
        if config.estimator == "local_outlier_factor":
            params.setdefault("novelty", True)
            return make_pipeline(StandardScaler(), LocalOutlierFactor(**params))
        if config.estimator == "one_class_svm":
            return make_pipeline(StandardScaler(), OneClassSVM(**params))
        return make_pipeline(StandardScaler(), EllipticEnvelope(**params))
    except TypeError as exc:
        raise ConfigError(f"model.params for {config.estimator}: {exc}") from exc


def estimator_name(estimator: Any) -> str:
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    return f"{type(final).__module__.split('._')[0]}.{type(final).__name__}"
