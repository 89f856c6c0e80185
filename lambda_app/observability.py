"""The one Logger, Metrics and Tracer of the service (Powertools).

Environment variables (Powertools' own; the defaults below apply when unset):
    POWERTOOLS_SERVICE_NAME        default ``anomaly-detector``
    POWERTOOLS_METRICS_NAMESPACE   default ``AnomalyDetector``
    POWERTOOLS_LOG_LEVEL           default ``INFO``
    POWERTOOLS_TRACE_DISABLED      the tracer also disables itself outside Lambda
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or "anomaly-detector"
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "AnomalyDetector"

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)
tracer = Tracer(service=SERVICE_NAME)
