"""A Pipeline fitted elsewhere with a ColumnTransformer in front (imputers, encoders, scalers) is
imported, published and served through the real Lambda handler, answering what the pipeline answers
on the raw rows, missing values and unseen categories included; what the service cannot reproduce
exactly is refused in one line naming the step and what to change."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from lambda_app.registry import LocalStorage, Manifest, read_manifest, resolve_version
from tests.conftest import predict_event, response_json
from training.__main__ import main

TOLERANCE = 1e-5


def passengers(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A mixed table: numbers used as categories (pclass), text categories with missing values,
    numbers with missing values, a boolean, and a 0/1 label that depends on them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "pclass": rng.integers(1, 4, rows),
            "sex": rng.choice(["female", "male"], rows),
            "embarked": rng.choice(["S", "C", "Q"], rows, p=[0.6, 0.25, 0.15]).astype(object),
            "deck": rng.choice(["A", "B", "C", "D"], rows).astype(object),
            "age": rng.normal(30, 12, rows).round(1),
            "fare": rng.lognormal(3, 1, rows).round(2),
            "alone": rng.random(rows) < 0.5,
        }
    )
    frame.loc[rng.random(rows) < 0.05, "embarked"] = np.nan
    frame.loc[rng.random(rows) < 0.2, "deck"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "age"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "fare"] = np.nan
    score = (frame["sex"] == "female") * 1.5 - (frame["pclass"] - 2) + frame["alone"] * 0.5
    frame["survived"] = (score + rng.normal(0, 1, rows) > 0.5).astype(int)
    return frame


def preprocessing() -> ColumnTransformer:
    """Every accepted kind: imputers (median, mean, most frequent, constant), one-hot and ordinal
    encoders, scalers, passthrough (the remainder)."""
    return ColumnTransformer(
        [
            ("age", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["age"]),
            ("fare", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), ["fare"]),
            (
                "where",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                ["embarked", "sex"],
            ),
            ("class", OneHotEncoder(handle_unknown="ignore"), ["pclass"]),
            (
                "deck",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="none"),
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                ),
                ["deck"],
            ),
        ],
        remainder="passthrough",  # alone
        sparse_threshold=0,
    )


def probe_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The sample's features with missing values where the pipeline fills them and values no row has."""
    rows = frame.drop(columns="survived").copy()
    rows.loc[::7, "embarked"] = "X"  # unseen
    rows.loc[1::7, "deck"] = "Z"  # unseen
    rows.loc[2::7, "pclass"] = 9  # unseen (a number used as a category)
    rows.loc[3::7, "sex"] = np.nan
    rows.loc[4::7, "age"] = np.nan
    rows.loc[5::7, "deck"] = np.nan
    return rows


def records(frame: pd.DataFrame, categories: list[str]) -> list[dict[str, Any]]:
    """Rows as JSON records: categories as strings, booleans as true/false, missing as null."""
    out = []
    for row in frame.to_dict(orient="records"):
        record: dict[str, Any] = {}
        for key, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                record[key] = None
            elif key in categories:  # a boolean used as a category is "true" or "false"
                record[key] = str(value).lower() if isinstance(value, bool | np.bool_) else str(value)
            elif isinstance(value, bool | np.bool_):
                record[key] = bool(value)
            else:
                record[key] = value
        out.append(record)
    return out


def production(registry: Path) -> Manifest:
    storage = LocalStorage(registry)
    return read_manifest(storage, resolve_version(storage, "production"))


def served(
    handler_module: Callable[..., ModuleType], registry: Path, rows: list[dict[str, Any]], context: Any
) -> Any:
    response = handler_module(MODEL_URI=str(registry)).handler(predict_event(rows), context)
    assert response["statusCode"] == 200, response["body"][:500]
    return response_json(response)


def save(tmp_path: Path, pipeline: Any, frame: pd.DataFrame, kind: str) -> tuple[Path, Path]:
    sample = tmp_path / "sample.csv"
    frame.to_csv(sample, index=False)
    model = tmp_path / f"model.{kind}"
    if kind == "skops":
        import skops.io

        skops.io.dump(pipeline, model)
    else:
        joblib.dump(pipeline, model)
    return model, sample


