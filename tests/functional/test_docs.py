"""/docs and /redoc load with no internet: every asset they reference is served by the app itself."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lambda_app.config import Settings
from lambda_app.main import create_app
from tests.conftest import load_event, response_json

REFERENCE = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: ?'([^']+)'""")


def references(page: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(page)]


@pytest.fixture
def client(registry: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_uri=str(registry)))) as test_client:
        yield test_client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_reference_only_the_apps_own_assets_and_each_loads(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200
    assert not re.search(r"https?://", html.text), "no CDN, no Google Fonts: the page must load offline"
    found = references(html.text)
    assert "/openapi.json" in found
    assets = [url for url in found if url.startswith("/docs/assets/")]
    assert len(assets) >= 2  # the bundle (and its stylesheet) and the favicon
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 1000, url
        expected = {"js": "text/javascript", "css": "text/css", "png": "image/png"}[url.rsplit(".", 1)[1]]
        assert response.headers["content-type"].startswith(expected)
    assert client.get("/openapi.json").json()["paths"]["/predict"]


def test_an_unknown_asset_is_a_404(client: TestClient) -> None:
    response = client.get("/docs/assets/../../etc/passwd")
    assert response.status_code == 404
    assert client.get("/docs/assets/evil.js").status_code == 404


def test_the_docs_and_their_assets_through_the_lambda_handler(
    handler_module: Callable[..., ModuleType], registry: Path, lambda_context: Any
) -> None:
    handler = handler_module(MODEL_URI=str(registry)).handler

    def get(path: str) -> dict[str, Any]:
        event = load_event("apigw_v2_root.json")
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        return dict(handler(event, lambda_context))

    page = get("/docs")
    assert page["statusCode"] == 200
    for url in (u for u in references(page["body"]) if u.startswith("/docs/assets/")):
        response = get(url)
        assert response["statusCode"] == 200, url
    assert response_json(get("/openapi.json"))["info"]["x-model-task"] == "anomaly"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def served_app(registry: Path) -> Iterator[str]:
    """The app on 127.0.0.1 and a free port, bounded in time, stopped afterwards."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Settings(model_uri=str(registry))), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start in 20 s"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_swagger_ui_renders_the_predict_operation_in_a_headless_browser(
    served_app: str, tmp_path: Path
) -> None:
    """Chromium (Debian's package) renders /docs with the network closed to everything but loopback."""
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_CHROMIUM"):
            pytest.fail("REQUIRE_CHROMIUM is set but chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed: apt-get install -y chromium")
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            # Everything but the app's own host is unreachable: a CDN reference would leave the page blank.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{served_app}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    dom = result.stdout
    assert "opblock-summary-path" in dom, result.stderr[-2000:]  # Swagger UI drew the operations
    assert "/predict" in dom
