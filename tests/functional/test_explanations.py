"""Explanations through the real Lambda handler: /predict?explain=true, the protocol's infer, and batch.

Each explanation must add up (base + listed contributions + rest == value) and its value must be the
served number (or its log-odds / margin), for every task and for a mixed-type model with a missing
value; and the contributions must be shap's on the published scikit-learn model.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lambda_app.batch.__main__ import main as batch_main
from lambda_app.explain.artifact import EXPLANATION_FILE
from tests.conftest import ROOT, load_event, predict_event, response_json

Handler = Callable[..., dict[str, Any]]


def explain_event(records: Any, query: str = "explain=true") -> dict[str, Any]:
    event = predict_event(records)
    event["rawQueryString"] = query
    event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    return event


def ask(handler: Handler, context: Any, records: Any, query: str = "explain=true") -> tuple[int, Any]:
    response = handler(explain_event(records, query), context)
    return response["statusCode"], response_json(response)


def adds_up(explained: dict[str, Any]) -> None:
    listed = sum(c["contribution"] for c in explained["contributions"])
    scale = max(1.0, abs(explained["value"]))
    assert explained["base"] + listed + explained["rest"] == pytest.approx(
        explained["value"], abs=1e-6 * scale
    )
    sizes = [abs(c["contribution"]) for c in explained["contributions"]]
    assert sizes == sorted(sizes, reverse=True)


def sample_records(registry: Path, rows: int = 20) -> list[dict[str, Any]]:
    """Rows the model accepts, from its own drift reference's features (numbers within range)."""
    manifest = json.loads(next(registry.glob("*/manifest.json")).read_text())
    rng = np.random.default_rng(0)
    records = []
    for _ in range(rows):
        record: dict[str, Any] = {}
        for spec in manifest["features"]:
            summary = manifest["reference"]["features"][spec["name"]]
            if spec["dtype"] == "category":
                record[spec["name"]] = str(rng.choice(spec["categories"]))
            elif spec["dtype"] == "boolean":
                record[spec["name"]] = bool(rng.random() < 0.5)
            elif spec["dtype"] == "integer":
                record[spec["name"]] = int(rng.integers(int(summary["min"]), int(summary["max"]) + 1))
            else:
                record[spec["name"]] = float(rng.uniform(summary["min"], summary["max"]))
        records.append(record)
    return records


@pytest.fixture
def serve(handler_module: Callable[..., ModuleType]) -> Callable[[Path], Handler]:
    def load(registry: Path, **env: str) -> Handler:
        module = handler_module(MODEL_URI=str(registry), MODEL_ALIAS="production", **env)
        return module.handler  # type: ignore[no-any-return]

    return load


def test_the_example_detector_explains_its_score(registry: Path, serve: Any, lambda_context: Any) -> None:
    handler = serve(registry)
    records = sample_records(registry)
    status, body = ask(handler, lambda_context, records, "explain=true&top=2")
    assert status == 200, body
    assert body["explanation_space"] == "score"
    assert len(body["explanations"]) == len(records)
    for score, explained in zip(body["scores"], body["explanations"], strict=True):
        adds_up(explained)
        assert explained["value"] == pytest.approx(score, abs=1e-6)  # the served score itself
        assert len(explained["contributions"]) == 2
    # without explain=true the answer is as before: no explanation fields
    plain = response_json(handler(predict_event(records), lambda_context))
    assert "explanations" not in plain
    assert plain["scores"] == body["scores"]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_task_explains_the_number_it_serves(
    task: str, task_registries: dict[str, Path], serve: Any, lambda_context: Any
) -> None:
    registry = task_registries[task]
    handler = serve(registry)
    records = sample_records(registry)
    status, body = ask(handler, lambda_context, records, "explain=true&explain_classes=all&top=3")
    assert status == 200, body
    space = body["explanation_space"]
    for row, explained in enumerate(body["explanations"]):
        if task == "regression":
            assert space == "prediction"
            adds_up(explained)
            assert explained["value"] == pytest.approx(body["predictions"][row], rel=1e-5, abs=1e-5)
            continue
        probabilities = body["probabilities"][row]
        values = {str(c["class"]): c["value"] for c in explained["classes"]}
        for item in explained["classes"]:
            adds_up(item)
        assert list(values) == list(probabilities)
        served = np.array(list(probabilities.values()))
        mine = np.array(list(values.values()))
        if space == "probability":
            np.testing.assert_allclose(mine, served, atol=1e-5)
        elif space == "log_odds":
            np.testing.assert_allclose(1 / (1 + np.exp(-mine)), served, atol=1e-5)
        else:
            assert space == "margin"
            np.testing.assert_allclose(np.exp(mine) / np.exp(mine).sum(), served, atol=1e-5)


