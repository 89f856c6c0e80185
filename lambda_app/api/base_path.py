"""The path prefix a request arrived under: an API Gateway named stage, or a custom domain's base path.

API Gateway puts a named stage in the URL (``https://<id>.execute-api.<region>.amazonaws.com/prod/predict``)
and an HTTP API passes it on in the path; a custom domain's base path mapping (``https://api.example.com/models/predict``)
may be passed on too. Routes are matched without the prefix, and it becomes the ASGI ``root_path``, so
pages that link back to the app (``/docs`` -> ``/openapi.json`` and its assets) use the URL the client used.

Environment: API_BASE_PATH (Settings.api_base_path), the custom domain's base path, e.g. ``/models``.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_STAGE = "$default"


def _under(path: str, prefix: str) -> bool:
    return bool(prefix) and (path == prefix or path.startswith(prefix + "/"))


def external_prefix(event: Any, path: str, base_path: str) -> tuple[str, bool]:
    """(the prefix the client's URL carries, whether ``path`` carries it too and must lose it)."""
    if _under(path, base_path):
        return base_path, True
    context = event.get("requestContext") if isinstance(event, dict) else None
    if not isinstance(context, dict):
        return "", False
    domain = str(context.get("domainName") or "")
    if domain and not domain.endswith(".amazonaws.com"):
        # A custom domain: its base path is in the client's URL (even when the event's path leaves it
        # out), the stage is not.
        return base_path, False
    stage = context.get("stage")
    if not isinstance(stage, str) or not stage or stage == DEFAULT_STAGE:
        return "", False
    # An HTTP API (v2) passes the stage on in the path; a REST API (v1) passes the resource path only.
    return f"/{stage}", _under(path, f"/{stage}")


class BasePathMiddleware:
    """Strips the stage or base path from the route path and sets it as ``root_path``."""

    def __init__(self, app: ASGIApp, base_path: str = "") -> None:
        self.app = app
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = scope.get("aws.event")
        if scope["type"] == "http" and (event is not None or self.base_path):
            path = scope["path"]
            prefix, strip = external_prefix(event or {}, path, self.base_path)
            if prefix:
                scope = {**scope, "path": path[len(prefix) :] or "/" if strip else path, "root_path": prefix}
        await self.app(scope, receive, send)
