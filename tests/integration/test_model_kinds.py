"""Every task, trained or imported, published and served through the real Lambda handler, answers
what scikit-learn answers on every row (the issue's acceptance cases, on scikit-learn's own tables)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from lambda_app.registry import LocalStorage, read_manifest, resolve_version
from tests.conftest import SAMPLE_DATA, load_event, predict_event, response_json
from training.config import TrainingConfig
from training.evaluation.evaluate import anomaly_scores
from training.tasks.anomaly import FLOAT32_ONLY_TOLERANCE
from training.train import run_training

TOLERANCE = 1e-5


@dataclass(frozen=True)
class Case:
    name: str
    table: Callable[[], pd.DataFrame]
    config: dict[str, Any]


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame  # 30 columns named like "mean radius"


def wine_with_named_classes() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    frame = bunch.frame
    frame["target"] = [str(bunch.target_names[i]) for i in frame["target"]]  # string classes
    return frame


def diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame


def flows() -> pd.DataFrame:
    return pd.read_csv(SAMPLE_DATA)


CASES = [
    Case(
        "random-forest-breast-cancer",
        breast_cancer,
        {
            "data": {"features": [c for c in breast_cancer().columns if c != "target"], "label": "target"},
            "model": {
                "task": "classification",
                "estimator": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 100, "random_state": 0},
            },
        },
    ),
    Case(
        "logistic-pipeline-wine-multiclass",
        wine_with_named_classes,
        {
            "data": {
                "features": [c for c in wine_with_named_classes().columns if c != "target"],
                "label": "target",
            },
            "model": {
                "task": "classification",
                "estimator": "sklearn.linear_model.LogisticRegression",
                "scale": True,
                "params": {"max_iter": 1000},
            },
            "tuning": {"space": {"C": [0.1, 1.0]}, "budget": 2},
        },
    ),
    Case(
        "gradient-boosting-diabetes",
        diabetes,
        {
            "data": {"features": [c for c in diabetes().columns if c != "target"], "label": "target"},
            "model": {
                "task": "regression",
                "estimator": "sklearn.ensemble.GradientBoostingRegressor",
                "params": {"random_state": 0},
            },
        },
    ),
    Case(
        "one-class-svm-flows",
        flows,
        {
            "data": {"features": ["one", "two", "three"], "label": "label"},
            "model": {"estimator": "one_class_svm", "params": {"nu": 0.05}},
        },
    ),
]


@pytest.fixture(scope="module", params=CASES, ids=lambda case: case.name)
def published(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Path]:
    case: Case = request.param
    root = tmp_path_factory.mktemp(case.name)
    data = root / "data.csv"
    case.table().to_csv(data, index=False)
    run_training(str(data), str(root / "registry"), TrainingConfig.model_validate(case.config))
    return case, root


def _json_number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def served(
    handler_module: Callable[..., ModuleType], registry: Path, rows: list[dict[str, Any]], context: Any
) -> Any:
    handler = handler_module(MODEL_URI=str(registry)).handler
    response = handler(predict_event(rows), context)
    assert response["statusCode"] == 200, response["body"][:500]
    model = response_json(handler(load_event("apigw_v2_model.json"), context))
    return response_json(response), model


def test_every_row_is_answered_as_scikit_learn_answers_it(
    published: tuple[Case, Path], handler_module: Callable[..., ModuleType], lambda_context: Any
) -> None:
    case, root = published
    registry = root / "registry"
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    estimator = joblib.load(registry / manifest.version / "model.joblib")
    frame = case.table()
    features = manifest.feature_names
    assert features == case.config["data"]["features"]  # original names, spaces and slashes included
    matrix = frame[features].to_numpy(dtype=np.float64)
    # Every value exactly as the matrix holds it (DataFrame.to_json would round to 10 digits).
    rows = [dict(zip(features, map(_json_number, values), strict=True)) for values in matrix.tolist()]
    body, model = served(handler_module, registry, rows, lambda_context)
    assert model["task"] == manifest.task
    assert body["version"] == manifest.version
    if manifest.task == "classification":
        assert model["classes"] == manifest.classes
        expected = estimator.predict(matrix).tolist()
        reference = estimator.predict_proba(matrix)
        # Where scikit-learn's two likeliest classes are within the tolerance (a forest's 0.5 / 0.5),
        # float32 may pick either, as the parity gate allows; every other row must agree exactly.
        top_two = np.sort(reference, axis=1)[:, -2:]
        decided = (top_two[:, 1] - top_two[:, 0]) > TOLERANCE
        answered = body["predictions"]
        assert [a for a, d in zip(answered, decided, strict=True) if d] == [
            e for e, d in zip(expected, decided, strict=True) if d
        ]  # the classes as trained: strings stay strings
        assert {type(a) for a in answered} == {type(e) for e in expected}
        probabilities = np.array([[row[str(c)] for c in manifest.classes] for row in body["probabilities"]])
        assert np.max(np.abs(probabilities - reference)) <= TOLERANCE
    elif manifest.task == "regression":
        expected = estimator.predict(matrix)
        assert np.max(np.abs(np.array(body["predictions"]) - expected)) <= TOLERANCE * np.max(
            np.abs(expected)
        )
        assert "scores" not in body
        assert "probabilities" not in body
    else:
        reference = anomaly_scores(estimator, matrix)
        # The gate's own rule: 1e-5 of each row's score (1e-3 for a one-class SVM: float32 kernels only).
        per_row = FLOAT32_ONLY_TOLERANCE.get(type(estimator.steps[-1][1]).__name__, TOLERANCE)
        tolerance = per_row * np.maximum(1.0, np.abs(reference))
        assert np.all(np.abs(np.array(body["scores"]) - reference) <= tolerance)
        assert body["predictions"] == (reference >= manifest.threshold).astype(int).tolist()
        assert model["threshold"] == manifest.threshold


def test_openapi_documents_the_answer_of_the_loaded_models_task(published: tuple[Case, Path]) -> None:
    from fastapi.testclient import TestClient

    from lambda_app.config import Settings
    from lambda_app.main import create_app

    _, root = published
    with TestClient(create_app(Settings(model_uri=str(root / "registry")))) as client:
        schema = client.get("/openapi.json").json()
        task = schema["info"]["x-model-task"]
        ok = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
        expected = {"anomaly": "AnomalyResponse", "classification": "ClassificationResponse"}.get(
            task, "RegressionResponse"
        )
        assert ok["schema"]["anyOf"][0]["$ref"].endswith(expected)
        assert ok["schema"]["anyOf"][1]["$ref"].endswith(expected.replace("Response", "PerRowResponse"))
        example = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"][
            "examples"
        ]
        assert client.post("/predict", json=example["batch"]["value"]).status_code == 200


class Doubler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A custom step: skops does not trust it by default, and skl2onnx has no converter for it."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) * 2


def _fitted_pipeline(tmp_path: Path, *steps: Any) -> tuple[Path, Path, Any]:
    """A pipeline fitted elsewhere on a DataFrame (so it knows its column names), saved with skops."""
    import skops.io
    from sklearn.pipeline import make_pipeline

    frame = breast_cancer()
    features = frame.drop(columns="target")
    pipeline = make_pipeline(*steps).fit(features, frame["target"])
    model = tmp_path / "model.skops"
    skops.io.dump(pipeline, model)
    sample = tmp_path / "sample.csv"
    frame.to_csv(sample, index=False)
    return model, sample, pipeline


def test_an_imported_pipeline_is_published_and_answers_as_scikit_learn(
    tmp_path: Path,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from training.__main__ import main

    model, sample, pipeline = _fitted_pipeline(tmp_path, StandardScaler(), LogisticRegression(max_iter=2000))
    registry = tmp_path / "registry"
    argv = ["import", "--model", str(model), "--data", str(sample), "--model-uri", str(registry)]
    assert main([*argv, "--label", "target"]) == 0
    assert "(classification)" in capsys.readouterr().out
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    assert manifest.task == "classification"
    assert manifest.feature_names == list(pipeline.feature_names_in_)  # the schema came from the model
    assert manifest.metrics is not None  # the sample had labels: evaluated
    assert manifest.artifact("model").path == "model.skops"  # the user's own file is kept
    frame = breast_cancer()
    matrix = frame[manifest.feature_names].to_numpy(dtype=np.float64)
    rows = [dict(zip(manifest.feature_names, values, strict=True)) for values in matrix.tolist()]
    body, _ = served(handler_module, registry, rows, lambda_context)
    assert body["predictions"] == pipeline.predict(frame[manifest.feature_names]).tolist()
    probabilities = np.array([[row[str(c)] for c in manifest.classes or []] for row in body["probabilities"]])
    assert np.max(np.abs(probabilities - pipeline.predict_proba(frame[manifest.feature_names]))) <= TOLERANCE


def test_an_import_without_label_names_the_sample_column_that_would_evaluate_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from training.__main__ import main

    model, sample, _ = _fitted_pipeline(tmp_path, StandardScaler(), LogisticRegression(max_iter=2000))
    argv = ["import", "--model", str(model), "--data", str(sample), "--model-uri", str(tmp_path / "r")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "unlabelled: no holdout metrics (no --label given: pass the sample's label column" in out
    assert "see the warning above" not in out
    warning = next(r.getMessage() for r in caplog.records if "no --label" in r.getMessage())
    assert "column(s) target are not features of the model" in warning
    assert "pass --label target" in warning


def test_import_refusals_are_one_clear_line_and_publish_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import joblib as pickle_format
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.naive_bayes import GaussianNB

    from training.__main__ import main

    registry = tmp_path / "registry"

    def refused(*argv: str) -> str:
        assert main(["import", *argv, "--model-uri", str(registry)]) == 1
        assert not registry.exists()
        return capsys.readouterr().err

    model, sample, _ = _fitted_pipeline(tmp_path, Doubler(), GaussianNB())
    untrusted = f"{__name__}.Doubler"
    err = refused("--model", str(model), "--data", str(sample))
    assert f"needs types skops does not trust by default: {untrusted}" in err
    assert f"--trust {untrusted}" in err
    # Trusted, it loads, and is then refused as unconvertible, with the converter's reason.
    err = refused("--model", str(model), "--data", str(sample), "--label", "target", "--trust", untrusted)
    assert "cannot be converted to ONNX for serving" in err

    pickled = tmp_path / "model.joblib"
    pickle_format.dump(HistGradientBoostingClassifier(), pickled)
    assert "is a pickle: loading it runs whatever code it holds" in refused(
        "--model", str(pickled), "--data", str(sample)
    )
    assert "is not fitted" in refused("--model", str(pickled), "--data", str(sample), "--allow-pickle")

    narrow = tmp_path / "narrow.csv"
    breast_cancer()[["mean radius", "target"]].to_csv(narrow, index=False)
    model, _, _ = _fitted_pipeline(tmp_path, RandomForestClassifier(n_estimators=5))
    err = refused("--model", str(model), "--data", str(sample))  # trees need the user's word, too
    assert "--trust sklearn.tree._tree.Tree" in err
    assert "lacks feature(s) the model was fitted on: mean texture" in refused(
        "--model", str(model), "--data", str(narrow), "--trust", "sklearn.tree._tree.Tree"
    )
    texts = breast_cancer()
    texts["mean radius"] = np.where(texts["mean radius"] > 14, "large", "small")
    texts.to_csv(tmp_path / "texts.csv", index=False)
    holes = breast_cancer()
    holes.loc[3, "mean area"] = np.nan
    holes.to_csv(tmp_path / "holes.csv", index=False)
    trusted = ("--trust", "sklearn.tree._tree.Tree", "--label", "target")
    assert "column(s) 'mean radius' hold text: an imported model is served numbers" in refused(
        "--model", str(model), "--data", str(tmp_path / "texts.csv"), *trusted
    )
    assert "column 'mean area', row 4: missing value" in refused(
        "--model", str(model), "--data", str(tmp_path / "holes.csv"), *trusted
    )