def test_a_classifier_explains_its_predicted_class_by_default(
    task_registries: dict[str, Path], serve: Any, lambda_context: Any
) -> None:
    handler = serve(task_registries["classification"])
    records = sample_records(task_registries["classification"], 5)
    status, body = ask(handler, lambda_context, records)
    assert status == 200, body
    for label, explained in zip(body["predictions"], body["explanations"], strict=True):
        assert explained["class"] == label
        assert len(explained["contributions"]) <= 5
        adds_up(explained)


def test_mixed_types_are_explained_per_feature_and_a_filled_value_is_named(
    mixed_registries: dict[str, Path], serve: Any, lambda_context: Any
) -> None:
    for task, registry in mixed_registries.items():
        handler = serve(registry)
        manifest = json.loads(next(registry.glob("*/manifest.json")).read_text())
        names = [f["name"] for f in manifest["features"]]
        nullable = [f["name"] for f in manifest["features"] if "fill" in f]
        records = sample_records(registry, 4)
        records[1][nullable[0]] = None
        status, body = ask(handler, lambda_context, records, f"explain=true&top={len(names)}")
        assert status == 200, (task, body)
        for row, explained in enumerate(body["explanations"]):
            adds_up(explained)
            assert sorted(c["feature"] for c in explained["contributions"]) == sorted(names)  # per feature
            assert explained["rest"] == 0.0
            assert explained.get("imputed") == ([nullable[0]] if row == 1 else None)


def test_explanations_match_shap_on_the_published_model(
    task_registries: dict[str, Path], serve: Any, lambda_context: Any
) -> None:
    import joblib

    registry = task_registries["regression"]
    version_dir = next(registry.glob("*/manifest.json")).parent
    pipeline = joblib.load(version_dir / "model.joblib")
    estimator = pipeline[-1] if hasattr(pipeline, "steps") else pipeline
    if hasattr(estimator, "steps"):
        pytest.skip("the regression example has a scaler in front: shap's TreeExplainer takes the bare model")
    records = sample_records(registry, 10)
    frame = pd.DataFrame(records)
    x = pipeline[:-1].transform(frame) if hasattr(pipeline, "steps") else frame.to_numpy(dtype=float)
    handler = serve(registry)
    names = [f["name"] for f in json.loads((version_dir / "manifest.json").read_text())["features"]]
    status, body = ask(handler, lambda_context, records, f"explain=true&top={len(names)}")
    assert status == 200, body
    with warnings.catch_warnings():  # shap's own deprecation warnings (the suite fails on warnings)
        warnings.simplefilter("ignore")
        import shap

        reference = np.asarray(shap.TreeExplainer(estimator).shap_values(np.asarray(x, dtype=float)))
    scale = max(1.0, float(np.abs(reference).max()))
    for row, explained in enumerate(body["explanations"]):
        mine = {c["feature"]: c["contribution"] for c in explained["contributions"]}
        np.testing.assert_allclose([mine[n] for n in names], reference[row], atol=1e-5 * scale)


