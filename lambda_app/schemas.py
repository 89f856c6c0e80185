"""Response bodies and the documented request body (OpenAPI); validation lives in validation.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from lambda_app.registry import FeatureSpec, Manifest
from lambda_app.row_rules import CODES, MAX_ABS_VALUE

EXAMPLE_RECORD: dict[str, Any] = {"one": 20, "two": 12.66645094909174, "three": 15.8990837351338}


class UnseenItem(BaseModel):
    row: int = Field(description="0-based index of the record")
    fields: list[str] = Field(description="its category fields whose value the model never saw")


UNSEEN_DESCRIPTION = (
    "models with category features only: the rows holding a category value the model never saw, scored"
    " as the model's learned 'other' value (never as a known one), and in which fields; null when every"
    " value was known. With UNSEEN_CATEGORIES=refuse such rows are a 422 instead"
)


class RowError(BaseModel):
    """One problem of a record that was not scored (``errors=per_row``)."""

    row: int = Field(description="0-based index of the record")
    field: str | None = Field(description="the field at fault; null when it is the record itself")
    code: str = Field(description=f"machine-readable: one of {', '.join(CODES)}", examples=["not_finite"])
    message: str = Field(examples=["must be a finite number"])


class Contribution(BaseModel):
    feature: str = Field(description="an input feature (a category's one-hot columns count as one)")
    contribution: float = Field(description="its part of value - base, in the units of explanation_space")


class ExplainedOutput(BaseModel):
    base: float = Field(description="the expected value over the training data (what no feature explains)")
    value: float = Field(description="the explained number: base + the sum of contributions + rest")
    contributions: list[Contribution] = Field(description="the largest contributions (by size), at most top")
    rest: float = Field(description="the sum of the contributions not listed (0 when all are)")


class ClassExplanation(ExplainedOutput):
    class_: int | str = Field(alias="class", description="the class explained")


class RowExplanation(BaseModel):
    """One record's explanation: of the score, the prediction, or a class (the predicted one, or each)."""

    class_: int | str | None = Field(
        default=None, alias="class", description="classifiers: the predicted class"
    )
    base: float | None = Field(default=None, description="the expected value over the training data")
    value: float | None = Field(default=None, description="base + the sum of contributions + rest")
    contributions: list[Contribution] | None = Field(default=None, description="the largest, at most top")
    rest: float | None = Field(default=None, description="the sum of the contributions not listed")
    classes: list[ClassExplanation] | None = Field(
        default=None, description="explain_classes=all only: every class's explanation, in the model's order"
    )
    imputed: list[str] | None = Field(
        default=None, description="features whose missing value was filled (their contribution is the fill's)"
    )


EXPLANATIONS_DESCRIPTION = (
    "explain=true only: per record, why the model answered as it did (null: not scored)"
)
EXPLANATION_SPACE_DESCRIPTION = (
    "explain=true only: what value is: score (the anomaly score), prediction, probability (a forest's"
    " class probability), log_odds (probability = 1 / (1 + exp(-value))) or margin (the probabilities are"
    " the softmax of the classes' values)"
)
ExplanationSpace = Literal["score", "prediction", "probability", "log_odds", "margin"]


PER_ROW_ERRORS = (
    "errors=per_row only: one entry per problem of each record that was not scored (its answer fields"
    " are null); null when every record was scored"
)


class PredictResponse(BaseModel):
    """Predictions in the order of the request's records; the fields beside them follow the model's task."""

    predictions: list[Any] = Field(
        description="anomaly: 1 = anomaly, 0 = normal; classification: the class labels as trained;"
        " regression: numbers",
        examples=[[0]],
    )
    scores: list[float] | None = Field(
        default=None, description="anomaly models only: higher is more anomalous; >= the threshold is 1"
    )
    probabilities: list[dict[str, float]] | None = Field(
        default=None, description="classification models only: per row, each class's probability"
    )
    explanations: list[RowExplanation | None] | None = Field(
        default=None, description=EXPLANATIONS_DESCRIPTION
    )
    explanation_space: ExplanationSpace | None = Field(
        default=None, description=EXPLANATION_SPACE_DESCRIPTION
    )
    version: str = Field(description="the model version that answered")
    errors: list[RowError] | None = Field(
        default=None, description="null, except with errors=per_row: " + PER_ROW_ERRORS
    )
    unseen: list[UnseenItem] | None = Field(default=None, description=UNSEEN_DESCRIPTION)


