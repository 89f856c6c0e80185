"""One scoring path for every task: validate -> predict -> monitor -> respond.

``/predict`` calls ``score_records`` once and knows nothing of tasks; the Open Inference Protocol's
infer route decodes its tensors and calls ``score_table``, the same path after validation. The task
lives in the loaded model's predictor (lambda_app/models/).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from aws_lambda_powertools.metrics import MetricUnit

from lambda_app import row_rules
from lambda_app.config import Settings
from lambda_app.drift import DriftSnapshot
from lambda_app.errors import (
    ErrorDetail,
    ExplanationUnavailableError,
    InvalidInputError,
    ModelOutputError,
    ResponseTooLargeError,
    TooManyRecordsError,
)
from lambda_app.explain.explainer import Explainer, explain_rows
from lambda_app.model_store import LoadedModel
from lambda_app.models import Prediction
from lambda_app.observability import SERVICE_NAME, metrics, traced
from lambda_app.preprocess import category_columns, unseen_by_row
from lambda_app.registry import FeatureSpec
from lambda_app.validation import (
    MAX_REPORTED_ERRORS,
    invalid_rows,
    records_to_matrix,
    records_to_partial_matrix,
)

RESPONSE_ENVELOPE_BYTES = 512
"""Room for the response's other fields and Lambda's envelope (status, headers)."""


@dataclass(frozen=True)
class ExplainOptions:
    """``/predict?explain=true``: how many features per row, and every class or the predicted one."""

    top: int = 5
    all_classes: bool = False

    def row_bytes(self, model: LoadedModel) -> int:
        """An upper bound on one row's explanation in the JSON response (quotes escaped once more)."""
        names = [len(orjson.dumps(name)) * 2 for name in model.manifest.feature_names]
        contributions = min(self.top, len(names)) * (max(names) + 48)
        one = 160 + contributions
        classes = model.manifest.classes or []
        label = max((len(orjson.dumps(c)) * 2 for c in classes), default=0)
        per_row = (one + label) * (len(classes) if self.all_classes else 1)
        return per_row + sum(names) + len(names) + 16  # the imputed features, at worst all


def max_answerable_rows(model: LoadedModel, settings: Settings, explain: ExplainOptions | None = None) -> int:
    """The most records one request may carry for this model: the row limit, or fewer when the
    answer per row is large (a classifier with many classes, explanations)."""
    per_row = model.predictor.max_row_bytes() + (explain.row_bytes(model) if explain else 0)
    fits = (settings.max_response_bytes - RESPONSE_ENVELOPE_BYTES) // per_row
    limit = min(settings.max_rows, settings.explain_max_rows) if explain else settings.max_rows
    return max(1, min(limit, fits))


def check_response_fits(
    rows: int, model: LoadedModel, settings: Settings, explain: ExplainOptions | None = None
) -> None:
    """Refuse up front a request whose answer could exceed the response limit (a gateway 502 otherwise)."""
    per_row = model.predictor.max_row_bytes() + (explain.row_bytes(model) if explain else 0)
    if rows * per_row + RESPONSE_ENVELOPE_BYTES <= settings.max_response_bytes:
        return
    fits = max_answerable_rows(model, settings, explain)
    raise ResponseTooLargeError(
        f"the answer to {rows} records could take up to {rows * per_row} bytes, over the response limit of"
        f" {settings.max_response_bytes} bytes (Lambda's 6 MB): send at most {fits} records per request"
    )


@dataclass(frozen=True)
class Scored:
    """A validated table's answer: the task's prediction and the rows that held unseen categories."""

    prediction: Prediction
    unseen: list[tuple[int, list[str]]]


