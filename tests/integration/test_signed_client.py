"""scripts/call_api.py signs as API Gateway's IAM authorization checks: a server on loopback recomputes
each request's Signature Version 4 from the secret it knows (as API Gateway does) and passes only a
matching request on to the real app."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.testclient import TestClient

from lambda_app.config import Settings
from lambda_app.main import create_app
from scripts.call_api import call, main, region_of

KEY, SECRET, REGION = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1"
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def expected_signature(
    method: str, url: str, headers: Any, body: bytes, signed: list[str], region: str
) -> str:
    """What the signature must be, recomputed from the signed headers and the secret."""
    request = AWSRequest(method=method, url=url, data=body or None, headers={h: headers[h] for h in signed})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(KEY, SECRET), "execute-api", region)
    return str(signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request))


@pytest.fixture
def api(trained_registry: Path) -> Iterator[str]:
    """An IAM-checking front on 127.0.0.1 for the app serving the example model; stopped after."""
    client = TestClient(create_app(Settings(model_uri=str(trained_registry))))

    class Gateway(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            url = f"http://{self.headers['host']}{self.path}"
            found = AUTHORIZATION.match(self.headers.get("authorization") or "")
            if found is None or found["key"] != KEY or found["service"] != "execute-api":
                return self._answer(403, b'{"message":"Missing Authentication Token"}')
            signed = found["signed"].split(";")
            wanted = expected_signature(self.command, url, self.headers, body, signed, found["region"])
            if found["region"] != REGION or found["signature"] != wanted:
                return self._answer(403, b'{"message":"The request signature we calculated does not match"}')
            answer = client.request(
                self.command, self.path, content=body, headers={"content-type": "application/json"}
            )
            return self._answer(answer.status_code, answer.content)

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _answer(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    server.timeout = 10
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_signed_prediction_passes_the_signature_check_and_is_answered(api: str) -> None:
    record = {"one": 20, "two": 12.66645094909174, "three": 15.8990837351338}
    status, body = call(f"{api}/predict", record, region=REGION, credentials=Credentials(KEY, SECRET))
    assert status == 200
    answer = json.loads(body)
    assert answer["predictions"] == [0]
    status, body = call(f"{api}/model", region=REGION, credentials=Credentials(KEY, SECRET))
    assert status == 200
    assert json.loads(body)["task"] == "anomaly"


def test_a_wrong_secret_or_region_is_refused_before_the_app(api: str) -> None:
    wrong_secret = Credentials(KEY, "not-the-secret")
    assert call(f"{api}/health", region=REGION, credentials=wrong_secret)[0] == 403
    assert call(f"{api}/health", region="us-east-1", credentials=Credentials(KEY, SECRET))[0] == 403


def test_the_command_signs_with_the_environment_credentials_and_reads_a_body_file(
    api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{"one": 20, "two": 12.7, "three": 15.9}] * 2))
    assert main([f"{api}/predict", f"@{records}", "--region", REGION]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == 2
    assert main([f"{api}/predict", '{"one": "x"}', "--region", REGION]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["error"] == "invalid_input"
    assert "HTTP 422" in err
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    assert main([f"{api}/health", "--region", REGION]) == 1
    assert "HTTP 403" in capsys.readouterr().err


def test_the_region_comes_from_an_execute_api_url() -> None:
    assert region_of("https://a1b2c3.execute-api.eu-west-1.amazonaws.com/predict") == "eu-west-1"
    assert region_of("http://127.0.0.1:8000/predict") is None
