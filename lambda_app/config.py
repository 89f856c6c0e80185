"""Settings: every environment variable the service reads, parsed once.

Environment variables (all optional):
    MODEL_URI              registry root: ``s3://bucket/prefix`` or a local directory
                           (default ``model-registry``)
    MODEL_ALIAS            alias to serve when MODEL_VERSION is unset (default ``production``)
    MODEL_VERSION          pin one version; overrides MODEL_ALIAS
    MAX_BODY_BYTES         largest accepted request body (default 5,000,000: under Lambda's 6 MB payload)
    MAX_ROWS               most records in one request (default 100,000)
    MODEL_RETRY_SECONDS    after a failed model load, wait this long before trying again (default 2)
    PRELOAD_MODEL          load the model during the Lambda init phase (default true)
    AWS_ENDPOINT_URL       a local AWS (moto) instead of the real one
Powertools reads its own: POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL,
POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_TRACE_DISABLED.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The service's configuration, from the environment; explicit arguments win."""

    model_config = SettingsConfigDict(extra="ignore", protected_namespaces=())

    model_uri: str = Field(default="model-registry", min_length=1)
    model_alias: str = Field(default="production", pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    model_version: str | None = None
    max_body_bytes: int = Field(default=5_000_000, gt=0)
    max_rows: int = Field(default=100_000, gt=0)
    model_retry_seconds: float = Field(default=2.0, ge=0)
    preload_model: bool = True
    aws_endpoint_url: str | None = None
