"""What a careful ML engineer expects of a published model, on tables that ship with scikit-learn:
the same data and config give the same model bytes, supervised models are fitted on train +
validation, a feature that is the label under another name is refused before fitting, and a model
worse than the trivial baseline on its proper score (log loss, RMSE) is not published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from lambda_app.registry import Manifest
from training.config import TrainingConfig
from training.data.synthetic import generate
from training.exceptions import DataValidationError, TrainingError
from training.train import run_training


def config(task: str, label: str, estimator: str, **sections: Any) -> TrainingConfig:
    raw: dict[str, Any] = {
        "data": {"label": label, **sections.pop("data", {})},
        "model": {
            "task": task,
            "estimator": estimator,
            "params": sections.pop("params", {}),
            "scale": sections.pop("scale", None),
        },
        "tuning": {"enabled": False, **sections.pop("tuning", {})},
        **sections,
    }
    return TrainingConfig.model_validate(raw)


def logistic(**sections: Any) -> TrainingConfig:
    """A scaled logistic regression of the cancer table's diagnosis (what most tests here train)."""
    return config(
        "classification",
        "diagnosis",
        "sklearn.linear_model.LogisticRegression",
        params={"max_iter": 2000},
        scale=True,
        **sections,
    )


def train(data: Path, registry: Path, cfg: TrainingConfig) -> Manifest:
    return run_training(str(data), str(registry), cfg, alias=None).manifest


def serving_sha(manifest: Manifest) -> str:
    return manifest.artifact("serving").sha256


