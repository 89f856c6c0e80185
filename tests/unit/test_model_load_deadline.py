"""A model load hung on the registry is abandoned, so the container recovers once the registry does.

The hang is real: a registry file is replaced by a FIFO that nobody writes, so opening it blocks
forever, as a read from a stalled network mount does. Every wait here is bounded.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from lambda_app.config import Settings
from lambda_app.errors import ModelUnavailableError
from lambda_app.main import create_app
from lambda_app.model_store import MAX_ABANDONED_LOADS, ModelStore, default_storage
from lambda_app.observability import logger, metrics
from lambda_app.registry import LocalStorage, RegistryStorage, move_alias, resolve_version
from tests.conftest import SEED_RECORD

WAIT = 0.2  # how long a request waits for a load
ABANDON = 0.5  # how long a load may run before it is abandoned


class HungFile:
    """A registry file replaced by a FIFO with no writer: whoever opens it blocks until released."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.content = path.read_bytes()
        path.unlink()
        os.mkfifo(path)
        self.fifo = path

    def fix(self) -> None:
        """Move the FIFO aside (readers already blocked on it stay blocked) and put the real file back."""
        self.fifo = self.path.with_name(self.path.name + ".hung")
        self.path.rename(self.fifo)
        self.path.write_bytes(self.content)

    def release(self, data: bytes = b"") -> bool:
        """Give ``data`` then end-of-file to the readers blocked on the FIFO; False when there are none."""
        try:
            fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no reader has it open
                return False
            raise
        try:
            if data:
                os.write(fd, data)
        finally:
            os.close(fd)
        return True

    def release_all(self, timeout: float = 5.0) -> None:
        """Unblock every reader, however many, so no thread outlives the test."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.release():
            time.sleep(0.01)


@pytest.fixture
def hang() -> Iterator[Callable[[Path], HungFile]]:
    """Turn a registry file into a hung one; every reader is released at teardown."""
    made: list[HungFile] = []

    def make(path: Path) -> HungFile:
        made.append(HungFile(path))
        return made[-1]

    yield make
    for hung in made:
        hung.release_all()


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The service's structured log records written during the test."""
    stream = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    handler.setStream(previous)  # type: ignore[attr-defined]


@pytest.fixture
def counted() -> Iterator[Callable[[str], float]]:
    """How many times a metric was added during the test (metrics are not flushed here)."""
    metrics.clear_metrics()

    def count(name: str) -> float:
        entry = metrics.metric_set.get(name)
        return float(sum(entry["Value"])) if entry else 0.0

    yield count
    metrics.clear_metrics()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def deadline_settings(registry: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_uri": str(registry),
        "preload_model": False,
        "model_load_timeout_seconds": WAIT,
        "model_load_abandon_seconds": ABANDON,
        "model_retry_seconds": 0,
        "model_refresh_seconds": 0,
    }
    return Settings(**(values | overrides))


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def copy_version(registry: Path, version: str, name: str = "20990101T000000Z-0000beef") -> str:
    """Publish a copy of ``version`` under a new id (same, verified artifacts)."""
    shutil.copytree(registry / version, registry / name)
    manifest = json.loads((registry / name / "manifest.json").read_text())
    manifest["version"] = name
    (registry / name / "manifest.json").write_text(json.dumps(manifest))
    return name


def test_a_load_hung_on_the_registry_is_abandoned_and_the_fixed_registry_is_served(
    registry: Path,
    hang: Callable[[Path], HungFile],
    logs: Callable[[], list[dict[str, Any]]],
    counted: Callable[[str], float],
) -> None:
    good = resolve_version(LocalStorage(registry), "production")
    other = copy_version(registry, good)
    # GIVEN a registry whose alias file blocks every reader, as on a hung network mount
    alias = hang(registry / "aliases" / "production.json")
    clock = Clock()  # the abandon bound passes when the test says so, never because a machine is slow
    settings = deadline_settings(registry)
    store = ModelStore(settings, clock=clock)
    client = TestClient(create_app(settings, store))

    # WHEN requests arrive while it hangs THEN each gets a prompt 503 with Retry-After
    for _ in range(2):
        started = time.monotonic()
        response = client.post("/predict", json=SEED_RECORD)
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert time.monotonic() - started < 2
        clock.now += ABANDON / 4

    # WHEN the registry is fixed and the hung load has run past the abandon bound
    alias.fix()
    clock.now += ABANDON
    deadline = time.monotonic() + 5
    response = client.post("/predict", json=SEED_RECORD)
    while response.status_code == 503 and time.monotonic() < deadline:  # a slow machine may need two
        response = client.post("/predict", json=SEED_RECORD)

    # THEN a fresh load serves the model, and the abandonment is logged and counted
    assert response.status_code == 200
    assert response.json()["version"] == good
    assert store.abandoned_loads == 1
    assert any(record["message"].startswith("model load abandoned") for record in logs())
    assert counted("ModelLoadAbandoned") == 1

    # WHEN the hung read finally returns, naming another version
    assert alias.release(
        (registry / "aliases" / "production.json").read_bytes().replace(good.encode(), other.encode())
    )
    wait_until(lambda: store.abandoned_loads == 0)

    # THEN the abandoned load did load it, and its late result was ignored
    ignored = [record for record in logs() if "result is ignored" in record["message"]]
    assert [record["model_version"] for record in ignored] == [other]
    assert client.post("/predict", json=SEED_RECORD).json()["version"] == good
    assert store.current is not None
    assert store.current.manifest.version == good


