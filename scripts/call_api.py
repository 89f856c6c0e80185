"""Call the deployed API with a SigV4-signed request: ``python scripts/call_api.py URL [BODY]``.

The API's routes use IAM authorization (AWS_IAM): each request carries a Signature Version 4
signature made with the caller's AWS credentials (the usual chain: environment variables, a profile,
SSO, an instance or task role) for the service ``execute-api`` in the API's region. The caller needs
``execute-api:Invoke`` on the API (docs/deploy.md shows the policy).

    python scripts/call_api.py "$(terraform -chdir=terraform output -raw api_url)/predict" \\
        '{"one": 20, "two": 12.7, "three": 15.9}'
    python scripts/call_api.py "$API_URL/model"              # no body: a GET
    python scripts/call_api.py "$API_URL/predict" @records.json

From Python: ``from scripts.call_api import call; status, body = call(url, {"one": 20, ...})``.
Prints the answer's body; exits 0 on a 2xx, 1 otherwise (the status on stderr). Uses only botocore
(its signer) and the standard library.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

SERVICE = "execute-api"
EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


def region_of(url: str) -> str | None:
    """The region an execute-api URL names (``https://<id>.execute-api.<region>.amazonaws.com/...``)."""
    match = EXECUTE_API_HOST.search(urllib.parse.urlsplit(url).hostname or "")
    return match.group(1) if match else None


def signed_headers(
    method: str, url: str, body: bytes, region: str, credentials: Any, headers: dict[str, str] | None = None
) -> dict[str, str]:
    """``headers`` plus the SigV4 ones (Authorization, X-Amz-Date, and the session token if any)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url, data=body or None, headers=dict(headers or {}))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def call(
    url: str,
    body: Any = None,
    *,
    method: str | None = None,
    region: str | None = None,
    credentials: Any = None,
    timeout: float = 30,
) -> tuple[int, bytes]:
    """Send a signed request; (status, body). ``body``: bytes, text, or anything JSON encodes.

    ``region`` defaults to the URL's (an execute-api URL), else the AWS configuration's;
    ``credentials`` to the usual chain.
    """
    import botocore.session

    session = botocore.session.get_session()
    region = region or region_of(url) or session.get_config_variable("region")
    if not region:
        raise ValueError(f"no region to sign for: {url} is not an execute-api URL; pass --region")
    credentials = credentials or session.get_credentials()
    if credentials is None:
        raise ValueError("no AWS credentials found (environment, profile, SSO or role) to sign with")
    data = _encoded(body)
    method = method or ("POST" if data else "GET")
    headers = signed_headers(
        method, url, data, region, credentials, {"content-type": "application/json"} if data else None
    )
    request = urllib.request.Request(url, data=data or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _encoded(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/call_api.py",
        description="Call the API with a SigV4-signed request (IAM authorization).",
    )
    parser.add_argument("url", help="the route's full URL, e.g. <api_url>/predict")
    parser.add_argument("body", nargs="?", help="a JSON body, or @FILE to read it from a file (none: a GET)")
    parser.add_argument("--method", help="the HTTP method (default: POST with a body, else GET)")
    parser.add_argument("--region", help="the region to sign for (default: the URL's, else the AWS config's)")
    args = parser.parse_args(argv)
    body = args.body
    if body is not None and body.startswith("@"):
        body = Path(body[1:]).read_bytes()
    try:
        status, payload = call(args.url, body, method=args.method, region=args.region)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(payload.decode("utf-8", "replace") + "\n")
    if not 200 <= status < 300:
        print(f"error: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
