"""Smoke-test a deployed API with the sample events: ``python scripts/smoke_test.py --url URL EVENT...``.

Each API Gateway event file is replayed as a real HTTPS request (method, path with its query string,
body). Events named after a bad input (malformed, wrong type, NaN, ...) must get a 4xx, the others a
200; every /predict success must carry predictions, scores and a version, every Open Inference
Protocol infer its outputs and the model's version, every protocol metadata answer a name.
``--sigv4`` signs the requests for an API whose routes use IAM authorization (the credentials come
from the usual AWS chain, e.g. the deploy workflow's OIDC role). Exit 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

BAD_INPUT_MARKERS = (
    "malformed",
    "wrong_type",
    "missing",
    "unknown",
    "nan",
    "infinity",
    "empty",
    "not_a_record",
    "not_found",
)


def request_from_event(event: dict[str, Any]) -> tuple[str, str, bytes]:
    """(method, path and query string, body) of an API Gateway v2 or v1 event."""
    context = event.get("requestContext", {})
    method = context.get("http", {}).get("method") or event.get("httpMethod") or "GET"
    path = event.get("rawPath") or event.get("path") or "/"
    query = event.get("rawQueryString") or urllib.parse.urlencode(event.get("queryStringParameters") or {})
    if query:
        path = f"{path}?{query}"
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    return method, path, raw


def other_deployment(event: dict[str, Any]) -> str | None:
    """Why an HTTP API event describes another deployment shape (a named stage, a custom domain), if it does.

    The deployed API serves its $default stage on its execute-api domain; those events are for the
    handler tests (tests/functional/test_events.py), not for replaying against this URL.
    """
    if event.get("version") != "2.0":
        return None
    context = event.get("requestContext", {})
    if context.get("stage", "$default") != "$default":
        return f"stage {context['stage']}"
    domain = str(context.get("domainName", ""))
    if domain and not domain.endswith(".amazonaws.com"):
        return f"custom domain {domain}"
    return None


def send(url: str, method: str, body: bytes, sigv4: bool, region: str | None) -> tuple[int, bytes]:
    headers = {"content-type": "application/json"} if body else {}
    if sigv4:
        import botocore.session
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = botocore.session.get_session()
        signed = AWSRequest(method=method, url=url, data=body or None, headers=headers)
        SigV4Auth(
            session.get_credentials(), "execute-api", region or session.get_config_variable("region")
        ).add_auth(signed)
        headers = dict(signed.headers.items())
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except urllib.error.URLError as error:  # unreachable: report it as a failed check, not a crash
        return 0, f"unreachable: {error.reason}".encode()


def check(name: str, status: int, payload: bytes) -> str | None:
    """The problem with one response, or None."""
    bad_input = any(marker in name for marker in BAD_INPUT_MARKERS)
    if bad_input:
        return None if 400 <= status < 500 else f"expected a 4xx, got {status}"
    if status != 200:
        return f"expected 200, got {status}: {payload[:200]!r}"
    if "predict" in name:
        body = json.loads(payload)
        if not body.get("predictions") or len(body["predictions"]) != len(body.get("scores") or []):
            return f"malformed prediction response: {payload[:200]!r}"
        if not body.get("version"):
            return "no model version in the response"
    if "_oip_infer" in name:
        body = json.loads(payload)
        if not body.get("outputs") or not all(output.get("data") for output in body["outputs"]):
            return f"malformed inference response: {payload[:200]!r}"
        if not body.get("model_version"):
            return "no model version in the inference response"
    if "_oip_" in name and "metadata" in name and not json.loads(payload).get("name"):
        return f"malformed metadata response: {payload[:200]!r}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the API's base URL (terraform output api_url)")
    parser.add_argument("--sigv4", action="store_true", help="sign requests (IAM-authorized routes)")
    parser.add_argument("--region", help="region for signing (default: the AWS configuration's)")
    parser.add_argument("events", nargs="+", help="API Gateway event files")
    args = parser.parse_args(argv)
    failures = skipped = 0
    for path in args.events:
        name = Path(path).name
        event = json.loads(Path(path).read_text())
        reason = other_deployment(event)
        if reason:
            print(f"skip {name}: made for another deployment ({reason})")
            skipped += 1
            continue
        method, route, body = request_from_event(event)
        status, payload = send(args.url.rstrip("/") + route, method, body, args.sigv4, args.region)
        problem = check(name, status, payload)
        print(f"{'FAIL' if problem else 'ok  '} {method} {route} ({name}): {problem or status}")
        failures += problem is not None
    print(f"{len(args.events) - skipped - failures} passed, {failures} failed, {skipped} skipped")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
