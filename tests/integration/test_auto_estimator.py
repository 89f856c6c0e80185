"""``[model] estimator = "auto"``: the task's families cross-validated on real tables, the best by the
task's proper score published, the leaderboard in evaluation.json and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lambda_app.registry import LocalStorage, read_manifest, resolve_version
from training.config import TrainingConfig
from training.exceptions import ConfigError
from training.tasks.checks import validate_config
from training.train import run_training


def table(tmp_path: Path, loader: str) -> Path:
    from sklearn import datasets

    frame = getattr(datasets, loader)(as_frame=True).frame
    path = tmp_path / f"{loader}.csv"
    frame.to_csv(path, index=False)
    return path


def train_auto(tmp_path: Path, data: Path, task: str, **tuning: Any) -> tuple[dict[str, Any], Any, str]:
    config = validate_config(
        {
            "data": {"label": "target"},
            "model": {"task": task},  # no estimator: "auto" is the default for classification and regression
            "tuning": {"budget": 2, **tuning},
        }
    )
    assert config.model.estimator == "auto"
    run_training(str(data), str(tmp_path / "registry"), config)
    storage = LocalStorage(tmp_path / "registry")
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    version = tmp_path / "registry" / manifest.version
    evaluation = json.loads((version / "evaluation.json").read_text())
    return evaluation, manifest, (version / "evaluation.html").read_text()


@pytest.mark.parametrize(
    ("loader", "task", "metric"),
    [("load_breast_cancer", "classification", "log_loss"), ("load_diabetes", "regression", "rmse")],
)
def test_auto_publishes_the_family_with_the_best_cross_validated_proper_score(
    tmp_path: Path, loader: str, task: str, metric: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="training")
    evaluation, manifest, report = train_auto(tmp_path, table(tmp_path, loader), task)
    selection = evaluation["selection"]
    assert selection["metric"] == metric
    assert selection["lower_is_better"]
    board = selection["leaderboard"]
    assert len(board) == 3
    assert all(line["score"] is not None and line["seconds"] > 0 for line in board)
    best = min(board, key=lambda line: line["score"])
    assert [line["status"] for line in board].count("chosen") == 1
    assert best["status"] == "chosen"
    assert manifest.estimator == best["estimator"] == selection["chosen"]
    # the winner was then tuned (on the same proper score) and fitted on train + validation
    assert evaluation["tuning"]["objective"] == metric
    tuned = evaluation["tuning"]
    said = f"tuning: {len(tuned['trials'])} configurations x {tuned['folds']} folds on {tuned['rows']} rows"
    assert any(said in record.getMessage() for record in caplog.records)  # the log says what ran
    assert evaluation["split"]["fitted_on_splits"] == "train + validation"
    assert "Estimator chosen" in report
    assert best["estimator"] in report
    # "auto" is what the version records as asked for: retraining chooses again
    assert manifest.provenance.config["model"]["estimator"] == "auto"


def test_the_time_budget_stops_starting_families_after_the_first(tmp_path: Path) -> None:
    evaluation, manifest, _ = train_auto(
        tmp_path, table(tmp_path, "load_breast_cancer"), "classification", budget_s=1e-6, enabled=False
    )
    board = evaluation["selection"]["leaderboard"]
    assert board[0]["status"] == "chosen"
    assert [line["status"].split(":")[0] for line in board[1:]] == ["skipped", "skipped"]
    assert "budget_s" in board[1]["status"]
    assert manifest.estimator == board[0]["estimator"]
    assert evaluation["tuning"] is None


@pytest.mark.parametrize(
    ("model", "tuning", "message"),
    [
        ({"task": "classification", "estimator": "auto", "params": {"max_depth": 3}}, {}, "model.params"),
        ({"task": "regression", "estimator": "auto", "scale": True}, {}, "model.scale"),
        ({"task": "regression", "estimator": "auto"}, {"space": {"alpha": [1.0]}}, "tuning.space"),
        ({"task": "anomaly", "estimator": "auto", "params": {"n_estimators": 50}}, {}, "model.params"),
    ],
)
def test_auto_refuses_what_it_would_ignore(
    model: dict[str, Any], tuning: dict[str, Any], message: str
) -> None:
    with pytest.raises((ConfigError, ValueError), match=message):
        validate_config({"model": model, "tuning": tuning})


def test_auto_is_the_default_estimator_of_every_task() -> None:
    assert TrainingConfig.model_validate({}).model.estimator == "auto"
    for task in ("anomaly", "classification", "regression"):
        assert TrainingConfig.model_validate({"model": {"task": task}}).model.estimator == "auto"


@pytest.mark.parametrize(
    "settings",
    [
        {"model": {"params": {"n_estimators": 50}}},
        {"model": {"task": "anomaly", "scale": True}},
        {"tuning": {"space": {"max_samples": [256, 512]}}},
    ],
)
def test_an_anomaly_config_written_for_the_isolation_forest_keeps_it(settings: dict[str, Any]) -> None:
    # IsolationForest was the anomaly default before "auto": parameters set for it still go to it
    assert validate_config(settings).model.estimator == "isolation_forest"


def test_a_named_estimator_is_trained_as_named(tmp_path: Path) -> None:
    data = table(tmp_path, "load_breast_cancer")
    config = validate_config(
        {
            "data": {"label": "target"},
            "model": {"task": "classification", "estimator": "sklearn.linear_model.LogisticRegression"},
            "tuning": {"enabled": False},
        }
    )
    config = config.model_copy(
        update={"model": config.model.model_copy(update={"params": {"max_iter": 5000}, "scale": True})}
    )
    run_training(str(data), str(tmp_path / "registry"), config)
    storage = LocalStorage(tmp_path / "registry")
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    evaluation = json.loads((tmp_path / "registry" / manifest.version / "evaluation.json").read_text())
    assert manifest.estimator == "sklearn.linear_model.LogisticRegression"
    assert evaluation["selection"] is None
    assert len(pd.read_csv(data)) == 569