def score_table(
    features: np.ndarray,
    model: LoadedModel,
    settings: Settings,
    started: float,
    rejected: int = 0,
    explain: ExplainOptions | None = None,
) -> Scored:
    """The one scoring path after validation, whatever the request's format (``/predict``, the Open
    Inference Protocol): unseen categories, the response limit, predict, the finite check, drift and
    metrics. ``rejected``: rows of the request set aside by the row rules (per-row answers), counted.

    Raises:
        InvalidInputError: UNSEEN_CATEGORIES=refuse and a row holds a value the model never saw.
        ResponseTooLargeError: the answer could not fit the response limit.
        ModelOutputError: the model produced a non-finite value (nothing is answered).
    """
    specs = model.manifest.features
    unseen = unseen_by_row(features, specs)
    if unseen and settings.unseen_categories == "refuse":
        raise unseen_refused(unseen, specs)
    check_response_fits(len(features) + rejected, model, settings, explain)
    prediction = model.predictor.predict(features)
    if not prediction.finite():
        metrics.add_metric(name="NonFiniteScores", unit=MetricUnit.Count, value=1)
        raise ModelOutputError("the model produced a non-finite value; this request was not scored")
    drift = model.drift.observe(features)
    record_prediction(model, prediction, drift, started, rejected)
    return Scored(prediction, unseen)


@traced
def score_records(
    payload: Any,
    model: LoadedModel,
    settings: Settings,
    per_row: bool = False,
    explain: ExplainOptions | None = None,
) -> bytes:
    """Score one record or an array of records; returns the serialised response body.

    ``per_row`` (``/predict?errors=per_row``): invalid records are answered null and reported in
    ``errors``, the others scored; a 422 only when no record could be scored. ``explain``
    (``/predict?explain=true``): each scored row also gets its explanation (``explanations``).

    Raises:
        InvalidInputError, TooManyRecordsError: the records are not valid for this model.
        ResponseTooLargeError: the answer could not fit the response limit.
        ModelOutputError: the model produced a non-finite value (nothing is answered).
    """
    started = time.perf_counter()
    specs = model.manifest.features
    rows = len(payload) if isinstance(payload, list) else 1
    explainer = explainer_for(rows, model, settings) if explain else None
    if per_row:
        return _score_per_row(payload, model, settings, started, explain, explainer)
    features = records_to_matrix(payload, specs, settings.max_rows)
    scored = score_table(features, model, settings, started, explain=explain)
    body: dict[str, Any] = {**answer_fields(scored.prediction, features, model, explain, explainer)}
    if explainer is not None:
        body["explanation_space"] = explainer.answer_space
    body.update(version=model.manifest.version, errors=None)
    if category_columns(specs):  # only a model with categories can meet an unseen value
        body["unseen"] = [{"row": row, "fields": fields} for row, fields in scored.unseen] or None
    return orjson.dumps(body)


def _score_per_row(
    payload: Any,
    model: LoadedModel,
    settings: Settings,
    started: float,
    explain: ExplainOptions | None,
    explainer: Explainer | None,
) -> bytes:
    """Per-row answers: valid rows scored, the others null in every answer field and named in ``errors``."""
    specs = model.manifest.features
    features, accepted, details = records_to_partial_matrix(payload, specs, settings.max_rows)
    if settings.unseen_categories == "refuse" and len(features):
        unseen = unseen_by_row(features, specs)
        if unseen:  # refused rows join the others: rows of the valid table -> rows of the request
            positions = np.flatnonzero(accepted)
            refused = unseen_refused(unseen, specs, limit=None)
            details.extend(replace(d, row=int(positions[d.row or 0])) for d in refused.details)
            keep = np.ones(len(features), dtype=bool)
            keep[[row for row, _ in unseen]] = False
            accepted[positions[~keep]] = False
            features = features[keep]
    rejected = int((~accepted).sum())
    if not len(features):
        metrics.add_metric(name="RejectedRows", unit=MetricUnit.Count, value=rejected)
        details.sort(key=lambda d: d.row or 0)
        raise invalid_rows(details)
    scored = score_table(features, model, settings, started, rejected, explain)
    scored_rows: list[int] = np.flatnonzero(accepted).tolist()
    body: dict[str, Any] = {}
    for name, values in answer_fields(scored.prediction, features, model, explain, explainer).items():
        column: list[Any] = [None] * len(accepted)
        for position, value in zip(scored_rows, values, strict=True):
            column[position] = value
        body[name] = column
    if explainer is not None:
        body["explanation_space"] = explainer.answer_space
    body["version"] = model.manifest.version
    details.sort(key=lambda d: d.row or 0)
    body["errors"] = [d.as_dict() for d in details] or None
    if category_columns(specs):
        moved = [{"row": scored_rows[row], "fields": fields} for row, fields in scored.unseen]
        body["unseen"] = moved or None
    content = orjson.dumps(body)
    if len(content) + RESPONSE_ENVELOPE_BYTES > settings.max_response_bytes:
        raise ResponseTooLargeError(
            f"the answer with {len(details)} row errors takes {len(content)} bytes, over the response limit"
            f" of {settings.max_response_bytes} bytes: send fewer records per request"
        )
    return content


