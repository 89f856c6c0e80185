"""``[data] missing = "native"``: gradient-boosted trees get a number's or a boolean's missing values as
they are and send them down the branch they learned. Trained from the config, the graph checked on rows
with missing values, served through the real Lambda handler (/predict, the Open Inference Protocol) and
batch-scored, answering what scikit-learn's whole pipeline answers on the raw rows with NaN in them."""

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

from tests.conftest import predict_event, response_json
from tests.functional.test_open_inference import Served, tensors
from tests.integration.test_mixed_tables import production, records
from training.config import TrainingConfig
from training.data.synthetic import generate
from training.estimators.families import build_estimator
from training.estimators.preprocess import fit_preprocessing
from training.train import load_training_data, run_training

CASES = [
    ("regression", "sklearn.ensemble.HistGradientBoostingRegressor", {"max_iter": 20}),
    ("classification", "xgboost.XGBClassifier", {"n_estimators": 20}),
    ("classification", "lightgbm.LGBMClassifier", {"n_estimators": 20}),
]
LABEL = {"classification": "kind", "regression": "latency_ms"}


def native_config(task: str, estimator: str, params: dict[str, Any]) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {
            "data": {"label": LABEL[task], "missing": "native"},
            "model": {"task": task, "estimator": estimator, "params": params},
            "tuning": {"enabled": False},
            "evaluation": {"beat_baseline": False},
        }
    )


