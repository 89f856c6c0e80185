"""Every sample event in events/ through the real Lambda handler (Mangum + the app)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import EVENTS_DIR, load_event, response_json

EXPECTED: dict[str, tuple[int, str | None]] = {
    # event file -> (status, a fragment of the error message, or None for a success)
    "apigw_v2_root.json": (200, None),
    "apigw_v2_health.json": (200, None),
    "apigw_v2_model.json": (200, None),
    "apigw_v2_predict_single.json": (200, None),
    "apigw_v2_predict_batch.json": (200, None),
    "apigw_v2_predict_base64.json": (200, None),
    "apigw_v1_health.json": (200, None),
    "apigw_v1_predict_single.json": (200, None),
    "apigw_v2_predict_malformed_json.json": (400, "not valid JSON"),
    "apigw_v2_predict_wrong_type.json": (422, "row 0, field 'two': must be a number, got string"),
    "apigw_v2_predict_missing_field.json": (422, "row 1, field 'three': field required"),
    "apigw_v2_predict_unknown_field.json": (422, "row 0, field 'four': unknown field"),
    "apigw_v2_predict_nan.json": (422, "row 0, field 'two': must be a finite number"),
    "apigw_v2_predict_infinity.json": (422, "row 1, field 'three': must be a finite number"),
    "apigw_v2_predict_empty_array.json": (422, "empty array"),
    "apigw_v2_predict_not_a_record.json": (422, "got string"),
    "apigw_v2_not_found.json": (404, "Not Found"),
    # A named stage in an HTTP API's path, and a custom domain's base path (API_BASE_PATH=/models below).
    "apigw_v2_predict_named_stage.json": (200, None),
    "apigw_v2_predict_custom_domain.json": (200, None),
    "apigw_v2_docs_named_stage.json": (200, None),
    # Per-row answers on /predict: the bad record is null and named in errors, the good one scored.
    "apigw_v2_predict_per_row.json": (200, None),
    # Explanations on request: each record's base value and largest feature contributions.
    "apigw_v2_predict_explain.json": (200, None),
    # The Open Inference Protocol, through the same handler (its errors are {"error": ...}).
    "apigw_v2_oip_server_metadata.json": (200, None),
    "apigw_v2_oip_live.json": (200, None),
    "apigw_v2_oip_ready.json": (200, None),
    "apigw_v2_oip_model_metadata.json": (200, None),
    "apigw_v2_oip_model_ready.json": (200, None),
    "apigw_v2_oip_infer.json": (200, None),
    "apigw_v2_oip_infer_table.json": (200, None),
    "apigw_v1_oip_infer.json": (200, None),
    "apigw_v2_oip_infer_wrong_type.json": (400, "input 'two' is BYTES"),
    "apigw_v2_oip_model_not_found.json": (404, "model 'no-such-model' is not served here"),
    "apigw_v2_oip_version_not_found.json": (404, "version '0' of model 'anomaly-detector' is not loaded"),
}


def test_every_event_file_has_an_expectation() -> None:
    assert sorted(p.name for p in EVENTS_DIR.glob("*.json")) == sorted(EXPECTED)


@pytest.fixture
def handler(handler_module: Callable[..., ModuleType], registry: Path) -> Callable[..., dict[str, Any]]:
    module = handler_module(MODEL_URI=str(registry), API_BASE_PATH="/models")
    assert module.model_store.current is not None, "the model loads during the init phase"
    return module.handler  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_through_the_handler(
    name: str, handler: Callable[..., dict[str, Any]], lambda_context: Any
) -> None:
    status, fragment = EXPECTED[name]
    event = load_event(name)
    response = handler(event, lambda_context)
    assert response["statusCode"] == status
    if "_docs_" in name:  # HTML that links back under the stage the client used
        assert "/prod/openapi.json" in response["body"]
        assert "/prod/docs/assets/swagger-ui-bundle.js" in response["body"]
        return
    body = response_json(response)
    if "_oip_" in name:
        check_protocol_answer(name, event, body, fragment)
        return
    if fragment is None:
        if name.endswith(("_root.json",)):
            assert body["docs"] == "/docs"
        if name.endswith("_health.json"):
            assert body["status"] == "ok"
        if name.endswith("_model.json"):
            assert [f["name"] for f in body["features"]] == ["one", "two", "three"]
        if "per_row" in name:
            assert body["predictions"][0] in (0, 1)
            assert body["predictions"][1] is None
            assert body["scores"][1] is None
            assert body["errors"] == [
                {"row": 1, "field": "two", "code": "wrong_type", "message": "must be a number, got string"}
            ]
        elif "explain" in name:
            assert body["explanation_space"] == "score"
            for score, explained in zip(body["scores"], body["explanations"], strict=True):
                assert len(explained["contributions"]) == 2
                listed = sum(c["contribution"] for c in explained["contributions"])
                assert explained["base"] + listed + explained["rest"] == pytest.approx(explained["value"])
                assert explained["value"] == pytest.approx(score, abs=1e-6)
        elif "predict" in name:
            records = json.loads(_body_text(event))
            count = len(records) if isinstance(records, list) else 1
            assert len(body["predictions"]) == count
            assert len(body["scores"]) == count
            assert body["errors"] is None
    else:
        assert fragment in body["message"]
        assert body["request_id"] == event["requestContext"]["requestId"]


def check_protocol_answer(name: str, event: dict[str, Any], body: Any, fragment: str | None) -> None:
    """An Open Inference Protocol event's answer: its shape, or its error naming the problem."""
    if fragment is not None:
        assert set(body) == {"error"}
        assert fragment in body["error"]
        return
    if name.endswith("_live.json"):
        assert body == {"live": True}
    elif name.endswith("_ready.json"):
        assert body["ready"] is True
    elif name.endswith("_server_metadata.json"):
        assert body["extensions"] == []
    elif name.endswith("_model_metadata.json"):
        assert body["name"] == "anomaly-detector"
        assert [i["name"] for i in body["inputs"]] == ["one", "two", "three"]
        assert [(o["name"], o["datatype"]) for o in body["outputs"]] == [
            ("predictions", "INT64"),
            ("scores", "FP64"),
        ]
    else:  # infer
        request = json.loads(_body_text(event))
        assert body["id"] == request["id"]
        assert body["model_name"] == "anomaly-detector"
        rows = request["inputs"][0]["shape"][0]
        wanted = [o["name"] for o in request.get("outputs", [])] or ["predictions", "scores"]
        assert [o["name"] for o in body["outputs"]] == wanted
        assert all(o["shape"] == [rows] and len(o["data"]) == rows for o in body["outputs"])


