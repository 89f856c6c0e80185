"""The row rules: which values a feature accepts, and the code and message that say why a value is refused.

``/predict`` (lambda_app/validation.py), the Open Inference Protocol's tensors (lambda_app/open_inference/)
and batch scoring (lambda_app/batch/columns.py) judge values by these rules and explain a refusal with
these codes and messages, so one row is refused by all of them for the same reason in the same words.
Each surface says in its own terms what it got (JSON: ``got string``; a CSV cell: ``got 'NA'``).

The codes are part of the API: ``errors[].code`` in ``/predict``'s answers and the ``code`` column of a
batch run's rejects file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lambda_app.registry import FeatureSpec

MAX_ABS_VALUE = 1e12
"""Sanity bound on any feature: keeps the arithmetic finite. Not the training range:
out-of-range values are exactly what the service exists to flag."""

NOT_A_RECORD = "not_a_record"
UNKNOWN_FIELD = "unknown_field"
MISSING_FIELD = "missing_field"
MISSING_VALUE = "missing_value"
WRONG_TYPE = "wrong_type"
NOT_FINITE = "not_finite"
OUT_OF_RANGE = "out_of_range"
NOT_INTEGER = "not_integer"
UNSEEN_CATEGORY = "unseen_category"
UNREADABLE = "unreadable"

CODES = (
    NOT_A_RECORD,
    UNKNOWN_FIELD,
    MISSING_FIELD,
    MISSING_VALUE,
    WRONG_TYPE,
    NOT_FINITE,
    OUT_OF_RANGE,
    NOT_INTEGER,
    UNSEEN_CATEGORY,
    UNREADABLE,
)
"""Every code a refused row can carry (documented in the OpenAPI schema)."""


@dataclass(frozen=True)
class Problem:
    """Why one value (or row) cannot be scored: a stable code and a message for people."""

    code: str
    message: str


def wanted(spec: FeatureSpec) -> str:
    """What a feature takes, in words."""
    return {"boolean": "true or false", "category": "a string"}.get(spec.dtype, "a number")


def wrong_type(spec: FeatureSpec, got: str) -> Problem:
    """A value of the wrong kind: ``got`` says what arrived (``string``, ``'NA'``, ``a BOOL tensor``)."""
    return Problem(WRONG_TYPE, f"must be {wanted(spec)}, got {got}")


def null_refused(spec: FeatureSpec) -> Problem:
    """A null (JSON null, a tensor's null) for a feature the model does not fill."""
    return Problem(
        MISSING_VALUE,
        f"must be {wanted(spec)}, got null (this model takes null only for features it fills)",
    )


MISSING_CELL = Problem(MISSING_VALUE, "missing value")
"""An empty cell (batch) for a feature the model does not fill."""
MISSING_FIELD_PROBLEM = Problem(MISSING_FIELD, "field required")
NOT_FINITE_PROBLEM = Problem(NOT_FINITE, "must be a finite number")
OUT_OF_RANGE_PROBLEM = Problem(OUT_OF_RANGE, f"must be between -{MAX_ABS_VALUE:g} and {MAX_ABS_VALUE:g}")
NOT_INTEGER_PROBLEM = Problem(NOT_INTEGER, "must be an integer")


def more_problems(count: int) -> str:
    """The tail of a message that names only the first problem: how many others the request has."""
    return f" (and {count} more problem{'s' if count > 1 else ''})" if count > 0 else ""


def unknown_field(names: list[str], guess: str | None) -> Problem:
    hint = f" (did you mean '{guess}'?)" if guess else ""
    return Problem(UNKNOWN_FIELD, f"unknown field{hint}; expected only {', '.join(names)}")


def not_a_record(got: str) -> Problem:
    return Problem(NOT_A_RECORD, f"must be an object, got {got}")


def unseen_category(spec: FeatureSpec, shown: str | None = None) -> Problem:
    """UNSEEN_CATEGORIES=refuse: a category value the model never saw (``shown``: the value, quoted)."""
    known = spec.categories or []
    listed = f"{', '.join(known[:5])}{', ...' if len(known) > 5 else ''}"
    if shown is None:
        message = f"a category value the model never saw (it knows {len(known)}: {listed})"
    else:
        message = f"{shown} is a category value the model never saw (UNSEEN_CATEGORIES=refuse)"
    return Problem(UNSEEN_CATEGORY, message)


def check_number(value: int | float, spec: FeatureSpec) -> Problem | None:
    """A number's problem for a number or integer feature: non-finite, out of bounds, or fractional."""
    if isinstance(value, float) and not math.isfinite(value):
        return NOT_FINITE_PROBLEM
    if abs(value) > MAX_ABS_VALUE:  # exact for any int, however large
        return OUT_OF_RANGE_PROBLEM
    if spec.dtype == "integer" and isinstance(value, float) and not value.is_integer():
        return NOT_INTEGER_PROBLEM
    return None


def check_json_value(value: Any, spec: FeatureSpec) -> Problem | None:
    """The problem with one JSON value for ``spec``, or None when it is acceptable.

    An unseen category value is acceptable here (it is scored as unseen); UNSEEN_CATEGORIES=refuse
    is judged on the served table, after this check.
    """
    if value is None:
        return None if spec.takes_missing else null_refused(spec)
    if spec.dtype == "boolean":
        return None if isinstance(value, bool) else wrong_type(spec, json_kind(value))
    if spec.dtype == "category":
        return None if isinstance(value, str) else wrong_type(spec, json_kind(value))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return wrong_type(spec, json_kind(value))
    return check_number(value, spec)


def json_kind(value: Any) -> str:
    """A JSON value's kind, named without echoing the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
