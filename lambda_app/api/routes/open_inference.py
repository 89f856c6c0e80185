"""The Open Inference Protocol's REST routes (``/v2/...``), beside the product's own.

Infer goes through the same limits, row rules, scoring path, metrics, drift and tracing as
``/predict`` (lambda_app/scoring.py: ``score_table``); only the body's format differs
(lambda_app/open_inference/tensors.py). Errors are the protocol's ``{"error": "..."}`` (main.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from lambda_app.api.routes.predict import INLINE_ROWS, read_body
from lambda_app.config import Settings
from lambda_app.errors import InvalidInputError, ServiceError
from lambda_app.model_store import LoadedModel, ModelStore
from lambda_app.observability import SERVICE_NAME, traced
from lambda_app.open_inference import tensors
from lambda_app.open_inference.schemas import (
    INFER_REQUEST_BODY,
    InferenceResponse,
    LiveResponse,
    ModelMetadata,
    ModelReadyResponse,
    ProtocolError,
    ReadyResponse,
    ServerMetadata,
)
from lambda_app.open_inference.tensors import BINARY_REFUSED
from lambda_app.scoring import ExplainOptions, answer_fields, explainer_for, score_table
from lambda_app.validation import parse_body

router = APIRouter(prefix="/v2", tags=["open inference protocol"])

PLATFORM = "onnxruntime_onnx"
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ProtocolError, "description": "no model is loaded"}
}
UNKNOWN_MODEL: dict[int | str, dict[str, Any]] = {
    404: {"model": ProtocolError, "description": "no such model or version here (the loaded one is named)"},
    **NOT_READY,
}
INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ProtocolError,
        "description": "not JSON, not an inference request, an input that does not fit the model's features,"
        " a value the row rules refuse (row and input named), too many rows or too large an answer",
    },
    413: {"model": ProtocolError, "description": "body over the size limit"},
    **UNKNOWN_MODEL,
}


class ModelNotFoundError(ServiceError):
    """The path names a model or version this server does not serve."""

    status = 404
    code = "not_found"


async def _model(request: Request) -> LoadedModel:
    store: ModelStore = request.app.state.model_store
    model = store.loaded()
    if model is None:  # the first load may block on S3: off the event loop
        model = await run_in_threadpool(store.get)
    return model


async def _named(request: Request, name: str, version: str | None = None) -> LoadedModel:
    """The loaded model when the path names it (and its version, when given); else a 404 naming it."""
    model = await _model(request)
    manifest = model.manifest
    if name != manifest.name:
        raise ModelNotFoundError(
            f"model '{name[:100]}' is not served here; this server serves '{manifest.name}'"
            f" (version {manifest.version})"
        )
    if version is not None and version != manifest.version:
        raise ModelNotFoundError(
            f"version '{version[:100]}' of model '{name}' is not loaded; the loaded version is"
            f" {manifest.version}"
        )
    return model


@router.get("/health/live", response_model=LiveResponse)
async def live() -> LiveResponse:
    """The server answers (with or without a model)."""
    return LiveResponse(live=True)


@router.get("/health/ready", response_model=ReadyResponse, responses=NOT_READY)
async def ready(request: Request) -> ReadyResponse:
    """200 when a model is loaded and can answer, else 503."""
    await _model(request)
    return ReadyResponse(ready=True)


@router.get("", response_model=ServerMetadata)
async def server_metadata(request: Request) -> ServerMetadata:
    """This server's name and version; no protocol extensions."""
    return ServerMetadata(name=SERVICE_NAME, version=request.app.version, extensions=[])


@router.get("/", response_model=ServerMetadata, include_in_schema=False)
async def server_metadata_slash(request: Request) -> ServerMetadata:
    return await server_metadata(request)


def _metadata(model: LoadedModel) -> ModelMetadata:
    manifest = model.manifest
    parameters: dict[str, str] = {"task": manifest.task}
    if manifest.classes is not None:
        parameters["classes"] = tensors.class_order(manifest)
    return ModelMetadata.model_validate(
        {
            "name": manifest.name,
            "versions": [manifest.version],
            "platform": PLATFORM,
            "inputs": tensors.input_metadata(manifest),
            "outputs": tensors.output_metadata(manifest),
            "parameters": parameters,
        }
    )


@router.get("/models/{name}", response_model=ModelMetadata, responses=UNKNOWN_MODEL)
async def model_metadata(request: Request, name: str) -> ModelMetadata:
    """The model's inputs (one per feature) and outputs, with datatypes and shapes; the loaded version."""
    return _metadata(await _named(request, name))


@router.get("/models/{name}/versions/{version}", response_model=ModelMetadata, responses=UNKNOWN_MODEL)
async def model_version_metadata(request: Request, name: str, version: str) -> ModelMetadata:
    """The same, for the loaded version only (any other version is a 404)."""
    return _metadata(await _named(request, name, version))


