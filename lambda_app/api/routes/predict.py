"""Scoring records."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from lambda_app.config import Settings
from lambda_app.errors import InvalidInputError, PayloadTooLargeError
from lambda_app.model_store import ModelStore
from lambda_app.schemas import ErrorBody, PredictResponse, request_body_schema
from lambda_app.scoring import score_records
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


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=ERROR_RESPONSES,
    openapi_extra={"requestBody": request_body_schema(None), "parameters": [ERRORS_PARAMETER]},
)
async def predict(request: Request) -> Response:
    """Score one record or an array of records with the loaded model (see GET /model for its task).

    `?errors=per_row` scores the valid records and reports the others row by row (see the parameter).
    """
    # App state is read directly, not through Depends: dependency resolution is the largest
    # cost of a 1-row request after Mangum itself.
    settings: Settings = request.app.state.settings
    store: ModelStore = request.app.state.model_store
    per_row = _per_row(request)
    body = await read_body(request, settings)
    # The body is judged before the model is needed: bad input is a 4xx even while no model is loaded.
    payload = parse_body(body)
    model = store.loaded()
    if model is None:  # the first load may block on S3: off the event loop
        model = await run_in_threadpool(store.get)
    rows = len(payload) if isinstance(payload, list) else 1
    if rows <= INLINE_ROWS:  # microseconds of work: a thread hop would cost more than it saves
        content = score_records(payload, model, settings, per_row)
    else:  # large batches run off the event loop, so a local server keeps serving others
        content = await run_in_threadpool(score_records, payload, model, settings, per_row)
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
