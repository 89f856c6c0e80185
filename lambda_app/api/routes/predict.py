"""Scoring records."""

from __future__ import annotations

from typing import Any

import orjson
from aws_lambda_powertools.metrics import MetricUnit
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from lambda_app.config import Settings
from lambda_app.errors import PayloadTooLargeError
from lambda_app.model_store import LoadedModel, ModelStore
from lambda_app.observability import metrics, traced
from lambda_app.schemas import ErrorBody, PredictResponse, request_body_schema
from lambda_app.validation import parse_body, records_to_matrix

router = APIRouter(tags=["predict"])

INLINE_ROWS = 256
"""Batches up to this size are scored on the event loop (tens of microseconds)."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "the body is not JSON"},
    413: {"model": ErrorBody, "description": "body over the size limit"},
    422: {
        "model": ErrorBody,
        "description": "a record is invalid (row and field named), or too many records",
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
    """Score one record or an array of records; 1 = anomaly, 0 = normal."""
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
    model = store.current
    if model is None:  # the first load may block on S3: off the event loop
        model = await run_in_threadpool(store.get)
    rows = len(payload) if isinstance(payload, list) else 1
    if rows <= INLINE_ROWS:  # microseconds of work: a thread hop would cost more than it saves
        content = _score(payload, model, settings)
    else:  # large batches run off the event loop, so a local server keeps serving others
        content = await run_in_threadpool(_score, payload, model, settings)
    return Response(content=content, media_type="application/json")


def _too_large(size: int, settings: Settings) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"request body of {size} bytes exceeds the limit of {settings.max_body_bytes} bytes"
    )


@traced
def _score(payload: Any, model: LoadedModel, settings: Settings) -> bytes:
    """Validate and score off the event loop; returns the serialised response."""
    features = records_to_matrix(payload, model.manifest.features, settings.max_rows)
    prediction = model.predictor.predict(features)
    anomalies = int(prediction.labels.sum())
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=len(prediction.labels))
    metrics.add_metric(name="Anomalies", unit=MetricUnit.Count, value=anomalies)
    return orjson.dumps(
        {
            "predictions": prediction.labels.tolist(),
            "scores": prediction.scores.tolist(),
            "version": model.manifest.version,
            "errors": None,
        }
    )
