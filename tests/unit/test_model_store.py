"""Loading the model once per container: verified, retried after failure, never half-loaded."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from lambda_app import model_store
from lambda_app.config import Settings
from lambda_app.errors import ModelUnavailableError
from lambda_app.model_store import ModelStore, default_storage
from lambda_app.registry import LocalStorage, RegistryStorage, read_manifest, resolve_version


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_loads_the_alias_once_and_reuses_it(registry: Path) -> None:
    calls = []

    def factory(settings: Settings) -> RegistryStorage:
        calls.append(1)
        return default_storage(settings)

    store = ModelStore(Settings(model_uri=str(registry)), storage_factory=factory)
    first = store.get()
    assert store.get() is first
    assert len(calls) == 1
    assert first.manifest.version == resolve_version(LocalStorage(registry), "production")


def test_pinned_version_overrides_the_alias(registry: Path) -> None:
    storage = LocalStorage(registry)
    version = resolve_version(storage, "production")
    (registry / "aliases" / "production.json").unlink()
    store = ModelStore(Settings(model_uri=str(registry), model_version=version))
    assert store.get().manifest.version == version


def test_missing_model_is_model_unavailable_with_a_clear_message(tmp_path: Path) -> None:
    store = ModelStore(Settings(model_uri=str(tmp_path / "empty")))
    with pytest.raises(ModelUnavailableError) as unavailable:
        store.get()
    # where it looked, so a wrong MODEL_URI shows itself
    assert f"nothing published for alias 'production' in {tmp_path / 'empty'} (MODEL_URI)" in str(
        unavailable.value
    )
    assert store.current is None
    assert store.try_load() is False


def test_tampered_serving_model_is_refused_before_loading(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    serving = manifest.artifact("serving")
    path = registry / manifest.version / serving.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one bit flipped
    path.write_bytes(bytes(data))
    loads = []
    monkeypatch.setattr(model_store, "build_predictor", lambda *a, **k: loads.append(1))
    store = ModelStore(Settings(model_uri=str(registry)))
    with pytest.raises(ModelUnavailableError, match="integrity check"):
        store.get()
    assert loads == []  # refused before anything was deserialised


def test_invalid_manifest_is_refused(registry: Path) -> None:
    storage = LocalStorage(registry)
    version = resolve_version(storage, "production")
    (registry / version / "manifest.json").write_text('{"schema_version": 1}')
    with pytest.raises(ModelUnavailableError, match="manifest is invalid"):
        ModelStore(Settings(model_uri=str(registry))).get()


def test_failed_load_is_retried_after_the_interval_and_then_recovers(registry: Path, tmp_path: Path) -> None:
    clock = Clock()
    target = tmp_path / "later"
    store = ModelStore(Settings(model_uri=str(target), model_retry_seconds=5), clock=clock)
    with pytest.raises(ModelUnavailableError):
        store.get()
    registry.rename(target)  # the registry becomes reachable
    with pytest.raises(ModelUnavailableError):
        store.get()  # still inside the retry interval: the failure is remembered
    clock.now = 6.0
    assert store.get().manifest.version


def test_unexpected_load_failure_is_model_unavailable(registry: Path) -> None:
    def broken(settings: Settings) -> RegistryStorage:
        raise ConnectionError("registry unreachable")

    store = ModelStore(Settings(model_uri=str(registry)), storage_factory=broken)
    with pytest.raises(ModelUnavailableError, match="ConnectionError"):
        store.get()


def test_concurrent_first_requests_share_one_load(registry: Path) -> None:
    calls = []
    gate = threading.Barrier(8)

    def factory(settings: Settings) -> RegistryStorage:
        calls.append(1)
        return default_storage(settings)

    store = ModelStore(Settings(model_uri=str(registry)), storage_factory=factory)
    results = []

    def worker() -> None:
        gate.wait()
        loaded = store.get()
        results.append(loaded.predictor.predict(np.array([[20, 12.66, 15.89]])).scores[0])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(calls) == 1
    assert len(results) == 8
    assert len(set(results)) == 1
