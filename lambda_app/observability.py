"""The one Logger and Metrics of the service, and the Tracer when tracing is on (Powertools).

Environment variables (Powertools' own; the defaults below apply when unset):
    POWERTOOLS_SERVICE_NAME        default ``anomaly-detector``
    POWERTOOLS_METRICS_NAMESPACE   default ``AnomalyDetector``
    POWERTOOLS_LOG_LEVEL           default ``INFO``
    POWERTOOLS_TRACE_DISABLED      ``true`` turns tracing off
    LAMBDA_TASK_ROOT               set by Lambda; outside Lambda there is no X-Ray daemon, so no tracing

The Tracer is created only when tracing is on: instantiating it imports and patches the
X-Ray SDK, about a quarter of a second of cold start that buys nothing when traces go nowhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or "anomaly-detector"
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "AnomalyDetector"
TRACING = bool(os.environ.get("LAMBDA_TASK_ROOT")) and os.environ.get(
    "POWERTOOLS_TRACE_DISABLED", "false"
).lower() not in {"1", "true", "yes", "on"}

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)
tracer: Any = None
if TRACING:  # pragma: no cover - needs Lambda's X-Ray daemon
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=SERVICE_NAME)

F = TypeVar("F", bound=Callable[..., Any])


def record_server_error() -> None:
    """Count a 500 answer, for the alarm ({service}) and per function version ({service, function_version}).

    Handled errors are not Lambda ``Errors``, and API Gateway's 5xx count has no version: this is how
    a canary's own failures are seen (scripts/rollout.py). Lambda sets AWS_LAMBDA_FUNCTION_VERSION.
    A 503 for a model still loading is not counted here (it is ``ModelUnavailable``): every canary
    container starts cold, and one slow first load must not roll a healthy release back.
    """
    version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION") or "$LATEST"
    metrics.add_dimensions(service=SERVICE_NAME, function_version=version)
    metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)


def traced(function: F) -> F:
    """An X-Ray subsegment around ``function`` when tracing is on; the function itself otherwise."""
    if tracer is None:
        return function
    wrapped: F = tracer.capture_method(capture_response=False)(function)  # pragma: no cover
    return wrapped  # pragma: no cover


def traced_handler(function: F) -> F:
    """The Lambda handler's root subsegment (cold start annotated) when tracing is on."""
    if tracer is None:
        return function
    wrapped: F = tracer.capture_lambda_handler(capture_response=False)(function)  # pragma: no cover
    return wrapped  # pragma: no cover
