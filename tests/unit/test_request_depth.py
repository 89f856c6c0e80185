"""Deeply nested request bodies: always a short 4xx naming the depth, never a 500 or a long traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambda_app import validation
from lambda_app.config import Settings
from lambda_app.errors import MalformedBodyError
from lambda_app.main import create_app
from tests.conftest import predict_event, response_json

ERROR_KEYS = {"error", "message", "errors", "request_id"}
# Around the old failure (about 320-1000 levels with a NaN), orjson's own limit (1024) and far beyond.
DEPTHS = sorted({*range(1, 2001, 41), 31, 32, 33, 320, 337, 400, 999, 1023, 1024, 1025, 2000})
NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e999"]


def nested(depth: int, kind: str = "array", inner: bytes = b"NaN", at: int | None = None) -> bytes:
    """``depth`` arrays (or objects: {"a": ...}) around ``inner``; with ``at``, the level that holds
    ``inner`` beside the next level (the innermost by default)."""
    opening, closing = (b"[", b"]") if kind == "array" else (b'{"a":', b"}")
    if at is None or at >= depth:
        return opening * depth + inner + closing * depth
    holder = b"[" + inner + b"," if kind == "array" else b'{"n":' + inner + b',"a":'
    return opening * at + holder + nested(depth - at - 1, kind, b"1") + closing * (at + 1)


def assert_small_4xx(status: int, body: Any, size: int) -> None:
    assert 400 <= status < 500, body
    assert set(body) == ERROR_KEYS
    assert size < 1_000  # the error names the problem; it never quotes the body


@pytest.fixture(scope="module")
def client(trained_registry: Path) -> Iterator[TestClient]:
    """The app on the example model, at its default limits (a body of up to 4.5 MB)."""
    with TestClient(create_app(Settings(model_uri=str(trained_registry)))) as test_client:
        yield test_client


def post(client: TestClient, body: bytes) -> Any:
    return client.post("/predict", content=body, headers={"content-type": "application/json"})


def test_the_depth_is_read_from_the_raw_bytes_skipping_strings() -> None:
    # GIVEN brackets and escaped quotes inside strings, which are text, not nesting
    body = rb'[{"a": "[[[{{{\"]]]", "b\\": [1, "]\\\\"], "c": {"d": "}}"}}]'
    # THEN only the real arrays and objects count
    assert validation.nesting_depth(body) == 3
    assert validation.nesting_depth(b"1") == 0
    assert validation.nesting_depth(b"[" * 5000) == 5000


def test_any_depth_with_or_without_a_non_finite_number_is_a_4xx(client: TestClient) -> None:
    for kind in ("array", "object"):
        for inner in (b"1", b"NaN"):
            for depth in DEPTHS:
                response = post(client, nested(depth, kind, inner))
                assert_small_4xx(response.status_code, response.json(), len(response.content))


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("depth", [33, 100, 337, 1025, 2000])
def test_a_body_nested_past_the_limit_is_400_naming_its_depth_and_the_limit(
    client: TestClient, kind: str, depth: int
) -> None:
    response = post(client, nested(depth, kind))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "malformed_json"
    assert body["message"] == (
        f"request body nests {depth} levels deep; at most {validation.MAX_NESTING_DEPTH} are accepted"
        " (one record, or an array of records)"
    )


def test_a_body_at_the_limit_with_a_nan_is_judged_as_records(client: TestClient) -> None:
    # Within the limit the non-finite number is found where it is: not a record, so a 422.
    response = post(client, nested(validation.MAX_NESTING_DEPTH, "object"))
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_input"


def test_a_body_at_the_size_limit_made_only_of_brackets_is_a_small_400(client: TestClient) -> None:
    limit = Settings().max_body_bytes
    body = b"[" * (limit // 2) + b"]" * (limit // 2)
    assert len(body) == limit
    response = post(client, body)
    assert_small_4xx(response.status_code, response.json(), len(response.content))
    assert response.json()["error"] == "malformed_json"
    assert f"nests {limit // 2} levels deep" in response.json()["message"]


def lambda_event(body: bytes) -> dict[str, Any]:
    event = predict_event(None)
    event["body"] = body.decode()
    event["headers"]["content-length"] = str(len(body))
    return event


def test_deep_bodies_through_the_lambda_handler_are_4xx(
    handler_module: Callable[..., ModuleType], trained_registry: Path, lambda_context: Any
) -> None:
    handler = handler_module(MODEL_URI=str(trained_registry)).handler
    for kind in ("array", "object"):
        for depth in (5, 32, 33, 337, 400, 800, 1025, 2000):
            response = handler(lambda_event(nested(depth, kind)), lambda_context)
            assert_small_4xx(response["statusCode"], response_json(response), len(response["body"]))


def test_a_refused_deep_body_logs_one_short_line(
    handler_module: Callable[..., ModuleType],
    trained_registry: Path,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = handler_module(MODEL_URI=str(trained_registry)).handler
    caplog.clear()
    response = handler(lambda_event(nested(400, "array")), lambda_context)
    assert response["statusCode"] == 400
    assert not [record for record in caplog.records if record.exc_info]  # no traceback
    (refused,) = [record for record in caplog.records if record.getMessage() == "invalid request"]
    assert "nests 400 levels deep" in refused.reason
    assert len(caplog.text) < 2_000


def test_a_lone_surrogate_at_the_deepest_accepted_level_is_still_refused() -> None:
    body = nested(validation.MAX_NESTING_DEPTH - 1, "array", b'["\\ud800", NaN]')
    with pytest.raises(MalformedBodyError, match="not valid JSON"):
        validation.parse_body(body)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    depth=st.integers(min_value=1, max_value=2_000),
    kind=st.sampled_from(["array", "object"]),
    inner=st.sampled_from([b"1", b'"x"', *NON_FINITE]),
    at=st.none() | st.integers(min_value=0, max_value=2_000),
)
def test_any_nesting_and_placement_of_a_non_finite_number_is_a_4xx(
    client: TestClient, depth: int, kind: str, inner: bytes, at: int | None
) -> None:
    response = post(client, nested(depth, kind, inner, at))
    assert_small_4xx(response.status_code, response.json(), len(response.content))
