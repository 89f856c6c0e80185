"""Real tables (issue 12): a category (``protocol``), a boolean (``encrypted``) and missing values
(``bytes``), trained with the default config, served through the real Lambda handler, scored in
batch, watched for drift; every answer equal to scikit-learn's whole pipeline on the raw rows."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from lambda_app.registry import LocalStorage, Manifest, read_manifest, resolve_version
from tests.conftest import load_event, predict_event, response_json
from training.config import TrainingConfig
from training.data.synthetic import generate
from training.tasks.checks import load_config
from training.train import run_training

ROWS = 5000  # docs/training.md's example: generate --rows 5000 --mixed (seed 7), the default config


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON records: categories as strings, booleans as true/false, a missing value as null."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append(
            {
                k: None
                if isinstance(v, float) and math.isnan(v)
                else bool(v)
                if isinstance(v, bool | np.bool_)
                else v
                for k, v in row.items()
            }
        )
    return out


def production(registry: Path) -> Manifest:
    storage = LocalStorage(registry)
    return read_manifest(storage, resolve_version(storage, "production"))


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """docs/training.md's example: the flows with protocol, encrypted and bytes, the default config."""
    root = tmp_path_factory.mktemp("mixed")
    frame = generate(ROWS, seed=7, mixed=True)
    frame.to_csv(root / "flows.csv", index=False)
    run_training(str(root / "flows.csv"), str(root / "registry"), load_config())
    return root / "registry", frame


def test_auto_finds_each_type_and_the_manifest_records_how_it_is_served(
    flows: tuple[Path, pd.DataFrame],
) -> None:
    registry, frame = flows
    manifest = production(registry)
    specs = {f.name: f for f in manifest.features}
    assert [(f.name, f.dtype) for f in manifest.features] == [
        ("one", "number"),
        ("two", "number"),
        ("three", "number"),
        ("protocol", "category"),
        ("encrypted", "boolean"),
        ("bytes", "number"),
    ]
    assert specs["protocol"].categories == ["icmp", "tcp", "udp"]
    assert specs["protocol"].encoding == "ordinal"  # a forest keeps its compact graph
    assert specs["protocol"].fill is None  # no missing values there
    assert specs["encrypted"].fill is None
    assert isinstance(specs["bytes"].fill, float)
    evaluation = (registry / manifest.version / "evaluation.json").read_text()
    assert '"exactly_equal": true' in evaluation  # the preprocessing parity gate ran
    reference = manifest.reference.features
    assert reference["protocol"].categories == ["icmp", "tcp", "udp"]
    assert reference["bytes"].missing_fraction == pytest.approx(frame["bytes"].isna().mean(), abs=0.02)
    pipeline = joblib.load(registry / manifest.version / "model.joblib")
    assert [name for name, _ in pipeline.steps] == ["preprocess", "model"]


def test_predict_answers_what_scikit_learns_pipeline_answers_on_every_raw_row(
    flows: tuple[Path, pd.DataFrame], handler_module: Callable[..., ModuleType], lambda_context: Any
) -> None:
    registry, frame = flows
    manifest = production(registry)
    pipeline = joblib.load(registry / manifest.version / "model.joblib")
    raw = frame[manifest.feature_names]
    expected = -pipeline.score_samples(raw)  # the compact graph's score: the paper's, in (0, 1]
    module = handler_module(MODEL_URI=str(registry))
    scores: list[float] = []
    predictions: list[int] = []
    all_records = records(raw)
    assert sum(r["bytes"] is None for r in all_records) > 100  # nulls are sent, not dropped
    for start in range(0, len(all_records), 1000):
        response = module.handler(predict_event(all_records[start : start + 1000]), lambda_context)
        assert response["statusCode"] == 200, response["body"]
        body = response_json(response)
        scores += body["scores"]
        predictions += body["predictions"]
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert manifest.threshold is not None
    decided = np.abs(expected - manifest.threshold) > 1e-5
    assert (np.array(predictions)[decided] == (expected >= manifest.threshold)[decided]).all()


