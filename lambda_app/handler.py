"""The Lambda entry point (the image's CMD): ``lambda_app.handler.handler``.

Built once per container: settings, the model store (loaded during the init phase), the app
and the Mangum adapter with lifespan off. Serves API Gateway HTTP API (v2) and REST (v1) events.
"""

from __future__ import annotations

import binascii
import gc
import json
import warnings
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from lambda_app.config import Settings
from lambda_app.main import create_app
from lambda_app.model_store import ModelStore
from lambda_app.observability import logger, metrics, traced_handler

# Health checks publish no application metrics; that is expected, not worth a warning each.
warnings.filterwarnings("ignore", message="No application metrics to publish")

settings = Settings()
model_store = ModelStore(settings)
app = create_app(settings, model_store)
if settings.preload_model:
    model_store.try_load()  # in the init phase; failures are retried on the next request
adapter = Mangum(app, lifespan="off")
# Everything built so far lives as long as the container: move it out of the garbage collector's
# sight, so large batches do not pay for full collections that rescan it (p99 spikes otherwise).
gc.collect()
gc.freeze()


MALFORMED_EVENT_ERRORS = (
    binascii.Error,
    KeyError,
    TypeError,
    AttributeError,
    RuntimeError,
    UnicodeError,
    ValueError,
)


def _bad_event(message: str, event: Any, context: LambdaContext) -> dict[str, Any]:
    """A structured 400 for an event the adapter cannot read, with the best request id there is."""
    request_id = getattr(context, "aws_request_id", None)
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    if isinstance(request_context, dict) and isinstance(request_context.get("requestId"), str):
        request_id = request_context["requestId"][:200]
    body: dict[str, Any] = {"error": "bad_event", "message": message, "errors": [], "request_id": request_id}
    return {
        "statusCode": 400,
        "headers": {"content-type": "application/json"},
        "isBase64Encoded": False,
        "body": json.dumps(body, ensure_ascii=True),
    }


@logger.inject_lambda_context
@traced_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run one API Gateway event through the app; a malformed event is a 400, never an exception."""
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    # The API Gateway request id (v1 and v2 alike) correlates every log line of this request;
    # read directly rather than through a JMESPath expression on each invocation.
    request_id = request_context.get("requestId") if isinstance(request_context, dict) else None
    logger.set_correlation_id(request_id if isinstance(request_id, str) else None)
    if not isinstance(request_context, dict):
        return _bad_event("not an API Gateway proxy event: requestContext is missing", event, context)
    try:
        response: dict[str, Any] = adapter(event, context)  # type: ignore[arg-type]
    except MALFORMED_EVENT_ERRORS as exc:
        # Raised while Mangum reads the event (missing keys, wrong types, invalid base64):
        # the app itself turns its own errors into responses and never raises here.
        logger.warning("malformed event", extra={"error": type(exc).__name__})
        return _bad_event(f"malformed API Gateway event ({type(exc).__name__})", event, context)
    return response