def test_explanation_limits_and_mistakes_are_4xx(registry: Path, serve: Any, lambda_context: Any) -> None:
    handler = serve(registry, EXPLAIN_MAX_ROWS="3")
    records = sample_records(registry, 4)
    status, body = ask(handler, lambda_context, records)
    assert status == 422
    assert "at most 3" in body["message"]
    assert "EXPLAIN_MAX_ROWS" in body["message"]
    for query, fragment in (
        ("explain=true&top=0", "top must be a whole number from 1 to 100"),
        ("explain=yes", "explain must be one of true, false"),
        ("explain=true&explain_classes=some", "explain_classes must be one of predicted, all"),
    ):
        status, body = ask(handler, lambda_context, records[:1], query)
        assert status == 422, query
        assert fragment in body["message"], query
    # top without explain=true is schema-valid and changes nothing
    status, body = ask(handler, lambda_context, records[:1], "top=3")
    assert status == 200, body
    assert "explanations" not in body
    # per-row answers: a rejected record's explanation is null like its prediction
    bad = [records[0], {**records[1], "two": "x"}]
    status, body = ask(handler, lambda_context, bad, "explain=true&errors=per_row")
    assert status == 200, body
    assert body["explanations"][1] is None
    adds_up(body["explanations"][0])


def test_a_model_without_explanations_says_so_and_still_predicts(
    registry: Path, serve: Any, lambda_context: Any
) -> None:
    manifest_path = next(registry.glob("*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["path"] != EXPLANATION_FILE]
    manifest_path.write_text(json.dumps(manifest))
    handler = serve(registry)
    records = sample_records(registry, 2)
    status, body = ask(handler, lambda_context, records)
    assert status == 422
    assert body["error"] == "explanation_unavailable"
    assert "has no explanations" in body["message"]
    assert response_json(handler(predict_event(records), lambda_context))["predictions"]
    # The schema describes this model: it does not offer explain=true (so a client generated from it,
    # or a fuzzer, never asks), and says why.
    event = load_event("apigw_v2_model.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/openapi.json"
    schema = response_json(handler(event, lambda_context))
    parameters = schema["paths"]["/predict"]["post"]["parameters"]
    explain = next(p for p in parameters if p["name"] == "explain")
    assert explain["schema"]["enum"] == [False]
    assert "has no explanations" in explain["description"]


def test_a_tampered_explanation_artifact_is_refused(registry: Path, serve: Any, lambda_context: Any) -> None:
    artifact = next(registry.glob(f"*/{EXPLANATION_FILE}"))
    data = bytearray(artifact.read_bytes())
    data[-10] ^= 0xFF
    artifact.write_bytes(bytes(data))
    handler = serve(registry)
    records = sample_records(registry, 2)
    status, body = ask(handler, lambda_context, records)
    assert status == 422
    assert "integrity check" in body["message"]
    assert response_json(handler(predict_event(records), lambda_context))["predictions"]


def test_the_protocol_infer_answers_explanations_when_asked(
    registry: Path, serve: Any, lambda_context: Any
) -> None:
    handler = serve(registry)
    records = sample_records(registry, 3)
    event = predict_event({})
    inputs = [
        {"name": name, "datatype": "FP64", "shape": [3], "data": [float(r[name]) for r in records]}
        for name in records[0]
    ]
    body = json.dumps(
        {
            "inputs": inputs,
            "outputs": [{"name": "scores"}, {"name": "explanations", "parameters": {"top": 1}}],
        }
    )
    manifest = json.loads(next(registry.glob("*/manifest.json")).read_text())
    path = f"/v2/models/{manifest['name']}/infer"
    event.update(rawPath=path, routeKey=f"POST {path}", body=body)
    event["requestContext"]["http"]["path"] = path
    event["headers"]["content-length"] = str(len(body))
    response = response_json(handler(event, lambda_context))
    scores, explanations = response["outputs"]
    assert explanations["datatype"] == "BYTES"
    assert explanations["parameters"] == {"space": "score"}
    for score, text in zip(scores["data"], explanations["data"], strict=True):
        explained = json.loads(text)
        assert len(explained["contributions"]) == 1
        adds_up(explained)
        assert explained["value"] == pytest.approx(score, abs=1e-6)


def test_batch_scoring_adds_the_explanation_columns(registry: Path, tmp_path: Path) -> None:
    records = sample_records(registry, 30)
    source = tmp_path / "flows.csv"
    pd.DataFrame(records).to_csv(source, index=False)
    output = tmp_path / "scored.csv"
    code = batch_main(
        [
            "--input",
            str(source),
            "--output",
            str(output),
            "--model-uri",
            str(registry),
            "--explain",
            "2",
            "--quiet",
        ]
    )
    assert code == 0
    scored = pd.read_csv(output)
    assert len(scored) == len(records)
    listed = scored["explain_1_contribution"] + scored["explain_2_contribution"]
    np.testing.assert_allclose(
        scored["explain_base"] + listed + scored["explain_rest"], scored["explain_value"]
    )
    np.testing.assert_allclose(scored["explain_value"], scored["score"], atol=1e-6)
    assert set(scored["explain_1_feature"]) <= set(records[0])
    assert (scored["explain_1_contribution"].abs() >= scored["explain_2_contribution"].abs()).all()


def test_batch_refuses_to_explain_with_a_model_that_cannot(registry: Path, tmp_path: Path) -> None:
    for artifact in registry.glob(f"*/{EXPLANATION_FILE}"):
        shutil.copy(artifact, tmp_path / "kept.npz")
    manifest_path = next(registry.glob("*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["path"] != EXPLANATION_FILE]
    manifest_path.write_text(json.dumps(manifest))
    source = tmp_path / "flows.csv"
    pd.DataFrame(sample_records(registry, 3)).to_csv(source, index=False)
    code = batch_main(
        [
            "--input",
            str(source),
            "--output",
            str(tmp_path / "out.csv"),
            "--model-uri",
            str(registry),
            "--explain",
            "2",
        ]
    )
    assert code == 1
    assert not (tmp_path / "out.csv").exists()


DOCUMENTED_EXAMPLE = re.compile(
    r"curl -s -X POST 'localhost:8000/predict\?(?P<query>explain=[^']*)'.*?-d '(?P<body>\{.*?\})'\n"
    r"(?P<answer>(?:# [^\n]*\n)+)",
    re.S,
)


def test_the_documented_explanation_is_what_the_example_model_answers(trained_registry: Path) -> None:
    from fastapi.testclient import TestClient

    from lambda_app.config import Settings
    from lambda_app.main import create_app

    match = DOCUMENTED_EXAMPLE.search((ROOT / "docs" / "api.md").read_text())
    assert match is not None, "docs/api.md shows an explained request"
    shown = "".join(line[2:].strip() for line in match["answer"].splitlines()).removeprefix("200 ")
    try:
        with TestClient(create_app(Settings(model_uri=str(trained_registry)))) as client:
            got = client.post(
                f"/predict?{match['query']}",
                content=match["body"].encode(),
                headers={"content-type": "application/json"},
            ).json()
    finally:  # outside Lambda nothing flushes the request's metrics: leave none for the next test
        from lambda_app.observability import metrics

        metrics.clear_metrics()
    # Every name shown is the one answered, in order; every number shown is the answer's, to the digits shown.
    assert re.findall(r'"feature":"(\w+)"', shown) == [
        c["feature"] for e in got["explanations"] for c in e["contributions"]
    ]
    actual = [
        *got["scores"],
        *(
            n
            for e in got["explanations"]
            for n in (e["base"], e["value"], *(c["contribution"] for c in e["contributions"]), e["rest"])
        ),
    ]
    printed = re.findall(r"\d\.\d+", shown)
    assert len(printed) == len(actual)
    for text, value in zip(printed, actual, strict=True):
        assert repr(value).startswith(text), (text, value)
    assert got["explanation_space"] in shown
