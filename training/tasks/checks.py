"""The training config checked against what its schema (training/config.py) cannot know alone: the
estimators (training/estimators/families.py) and each task's metrics. Runs read their config here, so
an unknown estimator, a parameter it does not take, an estimator of another task and a metric that
does not fit the task are refused while the config is validated, before any data is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import (
    DEFAULT_CONFIG_PATH,
    ModelConfig,
    TrainingConfig,
    config_from,
    read_config,
)
from training.estimators.families import AUTO, build_estimator, check_auto, check_params, estimator_class
from training.tasks import task_kind


class _EstimatorsAndTasks:
    """config.ConfigChecks, from the estimator families and the task kinds."""

    def check_model(self, model: ModelConfig) -> None:
        if model.estimator == AUTO:
            check_auto(model)
        else:
            build_estimator(model)

    def check_config(self, config: TrainingConfig) -> None:
        kind = task_kind(config.model.task)
        checks = (
            ("tuning.metric", config.tuning.metric, kind.tuning_metrics),
            ("promotion.metric", config.promotion.metric, kind.metrics),
        )
        for where, metric, allowed in checks:
            if metric is not None and metric not in allowed:
                raise ValueError(
                    f"{where} {metric!r} does not fit a {config.model.task} model:"
                    f" use one of {', '.join(allowed)}"
                )
        if config.tuning.space and config.model.estimator == AUTO:
            raise ValueError(
                'tuning.space: estimator = "auto" tunes the chosen estimator over its own space; name an'
                " estimator to search yours"
            )
        if config.tuning.space:
            check_params(estimator_class(config.model), config.tuning.space, "tuning.space")


CHECKS = _EstimatorsAndTasks()


def load_config(path: str | Path = DEFAULT_CONFIG_PATH) -> TrainingConfig:
    """Read and validate a TOML config, estimator and metrics included; raises ConfigError with the reason."""
    return read_config(path, CHECKS)


def validate_config(raw: dict[str, Any]) -> TrainingConfig:
    """A config from a table (merged task defaults, a recorded config), checked as ``load_config`` checks.

    Raises pydantic's ValidationError, or ConfigError from the estimator checks.
    """
    return config_from(raw, CHECKS)
