"""The protocol's routes checked against a published description of the Open Inference Protocol (REST).

The schemas below are this project's own transcription of the request and response shapes that the
protocol's REST description defines (open_inference_rest.yaml in the open-inference/open-inference-protocol
repository, Apache-2.0: https://github.com/open-inference/open-inference-protocol/blob/main/specification/protocol/open_inference_rest.yaml,
and inference_rest.md beside it). Tests have no network, so it is kept here rather than downloaded.
Live answers from the real handler are validated against it with a JSON Schema validator; where this
server departs from it, docs/api.md (Open Inference Protocol) lists what and why, and the tests here say
which rule is relaxed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from tests.conftest import EVENTS_DIR, load_event, response_json

SCALAR = {"type": ["string", "number", "boolean"]}
PARAMETERS = {"type": "object", "additionalProperties": SCALAR}  # inference_rest.md: $parameter values
SHAPE = {"type": "array", "items": {"type": "integer"}}
TENSOR_DATA = {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/tensor_data"}, SCALAR]}}
METADATA_TENSOR = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {"name": {"type": "string"}, "datatype": {"type": "string"}, "shape": SHAPE},
}
DEFS = {"tensor_data": TENSOR_DATA}
SPEC: dict[str, dict[str, Any]] = {
    "server_metadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "model_metadata": {
        "type": "object",
        "required": ["name", "platform"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": METADATA_TENSOR},
            "outputs": {"type": "array", "items": METADATA_TENSOR},
        },
    },
    "inference_request": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": PARAMETERS,
            "inputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "shape", "datatype", "data"],
                    "properties": {
                        "name": {"type": "string"},
                        "shape": SHAPE,
                        "datatype": {"type": "string"},
                        "parameters": PARAMETERS,
                        "data": {"$ref": "#/$defs/tensor_data"},
                    },
                },
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "parameters": PARAMETERS},
                },
            },
        },
        "$defs": DEFS,
    },
    "inference_response": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": PARAMETERS,
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "shape", "datatype", "data"],
                    "properties": {
                        "name": {"type": "string"},
                        "shape": SHAPE,
                        "datatype": {"type": "string"},
                        "parameters": PARAMETERS,
                        "data": {"$ref": "#/$defs/tensor_data"},
                    },
                },
            },
        },
        "$defs": DEFS,
    },
    "error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
}
# Health: the REST description requires only the status (200 live / ready); inference_rest.md adds no body.


def check(name: str, document: Any) -> None:
    jsonschema.Draft202012Validator.check_schema(SPEC[name])
    jsonschema.validate(document, SPEC[name], cls=jsonschema.Draft202012Validator)


@pytest.fixture
def call(
    handler_module: Callable[..., ModuleType], task_registries: dict[str, Path], lambda_context: Any
) -> Callable[[str, str, Any], tuple[int, Any]]:
    handler = handler_module(MODEL_URI=str(task_registries["classification"])).handler

    def send(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        event = load_event("apigw_v2_oip_infer.json" if method == "POST" else "apigw_v2_oip_live.json")
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        if body is not None:
            event["body"] = json.dumps(body)
            event["headers"]["content-length"] = str(len(event["body"]))
        response = handler(event, lambda_context)
        return response["statusCode"], response_json(response)

    return send


def test_every_protocol_answer_fits_the_published_shapes(
    call: Callable[[str, str, Any], tuple[int, Any]],
) -> None:
    assert call("GET", "/v2/health/live", None)[0] == 200
    assert call("GET", "/v2/health/ready", None)[0] == 200
    status, server = call("GET", "/v2", None)
    assert status == 200
    check("server_metadata", server)
    status, model = call("GET", "/v2/models/classifier", None)
    assert status == 200
    check("model_metadata", model)
    assert call("GET", f"/v2/models/classifier/versions/{model['versions'][0]}", None) == (200, model)
    assert call("GET", "/v2/models/classifier/ready", None)[0] == 200
    request = {
        "id": "spec-1",
        "parameters": {"note": "any"},
        "inputs": [
            {"name": t["name"], "shape": [2], "datatype": t["datatype"], "data": [80.0, 443.0]}
            for t in model["inputs"]
        ],
        "outputs": [{"name": "probabilities"}, {"name": "predictions"}],
    }
    check("inference_request", request)
    status, answer = call("POST", "/v2/models/classifier/infer", request)
    assert status == 200
    check("inference_response", answer)
    assert [o["name"] for o in answer["outputs"]] == ["probabilities", "predictions"]
    for method, path, body in [
        ("POST", "/v2/models/classifier/infer", {"inputs": "nope"}),
        ("POST", "/v2/models/other/infer", request),
        ("GET", "/v2/models/other", None),
        ("GET", "/v2/models/classifier/versions/0", None),
    ]:
        status, error = call(method, path, body)
        assert 400 <= status < 500
        check("error", error)


def test_the_sample_requests_fit_the_published_request_shape() -> None:
    for path in sorted(EVENTS_DIR.glob("*_oip_infer*.json")):
        check("inference_request", json.loads(json.loads(path.read_text())["body"]))


def test_a_null_for_a_filled_feature_is_the_one_departure_in_requests() -> None:
    """tensor_data items are numbers, strings or booleans; this server also takes null for a feature
    the model fills (listed in docs/api.md)."""
    request = {"inputs": [{"name": "bytes", "shape": [1], "datatype": "FP64", "data": [None]}]}
    with pytest.raises(jsonschema.ValidationError):
        check("inference_request", request)
