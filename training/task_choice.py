"""Which task a run trains, when the user names a label but not a task.

``python -m training --data my.csv --label churned`` must not train an anomaly detector that uses
``churned`` as a feature, nor one that fails a gate with a message about PR-AUC. The label's values
decide where they can: text, or a few whole numbers -> classification; other numbers -> regression.
0/1 (or true/false) is the one ambiguous case: a detector learns what normal rows look like and flags
the rest (labels only judge it), a classifier learns both classes from examples. It asks, naming both.

A task chosen this way (or with ``--task``) takes the built-in config of its task
(``training/configs/<task>.toml``: estimator, tuning space, metrics) with the user's ``[data]``
section; a config file that sets another task or an estimator of another task is a conflict, said so.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from lambda_app.registry import Task
from training.config import DEFAULT_CONFIG_PATH, TrainingConfig
from training.data.features import missing_mask
from training.exceptions import ConfigError, DataValidationError
from training.tasks.checks import load_config, validate_config

log = logging.getLogger("training")

TASK_CONFIGS = Path(__file__).with_name("configs")
MAX_CLASS_VALUES = 20
"""Whole-number labels with at most this many distinct values are classes (ratings, codes)."""
SAMPLE_ROWS = 100_000


def infer_task(column: pd.Series, name: str) -> Task:
    """The task a label column's values call for; DataValidationError when they cannot tell."""
    present = column[~missing_mask(column, category=True)].astype(str).str.strip()
    if present.empty:
        raise DataValidationError(f"label column '{name}' has no values")
    values = set(present.str.lower().unique().tolist())
    if values <= {"0", "1", "true", "false", "0.0", "1.0"}:
        raise DataValidationError(
            f"label column '{name}' holds 0/1: say which task it is. --task classification learns both"
            " classes from the examples (answers a class and its probability); --task anomaly learns what"
            " the normal rows look like and flags the rest (1 = anomaly; the labels only judge it)"
        )
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().any():
        return "classification"  # text classes
    whole = bool((numbers == numbers.round()).all())
    return "classification" if whole and numbers.nunique() <= MAX_CLASS_VALUES else "regression"


def label_sample(
    uri: str, label: str, s3_client: Any = None, separator: str | None = None, decimal: str = "."
) -> pd.Series:
    """The label column of the file's first rows (enough to tell the task); an error naming the columns
    when the file has no such column."""
    from training.data.read import local_copy
    from training.data.stream import iter_frames

    with local_copy(uri, s3_client) as path:
        frame = next(iter_frames(path, uri, SAMPLE_ROWS, separator, decimal), pd.DataFrame())
    if label not in frame.columns:
        raise DataValidationError(
            f"label column {label!r} is not in {uri}; found: {', '.join(map(str, frame.columns))}"
        )
    return frame[label]


def choose_config(
    config_path: str | Path, task: Task | None, label: str | None, data_uri: str, s3_client: Any = None
) -> TrainingConfig:
    """The config a run trains with, after ``--task`` and ``--label`` (see the module docstring)."""
    config = load_config(config_path)
    if label:
        data = config.data.model_copy(update={"label": label, "require_label": True})
        config = config.model_copy(update={"data": data})
    stated = _stated_model_keys(config_path)
    if task is None:
        if "task" in stated or not label:
            return config
        task = infer_task(
            label_sample(data_uri, label, s3_client, config.data.separator, config.data.decimal), label
        )
        log.info("task: %s (from the values of '%s'; --task to choose another)", task, label)
    if task == config.model.task:
        return config
    if "task" in stated or ("estimator" in stated and Path(config_path) != DEFAULT_CONFIG_PATH):
        raise ConfigError(
            f"--task {task}, but {config_path} sets [model] task = {config.model.task!r} (estimator"
            f" {config.model.estimator}): set [model] task and estimator there, or leave them out to take"
            f" the {task} defaults"
        )
    with open(TASK_CONFIGS / f"{task}.toml", "rb") as handle:
        raw = tomllib.load(handle)
    if Path(config_path) != DEFAULT_CONFIG_PATH:  # the user's other sections (split, drift...) stay
        with open(config_path, "rb") as handle:
            mine = tomllib.load(handle)
        taken = ("model", "tuning", "threshold", "promotion", "data")
        raw.update({k: v for k, v in mine.items() if k not in taken})
    raw["data"] = config.data.model_dump()  # the user's, with --label applied
    raw.pop("name", None)
    return validate_config(raw)


def _stated_model_keys(config_path: str | Path) -> set[str]:
    """The [model] keys the config file itself sets (not defaults)."""
    with open(config_path, "rb") as handle:
        model = tomllib.load(handle).get("model", {})
    return set(model) if isinstance(model, dict) else set()