class AnomalyResponse(BaseModel):
    """An anomaly detector's answer, in the order of the request's records."""

    predictions: list[Literal[0, 1]] = Field(description="1 = anomaly, 0 = normal", examples=[[0]])
    scores: list[float] = Field(
        description="anomaly score, higher is more anomalous; >= the model's threshold is 1",
        examples=[[0.41]],
    )
    explanations: list[RowExplanation | None] | None = Field(
        default=None, description=EXPLANATIONS_DESCRIPTION
    )
    explanation_space: ExplanationSpace | None = Field(
        default=None, description=EXPLANATION_SPACE_DESCRIPTION
    )
    version: str = Field(description="the model version that answered")
    errors: None = Field(default=None, description="always null on success")
    unseen: list[UnseenItem] | None = Field(default=None, description=UNSEEN_DESCRIPTION)


class ClassificationResponse(BaseModel):
    """A classifier's answer, in the order of the request's records."""

    predictions: list[int | str] = Field(description="the predicted class, as the training labels were")
    probabilities: list[dict[str, float]] = Field(
        description="per row, each class (as a string key) mapped to its probability"
    )
    explanations: list[RowExplanation | None] | None = Field(
        default=None, description=EXPLANATIONS_DESCRIPTION
    )
    explanation_space: ExplanationSpace | None = Field(
        default=None, description=EXPLANATION_SPACE_DESCRIPTION
    )
    version: str = Field(description="the model version that answered")
    errors: None = Field(default=None, description="always null on success")
    unseen: list[UnseenItem] | None = Field(default=None, description=UNSEEN_DESCRIPTION)


class RegressionResponse(BaseModel):
    """A regressor's answer, in the order of the request's records."""

    predictions: list[float] = Field(description="the predicted value")
    explanations: list[RowExplanation | None] | None = Field(
        default=None, description=EXPLANATIONS_DESCRIPTION
    )
    explanation_space: ExplanationSpace | None = Field(
        default=None, description=EXPLANATION_SPACE_DESCRIPTION
    )
    version: str = Field(description="the model version that answered")
    errors: None = Field(default=None, description="always null on success")
    unseen: list[UnseenItem] | None = Field(default=None, description=UNSEEN_DESCRIPTION)


class AnomalyPerRowResponse(BaseModel):
    """An anomaly detector's answer with errors=per_row: null for each record that was not scored."""

    predictions: list[Literal[0, 1] | None] = Field(description="1 = anomaly, 0 = normal, null: not scored")
    scores: list[float | None] = Field(description="anomaly score; null: not scored")
    explanations: list[RowExplanation | None] | None = Field(
        default=None, description=EXPLANATIONS_DESCRIPTION
    )
    explanation_space: ExplanationSpace | None = Field(
        default=None, description=EXPLANATION_SPACE_DESCRIPTION
    )
    version: str = Field(description="the model version that answered")
    errors: list[RowError] | None = Field(description=PER_ROW_ERRORS)
    unseen: list[UnseenItem] | None = Field(default=None, description=UNSEEN_DESCRIPTION)


class ClassificationPerRowResponse(BaseModel):
    """A classifier's answer with errors=per_row: null for each record that was not scored."""

    predictions: list[int | str | None] = Field(description="the predicted class; null: not scored")
    probabilities: list[dict[str, float] | None] = Field(
        description="per row, each class's probability; null: not scored"
    )
    explanations: list[RowExplanation | None] | None = Field(
        default=None, description=EXPLANATIONS_DESCRIPTION
    )
    explanation_space: ExplanationSpace | None = Field(
        default=None, description=EXPLANATION_SPACE_DESCRIPTION
    )
    version: str = Field(description="the model version that answered")
    errors: list[RowError] | None = Field(description=PER_ROW_ERRORS)
    unseen: list[UnseenItem] | None = Field(default=None, description=UNSEEN_DESCRIPTION)


class RegressionPerRowResponse(BaseModel):
    """A regressor's answer with errors=per_row: null for each record that was not scored."""

    predictions: list[float | None] = Field(description="the predicted value; null: not scored")
    explanations: list[RowExplanation | None] | None = Field(
        default=None, description=EXPLANATIONS_DESCRIPTION
    )
    explanation_space: ExplanationSpace | None = Field(
        default=None, description=EXPLANATION_SPACE_DESCRIPTION
    )
    version: str = Field(description="the model version that answered")
    errors: list[RowError] | None = Field(description=PER_ROW_ERRORS)
    unseen: list[UnseenItem] | None = Field(default=None, description=UNSEEN_DESCRIPTION)


