"""Run the real Lambda handler on a sample event: ``python -m lambda_app.invoke EVENT.json``.

Prints the handler's response with the body decoded, as Lambda would return it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

RESPONSE_MARKER = "--- response ---"


@dataclass
class LocalLambdaContext:
    """The attributes of a Lambda context object that Powertools and Mangum read."""

    function_name: str = "anomaly-detector-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:anomaly-detector-local"
    log_group_name: str = "/aws/lambda/anomaly-detector-local"
    log_stream_name: str = "local"
    timeout_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    from lambda_app.handler import handler

    response: dict[str, Any] = handler(event, LocalLambdaContext())
    return response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambda_app.invoke", description=__doc__)
    parser.add_argument("event", help="path to an API Gateway event JSON file")
    args = parser.parse_args(argv)
    try:
        with open(args.event, encoding="utf-8") as handle:
            event = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: cannot read event {args.event}: {exc}", file=sys.stderr)
        return 2
    response = invoke(event)
    shown = dict(response)
    with contextlib.suppress(json.JSONDecodeError):
        shown["body"] = json.loads(response.get("body") or "null")
    # Logs and EMF metrics went to stdout above, as in Lambda; the response follows the marker.
    print(RESPONSE_MARKER)
    print(json.dumps(shown, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