@pytest.mark.parametrize(("task", "estimator", "params"), CASES, ids=[c[1].rsplit(".", 1)[1] for c in CASES])
def test_missing_values_reach_the_trees_and_are_served_as_the_pipeline_answers(
    task: str,
    estimator: str,
    params: dict[str, Any],
    tmp_path: Path,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from training import train

    monkeypatch.setattr(train, "PARITY_PROBE_ROWS", 20_000)  # the published default is 100,000
    frame = generate(1000, seed=8, task=task, anomaly_rate=0.25, mixed=True)
    frame.to_csv(tmp_path / "table.csv", index=False)
    registry = tmp_path / "registry"
    run_training(str(tmp_path / "table.csv"), str(registry), native_config(task, estimator, params))

    manifest = production(registry)
    specs = {f.name: f for f in manifest.features}
    assert specs["bytes"].missing == "native"
    assert specs["bytes"].fill is None
    assert all(f.missing is None for name, f in specs.items() if name != "bytes")
    evaluation = json.loads((registry / manifest.version / "evaluation.json").read_text())
    assert evaluation["parity"]["random"]["with_missing"] > 1000  # a fifth of 20,000 probe rows
    assert evaluation["explanation"]["available"] is False
    assert "'bytes'" in evaluation["explanation"]["reason"]

    pipeline = joblib.load(registry / manifest.version / "model.joblib")
    raw = frame[manifest.feature_names].head(200).copy()
    raw.loc[raw.index[::4], "bytes"] = np.nan  # 50 rows with bytes missing
    expected = pipeline.predict_proba(raw) if task == "classification" else pipeline.predict(raw)
    served = Served(handler_module(MODEL_URI=str(registry)).handler, lambda_context)
    body = served.predict(records(raw))
    if task == "classification":
        classes = [str(c) for c in pipeline.classes_]
        answered = np.array([[row[c] for c in classes] for row in body["probabilities"]])
        np.testing.assert_allclose(answered, expected, atol=1e-5)
    else:
        np.testing.assert_allclose(
            body["predictions"], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max()
        )

    # the Open Inference Protocol takes null for the feature and answers as /predict did
    status, answer = served.infer({"inputs": tensors(records(raw), served.model["features"])})
    assert status == 200, answer
    predictions = next(o for o in answer["outputs"] if o["name"] == "predictions")["data"]
    assert predictions == body["predictions"]

    # the OpenAPI schema offers null for it, and says what a null means
    schema = json.dumps(served.get("/openapi.json")[1])
    assert "a missing value, sent down the branch the model learned for missing values" in schema

    # batch scoring: an empty cell is a missing value, scored, never a rejected row
    from lambda_app.batch.__main__ import main as batch

    raw.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    args = ["--input", str(tmp_path / "in.csv"), "--output", str(out), "--model-uri", str(registry)]
    assert batch([*args, "--quiet"]) == 0
    scored = pd.read_csv(out)
    assert len(scored) == len(raw)
    if task == "classification":
        assert scored["prediction"].tolist() == body["predictions"]
    else:
        assert scored["prediction"].tolist() == pytest.approx(body["predictions"], rel=1e-6)


def test_only_the_boosted_trees_numbers_and_booleans_are_left_native(tmp_path: Path) -> None:
    """A forest or a linear model is imputed as before (only the boosted trees' graphs are proven on
    missing values). A category's missing values are filled even for boosted trees (scikit-learn's
    encoder would score them as unseen, the service as missing: the two would differ)."""
    frame = generate(400, seed=3, task="classification", anomaly_rate=0.25, mixed=True)
    frame.loc[frame.index[::9], "protocol"] = None
    frame["encrypted"] = frame["encrypted"].astype(object)
    frame.loc[frame.index[::11], "encrypted"] = None
    frame.to_csv(tmp_path / "table.csv", index=False)
    config = native_config("classification", "sklearn.ensemble.HistGradientBoostingClassifier", {})
    dataset = load_training_data(str(tmp_path / "table.csv"), config)
    rows = np.arange(dataset.rows)

    boosted = fit_preprocessing(dataset, rows, build_estimator(config.model), "native")
    by_name = {s.name: s for s in boosted.specs}
    assert (by_name["bytes"].missing, by_name["encrypted"].missing) == ("native", "native")
    assert by_name["protocol"].missing is None
    assert by_name["protocol"].fill in by_name["protocol"].categories
    assert boosted.native_missing == ["encrypted", "bytes"]
    encoded = boosted.encode(dataset.features)
    assert np.isnan(encoded[:, dataset.feature_names.index("bytes")]).any()
    assert not np.isnan(encoded[:, dataset.feature_names.index("protocol")]).any()
    boosted.check(dataset.features, seed=0)  # the service's encoding is scikit-learn's, NaN for NaN

    forest = config.model.model_copy(update={"estimator": "sklearn.ensemble.RandomForestClassifier"})
    imputed = fit_preprocessing(dataset, rows, build_estimator(forest), "native")
    assert imputed.native_missing == []
    assert all(s.fill is not None for s in imputed.specs if s.name in ("bytes", "encrypted", "protocol"))
    assert not np.isnan(imputed.encode(dataset.features)).any()

    default = fit_preprocessing(dataset, rows, build_estimator(config.model))  # missing = "impute"
    assert default.native_missing == []


def test_a_null_for_a_native_feature_is_scored_and_one_for_another_feature_is_refused(
    tmp_path: Path, handler_module: Callable[..., ModuleType], lambda_context: Any
) -> None:
    frame = generate(600, seed=5, task="regression", mixed=True)
    frame.to_csv(tmp_path / "table.csv", index=False)
    registry = tmp_path / "registry"
    config = native_config("regression", "sklearn.ensemble.HistGradientBoostingRegressor", {"max_iter": 10})
    run_training(str(tmp_path / "table.csv"), str(registry), config)
    handler = handler_module(MODEL_URI=str(registry)).handler
    row = {"one": 80, "two": 14.2, "three": 13.9, "protocol": "tcp", "encrypted": True, "bytes": None}
    response = handler(predict_event([row]), lambda_context)
    assert response["statusCode"] == 200, response["body"]
    response = handler(predict_event([{**row, "two": None}]), lambda_context)
    assert response["statusCode"] == 422
    assert "field 'two': must be a number, got null" in json.dumps(response_json(response))


def test_imported_boosted_trees_take_the_missing_values_they_were_fitted_with(
    tmp_path: Path, handler_module: Callable[..., ModuleType], lambda_context: Any
) -> None:
    """A HistGradientBoosting fitted elsewhere on numbers with NaN, bare or behind a ColumnTransformer
    that passes the numbers through: imported, its missing values left to its trees, and answering
    what it answers on rows with NaN."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from tests.integration.test_imported_pipelines import passengers, save
    from tests.integration.test_imported_pipelines import records as passenger_records
    from training.__main__ import main

    frame = passengers(rows=300)
    numbers = ["age", "fare", "pclass"]
    bare = HistGradientBoostingClassifier(max_iter=15, random_state=0)
    bare.fit(frame[numbers], frame["survived"])
    mixed = make_pipeline(
        ColumnTransformer(
            [("numbers", "passthrough", numbers), ("sex", OneHotEncoder(handle_unknown="ignore"), ["sex"])],
            sparse_threshold=0,
        ),
        HistGradientBoostingClassifier(max_iter=15, random_state=0),
    ).fit(frame[[*numbers, "sex"]], frame["survived"])
    for name, model, columns in (("bare", bare, numbers), ("pipeline", mixed, [*numbers, "sex"])):
        work = tmp_path / name
        work.mkdir()
        path, sample = save(work, model, frame[[*columns, "survived"]], "joblib")
        registry = work / "registry"
        argv = ["import", "--model", str(path), "--data", str(sample), "--model-uri", str(registry)]
        assert main([*argv, "--label", "survived", "--allow-pickle"]) == 0, name
        manifest = production(registry)
        specs = {f.name: f for f in manifest.features}
        assert specs["age"].missing == "native", name  # 10% missing in the sample
        assert specs["fare"].missing == "native", name
        assert specs["pclass"].missing is None, name  # complete in the sample: a null stays refused
        rows = frame[columns].head(120).copy()
        rows.loc[rows.index[::3], "age"] = np.nan
        response = handler_module(MODEL_URI=str(registry)).handler(
            predict_event(passenger_records(rows, ["sex"])), lambda_context
        )
        assert response["statusCode"] == 200, response["body"][:300]
        answered = np.array(
            [[row[c] for c in ("0", "1")] for row in response_json(response)["probabilities"]]
        )
        np.testing.assert_allclose(answered, model.predict_proba(rows), atol=1e-5)
