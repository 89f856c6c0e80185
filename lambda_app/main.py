"""create_app(): the FastAPI app, its routers, error handling and OpenAPI metadata.

Every error leaves through one of the handlers here, as an ``ErrorBody`` that names the
problem and carries the request id, and never echoes raw input back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from lambda_app.api.base_path import BasePathMiddleware
from lambda_app.api.routes import docs, health, model, open_inference, predict
from lambda_app.config import Settings
from lambda_app.errors import ErrorDetail, ModelUnavailableError, ServiceError
from lambda_app.model_store import ModelStore
from lambda_app.observability import logger, metrics, record_server_error
from lambda_app.registry import Manifest
from lambda_app.schemas import (
    PER_ROW_RESPONSES_BY_TASK,
    RESPONSES_BY_TASK,
    RowError,
    example_records,
    request_body_schema,
)
from lambda_app.scoring import max_answerable_rows

DESCRIPTION = """Scores records with a scikit-learn model (anomaly detection, classification or
regression) compiled to ONNX and loaded from a versioned model registry. `GET /model` states the
loaded model's task and features; the example model flags anomalous network flows (`1` = anomaly)."""


def request_id(request: Request) -> str:
    """The API Gateway request id under Lambda, else X-Request-Id, else a new one."""
    event = request.scope.get("aws.event")
    if isinstance(event, dict):
        context = event.get("requestContext")
        if isinstance(context, dict) and isinstance(context.get("requestId"), str):
            return str(context["requestId"])
    return request.headers.get("x-request-id") or str(uuid.uuid4())


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: list[ErrorDetail] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    rid = request_id(request)[:200]
    if is_protocol_path(request):
        # The Open Inference Protocol's error body; its requests are refused with a 400, not a 422.
        status = 400 if status == 422 else status
        return AsciiJSONResponse(
            {"error": message}, status_code=status, headers={"x-request-id": rid, **(headers or {})}
        )
    body = {
        "error": code,
        "message": message,
        "errors": [d.as_dict() for d in details or []],
        "request_id": rid,
    }
    return AsciiJSONResponse(body, status_code=status, headers={"x-request-id": rid, **(headers or {})})


def is_protocol_path(request: Request) -> bool:
    """True for the Open Inference Protocol's routes (``/v2`` and below, after any stage or base path)."""
    path = str(request.scope.get("path", ""))
    root = str(request.scope.get("root_path", ""))
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
    return path == "/v2" or path.startswith("/v2/")


class AsciiJSONResponse(JSONResponse):
    """Error bodies are ASCII-escaped: whatever text they quote, they always serialise."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    headers = {}
    if isinstance(exc, ModelUnavailableError):
        headers["retry-after"] = str(exc.retry_after)
        metrics.add_metric(name="ModelUnavailable", unit=MetricUnit.Count, value=1)
    if exc.status >= 500:
        if not isinstance(exc, ModelUnavailableError):  # counted as ModelUnavailable: cold loads can be slow
            record_server_error()
        logger.warning("request refused", extra={"code": exc.code, "reason": exc.message})
    else:
        metrics.add_metric(name="InvalidRequests", unit=MetricUnit.Count, value=1)
        logger.info("invalid request", extra={"code": exc.code, "reason": exc.message})
    return error_response(request, exc.status, exc.code, exc.message, exc.details, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        ErrorDetail(
            message=str(err.get("msg", "invalid")),
            field=".".join(str(p) for p in err.get("loc", ())[1:]) or None,
        )
        for err in exc.errors()
    ]
    message = details[0].message if details else "invalid request"
    return error_response(request, 422, "invalid_input", message, details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    headers = dict(exc.headers or {})
    message = str(exc.detail)
    if exc.status_code == 405 and headers.get("Allow"):
        message = f"{request.method} is not allowed on {request.url.path}: use {headers['Allow']}"
    if exc.status_code == 404:
        message = _prefix_hint(request) or message
    return error_response(
        request, exc.status_code, codes.get(exc.status_code, "http_error"), message, headers=headers
    )


def _prefix_hint(request: Request) -> str | None:
    """For a 404 on ``/<prefix>/<route>``: the route exists without the prefix, so the prefix is
    probably a custom domain's base path that API_BASE_PATH does not name yet."""
    path = request.scope["path"]
    prefix, _, rest = path.lstrip("/").partition("/")
    if not prefix or not rest:
        return None
    scope = {**request.scope, "path": f"/{rest}"}
    if not any(route.matches(scope)[0] is not Match.NONE for route in request.app.router.routes):
        return None
    return (
        f"no route {path}; /{rest} exists: if /{prefix} is the base path of a custom domain (or a stage"
        f" the path carries), set API_BASE_PATH=/{prefix} on the function"
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error")
    record_server_error()
    return error_response(request, 500, "internal_error", "internal error; see the service logs")


def create_app(settings: Settings | None = None, store: ModelStore | None = None) -> FastAPI:
    """Build the app. Lambda passes ``lifespan="off"`` to Mangum, so nothing here runs per call."""
    settings = settings or Settings()
    store = store or ModelStore(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Local servers (uvicorn) load the model at startup, as Lambda does at init.
        if settings.preload_model:
            store.try_load()
        yield

    app = FastAPI(
        title="Model serving API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by api/routes/docs.py from pinned local assets, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.model_store = store
    app.include_router(predict.router)  # first: the hot route is matched before the others
    app.include_router(health.router)
    app.include_router(model.router)
    app.include_router(docs.router)
    app.include_router(open_inference.router)
    app.add_middleware(BasePathMiddleware, base_path=settings.api_base_path)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)

    def openapi() -> dict[str, Any]:
        """The OpenAPI schema, with /predict's body derived from the loaded model's features."""
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        loaded = store.current
        if loaded is not None:
            manifest = loaded.manifest
            operation = schema["paths"]["/predict"]["post"]
            operation["requestBody"] = request_body_schema(
                manifest.features, max_answerable_rows(loaded, settings), example_records(manifest)
            )
            answers = [RESPONSES_BY_TASK[manifest.task], PER_ROW_RESPONSES_BY_TASK[manifest.task]]
            ok = operation["responses"]["200"]
            ok["description"] = (
                f"errors=all (the default): {answers[0].__name__}, every record scored, `errors` null."
                f" errors=per_row: {answers[1].__name__}, null answers for the records not scored and"
                " their problems in `errors`."
            )
            ok["content"]["application/json"]["schema"] = {
                "anyOf": [{"$ref": f"#/components/schemas/{answer.__name__}"} for answer in answers]
            }
            documented: list[type[BaseModel]] = [*answers, RowError]
            for answer in documented:
                definition = answer.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, nested in definition.pop("$defs", {}).items():
                    schema["components"]["schemas"][name] = nested
                schema["components"]["schemas"][answer.__name__] = definition
            if loaded.explainer is not None and not loaded.explainer.available:
                _offer_no_explanations(operation, manifest)
            schema["info"]["x-model-version"] = manifest.version
            schema["info"]["x-model-task"] = manifest.task
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _offer_no_explanations(operation: dict[str, Any], manifest: Manifest) -> None:
    """/predict's ``explain`` for a model version without explanations: only false is valid.

    The schema states what the loaded model accepts, so a client generated from it never asks for
    what this model cannot answer (the request would be a 422 ``explanation_unavailable``)."""
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "explain":
            parameter["schema"] = {**parameter["schema"], "enum": [False]}
            parameter["description"] = (
                f"model version {manifest.version} ({manifest.estimator}) has no explanations, so only"
                " false is accepted; explanations cover tree ensembles and linear models"
            )