@router.get("/models/{name}/ready", response_model=ModelReadyResponse, responses=UNKNOWN_MODEL)
async def model_ready(request: Request, name: str) -> ModelReadyResponse:
    """200 when this model is loaded."""
    await _named(request, name)
    return ModelReadyResponse(name=name, ready=True)


@router.get(
    "/models/{name}/versions/{version}/ready", response_model=ModelReadyResponse, responses=UNKNOWN_MODEL
)
async def model_version_ready(request: Request, name: str, version: str) -> ModelReadyResponse:
    """200 when this version of the model is the loaded one."""
    await _named(request, name, version)
    return ModelReadyResponse(name=name, ready=True)


@router.post(
    "/models/{name}/infer",
    response_model=InferenceResponse,
    responses=INFER_ERRORS,
    openapi_extra={"requestBody": INFER_REQUEST_BODY},
)
async def infer(request: Request, name: str) -> Response:
    """Score the rows of the input tensors; the outputs follow the model's task (see the metadata)."""
    return await _infer(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    responses=INFER_ERRORS,
    openapi_extra={"requestBody": INFER_REQUEST_BODY},
)
async def infer_version(request: Request, name: str, version: str) -> Response:
    """The same, when the version is the loaded one."""
    return await _infer(request, name, version)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    settings: Settings = request.app.state.settings
    if "inference-header-content-length" in request.headers:  # the binary tensor extension
        raise InvalidInputError(BINARY_REFUSED)
    body = await read_body(request, settings)
    payload = parse_body(body)
    model = await _named(request, name, version)
    rows = _declared_rows(payload)
    if rows <= INLINE_ROWS:  # microseconds of work: a thread hop would cost more than it saves
        content = infer_body(payload, model, settings)
    else:  # large batches run off the event loop, so a local server keeps serving others
        content = await run_in_threadpool(infer_body, payload, model, settings)
    return Response(content=content, media_type="application/json")


def _declared_rows(payload: Any) -> int:
    """The rows an inference request says it carries (its first input's first dimension), cheaply."""
    try:
        rows = payload["inputs"][0]["shape"][0]
    except (KeyError, IndexError, TypeError):
        return 0
    return rows if isinstance(rows, int) else 0


@traced
def infer_body(payload: Any, model: LoadedModel, settings: Settings) -> bytes:
    """Decode, score (the shared path: limits, metrics, drift) and encode one inference request."""
    started = time.perf_counter()
    manifest = model.manifest
    names = tensors.output_names(manifest)
    request = tensors.decode(payload, manifest, settings.max_rows, [*names, EXPLANATIONS])
    wanted = request.outputs
    explain = _explain_options(payload) if wanted and EXPLANATIONS in wanted else None
    explainer = explainer_for(len(request.table), model, settings) if explain else None
    scored = score_table(request.table, model, settings, started, explain=explain)
    answer: dict[str, Any] = {"model_name": manifest.name, "model_version": manifest.version}
    if request.id is not None:
        answer["id"] = request.id
    if scored.unseen:
        answer["parameters"] = {
            "unseen": json.dumps([{"row": row, "fields": fields} for row, fields in scored.unseen])
        }
    if not wanted or explain is None:
        answer["outputs"] = tensors.encode(scored.prediction, manifest, wanted)
        return orjson.dumps(answer)
    by_name = {t["name"]: t for t in tensors.encode(scored.prediction, manifest, None)}
    explained = answer_fields(scored.prediction, request.table, model, explain, explainer)["explanations"]
    by_name[EXPLANATIONS] = {
        "name": EXPLANATIONS,
        "datatype": "BYTES",
        "shape": [len(explained)],
        "data": [orjson.dumps(row).decode() for row in explained],
        "parameters": {"space": explainer.answer_space if explainer else ""},
    }
    answer["outputs"] = [by_name[name] for name in wanted]
    return orjson.dumps(answer)


EXPLANATIONS = "explanations"
"""An output only sent when asked for by name: per row, its explanation as a JSON string (BYTES), with
``parameters.top`` on the request's output (default 5) and the explained quantity in the answer's
``parameters.space`` (see /predict's ``explain``)."""


def _explain_options(payload: Any) -> ExplainOptions:
    """The ``explanations`` output's ``top`` parameter (1 to 100, default 5)."""
    top: Any = 5
    for item in payload.get("outputs") or ():
        if isinstance(item, dict) and item.get("name") == EXPLANATIONS:
            parameters = item.get("parameters") or {}
            top = parameters.get("top", 5) if isinstance(parameters, dict) else None
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 100:
        raise InvalidInputError("output 'explanations': parameter top must be a whole number from 1 to 100")
    return ExplainOptions(top=top)