PER_ROW_RESPONSES_BY_TASK: dict[str, type[BaseModel]] = {
    "anomaly": AnomalyPerRowResponse,
    "classification": ClassificationPerRowResponse,
    "regression": RegressionPerRowResponse,
}

RESPONSES_BY_TASK: dict[str, type[BaseModel]] = {
    "anomaly": AnomalyResponse,
    "classification": ClassificationResponse,
    "regression": RegressionResponse,
}


class ErrorItem(BaseModel):
    row: int | None = Field(description="0-based index of the record, when there is one")
    field: str | None = Field(description="the field at fault, when there is one")
    code: str | None = Field(
        default=None, description=f"for a record's problem: one of {', '.join(CODES)}; null otherwise"
    )
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx carries this body."""

    error: str = Field(description="machine-readable code", examples=["invalid_input"])
    message: str = Field(examples=["row 0, field 'two': must be a finite number"])
    errors: list[ErrorItem] = Field(default_factory=list)
    request_id: str | None = None


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])
    version: str = Field(description="the loaded model's version")


class RootResponse(BaseModel):
    service: str
    message: str
    docs: str


def request_body_schema(
    features: Sequence[FeatureSpec] | None,
    max_rows: int | None = None,
    examples: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """OpenAPI requestBody for /predict: from the loaded model's features when known.

    ``examples`` are records for this model (typical training values); without a model, the example model's.

    It states every rule the validator enforces (types, bounds, required and unknown fields, which
    features take null, the record limit), so that what the schema calls valid is accepted: the fuzz
    tests hold it to that. A category's known values are listed, not enforced: any string is scored.
    """
    if features:
        record: dict[str, Any] = {
            "type": "object",
            "properties": {spec.name: feature_schema(spec) for spec in features},
            "required": [spec.name for spec in features],
            "additionalProperties": False,
        }
    else:
        record = {
            "type": "object",
            "description": "one value per feature of the loaded model (see GET /model)",
            "additionalProperties": {"type": "number", "minimum": -MAX_ABS_VALUE, "maximum": MAX_ABS_VALUE},
        }
    array: dict[str, Any] = {"type": "array", "items": record, "minItems": 1}
    single, *more = examples or [EXAMPLE_RECORD, {"one": 4444, "two": 31.5, "three": 2.25}]
    if max_rows is not None:
        array["maxItems"] = max_rows
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [record, array],
                },
                "examples": {
                    "single": {"summary": "one record", "value": single},
                    "batch": {"summary": "an array of records", "value": [single, *more]},
                },
            }
        },
    }


def feature_schema(spec: FeatureSpec) -> dict[str, Any]:
    """One feature's JSON schema: its type, bounds or known values, and null where it is filled."""
    schema: dict[str, Any]
    if spec.dtype == "boolean":
        schema = {"type": "boolean"}
    elif spec.dtype == "category":
        assert spec.categories is not None
        schema = {
            "type": "string",
            "description": f"known values: {', '.join(spec.categories)}; any other is scored as unseen",
            "examples": list(spec.categories),
        }
    else:
        schema = {
            "type": "integer" if spec.dtype == "integer" else "number",
            "minimum": -MAX_ABS_VALUE,
            "maximum": MAX_ABS_VALUE,
        }
    if spec.takes_missing:
        schema["type"] = [schema["type"], "null"]
        statistic = "median" if spec.dtype in ("number", "integer") else "most frequent value"
        note = (
            f"null: served as {spec.fill!r} (the training {statistic})"
            if spec.fill is not None
            else "null: a missing value, sent down the branch the model learned for missing values"
        )
        schema["description"] = f"{schema['description']}; {note}" if "description" in schema else note
    return schema


def example_records(manifest: Manifest) -> list[dict[str, Any]]:
    """Two records for the docs: every feature at its training median, then at its 99th percentile."""
    records = []
    for quantile in ("p50", "p99"):
        record: dict[str, Any] = {}
        for spec in manifest.features:
            summary = manifest.reference.features[spec.name]
            value = summary.quantiles[quantile]
            if spec.dtype == "category":
                assert spec.categories is not None  # the most common value, then the rarest
                shares = summary.bin_fractions
                pick = max if quantile == "p50" else min
                record[spec.name] = spec.categories[shares.index(pick(shares))]
            elif spec.dtype == "boolean":
                record[spec.name] = value >= 0.5
            else:
                record[spec.name] = round(value) if spec.dtype == "integer" else round(value, 4)
        records.append(record)
    return records