def test_a_mixed_pipeline_from_joblib_is_served_as_it_answers_missing_and_unseen_values_included(
    tmp_path: Path, handler_module: Callable[..., ModuleType], lambda_context: Any
) -> None:
    # GIVEN a logistic regression behind every accepted kind of preprocessing, saved with joblib
    frame = passengers()
    pipeline = make_pipeline(preprocessing(), LogisticRegression(max_iter=1000))
    pipeline.fit(frame.drop(columns="survived"), frame["survived"])
    model, sample = save(tmp_path, pipeline, frame, "joblib")
    registry = tmp_path / "registry"
    # WHEN it is imported (a pickle: only with the flag)
    argv = ["import", "--model", str(model), "--data", str(sample), "--model-uri", str(registry)]
    assert main([*argv, "--label", "survived", "--allow-pickle"]) == 0
    # THEN the features are the ColumnTransformer's, in its output order, with what it learned
    manifest = production(registry)
    specs = {spec.name: spec for spec in manifest.features}
    assert manifest.feature_names == ["age", "fare", "embarked", "sex", "pclass", "deck", "alone"]
    assert specs["age"].fill == pytest.approx(frame["age"].median())
    assert specs["fare"].fill == pytest.approx(frame["fare"].mean())
    assert (specs["embarked"].encoding, specs["embarked"].categories, specs["embarked"].fill) == (
        "onehot",
        ["C", "Q", "S"],
        "S",
    )
    assert (specs["pclass"].categories, specs["pclass"].fill) == (["1", "2", "3"], None)
    assert (specs["deck"].encoding, specs["deck"].fill) == ("ordinal", "none")
    assert specs["alone"].dtype == "boolean"
    evaluation = json.loads((registry / manifest.version / "evaluation.json").read_text())
    assert evaluation["parity"]["preprocessing"]["exactly_equal"] is True
    assert evaluation["parity"]["sample_with_missing_and_unseen"]["class_mismatches"] == 0
    # AND the service answers every raw row, missing and unseen values included, as the pipeline does
    rows = probe_rows(frame)
    categories = ["embarked", "sex", "pclass", "deck"]
    body = served(handler_module, registry, records(rows, categories), lambda_context)
    reference = pipeline.predict_proba(rows)
    probabilities = np.array([[row[str(c)] for c in manifest.classes or []] for row in body["probabilities"]])
    assert np.max(np.abs(probabilities - reference)) <= TOLERANCE
    assert body["predictions"] == pipeline.predict(rows).tolist()
    assert body["unseen"][0] == {"row": 0, "fields": ["embarked"]}


