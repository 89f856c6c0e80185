"""A running container follows its alias: background reloads, never half-loaded, last good model kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from lambda_app.config import Settings
from lambda_app.model_store import ModelStore
from lambda_app.registry import LocalStorage, move_alias, resolve_version


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def second_version(registry: Path, name: str = "20990101T000000Z-0000beef") -> str:
    """A copy of the published version under a new id (same, verified artifacts)."""
    first = resolve_version(LocalStorage(registry), "production")
    shutil.copytree(registry / first, registry / name)
    manifest = json.loads((registry / name / "manifest.json").read_text())
    manifest["version"] = name
    (registry / name / "manifest.json").write_text(json.dumps(manifest))
    return name


def settle(store: ModelStore) -> None:
    pending = store._pending
    if pending is not None:
        pending.result(timeout=30)


def test_a_moved_alias_is_served_after_the_ttl_without_a_redeploy(registry: Path) -> None:
    clock = Clock()
    store = ModelStore(Settings(model_uri=str(registry), model_refresh_seconds=10), clock=clock)
    first = store.get().manifest.version
    second = second_version(registry)
    move_alias(LocalStorage(registry), "production", second, reason="test")

    clock.now += 5
    assert store.get().manifest.version == first  # inside the TTL: no registry call at all
    assert store._pending is None

    clock.now += 6
    assert store.get().manifest.version == first  # the request never waits for the reload
    settle(store)
    assert store.get().manifest.version == second


def test_a_failed_reload_keeps_the_last_good_model(registry: Path) -> None:
    clock = Clock()
    store = ModelStore(Settings(model_uri=str(registry), model_refresh_seconds=10), clock=clock)
    first = store.get().manifest.version
    broken = second_version(registry)
    (registry / broken / "model.onnx").write_bytes(b"not a model")  # fails its sha256 check
    move_alias(LocalStorage(registry), "production", broken, reason="test")

    clock.now += 11
    store.get()
    settle(store)
    assert store.get().manifest.version == first
    scores = store.get().predictor.predict(np.array([[20.0, 12.6, 15.8]])).scores
    assert 0 < scores[0] <= 1  # and it still scores


def test_a_pinned_version_never_refreshes(registry: Path) -> None:
    clock = Clock()
    pinned = resolve_version(LocalStorage(registry), "production")
    store = ModelStore(
        Settings(model_uri=str(registry), model_version=pinned, model_refresh_seconds=1), clock=clock
    )
    store.get()
    move_alias(LocalStorage(registry), "production", second_version(registry), reason="test")
    clock.now += 100
    assert store.get().manifest.version == pinned
    assert store._pending is None


def test_refresh_can_be_turned_off(registry: Path) -> None:
    clock = Clock()
    store = ModelStore(Settings(model_uri=str(registry), model_refresh_seconds=0), clock=clock)
    first = store.get().manifest.version
    move_alias(LocalStorage(registry), "production", second_version(registry), reason="test")
    clock.now += 10_000
    assert store.get().manifest.version == first
    assert store._pending is None


def test_the_running_app_follows_a_moved_alias(registry: Path) -> None:
    from fastapi.testclient import TestClient

    from lambda_app.main import create_app
    from tests.conftest import SEED_RECORD

    clock = Clock()
    settings = Settings(model_uri=str(registry), model_refresh_seconds=10)
    store = ModelStore(settings, clock=clock)
    client = TestClient(create_app(settings, store))
    first = client.post("/predict", json=SEED_RECORD).json()["version"]
    second = second_version(registry)
    move_alias(LocalStorage(registry), "production", second, reason="test")
    clock.now += 11
    assert client.post("/predict", json=SEED_RECORD).json()["version"] == first  # never waits
    settle(store)
    assert client.post("/predict", json=SEED_RECORD).json()["version"] == second
    assert client.get("/health").json()["version"] == second
