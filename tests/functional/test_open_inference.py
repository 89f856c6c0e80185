"""The Open Inference Protocol's routes through the real Lambda handler (Mangum) with real API Gateway
events: metadata, readiness, infer for every task and a mixed table, answers equal to /predict's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import load_event, predict_event, response_json

ROWS = [
    {"one": 20, "two": 12.66645094909174, "three": 15.8990837351338},
    {"one": 80, "two": 14.2, "three": 13.9},
    {"one": 4444, "two": 31.5, "three": 2.25},
]
MIXED = [
    {"one": 80, "two": 14.2, "three": 13.9, "protocol": "tcp", "encrypted": True, "bytes": 1200.0},
    {"one": 443, "two": 12.5, "three": 15.1, "protocol": "udp", "encrypted": False, "bytes": None},
    {"one": 53, "two": 16.5, "three": 12.1, "protocol": "sctp", "encrypted": False, "bytes": 80.0},
]
DATATYPES = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "category": "BYTES"}


def event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """An HTTP API (v2) event for ``method path``, from the sample event of the same shape."""
    sample = load_event("apigw_v2_oip_infer.json" if method == "POST" else "apigw_v2_oip_live.json")
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = path
    if body is not None:
        sample["body"] = text = body if isinstance(body, str) else json.dumps(body)
        sample["headers"]["content-length"] = str(len(text.encode()))
    return sample


def tensors(records: list[dict[str, Any]], features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": f["name"],
            "shape": [len(records)],
            "datatype": DATATYPES[f["dtype"]],
            "data": [r[f["name"]] for r in records],
        }
        for f in features
    ]


class Served:
    """One handler and its model, with the calls the tests make."""

    def __init__(self, handler: Callable[..., Any], context: Any) -> None:
        self.handler, self.context = handler, context
        self.model = self.get("/model")[1]
        self.base = f"/v2/models/{self.model['name']}"

    def call(self, event: dict[str, Any]) -> tuple[int, Any]:
        response = self.handler(event, self.context)
        return response["statusCode"], response_json(response)

    def get(self, path: str) -> tuple[int, Any]:
        return self.call(event("GET", path))

    def infer(self, body: Any, path: str | None = None) -> tuple[int, Any]:
        return self.call(event("POST", path or f"{self.base}/infer", body))

    def predict(self, records: Any) -> Any:
        status, body = self.call(predict_event(records))
        assert status == 200, body
        return body


@pytest.fixture(params=["anomaly", "classification", "regression", "mixed-anomaly", "mixed-classification"])
def served(
    request: pytest.FixtureRequest,
    handler_module: Callable[..., ModuleType],
    trained_registry: Path,
    task_registries: dict[str, Path],
    mixed_registries: dict[str, Path],
    lambda_context: Any,
) -> Served:
    kind: str = request.param
    if kind.startswith("mixed-"):
        registry = mixed_registries[kind.removeprefix("mixed-")]
    else:
        registry = trained_registry if kind == "anomaly" else task_registries[kind]
    return Served(handler_module(MODEL_URI=str(registry)).handler, lambda_context)


def rows_for(served: Served) -> list[dict[str, Any]]:
    return MIXED if len(served.model["features"]) > 3 else ROWS


def test_metadata_describes_inputs_and_outputs_from_the_manifest(served: Served) -> None:
    model = served.model
    status, meta = served.get(served.base)
    assert status == 200
    assert meta["name"] == model["name"]
    assert meta["versions"] == [model["version"]]
    assert meta["inputs"] == [
        {"name": f["name"], "datatype": DATATYPES[f["dtype"]], "shape": [-1]} for f in model["features"]
    ]
    outputs = {o["name"]: o for o in meta["outputs"]}
    if model["task"] == "anomaly":
        assert outputs["predictions"]["datatype"] == "INT64"
        assert outputs["scores"]["datatype"] == "FP64"
    elif model["task"] == "classification":
        assert json.loads(meta["parameters"]["classes"]) == model["classes"]
        assert outputs["probabilities"]["shape"] == [-1, len(model["classes"])]
        integers = all(isinstance(c, int) for c in model["classes"])
        assert outputs["predictions"]["datatype"] == ("INT64" if integers else "BYTES")
    else:
        assert list(outputs) == ["predictions"]
    assert served.get(f"{served.base}/versions/{model['version']}") == (status, meta)
    assert served.get(f"{served.base}/ready") == (200, {"name": model["name"], "ready": True})
    assert served.get(f"{served.base}/versions/{model['version']}/ready")[0] == 200


def test_infer_answers_what_predict_answers(served: Served) -> None:
    model = served.model
    rows = rows_for(served)
    status, answer = served.infer({"id": "r-1", "inputs": tensors(rows, model["features"])})
    assert status == 200, answer
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (
        model["name"],
        model["version"],
        "r-1",
    )
    outputs = {o["name"]: o for o in answer["outputs"]}
    predicted = served.predict(rows)
    assert outputs["predictions"]["data"] == predicted["predictions"]
    assert outputs["predictions"]["shape"] == [len(rows)]
    if model["task"] == "anomaly":
        assert outputs["scores"]["data"] == predicted["scores"]
    if model["task"] == "classification":
        keys = [str(c) for c in json.loads(outputs["probabilities"]["parameters"]["classes"])]
        flat = [row[key] for row in predicted["probabilities"] for key in keys]
        assert outputs["probabilities"]["data"] == flat
        assert outputs["probabilities"]["shape"] == [len(rows), len(keys)]
    if predicted.get("unseen"):
        assert json.loads(answer["parameters"]["unseen"]) == predicted["unseen"]
    versioned = served.infer(
        {"id": "r-1", "inputs": tensors(rows, model["features"])},
        f"{served.base}/versions/{model['version']}/infer",
    )
    assert versioned == (status, answer)


def test_outputs_select_what_is_returned(served: Served) -> None:
    body = {
        "inputs": tensors(rows_for(served), served.model["features"]),
        "outputs": [{"name": "predictions"}],
    }
    status, answer = served.infer(body)
    assert status == 200
    assert [o["name"] for o in answer["outputs"]] == ["predictions"]
    assert "id" not in answer
    status, answer = served.infer({**body, "outputs": [{"name": "nope"}]})
    assert status == 400
    assert answer["error"].startswith("output 'nope' does not exist; this model answers predictions")


@pytest.fixture
def anomaly(handler_module: Callable[..., ModuleType], trained_registry: Path, lambda_context: Any) -> Served:
    return Served(handler_module(MODEL_URI=str(trained_registry)).handler, lambda_context)


FEATURES = [{"name": n, "dtype": "number"} for n in ("one", "two", "three")]


def test_one_table_tensor_for_an_all_number_model(anomaly: Served) -> None:
    table = [[r["one"], r["two"], r["three"]] for r in ROWS]
    status, answer = anomaly.infer(
        {"inputs": [{"name": "x", "shape": [3, 3], "datatype": "FP64", "data": table}]}
    )
    assert status == 200
    assert answer["outputs"][1]["data"] == anomaly.predict(ROWS)["scores"]
    flat = [value for row in table for value in row]  # flat data, [N, 1] columns and FP32 are fine too
    assert (
        anomaly.infer({"inputs": [{"name": "x", "shape": [3, 3], "datatype": "FP32", "data": flat}]})[0]
        == 200
    )
    columns = tensors(ROWS, FEATURES)
    for column in columns:
        column["shape"], column["data"] = [3, 1], [[v] for v in column["data"]]
    assert anomaly.infer({"inputs": columns}) == (status, answer)
    bad = [*flat[:4], 1e13, *flat[5:]]
    status, error = anomaly.infer(
        {"inputs": [{"name": "x", "shape": [3, 3], "datatype": "FP64", "data": bad}]}
    )
    assert (status, error) == (
        400,
        {"error": "row 1, input 'x[:, 1] (two)': must be between -1e+12 and 1e+12"},
    )


def with_column(feature: str, **changes: Any) -> dict[str, Any]:
    columns = tensors(ROWS, FEATURES)
    for column in columns:
        if column["name"] == feature:
            column.update(changes)
    return {"inputs": columns}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (with_column("two", data=[1.0, "x", 2.0]), 400, "row 1, input 'two': must be a number, got string"),
        (with_column("two", data=[1.0, None, 2.0]), 400, "row 1, input 'two': must be a number, got null"),
        (
            with_column("three", datatype="BYTES"),
            400,
            "input 'three' is BYTES; feature 'three' (number) takes",
        ),
        (with_column("two", shape=[2], data=[1.0, 2.0]), 400, "input 'two' has 2 rows, input 'one' 3"),
        (with_column("one", shape=[3, 2]), 400, "input 'one' has shape [3, 2]; send [N] or [N, 1]"),
        (with_column("one", data=[1.0]), 400, "input 'one' holds 1 values for shape [3]"),
        (with_column("one", name="uno"), 400, "input 'uno' is not a feature of this model"),
        ({"inputs": tensors(ROWS, FEATURES[:2])}, 400, "input(s) 'three' missing"),
        ({"inputs": []}, 400, "'inputs' must be a non-empty array"),
        ([1, 2], 400, "must be a JSON object"),
        ("{not json", 400, "not valid JSON"),
        ({"inputs": tensors(ROWS, FEATURES), "id": 5}, 400, "'id' must be a string"),
        (
            {
                "inputs": tensors(ROWS, FEATURES),
                "outputs": [{"name": "scores", "parameters": {"binary_data": True}}],
            },
            400,
            "binary tensor data",
        ),
        (with_column("one", shape=[0], data=[]), 400, "has no rows"),
    ],
)
def test_bad_requests_are_a_4xx_naming_the_problem(
    anomaly: Served, body: Any, status: int, message: str
) -> None:
    got, answer = anomaly.infer(body)
    assert got == status
    assert set(answer) == {"error"}
    assert message in answer["error"]


def test_wrong_model_or_version_is_404_and_names_the_loaded_one(anomaly: Served) -> None:
    version = anomaly.model["version"]
    for path in (
        "/v2/models/other",
        "/v2/models/other/ready",
        f"{anomaly.base}/versions/1",
        f"{anomaly.base}/versions/1/ready",
    ):
        status, answer = anomaly.get(path)
        assert status == 404
        assert version in answer["error"]
    status, answer = anomaly.infer({"inputs": tensors(ROWS, FEATURES)}, "/v2/models/other/infer")
    assert status == 404
    assert "anomaly-detector" in answer["error"]
    assert anomaly.get("/v2/nothing")[0] == 404


def test_server_routes(anomaly: Served) -> None:
    assert anomaly.get("/v2/health/live") == (200, {"live": True})
    assert anomaly.get("/v2/health/ready") == (200, {"ready": True})
    status, meta = anomaly.get("/v2")
    assert status == 200
    assert meta["extensions"] == []
    assert meta["name"]


def test_limits_apply_as_to_predict(
    handler_module: Callable[..., ModuleType], trained_registry: Path, lambda_context: Any
) -> None:
    served = Served(
        handler_module(MODEL_URI=str(trained_registry), MAX_ROWS="2", MAX_BODY_BYTES="600").handler,
        lambda_context,
    )
    status, answer = served.infer({"inputs": tensors(ROWS, FEATURES)})
    assert status == 400  # the protocol's status for a refused request (/predict says 422)
    assert "3 rows exceed the limit of 2 records" in answer["error"]
    big = tensors(ROWS[:2], FEATURES)
    big[0]["data"] = [1.0000000000001] * 2
    body = json.dumps({"id": "x" * 600, "inputs": big})
    assert served.infer(body)[0] == 413


def test_no_model_is_503_on_readiness_and_infer(
    handler_module: Callable[..., ModuleType], tmp_path: Path, lambda_context: Any
) -> None:
    handler = handler_module(MODEL_URI=str(tmp_path / "empty")).handler
    assert handler(event("GET", "/v2/health/live"), lambda_context)["statusCode"] == 200
    for request in (event("GET", "/v2/health/ready"), event("POST", "/v2/models/m/infer", {"inputs": []})):
        response = handler(request, lambda_context)
        assert response["statusCode"] == 503
        assert set(response_json(response)) == {"error"}


def test_a_large_request_runs_off_the_event_loop_and_still_equals_predict(anomaly: Served) -> None:
    rows = [{"one": 80 + i % 7, "two": 12 + (i % 50) / 10, "three": 15 - (i % 30) / 10} for i in range(600)]
    status, answer = anomaly.infer({"inputs": tensors(rows, FEATURES)})
    assert status == 200
    assert answer["outputs"][1]["data"] == anomaly.predict(rows)["scores"]


def test_unseen_categories_refused_through_infer(
    handler_module: Callable[..., ModuleType], mixed_registries: dict[str, Path], lambda_context: Any
) -> None:
    served = Served(
        handler_module(MODEL_URI=str(mixed_registries["anomaly"]), UNSEEN_CATEGORIES="refuse").handler,
        lambda_context,
    )
    status, answer = served.infer({"inputs": tensors(MIXED, served.model["features"])})
    assert status == 400
    assert answer["error"].startswith("row 2, field 'protocol': a category value the model never saw")
    ports = tensors(MIXED[:2], served.model["features"])  # a category sent as whole numbers: read as text
    ports[3] = {"name": "protocol", "shape": [2], "datatype": "INT64", "data": [6, 17]}
    status, answer = served.infer({"inputs": ports})
    assert status == 400
    assert "row 0, field 'protocol'" in answer["error"]


def test_infer_is_measured_like_predict(anomaly: Served, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert anomaly.infer({"inputs": tensors(ROWS, FEATURES)})[0] == 200
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    predictions = [doc["Predictions"] for doc in emf if "Predictions" in doc]
    assert predictions
    assert predictions[-1] in (3.0, [3.0])
    assert any("ScoringLatency" in doc for doc in emf)


def test_the_rest_v1_event(anomaly: Served) -> None:
    status, answer = anomaly.call(load_event("apigw_v1_oip_infer.json"))
    assert status == 200
    assert answer["outputs"][0]["data"] == anomaly.predict(ROWS[0])["predictions"]
