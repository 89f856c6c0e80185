"""Schema-driven fuzzing with schemathesis, against the app's own OpenAPI schema.

Every operation is fuzzed with schema-valid (positive) and schema-violating (negative) cases,
in-process through the ASGI app and through the real Lambda handler with API Gateway v2
events. Every response must be a non-5xx that conforms to the documented schema: positive
cases are accepted, negative ones rejected with a documented 4xx.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from lambda_app.config import Settings
from lambda_app.main import create_app
from tests.conftest import load_event

MAX_ROWS = 50
EXAMPLES = {"POST /predict": 300}  # per generation mode; operations without inputs need one example
MIN_CASES = 1000
TASK_EXAMPLES = 120  # /predict cases per mode for the classification and regression models


@pytest.fixture(scope="module")
def fuzz_app(trained_registry: Path) -> Any:
    app = create_app(Settings(model_uri=str(trained_registry), max_rows=MAX_ROWS))
    app.state.model_store.get()  # the /predict schema comes from the loaded model's features
    return app


def fuzz(schema: Any, call: Callable[[Any], Any], predict_examples: int | None = None) -> dict[str, int]:
    """Run every operation in both modes; return the number of cases per operation and mode."""
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} [{mode.value}]"
            counts[label] = 0
            run = _runner(operation, mode, call, counts, label, predict_examples)
            try:
                run()
            except Unsatisfiable:
                # An operation with no inputs has no way to violate its schema.
                assert mode is GenerationMode.NEGATIVE
                assert not operation.body
                assert not operation.query
    return counts


def _runner(
    operation: Any,
    mode: GenerationMode,
    call: Callable[[Any], Any],
    counts: dict[str, int],
    label: str,
    predict_examples: int | None = None,
) -> Callable[[], None]:
    examples = EXAMPLES.get(operation.label, 5)
    if predict_examples is not None and operation.label in EXAMPLES:
        examples = predict_examples

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        suppress_health_check=list(HealthCheck),
        deadline=None,
        database=None,
    )
    def run(case: Any) -> None:
        counts[label] += 1
        response = call(case)
        assert response.status_code < 500, response.text[:500]
        case.validate_response(response)

    return run  # type: ignore[no-any-return]


def test_fuzz_the_asgi_app(fuzz_app: Any, capsys: pytest.CaptureFixture[str]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    counts = fuzz(schema, lambda case: case.call())
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\nschemathesis (ASGI): {total} cases, 0 failures: {counts}")
    assert total >= MIN_CASES / 2


@pytest.fixture
def handler_for_fuzz(
    handler_module: Callable[..., ModuleType], trained_registry: Path
) -> Iterator[Callable[..., dict[str, Any]]]:
    module = handler_module(MODEL_URI=str(trained_registry), MAX_ROWS=str(MAX_ROWS))
    return module.handler


def as_v2_event(case: Any) -> dict[str, Any]:
    """An API Gateway HTTP API v2 event carrying the case's request."""
    kwargs = case.as_transport_kwargs(base_url="https://api.example.com")
    event = load_event("apigw_v2_root.json")
    path = case.formatted_path
    headers = {k.lower(): str(v) for k, v in (kwargs.get("headers") or {}).items()}
    if "json" in kwargs:
        raw = json.dumps(kwargs["json"], allow_nan=True).encode("utf-8", "surrogatepass")
        headers.setdefault("content-type", "application/json")
    else:
        data = kwargs.get("data") or kwargs.get("content") or b""
        raw = data if isinstance(data, bytes) else str(data).encode("utf-8", "surrogatepass")
    event.update(
        routeKey=f"{case.method.upper()} {path}",
        rawPath=path,
        rawQueryString="",
        headers={**event["headers"], **headers, "content-length": str(len(raw))},
        body=base64.b64encode(raw).decode(),
        isBase64Encoded=True,
    )
    event["requestContext"]["http"].update(method=case.method.upper(), path=path)
    event["requestContext"]["routeKey"] = event["routeKey"]
    return event


def test_fuzz_through_the_lambda_handler(
    fuzz_app: Any,
    handler_for_fuzz: Callable[..., dict[str, Any]],
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)

    def call(case: Any) -> httpx2.Response:
        result = handler_for_fuzz(as_v2_event(case), lambda_context)
        body = result.get("body") or ""
        response = httpx2.Response(
            result["statusCode"],
            headers=result.get("headers") or {},
            content=base64.b64decode(body) if result.get("isBase64Encoded") else body.encode(),
            request=httpx2.Request(case.method.upper(), f"https://api.example.com{case.formatted_path}"),
        )
        response.elapsed = timedelta(0)  # a Lambda response has no transport timing
        return response

    counts = fuzz(schema, call)
    capsys.readouterr()  # the EMF and log lines of every invocation
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\nschemathesis (Mangum handler, API Gateway v2): {total} cases, 0 failures: {counts}")
    assert total >= MIN_CASES / 2


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_fuzz_a_model_of_every_other_task(
    task: str, task_registries: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The same contract for a classifier's and a regressor's schema (fewer cases: the path is shared)."""
    fuzz_model(task_registries[task], task, capsys)


def test_fuzz_a_model_with_every_feature_type(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mixed-type model (numbers, integers, a true/false feature, a category, a feature that takes
    null): the schema's types, known values and nulls are honoured, any string is a category value."""
    from training.config import TrainingConfig
    from training.data.synthetic import generate
    from training.train import run_training

    root = tmp_path_factory.mktemp("mixed-fuzz")
    generate(1500, seed=3, mixed=True).to_csv(root / "flows.csv", index=False)
    run_training(
        str(root / "flows.csv"),
        str(root / "registry"),
        TrainingConfig.model_validate({"tuning": {"enabled": False}}),
    )
    fuzz_model(root / "registry", "every feature type", capsys)


def fuzz_model(registry: Path, label: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The ASGI app serving ``registry``'s model, fuzzed with fewer /predict cases (the path is shared)."""
    app = create_app(Settings(model_uri=str(registry), max_rows=MAX_ROWS))
    app.state.model_store.get()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    counts = fuzz(schema, lambda case: case.call(), predict_examples=TASK_EXAMPLES)
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\nschemathesis (ASGI, {label}): {total} cases, 0 failures: {counts}")
    assert counts["POST /predict [positive]"] >= TASK_EXAMPLES / 2
