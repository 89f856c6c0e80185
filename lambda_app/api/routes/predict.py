"""Scoring records."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from aws_lambda_powertools.metrics import MetricUnit
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from lambda_app.config import Settings
from lambda_app.drift import DriftSnapshot
from lambda_app.errors import ModelOutputError, PayloadTooLargeError
from lambda_app.model_store import LoadedModel, ModelStore
from lambda_app.observability import SERVICE_NAME, metrics, traced
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
    model = store.loaded()
    if model is None:  # the first load may block on S3: off the event loop
        model = await run_in_threadpool(store.get)
    rows = len(payload) if isinstance(payload, list) else 1
    if rows <= INLINE_ROWS:  # microseconds of work: a thread hop would cost more than it saves
        content = _score(payload, model, settings)
    else:  # large batches run off the event loop, so a local server keeps serving others
        content = await run_in_threadpool(_score, payload, model, settings)
    return Response(content=content, media_type="application/json")


def record_prediction(
    model: LoadedModel, rows: int, anomalies: int, drift: DriftSnapshot, started: float
) -> None:
    """EMF metrics for this request: volume, anomalies, out-of-range share, latency; drift and model age
    whenever the container's drift window is recomputed (every 50 rows), to keep 1-row requests cheap.

    Two dimension sets: {service} for the alarms, {service, model_version} to compare versions.
    """
    metrics.add_dimensions(service=SERVICE_NAME, model_version=model.manifest.version)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=rows)
    metrics.add_metric(name="Anomalies", unit=MetricUnit.Count, value=anomalies)
    metrics.add_metric(name="OutOfRangeShare", unit=MetricUnit.Percent, value=100 * drift.out_of_range_share)
    if drift.fresh:
        for name, value in drift.psi.items():
            metrics.add_metric(name=f"FeaturePSI_{name}", unit=MetricUnit.NoUnit, value=value)
        age = (datetime.now(UTC) - model.manifest.created_at).total_seconds() / 3600
        metrics.add_metric(name="ModelAgeHours", unit=MetricUnit.NoUnit, value=round(age, 3))
    metrics.add_metric(
        name="ScoringLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )


def _too_large(size: int, settings: Settings) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"request body of {size} bytes exceeds the limit of {settings.max_body_bytes} bytes"
    )


@traced
def _score(payload: Any, model: LoadedModel, settings: Settings) -> bytes:
    """Validate, score, and record what the monitoring needs; returns the serialised response."""
    started = time.perf_counter()
    features = records_to_matrix(payload, model.manifest.features, settings.max_rows)
    prediction = model.predictor.predict(features)
    if not np.isfinite(prediction.scores).all():
        metrics.add_metric(name="NonFiniteScores", unit=MetricUnit.Count, value=1)
        raise ModelOutputError("the model produced a non-finite score; this request was not scored")
    drift = model.drift.observe(features)
    record_prediction(model, len(prediction.labels), int(prediction.labels.sum()), drift, started)
    return orjson.dumps(
        {
            "predictions": prediction.labels.tolist(),
            "scores": prediction.scores.tolist(),
            "version": model.manifest.version,
            "errors": None,
        }
    )
