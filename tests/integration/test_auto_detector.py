"""``estimator = "auto"`` for anomaly detection: with labels, the detectors and the robust z-score are
cross-validated (fitted without the labels, ranked by the held-out labels' PR-AUC) and the best is
published and served; without labels, the default IsolationForest, saying why."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from lambda_app.registry import LocalStorage, read_manifest, resolve_version
from tests.conftest import predict_event, response_json
from training.config import TrainingConfig
from training.estimators.families import ANOMALY_DETECTORS
from training.evaluation.evaluate import anomaly_scores
from training.tasks.checks import validate_config
from training.train import run_training


def one_feature_far_out(rows: int, anomalies: int, seed: int = 0) -> pd.DataFrame:
    """Six independent features; each anomaly has one of them (at random) 5 to 8 deviations out: the
    kind of anomaly the robust z-score is made for."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, 6)) * [1.0, 3.0, 10.0, 0.5, 2.0, 100.0] + [0, 5, 50, 1, -2, 1000]
    label = np.zeros(rows, dtype=int)
    chosen = rng.choice(rows, size=anomalies, replace=False)
    label[chosen] = 1
    column = rng.integers(0, 6, size=anomalies)
    shift = rng.uniform(5, 8, size=anomalies) * rng.choice([-1, 1], size=anomalies)
    values[chosen, column] += shift * np.array([1.0, 3.0, 10.0, 0.5, 2.0, 100.0])[column]
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(6)])
    frame["label"] = label
    return frame


def train(tmp_path: Path, frame: pd.DataFrame, **settings: Any) -> tuple[dict[str, Any], Any, str]:
    from training import train as job

    data = tmp_path / "table.csv"
    frame.to_csv(data, index=False)
    config = validate_config({"data": {"label": "label"}, "tuning": {"budget": 2}, **settings})
    assert config.model.estimator == "auto"  # the default for anomaly detection too
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(job, "PARITY_PROBE_ROWS", 5_000)  # the published default is 100,000
        run_training(str(data), str(tmp_path / "registry"), config)
    storage = LocalStorage(tmp_path / "registry")
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    version = tmp_path / "registry" / manifest.version
    return (
        json.loads((version / "evaluation.json").read_text()),
        manifest,
        (version / "evaluation.html").read_text(),
    )


def test_labelled_anomalies_rank_every_detector_and_the_robust_z_score_can_win_and_serve(
    tmp_path: Path, handler_module: Callable[..., ModuleType], lambda_context: Any
) -> None:
    frame = one_feature_far_out(1500, 60)
    evaluation, manifest, report = train(tmp_path, frame)
    selection = evaluation["selection"]
    assert selection["metric"] == "pr_auc"
    assert not selection["lower_is_better"]
    board = {line["estimator"]: line for line in selection["leaderboard"]}
    assert list(board) == ["isolation_forest", "robust_z_score", "elliptic_envelope", "local_outlier_factor"]
    assert all(line["score"] is not None for line in board.values())
    best = max(board.values(), key=lambda line: line["score"])
    assert best["status"] == "chosen" == board[selection["chosen"]]["status"]
    # one far-out feature is exactly what the z-score sees; the forests dilute it among six features
    assert selection["chosen"] == "robust_z_score"
    assert board["robust_z_score"]["score"] > board["isolation_forest"]["score"]
    assert manifest.estimator == ANOMALY_DETECTORS["robust_z_score"]
    assert "robust z-score" in manifest.score
    assert "minus 3.5" in manifest.score
    assert "Estimator chosen: robust_z_score" in report
    assert evaluation["split"]["fitted_on_splits"] == "train"  # a detector's threshold needs unseen rows
    # the published model is the baseline itself: it passes the gate by equalling it
    assert manifest.metrics is not None
    assert manifest.metrics["pr_auc"] == pytest.approx(evaluation["baseline"]["metrics"]["pr_auc"])

    # served through the Lambda handler: the score scikit-learn gives, and the threshold's decision
    rows = frame.drop(columns="label").head(200)
    body = response_json(
        handler_module(MODEL_URI=str(tmp_path / "registry")).handler(
            predict_event(rows.to_dict(orient="records")), lambda_context
        )
    )
    detector = joblib.load(tmp_path / "registry" / manifest.version / "model.joblib")
    expected = anomaly_scores(detector, rows.to_numpy(dtype=np.float64))
    np.testing.assert_allclose(body["scores"], expected, rtol=1e-5, atol=1e-5)
    assert manifest.threshold is not None
    far = np.abs(expected - manifest.threshold) > 1e-4
    assert (np.array(body["predictions"])[far] == (expected >= manifest.threshold)[far]).all()


def test_without_labels_auto_is_the_untuned_isolation_forest_and_says_why(tmp_path: Path) -> None:
    frame = one_feature_far_out(600, 20).drop(columns="label")
    evaluation, manifest, report = train(tmp_path, frame)
    selection = evaluation["selection"]
    assert selection["ranked"] is False
    assert [line["estimator"] for line in selection["leaderboard"]] == ["isolation_forest"]
    assert selection["leaderboard"][0]["status"] == "chosen: no labels to rank detectors by"
    assert manifest.estimator == "sklearn.ensemble.IsolationForest"
    assert evaluation["tuning"] is None  # scikit-learn's defaults, as when no estimator was named
    assert joblib.load(tmp_path / "registry" / manifest.version / "model.joblib").n_estimators == 100
    assert "No family was cross-validated: no labels to rank detectors by" in report


def test_too_few_labelled_anomalies_to_fill_every_fold_fall_back_to_the_default(tmp_path: Path) -> None:
    frame = one_feature_far_out(600, 4)
    evaluation, manifest, _ = train(tmp_path, frame, evaluation={"beat_baseline": False})
    (line,) = evaluation["selection"]["leaderboard"]
    assert line["status"].startswith("chosen: ")
    assert "too few to rank detectors on 3 folds" in line["status"]
    assert manifest.estimator == "sklearn.ensemble.IsolationForest"


def test_the_local_outlier_factor_is_not_tried_on_a_large_table(tmp_path: Path) -> None:
    from training.estimators.families import AUTO_FAMILIES
    from training.selection.auto import choose_estimator
    from training.tasks import task_kind

    lof = next(f for f in AUTO_FAMILIES["anomaly"] if f.estimator == "local_outlier_factor")
    assert lof.max_rows is not None
    frame = one_feature_far_out(400, 30)
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = TrainingConfig.model_validate({"data": {"label": "label"}})
    from training.train import load_training_data

    dataset = load_training_data(str(tmp_path / "t.csv"), config)
    many = np.arange(lof.max_rows + 1) % len(frame)  # more fitting rows than the cap (repeats suffice)
    selection = choose_estimator(
        config.model_copy(update={"tuning": config.tuning.model_copy(update={"max_rows": 400})}),
        task_kind("anomaly"),
        dataset,
        many,
        dataset.labels,
    )
    status = {line.estimator: line.status for line in selection.standings}
    assert status["local_outlier_factor"].startswith("skipped: more than 10,000 fitting rows")
    assert "name local_outlier_factor" in status["local_outlier_factor"]
    assert selection.config.model.estimator != "local_outlier_factor"