def test_a_forest_pipeline_from_skops_needs_its_types_trusted_and_is_served_exactly(
    tmp_path: Path,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a random forest behind scalers and encoders, saved with skops
    frame = passengers(seed=1)
    pipeline = make_pipeline(preprocessing(), RandomForestClassifier(n_estimators=8, random_state=0))
    pipeline.fit(frame.drop(columns="survived"), frame["survived"])
    model, sample = save(tmp_path, pipeline, frame, "skops")
    registry = tmp_path / "registry"
    argv = ["import", "--model", str(model), "--data", str(sample), "--model-uri", str(registry)]
    # WHEN imported without trusting the types skops does not trust by default: refused, listed
    assert main([*argv, "--label", "survived"]) == 1
    err = capsys.readouterr().err
    assert "--trust sklearn.tree._tree.Tree" in err
    trust = err.split("confirm with:")[1].split()
    assert not registry.exists()
    # AND with each of them trusted
    assert main([*argv, "--label", "survived", *trust]) == 0
    # THEN the forest behind scalers is served exactly (a float64 graph: float32 would scale off by a step)
    manifest = production(registry)
    assert manifest.converter is not None
    assert manifest.converter["input"] == "float64"
    rows = probe_rows(frame)
    body = served(
        handler_module, registry, records(rows, ["embarked", "sex", "pclass", "deck"]), lambda_context
    )
    reference = pipeline.predict_proba(rows)
    probabilities = np.array([[row[str(c)] for c in manifest.classes or []] for row in body["probabilities"]])
    assert np.max(np.abs(probabilities - reference)) <= TOLERANCE


def test_a_regression_pipeline_with_an_ordinal_category_is_served_as_it_answers(
    tmp_path: Path, handler_module: Callable[..., ModuleType], lambda_context: Any
) -> None:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame["sex"] = np.where(frame["sex"] == 1, "female", "male").astype(object)
    frame.loc[::9, "bmi"] = np.nan
    transformer = ColumnTransformer(
        [
            ("sex", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["sex"]),
            ("bmi", SimpleImputer(strategy="median"), ["bmi"]),
        ],
        remainder="passthrough",
    )
    pipeline = make_pipeline(transformer, GradientBoostingRegressor(n_estimators=20, random_state=0))
    pipeline.fit(frame.drop(columns="target"), frame["target"])
    model, sample = save(tmp_path, pipeline, frame, "joblib")
    registry = tmp_path / "registry"
    argv = ["import", "--model", str(model), "--data", str(sample), "--model-uri", str(registry)]
    assert main([*argv, "--label", "target", "--allow-pickle"]) == 0
    manifest = production(registry)
    assert manifest.task == "regression"
    rows = frame.drop(columns="target")
    rows.loc[::5, "sex"] = "unknown"
    body = served(handler_module, registry, records(rows, ["sex"]), lambda_context)
    expected = pipeline.predict(rows)
    assert np.max(np.abs(np.array(body["predictions"]) - expected)) <= TOLERANCE * np.max(np.abs(expected))


@pytest.mark.parametrize("with_column_transformer", [True, False], ids=["column-transformer", "scaler-only"])
def test_an_all_numeric_pipeline_with_scalers_in_front_of_a_forest_is_served_exactly(
    tmp_path: Path,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    with_column_transformer: bool,
) -> None:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    features = frame.drop(columns="target")
    scaled = list(features.columns[:6])
    first = (
        ColumnTransformer([("scaled", StandardScaler(), scaled)], remainder="passthrough")
        if with_column_transformer
        else StandardScaler()
    )
    pipeline = make_pipeline(first, RandomForestClassifier(n_estimators=10, random_state=0))
    pipeline.fit(features, frame["target"])
    model, sample = save(tmp_path, pipeline, frame, "joblib")
    registry = tmp_path / "registry"
    argv = ["import", "--model", str(model), "--data", str(sample), "--model-uri", str(registry)]
    assert main([*argv, "--label", "target", "--allow-pickle"]) == 0
    manifest = production(registry)
    if with_column_transformer:  # the ColumnTransformer's output order
        assert manifest.feature_names == [*scaled, *features.columns[6:]]
    body = served(handler_module, registry, records(features, []), lambda_context)
    reference = pipeline.predict_proba(features)
    probabilities = np.array([[row[str(c)] for c in manifest.classes or []] for row in body["probabilities"]])
    assert np.max(np.abs(probabilities - reference)) <= TOLERANCE


def _log(values: Any) -> Any:
    return np.log1p(values)


def _refusal_cases() -> list[Any]:
    onehot = {"handle_unknown": "ignore", "sparse_output": False}
    filled = SimpleImputer(strategy="most_frequent")
    return [
        pytest.param(
            [("fare", make_pipeline(SimpleImputer(), FunctionTransformer(_log)), ["fare"])],
            "holds a FunctionTransformer (_log): its Python function cannot run in the service",
            id="function-transformer",
        ),
        pytest.param(
            [("sex", OneHotEncoder(sparse_output=False), ["sex"])],
            "has handle_unknown='error'",
            id="onehot-unknown-error",
        ),
        pytest.param(
            [("sex", OneHotEncoder(drop="first", **onehot), ["sex"])],
            "drops a category (drop='first')",
            id="onehot-drop-first",
        ),
        pytest.param(
            [("embarked", OneHotEncoder(min_frequency=0.2, **onehot), ["embarked"])],
            "groups infrequent categories: set min_frequency=None",
            id="onehot-infrequent",
        ),
        pytest.param(
            [("sex", OrdinalEncoder(), ["sex"])],
            "set handle_unknown='use_encoded_value', unknown_value=-1",
            id="ordinal-unknown-error",
        ),
        pytest.param(
            [("sex", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=99), ["sex"])],
            "unknown_value=99",
            id="ordinal-unknown-value",
        ),
        pytest.param(
            [("fare", make_pipeline(SimpleImputer(), MinMaxScaler()), ["fare"])],
            "holds sklearn.preprocessing.MinMaxScaler where the service reproduces an optional SimpleImputer",
            id="other-transformer",
        ),
        pytest.param(
            [("fare", SimpleImputer(add_indicator=True), ["fare"])],
            "set add_indicator=False",
            id="imputer-indicator",
        ),
        pytest.param(
            [("deck", make_pipeline(filled, OneHotEncoder(handle_unknown="ignore")), ["deck"])],
            "output is sparse: set sparse_threshold=0",
            id="sparse-output",
        ),
        pytest.param(
            [("embarked", OneHotEncoder(**onehot), ["embarked"])],
            "learned a missing value as a category of 'embarked': put a SimpleImputer in front",
            id="missing-as-category",
        ),
        pytest.param(
            [("age", StandardScaler(), ["age"])],
            "column 'age' has missing values in the sample, and the pipeline's 'age' part fills none",
            id="missing-not-filled",
        ),
        pytest.param(
            [("fare", SimpleImputer(), ["fare"]), ("both", SimpleImputer(), ["fare", "age"])],
            "column 'fare' goes through two parts of the ColumnTransformer",
            id="column-twice",
        ),
    ]


