"""Scoring records."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from lambda_app.config import Settings
from lambda_app.errors import PayloadTooLargeError
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


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=ERROR_RESPONSES,
    openapi_extra={"requestBody": request_body_schema(None)},
)
async def predict(request: Request) -> Response:
    """Score one record or an array of records with the loaded model (see GET /model for its task)."""
    # App state is read directly, not through Depends: dependency resolution is the largest
    # cost of a 1-row request after Mangum itself.
    settings: Settings = request.app.state.settings
    store: ModelStore = request.app.state.model_store
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
    # The body is judged before the model is needed: bad input is a 4xx even while no model is loaded.
    payload = parse_body(body)
    model = store.loaded()
    if model is None:  # the first load may block on S3: off the event loop
        model = await run_in_threadpool(store.get)
    rows = len(payload) if isinstance(payload, list) else 1
    if rows <= INLINE_ROWS:  # microseconds of work: a thread hop would cost more than it saves
        content = score_records(payload, model, settings)
    else:  # large batches run off the event loop, so a local server keeps serving others
        content = await run_in_threadpool(score_records, payload, model, settings)
    return Response(content=content, media_type="application/json")


def _too_large(size: int, settings: Settings) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"request body of {size} bytes exceeds the limit of {settings.max_body_bytes} bytes"
    )
