"""Model kinds on the training side: one TaskKind per task (see base.py for the hooks)."""

from __future__ import annotations

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


__all__ = ["TASK_KINDS", "Outcome", "Splits", "TaskKind", "better", "parity_probe", "task_kind"]
