"""Gradient-boosted trees (HistGradientBoosting, XGBoost, LightGBM) on real tables: a category, a
boolean, missing values and text classes, trained from the config, served through the real Lambda
handler and answering what scikit-learn's whole pipeline answers on the raw rows."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from tests.conftest import predict_event, response_json
from tests.integration.test_mixed_tables import production, records
from training.config import TrainingConfig
from training.data.synthetic import generate
from training.estimators.convert import compile_model
from training.estimators.families import build_estimator, estimator_name
from training.exceptions import ConfigError
from training.tasks.base import run_graph
from training.train import run_training

SMALL = {"n_estimators": 20}
CASES = [
    ("classification", "sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 20}),
    ("classification", "xgboost.XGBClassifier", SMALL),
    ("classification", "lightgbm.LGBMClassifier", SMALL),
    ("regression", "sklearn.ensemble.HistGradientBoostingRegressor", {"max_iter": 20}),
    ("regression", "xgboost.XGBRegressor", SMALL),
    ("regression", "lightgbm.LGBMRegressor", SMALL),
]
LABEL = {"classification": "kind", "regression": "latency_ms"}


@pytest.mark.parametrize(("task", "estimator", "params"), CASES, ids=[c[1].rsplit(".", 1)[1] for c in CASES])
def test_boosted_trees_serve_a_mixed_table_as_their_pipeline_answers(
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
    frame = generate(1500, seed=8, task=task, anomaly_rate=0.25, mixed=True)
    frame.to_csv(tmp_path / "table.csv", index=False)
    config = TrainingConfig.model_validate(
        {
            "data": {"label": LABEL[task]},
            "model": {"task": task, "estimator": estimator, "params": params},
            "tuning": {"enabled": False},
            "evaluation": {"beat_baseline": False},
        }
    )
    run_training(str(tmp_path / "table.csv"), str(tmp_path / "registry"), config)
    manifest = production(tmp_path / "registry")
    assert manifest.estimator == estimator
    protocol = next(f for f in manifest.features if f.name == "protocol")
    assert protocol.encoding == "ordinal"  # trees split on the category's index
    assert next(f for f in manifest.features if f.name == "bytes").fill is not None
    pipeline = joblib.load(tmp_path / "registry" / manifest.version / "model.joblib")
    raw = frame[manifest.feature_names].head(400).copy()
    raw.loc[raw.index[:20], "protocol"] = "sctp"  # never seen in training
    body = response_json(
        handler_module(MODEL_URI=str(tmp_path / "registry")).handler(
            predict_event(records(raw)), lambda_context
        )
    )
    if task == "classification":
        assert set(body["predictions"]) <= {"normal", "out_of_range", "inverted", "rare_port"}
        classes = [str(c) for c in pipeline.classes_]
        served = np.array([[row[c] for c in classes] for row in body["probabilities"]])
        np.testing.assert_allclose(served, pipeline.predict_proba(raw), atol=1e-5)
        decided = np.sort(served, axis=1)[:, -1] - np.sort(served, axis=1)[:, -2] > 1e-5
        assert (np.array(body["predictions"])[decided] == pipeline.predict(raw)[decided]).all()
    else:
        expected = pipeline.predict(raw)
        np.testing.assert_allclose(
            body["predictions"], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max()
        )
    # batch scoring answers the same rows as /predict did
    from lambda_app.batch.__main__ import main as batch

    raw.to_parquet(tmp_path / "in.parquet", index=False)
    out = tmp_path / "out.parquet"
    registry = str(tmp_path / "registry")
    assert (
        batch(
            [
                "--input",
                str(tmp_path / "in.parquet"),
                "--output",
                str(out),
                "--model-uri",
                registry,
                "--quiet",
            ]
        )
        == 0
    )
    assert pd.read_parquet(out)["prediction"].tolist() == body["predictions"]


def test_hist_gradient_boosting_gets_a_float64_graph_with_its_own_thresholds() -> None:
    """HistGradientBoosting compares float64 features with float64 thresholds: its float64 graph
    answers as scikit-learn does on random rows far from the training values."""
    from sklearn.datasets import load_wine
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = load_wine(return_X_y=True)
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(x, y)
    rng = np.random.default_rng(0)
    rows = rng.uniform(x.min(axis=0), x.max(axis=0), size=(20_000, x.shape[1]))
    graph, converter = compile_model(model, "classification", x.shape[1], "double")
    assert converter["input"] == "float64"
    _, probabilities = run_graph(graph, ("label", "probabilities"), rows)
    assert np.abs(probabilities - model.predict_proba(rows)).max() < 1e-6
    float_graph, _ = compile_model(model, "classification", x.shape[1])
    _, float_probabilities = run_graph(float_graph, ("label", "probabilities"), rows)
    print(
        "largest probability difference, float32 graph:",
        np.abs(float_probabilities - model.predict_proba(rows)).max(),
    )


def test_lightgbm_gets_a_float64_graph_with_its_own_thresholds_when_float32_fails_parity() -> None:
    """LightGBM compares float64 features with float64 thresholds: a value a hair above a split falls on
    the other side in a float32 graph. The parity gate finds it, and the float64 graph answers exactly."""
    import lightgbm
    from sklearn.datasets import load_wine

    from training.tasks import task_kind
    from training.tasks.base import Outcome, compile_with_parity

    x, y = load_wine(return_X_y=True)
    model = lightgbm.LGBMClassifier(n_estimators=30, verbose=-1).fit(x, y)

    def splits(node: dict[str, Any]) -> list[tuple[int, float]]:
        if "split_feature" not in node:
            return []
        here = [(int(node["split_feature"]), float(node["threshold"]))]
        return here + splits(node["left_child"]) + splits(node["right_child"])

    found = [
        split for tree in model.booster_.dump_model()["tree_info"] for split in splits(tree["tree_structure"])
    ]
    above = np.repeat(x[:1], len(found), axis=0)  # one row per split, its feature a hair above the threshold
    for row, (feature, threshold) in enumerate(found):
        above[row, feature] = np.nextafter(threshold, np.inf)
    float_graph, _ = compile_model(model, "classification", x.shape[1])
    _, float_probabilities = run_graph(float_graph, ("label", "probabilities"), above)
    print(
        "largest probability difference, float32 graph:",
        np.abs(float_probabilities - model.predict_proba(above)).max(),
    )

    outcome = Outcome(None, None, "", None, "", classes=[0, 1, 2])  # type: ignore[arg-type]
    graph, converter, parity = compile_with_parity(
        task_kind("classification"), model, outcome, {"holdout": x, "above_thresholds": above}
    )
    assert converter["input"] == "float64"
    assert "float32_refused" in parity
    _, probabilities = run_graph(graph, ("label", "probabilities"), above)
    assert np.abs(probabilities - model.predict_proba(above)).max() < 1e-6


def test_a_log_target_hist_gradient_boosting_regressor_gets_the_float64_graph_too() -> None:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    config = TrainingConfig.model_validate(
        {
            "model": {
                "task": "regression",
                "estimator": "sklearn.ensemble.HistGradientBoostingRegressor",
                "params": {"max_iter": 30},
                "target_transform": "log",
            }
        }
    ).model
    model = build_estimator(config).fit(x, y)
    graph, converter = compile_model(model, "regression", x.shape[1], "double")
    assert converter["input"] == "float64"
    (served,) = run_graph(graph, ("prediction",), x)
    np.testing.assert_allclose(served, model.predict(x), rtol=1e-6)


def test_xgboost_and_lightgbm_parameters_are_checked_and_named_as_users_write_them() -> None:
    config = TrainingConfig.model_validate(
        {"model": {"task": "classification", "estimator": "xgboost.XGBClassifier", "params": {"max_dept": 3}}}
    ).model
    with pytest.raises(
        ConfigError, match=r"XGBClassifier has no parameter 'max_dept' \(it takes .*max_depth"
    ):
        build_estimator(config)
    built = build_estimator(config.model_copy(update={"params": {"max_depth": 3}}))
    assert estimator_name(built) == "xgboost.XGBClassifier"
    lgbm = build_estimator(
        config.model_copy(update={"estimator": "lightgbm.LGBMRegressor", "params": {}, "task": "regression"})
    )
    assert lgbm.get_params()["verbose"] == -1  # LightGBM prints a warning per fit otherwise
    assert estimator_name(lgbm) == "lightgbm.LGBMRegressor"


def test_xgboost_classifier_answers_the_data_classes_after_pickling() -> None:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    config = TrainingConfig.model_validate(
        {"model": {"task": "classification", "estimator": "xgboost.XGBClassifier", "params": SMALL}}
    ).model
    model = build_estimator(config).fit(x, names)
    again = pickle.loads(pickle.dumps(model))  # the published model.joblib is a pickle
    assert list(again.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(pd.unique(again.predict(x))) == {"setosa", "versicolor", "virginica"}
    graph, _ = compile_model(model, "classification", x.shape[1])
    labels, probabilities = run_graph(graph, ("label", "probabilities"), x.astype(np.float32))
    assert list(labels.reshape(-1)) == list(model.predict(x))
    np.testing.assert_allclose(probabilities, model.predict_proba(x), atol=1e-5)


def test_hist_gradient_boostings_own_categorical_splits_are_refused_before_fitting() -> None:
    # skl2onnx converts them wrongly (probabilities off by up to 0.96 on a small table): the job's own
    # encoding goes in front of the model instead.
    config = TrainingConfig.model_validate(
        {"model": {"task": "classification", "estimator": "sklearn.ensemble.HistGradientBoostingClassifier"}}
    ).model
    with pytest.raises(ConfigError, match=r"categorical_features.*do not convert.*\[data\] types"):
        build_estimator(config.model_copy(update={"params": {"categorical_features": [0]}}))