def evaluation(registry: Path, manifest: Manifest) -> dict[str, Any]:
    path = registry / manifest.version / manifest.artifact("evaluation").path
    result: dict[str, Any] = json.loads(path.read_text())
    return result


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The breast cancer table (569 rows, 30 measurements), label 'diagnosis' as text."""
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "diagnosis"})
    frame["diagnosis"] = np.where(frame["diagnosis"] == 1, "benign", "malignant")
    path = tmp_path_factory.mktemp("cancer") / "cancer.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("task", "estimator", "params", "tuning"),
    [
        # no random_state anywhere in the config: the run's seed reaches the estimator and the search
        (
            "classification",
            "sklearn.ensemble.RandomForestClassifier",
            {"n_estimators": 15},
            {"enabled": True, "budget": 2, "folds": 2, "space": {"max_depth": [3, 6]}},
        ),
        (
            "regression",
            "sklearn.ensemble.GradientBoostingRegressor",
            {"n_estimators": 20, "subsample": 0.7},
            {},
        ),
    ],
)
def test_the_same_data_and_config_give_the_same_model_bytes_and_metrics(
    task: str, estimator: str, params: dict[str, Any], tuning: dict[str, Any], cancer: Path, tmp_path: Path
) -> None:
    if task == "regression":
        bunch = load_diabetes(as_frame=True)
        data = tmp_path / "diabetes.csv"
        bunch.frame.rename(columns={"target": "progression"}).to_csv(data, index=False)
        label = "progression"
    else:
        data, label = cancer, "diagnosis"
    cfg = config(task, label, estimator, params=params, tuning=tuning)
    first = train(data, tmp_path / "a", cfg)
    second = train(data, tmp_path / "b", cfg)
    assert serving_sha(first) == serving_sha(second)
    assert first.metrics == second.metrics
    assert first.provenance.params["random_state"] == 42  # the recorded seed, given to the estimator


def test_supervised_models_are_fitted_on_train_and_validation(cancer: Path, tmp_path: Path) -> None:
    cfg = logistic(tuning={"enabled": True, "budget": 2, "folds": 2, "space": {"C": [0.1, 1.0]}})
    manifest = train(cancer, tmp_path / "r", cfg)
    split = evaluation(tmp_path / "r", manifest)["split"]
    assert split["fitted_on"] == split["train"] + split["validation"]
    assert split["fitted_on_splits"] == "train + validation"
    assert split["tuned_on"] == split["fitted_on"]  # cross-validated on the same rows, under max_rows
    assert split["evaluated_on"] == split["test"] == 114
    assert manifest.reference.features["mean radius"].count == split["fitted_on"]


def test_an_anomaly_detector_keeps_validation_for_its_threshold(tmp_path: Path) -> None:
    data = tmp_path / "flows.csv"
    generate(1000, seed=3).to_csv(data, index=False)
    cfg = config("anomaly", "label", "isolation_forest", params={"n_estimators": 20})
    manifest = train(data, tmp_path / "r", cfg)
    split = evaluation(tmp_path / "r", manifest)["split"]
    assert split["fitted_on"] == split["train"]
    assert split["fitted_on_splits"] == "train"


def test_a_column_that_is_the_label_under_another_name_is_refused(cancer: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(cancer)
    frame["outcome_code"] = np.where(frame["diagnosis"] == "benign", "B", "M")  # the label, renamed
    data = tmp_path / "leaky.csv"
    frame.to_csv(data, index=False)
    cfg = logistic()
    with pytest.raises(DataValidationError) as refused:
        train(data, tmp_path / "r", cfg)
    message = str(refused.value)
    assert "column 'outcome_code' alone predicts the label 'diagnosis' almost perfectly" in message
    assert "balanced accuracy 1.000" in message
    assert '[data] exclude = ["outcome_code"]' in message
    assert '[data] allow_leaky = ["outcome_code"]' in message
    assert not (tmp_path / "r").exists()  # refused before anything was fitted or published

    allowed = logistic(data={"allow_leaky": ["outcome_code"]})
    manifest = train(data, tmp_path / "r", allowed)
    assert "outcome_code" in manifest.feature_names
    report = (tmp_path / "r" / manifest.version / manifest.artifact("report").path).read_text()
    assert "near perfect" in report  # the holdout accuracy of 1.0 is called out


def test_a_number_that_is_the_target_rescaled_is_refused(tmp_path: Path) -> None:
    bunch = load_diabetes(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "progression"})
    frame["progression_next_visit"] = frame["progression"] * 1.02 + 3  # known only after the fact
    data = tmp_path / "diabetes.csv"
    frame.to_csv(data, index=False)
    cfg = config("regression", "progression", "sklearn.linear_model.Ridge")
    with pytest.raises(DataValidationError, match=r"'progression_next_visit' alone predicts .* \(R\^2 0\.9"):
        train(data, tmp_path / "r", cfg)


def test_ordinary_strong_features_are_not_leaks(cancer: Path, tmp_path: Path) -> None:
    """The best single measurement of the cancer table reaches about 0.9 alone: a signal, not a leak."""
    cfg = logistic()
    manifest = train(cancer, tmp_path / "r", cfg)
    report = (tmp_path / "r" / manifest.version / manifest.artifact("report").path).read_text()
    assert "Each feature alone against the label" in report


def test_a_classifier_worse_than_the_class_shares_on_log_loss_is_not_published(tmp_path: Path) -> None:
    """A fully grown tree on noisy labels: its macro F1 beats the majority class, but its 0/1
    probabilities give a log loss far worse than predicting the class shares."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 3))
    noisy = (x[:, 0] + rng.normal(scale=1.0, size=len(x)) > 0).astype(int)
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=np.where(noisy == 1, "yes", "no"))
    data = tmp_path / "noisy.csv"
    frame.to_csv(data, index=False)
    cfg = config("classification", "label", "sklearn.tree.DecisionTreeClassifier")
    with pytest.raises(TrainingError, match=r"holdout log_loss \d+\.\d+ is worse than the baseline"):
        train(data, tmp_path / "r", cfg)


def test_the_serving_footprint_is_measured_and_recorded(tmp_path: Path) -> None:
    data = tmp_path / "flows.csv"
    generate(1000, seed=3).to_csv(data, index=False)
    manifest = train(
        data, tmp_path / "r", config("anomaly", "label", "isolation_forest", params={"n_estimators": 20})
    )
    assert manifest.converter is not None
    assert float(manifest.converter["onnx_mb"]) > 0
    assert 50 < float(manifest.converter["serving_peak_mb"]) < 1024
    assert manifest.converter["checked_memory_mb"] == "1024"
    footprint = evaluation(tmp_path / "r", manifest)["footprint"]
    assert footprint["peak_mb"] == pytest.approx(footprint["runtime_mb"] + footprint["model_mb"], abs=0.01)
    report = (tmp_path / "r" / manifest.version / manifest.artifact("report").path).read_text()
    assert "Serving footprint" in report


