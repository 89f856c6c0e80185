"""Fault injection: a slow or unreachable registry, refused artifacts, a request failing half-way.

Each fault has its expected behaviour asserted: a prompt 503 with Retry-After while the registry
misbehaves, recovery without a restart once it is back, and a loaded model that keeps serving.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from benchmarks.loadtest import free_port
from lambda_app.config import Settings
from lambda_app.errors import ModelUnavailableError
from lambda_app.main import create_app
from lambda_app.registry import LocalStorage, read_manifest, resolve_version
from tests.conftest import SAMPLE_DATA, SEED_RECORD


def client_for(**settings: Any) -> TestClient:
    return TestClient(create_app(Settings(preload_model=False, **settings)))


def test_unreachable_s3_is_a_prompt_503_and_the_first_request_after_recovery_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()  # nothing listens here yet: connections are refused
    endpoint = f"http://127.0.0.1:{port}"
    client = client_for(model_uri="s3://models/reg", aws_endpoint_url=endpoint, model_retry_seconds=0.5)

    started = time.monotonic()
    response = client.post("/predict", json=SEED_RECORD)
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert "loading" in response.json()["message"]
    assert "failed" in response.json()["message"]
    assert time.monotonic() - started < 10  # bounded retries with backoff, far inside a 15 s timeout
    assert client.get("/health").status_code == 503  # remembered: no new attempt inside the window

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        from training.__main__ import main as training_main

        assert training_main(["--data", str(SAMPLE_DATA), "--model-uri", "s3://models/reg"]) == 0
        time.sleep(0.6)  # past the retry window
        recovered = client.post("/predict", json=SEED_RECORD)
        assert recovered.status_code == 200
        assert client.get("/health").status_code == 200
    finally:
        server.stop()


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A loopback TCP endpoint that accepts connections and never answers: a hung S3."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
                accepted.append(connection)
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()


def test_a_hung_s3_is_a_503_within_the_load_timeout_not_the_function_timeout(blackhole: str) -> None:
    app = create_app(
        Settings(
            model_uri="s3://models/reg",
            aws_endpoint_url=blackhole,
            model_load_timeout_seconds=1,
            preload_model=False,
        )
    )
    with TestClient(app) as client:
        started = time.monotonic()
        response = client.post("/predict", json=SEED_RECORD)
        waited = time.monotonic() - started
        assert response.status_code == 503
        assert "took longer than 1 s" in response.json()["message"]
        assert response.headers["retry-after"] == "1"
        assert waited < 5
        # the load goes on in the background; let it finish (its own timeouts end it) before the hole closes
        pending = app.state.model_store._pending
        if pending is not None:
            with pytest.raises(ModelUnavailableError, match="failed"):
                pending.result(timeout=60)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("alias_to_missing_version", "nothing published"),
        ("manifest_missing", "nothing published"),
        ("unknown_schema_version", "manifest is invalid"),
        ("truncated_artifact", "integrity check"),
        ("corrupt_artifact", "integrity check"),
    ],
)
def test_refused_registry_contents_are_a_503_and_a_loaded_model_keeps_serving(
    registry: Path, tmp_path: Path, fault: str, message: str
) -> None:
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    version_dir = registry / manifest.version
    serving = version_dir / manifest.artifact("serving").path

    # A container that loaded the good model before the registry broke keeps serving it.
    warm = client_for(model_uri=str(registry))
    assert warm.post("/predict", json=SEED_RECORD).status_code == 200

    if fault == "alias_to_missing_version":
        alias = registry / "aliases" / "production.json"
        alias.write_text(alias.read_text().replace(manifest.version, "20990101T000000Z-00000000"))
    elif fault == "manifest_missing":
        (version_dir / "manifest.json").unlink()
    elif fault == "unknown_schema_version":
        data = json.loads((version_dir / "manifest.json").read_text())
        data["schema_version"] = 3
        (version_dir / "manifest.json").write_text(json.dumps(data))
    elif fault == "truncated_artifact":
        serving.write_bytes(serving.read_bytes()[:1000])
    else:
        data = bytearray(serving.read_bytes())
        data[100:200] = bytes(100)
        serving.write_bytes(bytes(data))

    cold = client_for(model_uri=str(registry))
    response = cold.post("/predict", json=SEED_RECORD)
    assert response.status_code == 503
    assert message in response.json()["message"]
    assert response.headers["retry-after"]
    assert warm.post("/predict", json=SEED_RECORD).status_code == 200


def test_a_request_failing_half_way_leaves_the_container_serving(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambda_app.models import AnomalyPredictor as Predictor

    client = TestClient(create_app(Settings(model_uri=str(registry))), raise_server_exceptions=False)
    original = Predictor.predict
    calls = {"n": 0}

    def flaky(self: Predictor, features: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise MemoryError("simulated failure in the middle of scoring")
        return original(self, features)

    monkeypatch.setattr(Predictor, "predict", flaky)
    failed = client.post("/predict", json=SEED_RECORD)
    assert failed.status_code == 500
    assert "simulated" not in failed.text
    assert client.post("/predict", json=SEED_RECORD).status_code == 200
    assert client.get("/health").status_code == 200


def test_concurrent_first_requests_share_one_download(registry: Path, tmp_path: Path) -> None:
    reads: list[str] = []
    original = LocalStorage.read

    def counting_read(self: LocalStorage, key: str) -> bytes:
        reads.append(key)
        time.sleep(0.05)  # a slow registry widens the race
        return original(self, key)

    copy = tmp_path / "copy"
    shutil.copytree(registry, copy)
    app = create_app(Settings(model_uri=str(copy), preload_model=False))
    store = app.state.model_store
    results: list[int] = []
    barrier = threading.Barrier(12)

    def first_request() -> None:
        with TestClient(app) as client:
            barrier.wait()
            response = client.post("/predict", json=SEED_RECORD)
            results.append(response.status_code)

    LocalStorage.read = counting_read  # type: ignore[method-assign]
    try:
        threads = [threading.Thread(target=first_request) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        LocalStorage.read = original  # type: ignore[method-assign]
    assert results == [200] * 12
    assert len([key for key in reads if key.endswith("model.onnx")]) == 1
    assert store.current is not None