def explainer_for(rows: int, model: LoadedModel, settings: Settings) -> Explainer:
    """The model's explainer, once the request is known to be within the explanation row limit.

    Raises:
        TooManyRecordsError: more records than EXPLAIN_MAX_ROWS.
        ExplanationUnavailableError: the model version has no explanations.
    """
    if rows > settings.explain_max_rows:
        raise TooManyRecordsError(
            f"{rows} records ask for explanations; at most {settings.explain_max_rows} may per request"
            " (EXPLAIN_MAX_ROWS): explanations cost more than predictions"
        )
    if model.explainer is None:
        raise ExplanationUnavailableError(f"model version {model.manifest.version} has no explanations")
    return model.explainer.get()


def answer_fields(
    prediction: Prediction,
    features: np.ndarray,
    model: LoadedModel,
    explain: ExplainOptions | None,
    explainer: Explainer | None,
) -> dict[str, Any]:
    """The task's answer fields, and ``explanations`` (with what they explain) when asked for."""
    fields = prediction.fields()
    if explain is None or explainer is None:
        return fields
    started = time.perf_counter()
    predicted = fields["predictions"] if model.manifest.task == "classification" else None
    encoded = model.predictor.encode(features)
    fields["explanations"] = explain_rows(
        explainer, encoded, features, predicted, explain.top, explain.all_classes
    )
    metrics.add_metric(name="ExplainedRows", unit=MetricUnit.Count, value=len(features))
    metrics.add_metric(
        name="ExplainLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )
    return fields


def unseen_refused(
    unseen: list[tuple[int, list[str]]], specs: Sequence[FeatureSpec], limit: int | None = MAX_REPORTED_ERRORS
) -> InvalidInputError:
    """UNSEEN_CATEGORIES=refuse: a 422 naming each row and field holding a value the model never saw."""
    by_name = {spec.name: spec for spec in specs}
    details = []
    for row, fields in unseen:
        for name in fields:
            problem = row_rules.unseen_category(by_name[name])
            details.append(ErrorDetail(problem.message, row=row, field=name, code=problem.code))
    first = details[0]
    more = row_rules.more_problems(len(details) - 1)
    return InvalidInputError(
        f"row {first.row}, field '{first.field}': {first.message}{more}",
        details if limit is None else details[:limit],
    )


def record_prediction(
    model: LoadedModel, prediction: Prediction, drift: DriftSnapshot, started: float, rejected: int = 0
) -> None:
    """EMF metrics for this request: volume, the task's own figures, out-of-range share, unseen-category
    share (models with categories), rows refused by the row rules in a per-row request (RejectedRows),
    latency; drift, missing-value shares and model age whenever the container's drift window is
    recomputed (every 50 rows), to keep 1-row requests cheap.

    Two dimension sets: {service} for the alarms, {service, model_version} to compare versions.
    """
    metrics.add_dimensions(service=SERVICE_NAME, model_version=model.manifest.version)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=prediction.rows)
    if rejected:
        metrics.add_metric(name="RejectedRows", unit=MetricUnit.Count, value=rejected)
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
