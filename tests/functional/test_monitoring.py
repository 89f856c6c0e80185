"""What the service emits: EMF metrics with their dimensions, and structured logs without payloads."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import load_event, response_json


def emitted(capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(EMF documents, log records) printed to stdout, as CloudWatch would ingest them."""
    return emitted_from(capsys.readouterr().out)


def value(doc: dict[str, Any], name: str) -> float:
    """A metric's value in an EMF document (Powertools writes a list of values)."""
    raw = doc[name]
    return float(sum(raw)) if isinstance(raw, list) else float(raw)


@pytest.fixture
def handler(handler_module: Callable[..., ModuleType], registry: Path) -> Any:
    return handler_module(MODEL_URI=str(registry)).handler


def test_a_prediction_emits_volume_anomalies_drift_and_latency_per_version(
    handler: Any, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = handler(load_event("apigw_v2_predict_batch.json"), lambda_context)
    version = response_json(response)["version"]
    documents, _ = emitted(capsys)
    (doc,) = [d for d in documents if "Predictions" in d]
    definition = doc["_aws"]["CloudWatchMetrics"][0]
    assert definition["Dimensions"] == [["service"], ["service", "model_version"]]
    assert doc["model_version"] == version
    assert value(doc, "Predictions") == 3
    assert value(doc, "Anomalies") == 1
    assert value(doc, "ScoringLatency") > 0
    assert "OutOfRangeShare" in doc
    units = {m["Name"]: m["Unit"] for m in definition["Metrics"]}
    assert units["ScoringLatency"] == "Milliseconds"


def test_drift_and_model_age_are_emitted_once_the_window_is_full(
    handler: Any, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import SEED_RECORD

    event = load_event("apigw_v2_predict_single.json")
    event["body"] = json.dumps([SEED_RECORD] * 250)
    capsys.readouterr()
    handler(event, lambda_context)
    documents, _ = emitted(capsys)
    doc = next(d for d in documents if "Predictions" in d)
    assert {"FeaturePSI_one", "FeaturePSI_two", "FeaturePSI_three", "ModelAgeHours"} <= set(doc)
    assert value(doc, "FeaturePSI_two") > 1  # 250 identical rows are nothing like the training data
    assert value(doc, "ModelAgeHours") >= 0


def test_invalid_requests_are_counted(
    handler: Any, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    handler(load_event("apigw_v2_predict_wrong_type.json"), lambda_context)
    documents, _ = emitted(capsys)
    assert any("InvalidRequests" in d and value(d, "InvalidRequests") == 1 for d in documents)


def test_logs_are_structured_correlated_flag_cold_start_and_never_hold_payloads(
    handler_module: Callable[..., ModuleType],
    registry: Path,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aws_lambda_powertools.logging import logger as powertools_logging

    from lambda_app.observability import logger

    module = handler_module(MODEL_URI=str(registry))
    monkeypatch.setattr(
        powertools_logging, "is_cold_start", True
    )  # a new container, as far as Powertools knows
    stream = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        event = load_event("apigw_v2_predict_wrong_type.json")
        module.handler(event, lambda_context)
        module.handler(event, lambda_context)
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    out = stream.getvalue() + capsys.readouterr().out
    _, logs = emitted_from(out)
    invalid = [r for r in logs if r["message"] == "invalid request"]
    assert len(invalid) == 2
    assert {r["correlation_id"] for r in invalid} == {event["requestContext"]["requestId"]}
    assert [r["cold_start"] for r in invalid] == [True, False]
    assert "twelve" not in out  # the offending value itself is never logged
    assert event["body"] not in out


def emitted_from(out: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line], [line for line in lines if "level" in line]


def test_server_errors_are_counted_per_function_version(
    handler_module: Callable[..., ModuleType],
    registry: Path,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A handled 500 is no Lambda error: ServerErrors (also by function version) is the canary's signal."""
    from lambda_app.models import AnomalyPredictor as Predictor

    module = handler_module(MODEL_URI=str(registry), AWS_LAMBDA_FUNCTION_VERSION="7")
    original = Predictor.predict

    def broken(self: Predictor, features: Any) -> Any:
        raise RuntimeError("a bug in the new version")

    monkeypatch.setattr(Predictor, "predict", broken)
    capsys.readouterr()
    response = module.handler(load_event("apigw_v2_predict_single.json"), lambda_context)
    assert response["statusCode"] == 500
    documents, _ = emitted(capsys)
    (doc,) = [d for d in documents if "ServerErrors" in d]
    assert value(doc, "ServerErrors") == 1
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"], ["service", "function_version"]]
    assert doc["function_version"] == "7"

    monkeypatch.setattr(Predictor, "predict", original)
    capsys.readouterr()
    assert module.handler(load_event("apigw_v2_predict_single.json"), lambda_context)["statusCode"] == 200
    documents, _ = emitted(capsys)
    assert not any("ServerErrors" in d for d in documents)


def test_a_model_unavailable_503_is_not_a_server_error(
    handler_module: Callable[..., ModuleType],
    tmp_path: Path,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = handler_module(MODEL_URI=str(tmp_path / "empty-registry"), AWS_LAMBDA_FUNCTION_VERSION="7")
    capsys.readouterr()
    assert module.handler(load_event("apigw_v2_predict_single.json"), lambda_context)["statusCode"] == 503
    documents, _ = emitted(capsys)
    assert any("ModelUnavailable" in d for d in documents)
    assert not any("ServerErrors" in d for d in documents)


@pytest.mark.parametrize(
    ("task", "expected", "absent"),
    [
        ("classification", {"TopProbabilityMean"}, {"Anomalies", "PredictionMean"}),
        ("regression", {"PredictionMean"}, {"Anomalies", "TopProbabilityMean"}),
    ],
)
def test_each_task_emits_its_own_figures_and_not_the_anomaly_count(
    task: str,
    expected: set[str],
    absent: set[str],
    task_registries: dict[str, Path],
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = handler_module(MODEL_URI=str(task_registries[task])).handler
    capsys.readouterr()
    response = handler(load_event("apigw_v2_predict_batch.json"), lambda_context)
    body = response_json(response)
    documents, _ = emitted(capsys)
    (doc,) = [d for d in documents if "Predictions" in d]
    assert value(doc, "Predictions") == 3
    assert expected <= set(doc)
    assert not absent & set(doc)
    if task == "classification":
        # One count per predicted class, named after it: they add up to the rows scored.
        counts = {k: value(doc, k) for k in doc if k.startswith("PredictedClass_")}
        assert sum(counts.values()) == 3
        assert {f"PredictedClass_{label}" for label in body["predictions"]} == set(counts)
        assert 0 < value(doc, "TopProbabilityMean") <= 1
    else:
        assert value(doc, "PredictionMean") == pytest.approx(sum(body["predictions"]) / 3)
