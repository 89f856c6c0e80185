"""Settings: every environment variable the service reads, parsed once.

Environment variables (all optional):
    MODEL_URI              registry root: ``s3://bucket/prefix`` or a local directory
                           (default ``model-registry``)
    MODEL_ALIAS            alias to serve when MODEL_VERSION is unset (default ``production``)
    MODEL_VERSION          pin one version; overrides MODEL_ALIAS
    MAX_BODY_BYTES         largest accepted request body (default 4,500,000: with API Gateway's event
                           envelope, even base64-encoded, it stays under Lambda's 6 MB payload)
    MAX_ROWS               most records in one request (default 100,000)
    MAX_RESPONSE_BYTES     largest answer (default 6,000,000, under Lambda's 6 MB response limit): a request
                           whose answer could be larger (many rows x many classes) is refused up front (422)
    MODEL_RETRY_SECONDS    after a failed model load, wait this long before trying again (default 2)
    MODEL_REFRESH_SECONDS  how often a running container checks whether its alias moved, reloading in the
                           background without a redeploy (default 60; 0 turns it off)
    MODEL_LOAD_TIMEOUT_SECONDS  the longest a request waits for a model load before a 503 (default 5;
                           keep it well under the function timeout); the load itself goes on
    MODEL_LOAD_ABANDON_SECONDS  a model load (first load or background refresh) still running after this
                           long is given up, e.g. a read hung on a stalled network mount, and the next
                           request starts a new one (default 30, or MODEL_LOAD_TIMEOUT_SECONDS when that
                           is longer; it may not be shorter). Set it above the longest a healthy load takes
    PRELOAD_MODEL          load the model during the Lambda init phase (default true)
    INFERENCE_THREADS      ONNX Runtime intra-op threads (default: the vCPUs Lambda gives the
                           function's memory, 1 per 1,769 MB; locally the machine's cores)
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE   set by Lambda; sizes the default INFERENCE_THREADS
    API_BASE_PATH          a custom domain's base path mapping (e.g. ``/models``): stripped from request
                           paths, the docs' root; a named API Gateway stage is recognised without it
    AWS_ENDPOINT_URL       a local AWS (moto) instead of the real one
    UNSEEN_CATEGORIES      a category value the model never saw: ``score`` (default) scores it as the
                           model's learned "other" and names the row and field in the answer (``unseen``;
                           batch: the ``unseen`` column); ``refuse`` makes it a 422 / a rejected row
    BATCH_CHUNK_ROWS       batch scoring: rows scored per chunk, which bounds memory (default 100,000)
    BATCH_MAX_OBJECT_BYTES batch scoring in Lambda: the largest S3 object one invocation takes (default
                           150,000,000: the input and its output must fit Lambda's default 512 MB /tmp)
    BATCH_SEPARATOR        batch scoring: a CSV's field separator, ``,`` ``;`` ``tab`` or ``|`` (default:
                           a comma, or semicolons or tabs when the header has no comma but those); the
                           output is written with the same separator
    BATCH_DECIMAL          batch scoring: the decimal separator of a CSV's numbers, ``.`` (default) or
                           ``,`` (then ``12,5`` is 12.5 and a dot in a number is refused)
Powertools reads its own: POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL,
POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_TRACE_DISABLED.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LAMBDA_MB_PER_VCPU = 1769
"""Lambda allocates CPU in proportion to memory: one full vCPU at 1,769 MB."""


class Settings(BaseSettings):
    """The service's configuration, from the environment; explicit arguments win."""

    model_config = SettingsConfigDict(extra="ignore", protected_namespaces=())

    model_uri: str = Field(default="model-registry", min_length=1)
    model_alias: str = Field(default="production", pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    model_version: str | None = None
    max_body_bytes: int = Field(default=4_500_000, gt=0)
    max_rows: int = Field(default=100_000, gt=0)
    max_response_bytes: int = Field(default=6_000_000, gt=1024)
    model_retry_seconds: float = Field(default=2.0, ge=0)
    model_load_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    model_load_abandon_seconds: float = Field(default=30.0, gt=0)
    model_refresh_seconds: float = Field(default=60.0, ge=0)
    preload_model: bool = True
    api_base_path: str = Field(default="", pattern=r"^(/?[A-Za-z0-9._~-]+)*/?$")
    aws_endpoint_url: str | None = None
    inference_threads: int | None = Field(default=None, ge=1, le=64)
    aws_lambda_function_memory_size: int | None = None
    unseen_categories: Literal["score", "refuse"] = "score"
    batch_chunk_rows: int = Field(default=100_000, gt=0, le=10_000_000)
    batch_max_object_bytes: int = Field(default=150_000_000, gt=0)
    # Explanations cost more than predictions (milliseconds per row for a large forest): their own limit.
    explain_max_rows: int = Field(default=100, gt=0)
    # Batch scoring: the K largest contributions of each row's explanation as columns (0: none).
    batch_explain: int = Field(default=0, ge=0, le=100)
    # Batch scoring of CSVs: the field separator (unset: a comma, or what the header shows) and the
    # decimal separator of numbers.
    batch_separator: Literal[",", ";", "\t", "|"] | None = None
    batch_decimal: Literal[".", ","] = "."

    @field_validator("batch_separator", mode="before")
    @classmethod
    def _tab_by_name(cls, value: Any) -> Any:
        """A tab is hard to write in an environment variable: ``tab`` (or ``\\t``) says it."""
        if isinstance(value, str) and value.strip().lower() in ("tab", "\\t"):
            return "\t"
        return value or None

    @model_validator(mode="after")
    def _abandon_loads_only_after_requests_stop_waiting(self) -> Self:
        """A load is given up only once no request can still be waiting for it."""
        wait = self.model_load_timeout_seconds
        if "model_load_abandon_seconds" not in self.model_fields_set:
            self.model_load_abandon_seconds = max(self.model_load_abandon_seconds, wait)
        elif self.model_load_abandon_seconds < wait:
            raise ValueError(
                f"MODEL_LOAD_ABANDON_SECONDS ({self.model_load_abandon_seconds:g}) must be at least"
                f" MODEL_LOAD_TIMEOUT_SECONDS ({wait:g})"
            )
        return self

    @property
    def threads(self) -> int:
        """ONNX Runtime threads: explicit, else Lambda's vCPUs for the memory size, else the cores."""
        if self.inference_threads:
            return self.inference_threads
        if self.aws_lambda_function_memory_size:
            return max(1, min(6, self.aws_lambda_function_memory_size // LAMBDA_MB_PER_VCPU))
        return max(1, os.cpu_count() or 1)