def _body_text(event: dict[str, Any]) -> str:
    import base64

    body: str = event["body"]
    return base64.b64decode(body).decode() if event.get("isBase64Encoded") else body


def test_batch_event_flags_the_anomalous_record(
    handler: Callable[..., dict[str, Any]], lambda_context: Any
) -> None:
    body = response_json(handler(load_event("apigw_v2_predict_batch.json"), lambda_context))
    assert body["predictions"] == [0, 0, 1]


def test_v1_and_v2_give_the_same_score(handler: Callable[..., dict[str, Any]], lambda_context: Any) -> None:
    v1 = response_json(handler(load_event("apigw_v1_predict_single.json"), lambda_context))
    v2 = response_json(handler(load_event("apigw_v2_predict_single.json"), lambda_context))
    assert v1 == v2


def test_rows_over_the_configured_limit_is_422(
    handler_module: Callable[..., ModuleType], registry: Path, lambda_context: Any
) -> None:
    module = handler_module(MODEL_URI=str(registry), MAX_ROWS="2")
    response = module.handler(load_event("apigw_v2_predict_batch.json"), lambda_context)
    assert response["statusCode"] == 422
    assert "limit of 2 records" in response_json(response)["message"]


def test_no_model_gives_503_and_the_container_keeps_serving(
    handler_module: Callable[..., ModuleType],
    tmp_path: Path,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = handler_module(MODEL_URI=str(tmp_path / "nothing"))
    for name in ("apigw_v2_health.json", "apigw_v2_predict_single.json"):
        capsys.readouterr()
        response = module.handler(load_event(name), lambda_context)
        assert response["statusCode"] == 503
        assert "no model is available" in response_json(response)["message"]
        emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
        assert any(doc.get("ModelUnavailable") in (1.0, [1.0]) for doc in emf)  # the alarm's metric
    assert module.handler(load_event("apigw_v2_root.json"), lambda_context)["statusCode"] == 200


def _mutated(name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    event = load_event(name)
    change(event)
    return event


MALFORMED_EVENTS: dict[str, Callable[[], Any]] = {
    "empty": lambda: {},
    "body only": lambda: {"body": "{}"},
    "requestContext not a dict": lambda: {"requestContext": "x"},
    "empty requestContext": lambda: {"requestContext": {}},
    "invalid base64": lambda: _mutated(
        "apigw_v2_predict_single.json", lambda e: e.update(isBase64Encoded=True, body="abc")
    ),
    "v2 without http": lambda: _mutated("apigw_v2_health.json", lambda e: e["requestContext"].pop("http")),
    "v2 without sourceIp": lambda: _mutated(
        "apigw_v2_health.json", lambda e: e["requestContext"]["http"].pop("sourceIp")
    ),
    "v1 without httpMethod": lambda: _mutated("apigw_v1_health.json", lambda e: e.pop("httpMethod")),
    "v2 headers null": lambda: _mutated("apigw_v2_health.json", lambda e: e.update(headers=None)),
    "body a number": lambda: _mutated("apigw_v2_predict_single.json", lambda e: e.update(body=5)),
    "body an object": lambda: _mutated("apigw_v2_predict_single.json", lambda e: e.update(body={})),
    "rawQueryString null": lambda: _mutated("apigw_v2_health.json", lambda e: e.update(rawQueryString=None)),
    "header value a number": lambda: _mutated(
        "apigw_v2_health.json", lambda e: e["headers"].update(accept=5)
    ),
    "header value a surrogate": lambda: _mutated(
        "apigw_v2_health.json", lambda e: e["headers"].update(accept="\ud800")
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_EVENTS))
def test_malformed_events_get_a_structured_400_never_an_exception(
    handler: Callable[..., dict[str, Any]], lambda_context: Any, case: str
) -> None:
    response = handler(MALFORMED_EVENTS[case](), lambda_context)
    assert response["statusCode"] == 400
    # Mangum reads a falsy body ({}) as no body: that reaches the app as an empty, malformed body.
    assert response_json(response)["error"] in {"bad_event", "malformed_json"}
    assert response_json(response)["request_id"]
    # and the container is fine afterwards
    assert handler(load_event("apigw_v2_predict_single.json"), lambda_context)["statusCode"] == 200


def test_handler_emits_emf_metrics_and_structured_logs(
    handler: Callable[..., dict[str, Any]], lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    handler(load_event("apigw_v2_predict_batch.json"), lambda_context)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    assert any(doc.get("Predictions") == [3.0] or doc.get("Predictions") == 3.0 for doc in emf)


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize(
    "name", ["apigw_v2_predict_single.json", "apigw_v2_predict_batch.json", "apigw_v1_predict_single.json"]
)
def test_the_predict_events_drive_every_example_model(
    task: str,
    name: str,
    task_registries: dict[str, Path],
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
) -> None:
    """The sample events share the flow features, so each drives the classifier and the regressor too."""
    handler = handler_module(MODEL_URI=str(task_registries[task])).handler
    response = handler(load_event(name), lambda_context)
    assert response["statusCode"] == 200
    body = response_json(response)
    rows = len(body["predictions"])
    if task == "classification":
        assert all(isinstance(p, str) for p in body["predictions"])  # the example's classes are strings
        assert len(body["probabilities"]) == rows
        assert all(abs(sum(p.values()) - 1) < 1e-5 for p in body["probabilities"])
    else:
        assert all(isinstance(p, float) for p in body["predictions"])
        assert "probabilities" not in body
    assert "scores" not in body


def stage_event(path: str) -> dict[str, Any]:
    """A GET for ``path`` through an HTTP API's named stage "prod" (the stage is in the path)."""
    event = load_event("apigw_v2_docs_named_stage.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    return event


def test_the_docs_under_a_named_stage_load_every_asset_through_that_stage(
    handler_module: Callable[..., ModuleType], registry: Path, lambda_context: Any
) -> None:
    """What a browser at https://<api>.execute-api.<region>.amazonaws.com/prod/docs then fetches."""
    handler = handler_module(MODEL_URI=str(registry)).handler
    page = handler(stage_event("/prod/docs"), lambda_context)
    links = re.findall(r"""(?:src|href)=["'](/prod/[^"']+)["']|url: ?'(/prod/[^']+)'""", page["body"])
    urls = [a or b for a, b in links]
    assert "/prod/openapi.json" in urls
    for url in urls:
        assert handler(stage_event(url), lambda_context)["statusCode"] == 200, url
    schema = response_json(handler(stage_event("/prod/openapi.json"), lambda_context))
    assert schema["servers"] == [{"url": "/prod"}]  # "Try it out" calls go through the stage too


def test_a_custom_domain_path_without_api_base_path_is_a_404_that_says_to_set_it(
    handler_module: Callable[..., ModuleType], registry: Path, lambda_context: Any
) -> None:
    """A custom domain's base path reaches the function in the path; unset, the routes miss it."""
    handler = handler_module(MODEL_URI=str(registry), API_BASE_PATH="").handler
    response = handler(load_event("apigw_v2_predict_custom_domain.json"), lambda_context)
    assert response["statusCode"] == 404
    message = response_json(response)["message"]
    assert "no route /models/predict" in message
    assert "/predict exists" in message
    assert "set API_BASE_PATH=/models" in message
    # A path that is no route under any prefix keeps the plain answer.
    plain = handler(load_event("apigw_v2_not_found.json"), lambda_context)
    assert response_json(plain)["message"] == "Not Found"
