"""XGBoost (.json, .ubj) and LightGBM (.txt) model files with a sample: imported without any flag (a
model file is data, not code), published, and served through the real Lambda handler answering what
the library answers; a file that is not a model, or a model of no served task, is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lambda_app.registry import LocalStorage, read_manifest, resolve_version
from tests.conftest import predict_event, response_json
from training.__main__ import main

TOLERANCE = 1e-5


def table(name: str) -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    loader = {"cancer": load_breast_cancer, "wine": load_wine, "diabetes": load_diabetes}[name]
    frame: pd.DataFrame = loader(as_frame=True).frame
    return frame


def fitted(library: str, data: str, frame: pd.DataFrame) -> Any:
    """A small model of ``library`` fitted on ``frame`` with its column names (unfitted if empty)."""
    features, target = frame.drop(columns="target"), frame["target"]
    if library == "xgboost":
        import xgboost

        cls = xgboost.XGBRegressor if data == "diabetes" else xgboost.XGBClassifier
        model = cls(n_estimators=5, max_depth=3)
    else:
        import lightgbm

        cls = lightgbm.LGBMRegressor if data == "diabetes" else lightgbm.LGBMClassifier
        model = cls(n_estimators=5, verbose=-1)
    return model.fit(features, target) if len(frame) else model


@pytest.mark.parametrize(
    ("library", "suffix", "data"),
    [
        ("xgboost", "json", "cancer"),
        ("xgboost", "ubj", "wine"),
        ("xgboost", "json", "diabetes"),
        ("lightgbm", "txt", "cancer"),  # LightGBM records "mean radius" as "mean_radius"
        ("lightgbm", "txt", "diabetes"),
    ],
)
def test_a_native_model_file_is_published_and_answers_as_its_library(
    tmp_path: Path,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    library: str,
    suffix: str,
    data: str,
) -> None:
    # GIVEN a model saved in its library's own format, and a sample
    frame = table(data)
    model = fitted(library, data, frame)
    path = tmp_path / f"model.{suffix}"
    (model.booster_ if library == "lightgbm" else model).save_model(str(path))
    sample = tmp_path / "sample.csv"
    frame.to_csv(sample, index=False)
    registry = tmp_path / "registry"
    # WHEN it is imported, without --allow-pickle or --trust
    argv = ["import", "--model", str(path), "--data", str(sample), "--model-uri", str(registry)]
    assert main([*argv, "--label", "target"]) == 0
    # THEN the task comes from the file's objective, the features from its names, and every row is
    # answered as the library answers it
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    assert manifest.task == ("regression" if data == "diabetes" else "classification")
    assert manifest.feature_names == [c for c in frame.columns if c != "target"]
    assert manifest.artifact("model").path == f"model.{suffix}"
    features = frame.drop(columns="target")
    rows = [dict(zip(features.columns, values, strict=True)) for values in features.to_numpy().tolist()]
    response = handler_module(MODEL_URI=str(registry)).handler(predict_event(rows), lambda_context)
    assert response["statusCode"] == 200, response["body"][:300]
    body = response_json(response)
    if manifest.task == "classification":
        probabilities = np.array(
            [[row[str(c)] for c in manifest.classes or []] for row in body["probabilities"]]
        )
        assert np.max(np.abs(probabilities - model.predict_proba(features))) <= TOLERANCE
    else:
        expected = model.predict(features)
        assert np.max(np.abs(np.array(body["predictions"]) - expected)) <= TOLERANCE * np.max(
            np.abs(expected)
        )


def test_a_file_that_is_not_a_served_model_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import lightgbm

    frame = table("diabetes")
    sample = tmp_path / "sample.csv"
    frame.to_csv(sample, index=False)
    registry = tmp_path / "registry"

    def refused(model: Path) -> str:
        argv = ["import", "--model", str(model), "--data", str(sample), "--model-uri", str(registry)]
        assert main([*argv, "--label", "target"]) == 1
        assert not registry.exists()
        return capsys.readouterr().err

    notes = tmp_path / "notes.txt"
    notes.write_text("not a model\n")
    assert "is not a LightGBM model file" in refused(notes)
    ranker = lightgbm.LGBMRanker(n_estimators=2, min_child_samples=5, verbose=-1)
    ranker.fit(frame.drop(columns="target"), (frame["target"] > 150).astype(int), group=[len(frame)])
    ranking = tmp_path / "ranker.txt"
    ranker.booster_.save_model(str(ranking))
    assert "objective 'lambdarank' is neither classification nor regression" in refused(ranking)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("with_column_transformer", [True, False], ids=["column-transformer", "alone"])
def test_a_pickled_boosted_model_alone_or_behind_a_column_transformer_answers_as_itself(
    tmp_path: Path,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    library: str,
    with_column_transformer: bool,
) -> None:
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    frame = table("cancer")
    if with_column_transformer:
        frame["size"] = np.where(frame["mean radius"] > 14, "large", "small").astype(object)
        frame.loc[::6, "mean area"] = np.nan
    features, target = frame.drop(columns="target"), frame["target"]
    booster = fitted(library, "cancer", frame.iloc[:0])
    if with_column_transformer:
        numbers = [c for c in features.columns if c != "size"]
        transformer = ColumnTransformer(
            [
                ("size", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["size"]),
                ("numbers", SimpleImputer(strategy="median"), numbers),
            ]
        )
        model = make_pipeline(transformer, booster).fit(features, target)
    else:
        model = booster.fit(features, target)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    sample = tmp_path / "sample.csv"
    frame.to_csv(sample, index=False)
    registry = tmp_path / "registry"
    argv = ["import", "--model", str(path), "--data", str(sample), "--model-uri", str(registry)]
    assert main([*argv, "--label", "target", "--allow-pickle"]) == 0
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in features.to_dict(orient="records")
    ]
    response = handler_module(MODEL_URI=str(registry)).handler(predict_event(records), lambda_context)
    assert response["statusCode"] == 200, response["body"][:300]
    body = response_json(response)
    probabilities = np.array([[row[str(c)] for c in manifest.classes or []] for row in body["probabilities"]])
    assert np.max(np.abs(probabilities - model.predict_proba(features))) <= TOLERANCE


def test_a_sample_whose_labels_are_not_the_models_classes_is_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model file numbers its classes 0..n-1; a sample labelled by name would be scored as all wrong
    (every metric invented from a mismatch): refused, with what to do."""
    frame = table("wine")
    path = tmp_path / "model.json"
    fitted("xgboost", "wine", frame).save_model(str(path))
    named = frame.assign(target=frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"}))
    sample = tmp_path / "sample.csv"
    named.to_csv(sample, index=False)
    argv = ["import", "--model", str(path), "--data", str(sample), "--model-uri", str(tmp_path / "registry")]
    assert main([*argv, "--label", "target"]) == 1
    err = capsys.readouterr().err
    assert (
        "the sample's labels in 'target' (barbera, barolo, grignolino) are not the model's classes (0, 1, 2)"
        in err
    )
    assert "name them in that order with --classes" in err
    assert not (tmp_path / "registry").exists()


@pytest.mark.parametrize(("library", "suffix"), [("xgboost", "json"), ("lightgbm", "txt")])
def test_a_model_files_classes_named_with_classes_are_answered_by_name(
    library: str,
    suffix: str,
    tmp_path: Path,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The file records 0..n-1 only; --classes names them in that order, and the graph answers the names."""
    frame = table("wine")
    model = fitted(library, "wine", frame)
    path = tmp_path / f"model.{suffix}"
    (model.get_booster() if library == "xgboost" else model.booster_).save_model(str(path))
    names = ["barolo", "grignolino", "barbera"]
    named = frame.assign(target=np.array(names, dtype=object)[frame["target"]])
    sample = tmp_path / "sample.csv"
    named.to_csv(sample, index=False)
    registry = tmp_path / "registry"
    argv = ["import", "--model", str(path), "--data", str(sample), "--model-uri", str(registry)]
    assert main([*argv, "--label", "target", "--classes", "barolo,grignolino"]) == 1
    assert "has 3 classes (0..2); --classes names 2: name each once, in that order" in capsys.readouterr().err
    assert main([*argv, "--label", "target", "--classes", " barolo, grignolino ,barbera"]) == 0
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    assert manifest.classes == names
    assert manifest.metrics["accuracy"] > 0.9  # evaluated against the named labels
    features = frame.drop(columns="target")
    response = handler_module(MODEL_URI=str(registry)).handler(
        predict_event(features.to_dict(orient="records")), lambda_context
    )
    body = response_json(response)
    expected = model.predict_proba(features)
    np.testing.assert_allclose(
        [[row[c] for c in names] for row in body["probabilities"]], expected, atol=1e-5
    )
    assert body["predictions"] == [names[i] for i in np.argmax(expected, axis=1)]


def test_classes_are_refused_for_a_regressor_file_and_a_scikit_learn_estimator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = table("diabetes")
    path = tmp_path / "model.json"
    fitted("xgboost", "diabetes", frame).save_model(str(path))
    sample = tmp_path / "sample.csv"
    frame.to_csv(sample, index=False)
    argv = ["import", "--data", str(sample), "--model-uri", str(tmp_path / "registry"), "--classes", "a,b"]
    assert main([*argv, "--model", str(path)]) == 1
    assert "--classes names a classifier's classes; this model is a regressor" in capsys.readouterr().err
    import joblib

    joblib.dump(fitted("xgboost", "diabetes", frame), tmp_path / "model.joblib")
    assert main([*argv, "--model", str(tmp_path / "model.joblib"), "--allow-pickle"]) == 1
    assert "a scikit-learn estimator keeps its own: drop --classes" in capsys.readouterr().err