@pytest.mark.parametrize(("parts", "message"), _refusal_cases())
def test_what_the_service_cannot_reproduce_is_refused_in_one_line_naming_what_to_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], parts: list[Any], message: str
) -> None:
    frame = passengers(rows=200)
    transformer = ColumnTransformer(parts, sparse_threshold=1.0 if "deck" in parts[0][2] else 0.0)
    pipeline = make_pipeline(transformer, RandomForestClassifier(n_estimators=2, random_state=0))
    pipeline.fit(frame.drop(columns="survived"), frame["survived"])
    model, sample = save(tmp_path, pipeline, frame, "joblib")
    registry = tmp_path / "registry"
    argv = ["import", "--model", str(model), "--data", str(sample), "--model-uri", str(registry)]
    assert main([*argv, "--label", "survived", "--allow-pickle"]) == 1
    err = capsys.readouterr().err
    assert "the pipeline cannot be served exactly" in err
    assert message in err
    assert not registry.exists()


def test_a_boolean_encoded_as_a_category_is_matched_and_a_foreign_sample_is_refused(
    tmp_path: Path,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    frame = passengers(rows=200)
    transformer = ColumnTransformer(
        [
            ("alone", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["alone"]),
            ("sex", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["sex"]),
        ]
    )
    pipeline = make_pipeline(transformer, LogisticRegression()).fit(frame, frame["survived"])
    model, sample = save(tmp_path, pipeline, frame, "joblib")
    registry = tmp_path / "registry"
    argv = [
        "import",
        "--model",
        str(model),
        "--model-uri",
        str(registry),
        "--label",
        "survived",
        "--allow-pickle",
    ]
    assert main([*argv, "--data", str(sample)]) == 0
    manifest = production(registry)
    assert manifest.features[0].categories == ["false", "true"]  # the CSV's True/False matched
    rows = frame[["alone", "sex"]]
    body = served(handler_module, registry, records(rows, ["alone", "sex"]), lambda_context)
    assert body["unseen"] is None
    assert body["predictions"] == pipeline.predict(rows).tolist()

    foreign = frame.assign(sex=np.where(frame["sex"] == "female", "F", "M"))
    foreign.to_csv(tmp_path / "foreign.csv", index=False)
    assert main([*argv, "--data", str(tmp_path / "foreign.csv")]) == 1
    assert (
        "none of the sample's values of 'sex' ('F', 'M') is among the categories" in capsys.readouterr().err
    )


def test_a_model_without_a_column_transformer_is_told_how_to_bring_text_and_missing_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = passengers(rows=100)[["age", "fare", "survived"]].fillna(1.0)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        frame[["age", "fare"]], frame["survived"]
    )
    holes = frame.copy()
    holes.loc[3, "age"] = np.nan
    texts = frame.assign(fare=np.where(frame["fare"] > 20, "high", "low"))
    model, _ = save(tmp_path, pipeline, frame, "joblib")
    registry = tmp_path / "registry"
    for name, sample, message in (
        ("holes", holes, "this model fills no missing values; import a Pipeline whose ColumnTransformer has"),
        (
            "texts",
            texts,
            "hold text: an imported model is served numbers and true/false only, unless it is a",
        ),
    ):
        sample.to_csv(tmp_path / f"{name}.csv", index=False)
        argv = [
            "import",
            "--model",
            str(model),
            "--data",
            str(tmp_path / f"{name}.csv"),
            "--model-uri",
            str(registry),
        ]
        assert main([*argv, "--label", "survived", "--allow-pickle"]) == 1
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("trees", ["forest", "tree"])
def test_a_scaler_in_front_of_a_forest_or_tree_regressor_gets_an_exact_float64_graph(
    tmp_path: Path, handler_module: Callable[..., ModuleType], lambda_context: Any, trees: str
) -> None:
    """In float32 the scaling lands off (a forest 19 apart on diabetes); skl2onnx's float64 graph of a
    tree regressor did not load in ONNX Runtime until its float32 output was cast."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.tree import DecisionTreeRegressor

    frame = load_diabetes(as_frame=True).frame
    features = frame.drop(columns="target")
    model = (
        RandomForestRegressor(n_estimators=5, random_state=0)
        if trees == "forest"
        else DecisionTreeRegressor()
    )
    pipeline = make_pipeline(StandardScaler(), model)
    pipeline.fit(features, frame["target"])
    path, sample = save(tmp_path, pipeline, frame, "joblib")
    registry = tmp_path / "registry"
    argv = ["import", "--model", str(path), "--data", str(sample), "--model-uri", str(registry)]
    assert main([*argv, "--label", "target", "--allow-pickle"]) == 0
    manifest = production(registry)
    assert manifest.converter["input"] == "float64"
    rows = features.sample(200, random_state=0)
    body = served(handler_module, registry, rows.to_dict(orient="records"), lambda_context)
    np.testing.assert_allclose(body["predictions"], pipeline.predict(rows), rtol=1e-6)
