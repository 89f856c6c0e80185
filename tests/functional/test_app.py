"""The FastAPI app in-process: routes, contracts, limits and error bodies."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lambda_app.config import Settings
from lambda_app.main import create_app
from tests.conftest import SEED_RECORD


@pytest.fixture
def client(registry: Path) -> Iterator[TestClient]:
    app = create_app(Settings(model_uri=str(registry), max_rows=50, max_body_bytes=20_000))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_uri=str(tmp_path / "none")))) as test_client:
        yield test_client


def test_root_greets_and_points_at_docs(client: TestClient) -> None:
    body = client.get("/").json()
    assert body["docs"] == "/docs"


def test_health_reports_the_loaded_version(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["version"] == client.get("/model").json()["version"]


def test_model_returns_the_manifest(client: TestClient) -> None:
    manifest = client.get("/model").json()
    assert manifest["name"] == "anomaly-detector"
    assert [f["name"] for f in manifest["features"]] == ["one", "two", "three"]
    assert set(manifest["metrics"]) >= {"precision", "recall", "f1", "roc_auc", "pr_auc"}
    assert manifest["trained_at"]
    assert manifest["training_rows"] == 5000
    assert "provenance" not in manifest  # no data locations or bucket names to every caller


def test_seed_example_verbatim(client: TestClient) -> None:
    response = client.post("/predict", json=SEED_RECORD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"predictions", "scores", "version", "errors"}
    assert body["predictions"] == [0]  # ordinary FTP-data traffic
    assert len(body["scores"]) == 1
    assert 0 < body["scores"][0] <= 1
    assert body["errors"] is None


def test_batch_scores_each_row_like_alone_and_flags_the_obvious_anomaly(client: TestClient) -> None:
    anomaly = {"one": 4444, "two": 35.0, "three": 1.0}
    batch = client.post("/predict", json=[SEED_RECORD, anomaly]).json()
    assert batch["predictions"] == [0, 1]
    alone = client.post("/predict", json=anomaly).json()
    assert math.isclose(alone["scores"][0], batch["scores"][1], rel_tol=0, abs_tol=1e-12)


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b'{"one": 20,', 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b'{"one": 20, "two": "x", "three": 1}', 422, "row 0, field 'two': must be a number, got string"),
        (b'{"one": 20, "two": 1}', 422, "row 0, field 'three': field required"),
        (b'{"one": 20, "two": 1, "three": 2, "four": 3}', 422, "row 0, field 'four': unknown field"),
        (
            b'[{"one": 20, "two": 1, "three": 2}, {"one": 20, "two": NaN, "three": 2}]',
            422,
            "row 1, field 'two': must be a finite number",
        ),
        (b'{"one": 20, "two": Infinity, "three": 2}', 422, "row 0, field 'two': must be a finite number"),
        (b"[]", 422, "empty array"),
        (b'"text"', 422, "got string"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_problem(
    client: TestClient, body: bytes, status: int, fragment: str
) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()
    assert fragment in error["message"]
    assert error["request_id"]
    assert error["error"] in {"malformed_json", "invalid_input"}


def test_too_many_rows_is_422_stating_the_limit(client: TestClient) -> None:
    response = client.post("/predict", json=[SEED_RECORD] * 51)
    assert response.status_code == 422
    assert response.json()["error"] == "too_many_records"
    assert "limit of 50 records" in response.json()["message"]


def test_too_large_body_is_413_stating_the_limit(client: TestClient) -> None:
    response = client.post("/predict", content=b"[" + b" " * 30_000 + b"]")
    assert response.status_code == 413
    assert "limit of 20000 bytes" in response.json()["message"]


def test_unknown_route_and_method_use_the_error_body(client: TestClient) -> None:
    assert client.get("/nope").json()["error"] == "not_found"
    response = client.get("/predict")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response.json()["message"] == "GET is not allowed on /predict: use POST"


def test_a_typo_in_a_field_name_is_named_as_the_cause(client: TestClient) -> None:
    response = client.post("/predict", json={"one": 20, "tow": 1.0, "three": 2.0})
    assert response.status_code == 422
    assert response.json()["message"] == (
        "row 0, field 'tow': unknown field (did you mean 'two'?); expected only one, two, three"
        " (and 1 more problem)"  # the missing 'two': a count of problems, not of fields
    )
    assert [e["field"] for e in response.json()["errors"]] == ["tow", "two"]
    three = client.post("/predict", json={"one": "x", "tow": 1.0, "three": 2.0})
    assert three.json()["message"].endswith("(and 2 more problems)")


def test_request_id_header_is_echoed_in_errors(client: TestClient) -> None:
    response = client.post("/predict", content=b"{", headers={"x-request-id": "abc-123"})
    assert response.json()["request_id"] == "abc-123"
    assert response.headers["x-request-id"] == "abc-123"


def test_no_model_gives_503_with_retry_after(empty_client: TestClient) -> None:
    for response in (empty_client.get("/health"), empty_client.post("/predict", json=SEED_RECORD)):
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert "no model is available" in response.json()["message"]
    assert empty_client.get("/").status_code == 200  # the process keeps serving


def test_openapi_documents_predict_from_the_loaded_models_features(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    record = body["schema"]["oneOf"][0]
    assert record["required"] == ["one", "two", "three"]
    # whole ports in the training file: still a number (an integer only where [data] types says so)
    assert record["properties"]["one"] == {"type": "number", "minimum": -1e12, "maximum": 1e12}
    assert body["schema"]["oneOf"][1]["maxItems"] == 50
    # Examples are this model's own: each feature at its training median.
    single = body["examples"]["single"]["value"]
    assert list(single) == ["one", "two", "three"]
    assert isinstance(single["one"], int | float)
    assert 12 < single["two"] < 17
    assert "422" in schema["paths"]["/predict"]["post"]["responses"]
    # The 200 answer is documented in the shape of the loaded model's task.
    ok = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {
        "anyOf": [
            {"$ref": "#/components/schemas/AnomalyResponse"},
            {"$ref": "#/components/schemas/AnomalyPerRowResponse"},
        ]
    }
    assert set(schema["components"]["schemas"]["AnomalyResponse"]["required"]) == {
        "predictions",
        "scores",
        "version",
    }
    assert schema["info"]["x-model-task"] == "anomaly"
    assert client.get("/docs").status_code == 200


def test_openapi_without_a_model_still_documents_predict(empty_client: TestClient) -> None:
    schema = empty_client.get("/openapi.json").json()
    assert "requestBody" in schema["paths"]["/predict"]["post"]


def test_unexpected_error_is_a_500_without_internals(registry: Path) -> None:
    app = create_app(Settings(model_uri=str(registry)))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/boom")
    assert response.status_code == 500
    assert "secret" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"one": 20, "two": 1, "three": 1, "\\ud800": 1}',
        b'{"one": 20, "two": NaN, "three": 1, "\\udfff": 1}',
        b'{"one": "\\ud800", "two": 1, "three": 1}',
        "\ufeff{}".encode("utf-8"),
        '{"one": 20}'.encode("utf-16"),
        b'{"one": 1e99999999, "two": "\xff", "three": 1}',
    ],
)
def test_bodies_that_are_not_valid_utf8_json_are_400_not_500(client: TestClient, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


@pytest.mark.parametrize("declared", ["9" * 5000, "-1", "1e9", " 12", ""])
def test_odd_content_length_headers_never_crash(client: TestClient, declared: str) -> None:
    response = client.post(
        "/predict",
        content=b'{"one": 20, "two": 12.6, "three": 15.8}',
        headers={
            "content-type": "application/json",
            "content-length": declared.encode("utf-8").decode("latin-1"),
        },
    )
    assert response.status_code < 500


def test_bad_input_is_a_4xx_even_without_a_model(empty_client: TestClient) -> None:
    assert empty_client.post("/predict", content=b"{").status_code == 400
    assert empty_client.post("/predict", content=b"[]").status_code == 503  # valid JSON: needs the schema


def test_large_batches_are_scored_off_the_event_loop_with_the_same_result(registry: Path) -> None:
    from lambda_app.api.routes.predict import INLINE_ROWS

    client = TestClient(create_app(Settings(model_uri=str(registry))))
    rows = [{"one": 80, "two": 14.0 + i / 1000, "three": 14.4} for i in range(INLINE_ROWS + 1)]
    big = client.post("/predict", json=rows).json()
    small = client.post("/predict", json=rows[:INLINE_ROWS]).json()
    assert big["scores"][:INLINE_ROWS] == small["scores"]


def test_an_answer_too_large_for_lambda_is_refused_up_front(task_registries: dict[str, Path]) -> None:
    """Rows x classes that could not fit the 6 MB response: a 422 stating the limit, never a gateway 502."""
    settings = Settings(model_uri=str(task_registries["classification"]), max_response_bytes=20_000)
    with TestClient(create_app(settings)) as client:
        fits = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]
        max_items = fits["content"]["application/json"]["schema"]["oneOf"][1]["maxItems"]
        assert 1 < max_items < settings.max_rows  # the documented limit is the answer's, not the row cap
        ok = client.post("/predict", json=[SEED_RECORD] * max_items)
        assert ok.status_code == 200
        assert len(ok.content) <= settings.max_response_bytes
        refused = client.post("/predict", json=[SEED_RECORD] * (max_items + 1))
    assert refused.status_code == 422
    body = refused.json()
    assert body["error"] == "response_too_large"
    assert f"send at most {max_items} records per request" in body["message"]
    assert "20000 bytes" in body["message"]
