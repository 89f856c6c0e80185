"""The training config file's schema (TOML), validated once at start-up."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from training.exceptions import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("config.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    features: list[str] = Field(min_length=1)
    label: str | None = "label"

    @model_validator(mode="after")
    def _distinct(self) -> DataConfig:
        if len(set(self.features)) != len(self.features):
            raise ValueError("features must be distinct")
        if self.label in self.features:
            raise ValueError("the label cannot also be a feature")
        return self


class SplitConfig(_Section):
    validation_fraction: float = Field(default=0.2, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0, lt=0.5)
    seed: int = 42


class ModelConfig(_Section):
    estimator: Literal["isolation_forest", "local_outlier_factor", "one_class_svm", "elliptic_envelope"] = (
        "isolation_forest"
    )
    params: dict[str, Any] = Field(default_factory=dict)


class ThresholdConfig(_Section):
    strategy: Literal["max_f1", "quantile"] = "max_f1"
    quantile: float = Field(default=0.97, gt=0, lt=1)


class TuningConfig(_Section):
    enabled: bool = True
    budget: int = Field(default=8, ge=1, le=200)
    folds: int = Field(default=3, ge=2, le=10)
    metric: Literal["pr_auc", "roc_auc"] = "pr_auc"
    seed: int = 42
    space: dict[str, list[Any]] = Field(default_factory=dict)


class EvaluationConfig(_Section):
    beat_baseline: bool = True  # refuse to publish a model that the robust z-score baseline beats


class PromotionConfig(_Section):
    metric: Literal["pr_auc", "roc_auc", "f1", "precision", "recall"] = "pr_auc"
    margin: float = Field(default=0.01, ge=0, le=1)


class DriftConfig(_Section):
    psi_threshold: float = Field(default=0.25, gt=0)


class TrainingConfig(_Section):
    name: str = "anomaly-detector"
    data: DataConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    threshold: ThresholdConfig = Field(default_factory=ThresholdConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)


def load_config(path: str | Path = DEFAULT_CONFIG_PATH) -> TrainingConfig:
    """Read and validate a TOML config; raises ConfigError with the reason."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    try:
        return TrainingConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"config {path}: {where}: {first['msg']}") from exc
