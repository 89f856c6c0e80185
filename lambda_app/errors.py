"""Typed service errors, each carrying its HTTP status; turned into responses in main.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorDetail:
    """One problem in a request: which row and field, what is wrong, and its code (row_rules.py)."""

    message: str
    row: int | None = None
    field: str | None = None
    code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "code": self.code, "message": self.message}


class ServiceError(Exception):
    """Base class: an error the client should see with ``status`` and ``code``."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: list[ErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class MalformedBodyError(ServiceError):
    """The body is not JSON at all."""

    status = 400
    code = "malformed_json"


class InvalidInputError(ServiceError):
    """The body is JSON but not a valid record or array of records."""

    status = 422
    code = "invalid_input"


class PayloadTooLargeError(ServiceError):
    """The body is over the configured size limit."""

    status = 413
    code = "payload_too_large"


class TooManyRecordsError(InvalidInputError):
    """More records than the configured limit: a schema violation (maxItems), hence 422."""

    code = "too_many_records"


class ResponseTooLargeError(InvalidInputError):
    """The answer to this many records could exceed the response limit (Lambda's 6 MB)."""

    code = "response_too_large"


class ExplanationUnavailableError(InvalidInputError):
    """An explanation was asked of a model version that has none (or whose explanations are refused)."""

    code = "explanation_unavailable"


class ModelOutputError(ServiceError):
    """The model produced something that cannot be a prediction (a non-finite value)."""

    status = 500
    code = "model_error"


class ModelUnavailableError(ServiceError):
    """No model is loaded (none published, unreachable registry, or refused artifact)."""

    status = 503
    code = "model_unavailable"

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after