def test_abandoned_loads_are_capped_while_the_registry_stays_hung(
    registry: Path,
    hang: Callable[[Path], HungFile],
    logs: Callable[[], list[dict[str, Any]]],
) -> None:
    alias = hang(registry / "aliases" / "production.json")
    starts: list[float] = []

    def counting(settings: Settings) -> RegistryStorage:
        starts.append(time.monotonic())
        return default_storage(settings)

    clock = Clock()
    store = ModelStore(deadline_settings(registry), storage_factory=counting, clock=clock)

    # GIVEN as many abandoned loads as allowed, and one more load hung on the registry
    for _ in range(MAX_ABANDONED_LOADS + 1):
        with pytest.raises(ModelUnavailableError):
            store.get()
        clock.now += 1  # past the abandon bound
    assert len(starts) == MAX_ABANDONED_LOADS + 1
    assert store.abandoned_loads == MAX_ABANDONED_LOADS

    # WHEN another request comes
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as refused:
        store.get()

    # THEN it gets a 503 at once, and no further thread is started
    assert time.monotonic() - started < WAIT
    assert refused.value.retry_after >= 1
    assert len(starts) == MAX_ABANDONED_LOADS + 1
    assert store.abandoned_loads == MAX_ABANDONED_LOADS
    assert any("not starting another" in record["message"] for record in logs())

    # WHEN the hung reads return and the registry is fixed THEN loads are tried again and succeed
    alias.fix()
    alias.release_all()
    wait_until(lambda: store.abandoned_loads == 0)
    assert store.settle(timeout=10)
    clock.now += 1
    store.try_load()
    assert store.settle(timeout=10)
    assert store.current is not None


def test_a_hung_refresh_is_abandoned_and_a_later_refresh_follows_the_alias(
    registry: Path, hang: Callable[[Path], HungFile]
) -> None:
    clock = Clock()
    store = ModelStore(deadline_settings(registry, model_refresh_seconds=10), clock=clock)
    store.try_load()
    assert store.settle(timeout=10)
    assert store.current is not None
    first = store.current.manifest.version
    second = copy_version(registry, first)
    alias_path = registry / "aliases" / "production.json"
    first_record = alias_path.read_bytes()

    # GIVEN a background refresh hung on the alias file
    alias = hang(alias_path)
    clock.now += 11
    served = store.loaded()
    assert not store.settle(timeout=WAIT)

    # THEN the loaded model keeps serving, without waiting
    assert served is not None
    assert served.manifest.version == first

    # WHEN the registry is fixed, the alias moves, and the next refresh is due past the abandon bound
    alias.fix()
    move_alias(LocalStorage(registry), "production", second, reason="test")
    clock.now += 11
    served = store.loaded()

    # THEN a new refresh runs, abandoning the hung one, and the moved alias is served
    assert served is not None
    assert served.manifest.version == first
    assert store.settle(timeout=10)
    assert store.current is not None
    assert store.current.manifest.version == second
    assert store.abandoned_loads == 1

    # WHEN the hung refresh finally reads the alias as it was THEN its late result is ignored
    assert alias.release(first_record)
    wait_until(lambda: store.abandoned_loads == 0)
    assert store.current.manifest.version == second


def test_the_abandon_bound_defaults_to_30_s_and_never_below_the_request_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().model_load_abandon_seconds == 30
    assert Settings(model_load_timeout_seconds=45).model_load_abandon_seconds == 45
    monkeypatch.setenv("MODEL_LOAD_ABANDON_SECONDS", "12")
    assert Settings().model_load_abandon_seconds == 12


def test_an_abandon_bound_shorter_than_the_request_wait_is_refused() -> None:
    with pytest.raises(ValidationError, match="MODEL_LOAD_ABANDON_SECONDS"):
        Settings(model_load_timeout_seconds=5, model_load_abandon_seconds=2)
