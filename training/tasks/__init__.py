"""Model kinds on the training side: one TaskKind per task (see base.py for the hooks), and what every
run asks of the configured task: its metrics, its splits and its baseline gate."""

from __future__ import annotations

from typing import Any

import numpy as np

from training.config import TrainingConfig
from training.data.labels import class_codes
from training.data.validate import Dataset
from training.exceptions import TrainingError
from training.tasks.anomaly import AnomalyTask
from training.tasks.base import Outcome, Splits, TaskKind, better, parity_probe
from training.tasks.classification import ClassificationTask
from training.tasks.regression import RegressionTask

TASK_KINDS: dict[str, TaskKind] = {
    "anomaly": AnomalyTask(),
    "classification": ClassificationTask(),
    "regression": RegressionTask(),
}


def task_kind(task: str) -> TaskKind:
    return TASK_KINDS[task]


def gate_metric(config: TrainingConfig) -> str:
    """The metric promotion and the baseline gate compare on."""
    return config.promotion.metric or task_kind(config.model.task).default_metric


def tuning_metric(config: TrainingConfig) -> str:
    """[tuning] metric, else the task's first tuning metric."""
    return config.tuning.metric or task_kind(config.model.task).tuning_metrics[0]


def split_indices(dataset: Dataset, config: TrainingConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation / test row indices; stratified on the label where the task says so."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(dataset.rows)
    stratify = task_kind(config.model.task).stratify(dataset.labels)
    labels = None if stratify is None else class_codes(stratify)
    seed = config.split.seed
    rest, test = train_test_split(
        indices, test_size=config.split.test_fraction, random_state=seed, stratify=labels
    )
    fraction = config.split.validation_fraction / (1 - config.split.test_fraction)
    train, validation = train_test_split(
        rest,
        test_size=fraction,
        random_state=seed,
        stratify=None if stratify is None else labels[rest],  # type: ignore[index]
    )
    return train, validation, test


def gate_on_baseline(
    kind: TaskKind,
    config: TrainingConfig,
    metrics: dict[str, Any] | None,
    baseline: dict[str, Any] | None,
    baseline_name: str,
    allow: bool,
) -> None:
    """Refuse to publish a model that the task's baseline beats on the gate metric, or on the task's
    proper score (log loss, RMSE): one good number must not hide useless probabilities or predictions."""
    if not metrics or not baseline or not config.evaluation.beat_baseline or allow:
        return
    gates = [gate_metric(config)]
    if kind.proper_score and kind.proper_score not in gates:
        gates.append(kind.proper_score)
    for gate in gates:
        ours, theirs = metrics.get(gate), baseline.get(gate)
        if ours is None or theirs is None:
            continue
        if not better(gate, kind.lower_is_better, ours, theirs, 0.0):
            direction = "lower" if gate in kind.lower_is_better else "higher"
            raise TrainingError(
                f"the model's holdout {gate} {ours:.4f} is worse than the baseline ({baseline_name})'s"
                f" {theirs:.4f} ({direction} is better): not published (--allow-worse-than-baseline to"
                " override)"
            )


__all__ = [
    "TASK_KINDS",
    "Outcome",
    "Splits",
    "TaskKind",
    "better",
    "gate_metric",
    "gate_on_baseline",
    "parity_probe",
    "split_indices",
    "task_kind",
    "tuning_metric",
]