def test_an_unseen_category_is_scored_and_counted_and_a_null_is_refused_where_nothing_fills_it(
    flows: tuple[Path, pd.DataFrame],
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, _ = flows
    manifest = production(registry)
    pipeline = joblib.load(registry / manifest.version / "model.joblib")
    module = handler_module(MODEL_URI=str(registry))
    record = {"one": 443, "two": 14.6, "three": 15.2, "protocol": "sctp", "encrypted": True, "bytes": None}
    capsys.readouterr()
    response = module.handler(predict_event([record]), lambda_context)
    assert response["statusCode"] == 200, response["body"]
    expected = -pipeline.score_samples(pd.DataFrame([record]).fillna(np.nan))  # unseen: -1 there too
    assert response_json(response)["scores"][0] == pytest.approx(expected[0], abs=1e-5)
    emf = [line for line in capsys.readouterr().out.splitlines() if "UnseenCategoryShare" in line]
    assert emf
    assert '"UnseenCategoryShare":[100.0]' in emf[0].replace(" ", "")

    for field, value, message in (
        ("protocol", None, "must be a string, got null"),
        ("encrypted", None, "must be true or false, got null"),
        ("protocol", 6, "must be a string, got number"),
        ("bytes", "12", "must be a number, got string"),
    ):
        refused = module.handler(predict_event([{**record, field: value}]), lambda_context)
        assert refused["statusCode"] == 422, (field, value)
        detail = response_json(refused)["errors"][0]
        assert (detail["row"], detail["field"]) == (0, field)
        assert message in detail["message"]


def test_openapi_lists_each_type_the_known_categories_and_which_features_take_null(
    flows: tuple[Path, pd.DataFrame], handler_module: Callable[..., ModuleType], lambda_context: Any
) -> None:
    registry, _ = flows
    module = handler_module(MODEL_URI=str(registry))
    event = load_event("apigw_v2_root.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/openapi.json"
    schema = response_json(module.handler(event, lambda_context))
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    properties = body["schema"]["oneOf"][0]["properties"]
    assert properties["protocol"]["type"] == "string"
    assert properties["protocol"]["examples"] == ["icmp", "tcp", "udp"]
    assert properties["bytes"]["type"] == ["number", "null"]
    assert properties["encrypted"] == {"type": "boolean"}
    example = body["examples"]["single"]["value"]
    assert example["protocol"] == "tcp"  # the most common value
    assert module.handler(predict_event([example]), lambda_context)["statusCode"] == 200


def test_batch_scoring_reads_empty_cells_and_unseen_categories_as_predict_does(
    flows: tuple[Path, pd.DataFrame],
    tmp_path: Path,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
) -> None:
    from lambda_app.batch.__main__ import EXIT_REJECTED, main

    registry, frame = flows
    manifest = production(registry)
    rows = frame[manifest.feature_names].head(200).copy()
    rows.loc[3, "protocol"] = "sctp"
    rows.loc[5, "bytes"] = np.nan
    rows.to_parquet(tmp_path / "in.parquet", index=False)
    text = rows.astype({"bytes": "object", "protocol": "object"})
    text.loc[5, "bytes"] = "NA"  # a missing-value word where the model fills: missing, not a reject
    text.loc[6, "bytes"] = ""
    text.loc[7, "protocol"] = ""  # a missing category, and protocol fills nothing: a reject
    text.to_csv(tmp_path / "in.csv", index=False)
    args = ["--model-uri", str(registry), "--quiet"]
    assert (
        main(["--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out.parquet"), *args]) == 0
    )
    assert (
        main(["--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"), *args])
        == EXIT_REJECTED
    )
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects[["row_number", "reason"]].values.tolist() == [[8, "field 'protocol': missing value"]]
    answer = response_json(
        handler_module(MODEL_URI=str(registry)).handler(predict_event(records(rows)), lambda_context)
    )
    assert pd.read_parquet(tmp_path / "out.parquet")["score"].tolist() == answer["scores"]
    from_csv = pd.read_csv(tmp_path / "out.csv")["score"].tolist()
    csv_rows = rows.copy()
    csv_rows.loc[6, "bytes"] = np.nan
    csv_answer = response_json(
        handler_module(MODEL_URI=str(registry)).handler(predict_event(records(csv_rows)), lambda_context)
    )
    assert from_csv == [s for i, s in enumerate(csv_answer["scores"]) if i != 7]


