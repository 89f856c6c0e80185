"""Scoring records."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from lambda_app.config import Settings
from lambda_app.errors import InvalidInputError, PayloadTooLargeError
from lambda_app.model_store import ModelStore
from lambda_app.schemas import ErrorBody, PredictResponse, request_body_schema
from lambda_app.scoring import ExplainOptions, score_records
from lambda_app.validation import parse_body

router = APIRouter(tags=["predict"])

INLINE_ROWS = 256
"""Batches up to this size are scored on the event loop (tens of microseconds)."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "the body is not JSON"},
    413: {"model": ErrorBody, "description": "body over the size limit"},
    422: {
        "model": ErrorBody,
        "description": "a record is invalid (row and field named), too many records, or an answer"
        " too large for the response limit",
    },
    503: {"model": ErrorBody, "description": "no model is loaded"},
}


ERRORS_MODES = ("all", "per_row")
ERRORS_PARAMETER: dict[str, Any] = {
    "name": "errors",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": list(ERRORS_MODES), "default": "all"},
    "description": "`all` (the default): any invalid record makes the whole request a 422 and nothing is"
    " scored, so a client that never asked for partial answers never meets a null prediction."
    " `per_row`: valid records are scored; each invalid one gets null in `predictions` (and in the"
    " task's other answer fields) and an entry per problem in `errors` (row, field, code, message);"
    " 200 when at least one record was scored, else the 422. The body's shape (JSON, an object or a"
    " non-empty array, the record and size limits) is judged whole in both modes.",
}


MAX_TOP = 100
EXPLAIN_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "explain",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean", "default": False},
        "description": "true: each scored record also gets its explanation in `explanations`: a base value"
        " and each feature's contribution to the answer (Tree SHAP for tree ensembles and"
        " IsolationForest, exact for linear models), so that base + contributions = value. At most"
        " EXPLAIN_MAX_ROWS records per request (100 unless configured); a 422 for a model that has none.",
    },
    {
        "name": "top",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TOP, "default": 5},
        "description": "with explain=true: how many contributions to list per record, largest first (the"
        " others are summed in `rest`)",
    },
    {
        "name": "explain_classes",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["predicted", "all"], "default": "predicted"},
        "description": "with explain=true, classifiers only: explain the predicted class, or every class",
    },
]


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=ERROR_RESPONSES,
    openapi_extra={
        "requestBody": request_body_schema(None),
        "parameters": [ERRORS_PARAMETER, *EXPLAIN_PARAMETERS],
    },
)
async def predict(request: Request) -> Response:
    """Score one record or an array of records with the loaded model (see GET /model for its task).

    `?errors=per_row` scores the valid records and reports the others row by row (see the parameter);
    `?explain=true` adds each record's explanation.
    """
    # App state is read directly, not through Depends: dependency resolution is the largest
    # cost of a 1-row request after Mangum itself.
    settings: Settings = request.app.state.settings
    store: ModelStore = request.app.state.model_store
    per_row = _per_row(request)
    explain = explain_options(request)
    body = await read_body(request, settings)
    # The body is judged before the model is needed: bad input is a 4xx even while no model is loaded.
    payload = parse_body(body)
    model = store.loaded()
    if model is None:  # the first load may block on S3: off the event loop
        model = await run_in_threadpool(store.get)
    rows = len(payload) if isinstance(payload, list) else 1
    if rows <= INLINE_ROWS and explain is None:  # microseconds: a thread hop would cost more than it saves
        content = score_records(payload, model, settings, per_row)
    else:  # large batches and explanations run off the event loop, so a local server keeps serving others
        content = await run_in_threadpool(score_records, payload, model, settings, per_row, explain)
    return Response(content=content, media_type="application/json")


def _per_row(request: Request) -> bool:
    """The ``errors`` query parameter: False for ``all`` (or none), True for ``per_row``, else a 422."""
    if not request.scope.get("query_string"):
        return False
    modes = request.query_params.getlist("errors")
    if not modes:
        return False
    if len(modes) > 1 or modes[0] not in ERRORS_MODES:
        raise InvalidInputError(
            f"query parameter errors must be one of {', '.join(ERRORS_MODES)}, got {modes[0][:40]!r}"
            + (" (given more than once)" if len(modes) > 1 else "")
        )
    return modes[0] == "per_row"


def explain_options(request: Request) -> ExplainOptions | None:
    """The ``explain``, ``top`` and ``explain_classes`` query parameters; None unless explain is true.

    Raises:
        InvalidInputError: a value outside its parameter's schema (named).
    """
    if not request.scope.get("query_string"):
        return None
    params = request.query_params
    explain = _one(params.getlist("explain"), "explain", ("true", "false"), "false") == "true"
    top_text = _one(params.getlist("top"), "top", None, "5")
    classes = _one(params.getlist("explain_classes"), "explain_classes", ("predicted", "all"), "predicted")
    if not (top_text.isascii() and top_text.isdigit() and 1 <= int(top_text) <= MAX_TOP):
        raise InvalidInputError(
            f"query parameter top must be a whole number from 1 to {MAX_TOP}, got {top_text[:40]!r}"
        )
    if not explain:  # top and explain_classes (checked above) only matter with explain=true
        return None
    return ExplainOptions(top=int(top_text), all_classes=classes == "all")


def _one(values: list[str], name: str, allowed: tuple[str, ...] | None, default: str) -> str:
    """A query parameter given at most once (and one of ``allowed``), else a 422 naming it."""
    if not values:
        return default
    if len(values) > 1:
        raise InvalidInputError(f"query parameter {name} is given more than once")
    value = values[0].lower() if allowed else values[0]
    if allowed is not None and value not in allowed:
        raise InvalidInputError(
            f"query parameter {name} must be one of {', '.join(allowed)}, got {values[0][:40]!r}"
        )
    return value


async def read_body(request: Request, settings: Settings) -> bytes:
    """The request body within MAX_BODY_BYTES (a declared length over it is refused before reading)."""
    declared = request.headers.get("content-length", "")
    if (
        declared.isascii()
        and declared.isdigit()
        and len(declared) < 19
        and int(declared) > settings.max_body_bytes
    ):
        raise _too_large(int(declared), settings)
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        raise _too_large(len(body), settings)
    return body


def _too_large(size: int, settings: Settings) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"request body of {size} bytes exceeds the limit of {settings.max_body_bytes} bytes"
    )
