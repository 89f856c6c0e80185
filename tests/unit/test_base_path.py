"""Which prefix a request arrived under: a named stage, a custom domain's base path, or none."""

from __future__ import annotations

from typing import Any

import pytest

from lambda_app.api.base_path import external_prefix

EXECUTE_API = "r4nd0m1d2.execute-api.us-east-1.amazonaws.com"


def event(stage: str, domain: str = EXECUTE_API, version: str = "2.0") -> dict[str, Any]:
    return {"version": version, "requestContext": {"stage": stage, "domainName": domain}}


@pytest.mark.parametrize(
    ("request_event", "path", "base_path", "expected"),
    [
        (event("$default"), "/predict", "", ("", False)),  # an HTTP API's default stage: no prefix
        (event("prod"), "/prod/predict", "", ("/prod", True)),  # HTTP API, named stage: in the path
        (event("prod", version="1.0"), "/predict", "", ("/prod", False)),  # REST API: stage in the URL only
        (event("prod", domain="api.example.com"), "/predict", "", ("", False)),  # custom domain, no mapping
        (event("$default", domain="api.example.com"), "/models/predict", "/models", ("/models", True)),
        (event("prod", domain="api.example.com", version="1.0"), "/predict", "/models", ("/models", False)),
        ({}, "/models/predict", "/models", ("/models", True)),  # a local server behind a proxy keeping it
        ({}, "/predict", "/models", ("", False)),
        (event("prod"), "/prod", "", ("/prod", True)),
        (event("prod"), "/production/predict", "", ("/prod", False)),  # a prefix of a word is not a prefix
    ],
)
def test_external_prefix(
    request_event: dict[str, Any], path: str, base_path: str, expected: tuple[str, bool]
) -> None:
    assert external_prefix(request_event, path, base_path) == expected