def test_category_and_missing_value_drift_online_and_offline(
    flows: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    from lambda_app.drift import DriftMonitor
    from training.__main__ import main

    registry, frame = flows
    manifest = production(registry)
    window = frame.head(1000).copy()
    window["protocol"] = np.where(np.arange(1000) % 2 == 0, "udp", "quic")  # udp doubles, quic is new
    window["bytes"] = window["bytes"].fillna(900.0)
    window.loc[window.index % 4 == 0, "bytes"] = np.nan  # 25% missing, was 5%
    window.to_csv(tmp_path / "window.csv", index=False)

    out = tmp_path / "drift"
    code = main(
        ["drift", "--data", str(tmp_path / "window.csv"), "--model-uri", str(registry), "--out", str(out)]
    )
    assert code == 1  # drift found
    report = pd.read_json(out / "drift.json", typ="series")
    protocol = report["features"]["protocol"]
    assert protocol["psi"] > 1.0
    assert protocol["unseen_share"] == pytest.approx(0.5)
    assert protocol["shares"]["udp"] == pytest.approx(0.5)
    assert report["features"]["bytes"]["missing_share"] == pytest.approx(0.25)
    assert report["features"]["two"]["psi"] < 0.1
    assert report["drifted_features"] == ["protocol", "bytes"]  # bytes: missing share up 20 points
    assert "(unseen)" not in (out / "drift.html").read_text()  # the chart is an image: labels inside it

    from training.data.stream import load_dataset

    served = load_dataset(str(tmp_path / "window.csv"), manifest.feature_names, None, specs=manifest.features)
    snapshot = DriftMonitor.for_manifest(manifest).observe(served.features)
    assert snapshot.unseen_share == pytest.approx(0.5)
    assert snapshot.missing_share == {"bytes": pytest.approx(0.25)}
    assert snapshot.psi["protocol"] == pytest.approx(protocol["psi"])


def test_a_linear_classifier_gets_one_hot_categories_and_answers_as_its_pipeline(
    tmp_path: Path, handler_module: Callable[..., ModuleType], lambda_context: Any
) -> None:
    frame = generate(2000, seed=8, task="classification", anomaly_rate=0.25, mixed=True)
    frame.to_csv(tmp_path / "flows.csv", index=False)
    config = TrainingConfig.model_validate(
        {
            "data": {"label": "kind"},
            "model": {
                "task": "classification",
                "estimator": "sklearn.linear_model.LogisticRegression",
                "params": {"max_iter": 2000},
                "scale": True,
            },
            "tuning": {"enabled": False},
            "evaluation": {"beat_baseline": False},
        }
    )
    run_training(str(tmp_path / "flows.csv"), str(tmp_path / "registry"), config)
    manifest = production(tmp_path / "registry")
    protocol = next(f for f in manifest.features if f.name == "protocol")
    assert protocol.encoding == "onehot"
    assert manifest.input_width == len(manifest.features) + 2  # icmp, tcp, udp: three columns
    pipeline = joblib.load(tmp_path / "registry" / manifest.version / "model.joblib")
    raw = frame[manifest.feature_names].head(500)
    module = handler_module(MODEL_URI=str(tmp_path / "registry"))
    body = response_json(module.handler(predict_event(records(raw)), lambda_context))
    expected = pipeline.predict_proba(raw)
    classes = [str(c) for c in pipeline.classes_]
    served = np.array([[row[c] for c in classes] for row in body["probabilities"]])
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_the_documented_example_answers_as_shown(
    flows: tuple[Path, pd.DataFrame], handler_module: Callable[..., ModuleType], lambda_context: Any
) -> None:
    import json
    import re

    from tests.conftest import ROOT

    page = (ROOT / "docs" / "training.md").read_text()
    section = page.split("\n## A real table", 1)[1].split("\n## ", 1)[0]
    examples = re.findall(r"'(\{[^']*\})'\n# (\d{3}) (.*)\n", section)
    assert len(examples) == 2
    module = handler_module(MODEL_URI=str(flows[0]))
    for body, status, answer in examples:
        response = module.handler(predict_event(json.loads(body)), lambda_context)
        assert response["statusCode"] == int(status), response["body"]
        got = response_json(response)
        if status == "200":
            shown = re.search(r'"scores":\[([0-9.]+)', answer)
            assert shown is not None
            assert repr(got["scores"][0]).startswith(shown.group(1).rstrip("."))
            assert f'"predictions":{got["predictions"]}'.replace(" ", "") in answer
        else:
            assert got["message"] in answer
