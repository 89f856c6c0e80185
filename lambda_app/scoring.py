"""One scoring path for every task: validate -> predict -> monitor -> respond.

``/predict`` calls ``score_records`` once and knows nothing of tasks; batch scoring will call the
same function. The task lives in the loaded model's predictor (lambda_app/models/).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aws_lambda_powertools.metrics import MetricUnit

from lambda_app.config import Settings
from lambda_app.drift import DriftSnapshot
from lambda_app.errors import ErrorDetail, InvalidInputError, ModelOutputError, ResponseTooLargeError
from lambda_app.model_store import LoadedModel
from lambda_app.models import Prediction
from lambda_app.observability import SERVICE_NAME, metrics, traced
from lambda_app.preprocess import category_columns, unseen_by_row
from lambda_app.registry import FeatureSpec
from lambda_app.validation import MAX_REPORTED_ERRORS, records_to_matrix

RESPONSE_ENVELOPE_BYTES = 512
"""Room for the response's other fields and Lambda's envelope (status, headers)."""


def max_answerable_rows(model: LoadedModel, settings: Settings) -> int:
    """The most records one request may carry for this model: the row limit, or fewer when the
    answer per row is large (a classifier with many classes)."""
    fits = (settings.max_response_bytes - RESPONSE_ENVELOPE_BYTES) // model.predictor.max_row_bytes()
    return max(1, min(settings.max_rows, fits))


def check_response_fits(rows: int, model: LoadedModel, settings: Settings) -> None:
    """Refuse up front a request whose answer could exceed the response limit (a gateway 502 otherwise)."""
    per_row = model.predictor.max_row_bytes()
    if rows * per_row + RESPONSE_ENVELOPE_BYTES <= settings.max_response_bytes:
        return
    fits = max_answerable_rows(model, settings)
    raise ResponseTooLargeError(
        f"the answer to {rows} records could take up to {rows * per_row} bytes, over the response limit of"
        f" {settings.max_response_bytes} bytes (Lambda's 6 MB): send at most {fits} records per request"
    )


@traced
def score_records(payload: Any, model: LoadedModel, settings: Settings) -> bytes:
    """Score one record or an array of records; returns the serialised response body.

    Raises:
        InvalidInputError, TooManyRecordsError: the records are not valid for this model.
        ResponseTooLargeError: the answer could not fit the response limit.
        ModelOutputError: the model produced a non-finite value (nothing is answered).
    """
    started = time.perf_counter()
    specs = model.manifest.features
    features = records_to_matrix(payload, specs, settings.max_rows)
    unseen = unseen_by_row(features, specs)
    if unseen and settings.unseen_categories == "refuse":
        raise unseen_refused(unseen, specs)
    check_response_fits(len(features), model, settings)
    prediction = model.predictor.predict(features)
    if not prediction.finite():
        metrics.add_metric(name="NonFiniteScores", unit=MetricUnit.Count, value=1)
        raise ModelOutputError("the model produced a non-finite value; this request was not scored")
    drift = model.drift.observe(features)
    record_prediction(model, prediction, drift, started)
    body: dict[str, Any] = {**prediction.fields(), "version": model.manifest.version, "errors": None}
    if category_columns(specs):  # only a model with categories can meet an unseen value
        body["unseen"] = [{"row": row, "fields": fields} for row, fields in unseen] or None
    return orjson.dumps(body)


def unseen_refused(unseen: list[tuple[int, list[str]]], specs: Sequence[FeatureSpec]) -> InvalidInputError:
    """UNSEEN_CATEGORIES=refuse: a 422 naming each row and field holding a value the model never saw."""
    details = [
        ErrorDetail(
            f"a category value the model never saw (it knows {len(spec.categories or ())}:"
            f" {', '.join((spec.categories or [])[:5])}{', ...' if len(spec.categories or ()) > 5 else ''})",
            row=row,
            field=name,
        )
        for row, fields in unseen
        for name in fields
        for spec in specs
        if spec.name == name
    ]
    first = details[0]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return InvalidInputError(
        f"row {first.row}, field '{first.field}': {first.message}{more}", details[:MAX_REPORTED_ERRORS]
    )


def record_prediction(
    model: LoadedModel, prediction: Prediction, drift: DriftSnapshot, started: float
) -> None:
    """EMF metrics for this request: volume, the task's own figures, out-of-range share, unseen-category
    share (models with categories), latency; drift, missing-value shares and model age whenever the
    container's drift window is recomputed (every 50 rows), to keep 1-row
    requests cheap.

    Two dimension sets: {service} for the alarms, {service, model_version} to compare versions.
    """
    metrics.add_dimensions(service=SERVICE_NAME, model_version=model.manifest.version)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=prediction.rows)
    for figure in prediction.metrics():
        metrics.add_metric(name=figure.name, unit=MetricUnit(figure.unit), value=figure.value)
    metrics.add_metric(name="OutOfRangeShare", unit=MetricUnit.Percent, value=100 * drift.out_of_range_share)
    if drift.unseen_share is not None:
        share = 100 * drift.unseen_share
        metrics.add_metric(name="UnseenCategoryShare", unit=MetricUnit.Percent, value=share)
    if drift.fresh:
        for name, value in drift.psi.items():
            metrics.add_metric(name=f"FeaturePSI_{name}", unit=MetricUnit.NoUnit, value=value)
        for name, value in drift.missing_share.items():
            metrics.add_metric(name=f"MissingShare_{name}", unit=MetricUnit.Percent, value=100 * value)
        age = (datetime.now(UTC) - model.manifest.created_at).total_seconds() / 3600
        metrics.add_metric(name="ModelAgeHours", unit=MetricUnit.NoUnit, value=round(age, 3))
    metrics.add_metric(
        name="ScoringLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )
