"""Swagger UI and ReDoc, served by the app itself: no CDN, so the docs load offline, in a VPC,
behind a strict proxy and inside a private API.

The assets come from a pinned package that ships them (fastapi-offline: Swagger UI and ReDoc's
distribution files), read from its install directory; nothing is copied into this repository.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

ASSETS_PATH = "/docs/assets"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
_cache: dict[str, bytes] = {}


def _root(request: Request) -> str:
    """The path prefix the app is served under (an API Gateway stage or base path), if any."""
    return str(request.scope.get("root_path") or "").rstrip("/")


def _openapi_url(request: Request) -> str:
    return _root(request) + str(request.app.openapi_url)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,  # fonts from Google are a CDN too
    )


@router.get(ASSETS_PATH + "/{name}")
def asset(name: str) -> Response:
    """One of the docs' static files, read once per container."""
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail=f"no docs asset {name!r}")
    if name not in _cache:
        _cache[name] = resources.files("fastapi_offline").joinpath("static", name).read_bytes()
    headers: dict[str, Any] = {"cache-control": "public, max-age=86400"}
    return Response(content=_cache[name], media_type=ASSETS[name], headers=headers)