def test_a_model_too_big_for_the_function_is_not_published(tmp_path: Path) -> None:
    """A fully grown forest on a few thousand noisy rows, checked against the smallest function (128 MB)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, 6))
    frame = pd.DataFrame(x, columns=list("abcdef")).assign(target=x[:, 0] + rng.normal(size=len(x)))
    data = tmp_path / "noisy.csv"
    frame.to_csv(data, index=False)
    cfg = config(
        "regression",
        "target",
        "sklearn.ensemble.RandomForestRegressor",
        params={"n_estimators": 150},
        serving={"memory_mb": 128},
        evaluation={"beat_baseline": False},
    )
    with pytest.raises(TrainingError) as refused:
        train(data, tmp_path / "r", cfg)
    message = str(refused.value)
    assert "the compiled model would not fit the function: serving it needs about" in message
    assert "over 90% of [serving] memory_mb = 128" in message
    assert "n_estimators, max_depth, min_samples_leaf" in message
    assert not (tmp_path / "r").exists()


def test_the_default_function_memory_is_terraforms() -> None:
    import re

    from tests.conftest import ROOT
    from training.config import LAMBDA_MEMORY_MB

    variables = (ROOT / "terraform" / "variables.tf").read_text()
    block = variables[variables.index('variable "lambda_memory_mb"') :]
    default = re.search(r"default\s*=\s*(\d+)", block)
    assert default is not None
    assert int(default.group(1)) == LAMBDA_MEMORY_MB == TrainingConfig().serving.memory_mb


def test_regression_predictions_outside_the_training_range_are_flagged(tmp_path: Path) -> None:
    """Prices are positive; a straight line through a skewed price predicts some below zero."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1500, 2))
    price = np.exp(1.5 * x[:, 0]) * 100
    data = tmp_path / "prices.csv"
    pd.DataFrame(x, columns=["carat", "depth"]).assign(price=price).to_csv(data, index=False)
    manifest = train(
        data, tmp_path / "r", config("regression", "price", "sklearn.linear_model.LinearRegression")
    )
    outside = evaluation(tmp_path / "r", manifest)["outside_label_range"]
    assert outside["below"] > 0
    assert outside["min"] > 0
    report = (tmp_path / "r" / manifest.version / manifest.artifact("report").path).read_text()
    assert "Predictions outside the training range" in report


def test_a_log_target_transform_is_served_as_trained(
    tmp_path: Path, handler_module: Any, lambda_context: Any
) -> None:
    """Skewed positive prices: fitted on log(1 + price), answered exp(prediction) - 1 by the graph too."""
    import joblib

    from tests.conftest import predict_event, response_json

    rng = np.random.default_rng(5)
    x = rng.normal(size=(1500, 2))
    price = np.exp(1.5 * x[:, 0] + 0.2 * rng.normal(size=len(x))) * 100
    data = tmp_path / "prices.csv"
    pd.DataFrame(x, columns=["carat", "depth"]).assign(price=price).to_csv(data, index=False)
    cfg = TrainingConfig.model_validate(
        {
            "data": {"label": "price"},
            "model": {
                "task": "regression",
                "estimator": "sklearn.linear_model.LinearRegression",
                "target_transform": "log",
            },
            "tuning": {"enabled": False},
        }
    )
    manifest = train(data, tmp_path / "r", cfg)
    assert evaluation(tmp_path / "r", manifest)["outside_label_range"]["below"] == 0  # never below zero
    rows = [{"carat": -2.0, "depth": 0.0}, {"carat": 0.0, "depth": 0.0}, {"carat": 1.5, "depth": 0.3}]
    handler = handler_module(MODEL_URI=str(tmp_path / "r"), MODEL_VERSION=manifest.version).handler
    served = response_json(handler(predict_event(rows), lambda_context))["predictions"]
    model = joblib.load(tmp_path / "r" / manifest.version / "model.joblib")
    expected = model.predict(np.array([[r["carat"], r["depth"]] for r in rows]))
    np.testing.assert_allclose(served, expected, rtol=1e-5)
    assert min(served) > 0
    with pytest.raises(Exception, match="target_transform applies to regression only"):
        TrainingConfig.model_validate({"model": {"task": "anomaly", "target_transform": "log"}})
