"""Finds, verifies and loads the model from the registry, once per container.

The first request (or the Lambda init phase) loads the model; every later request reuses it.
The load runs in one background thread that all waiting requests share (one download however
many arrive at once), and a request waits for it at most ``model_load_timeout_seconds``: a slow
or unreachable registry gives a prompt 503 with Retry-After, well inside the function's timeout,
while the load goes on. A failed load is remembered for ``model_retry_seconds`` so a broken
registry is not hammered, and then retried, so the service recovers by itself once the registry does.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from lambda_app.config import Settings
from lambda_app.drift import DriftMonitor
from lambda_app.errors import ModelUnavailableError
from lambda_app.models import Predictor, build_predictor
from lambda_app.observability import logger, metrics, traced
from lambda_app.registry import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    Manifest,
    RegistryError,
    RegistryStorage,
    open_storage,
    read_manifest,
    read_verified,
    resolve_version,
)


@dataclass(frozen=True)
class LoadedModel:
    manifest: Manifest
    predictor: Predictor
    loaded_at: datetime
    drift: DriftMonitor


def default_storage(settings: Settings) -> RegistryStorage:
    """The registry storage for ``settings.model_uri``; S3 clients get bounded retries."""
    if settings.model_uri.startswith("s3://"):
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=settings.aws_endpoint_url,
            # Short timeouts and bounded retries with backoff: a slow or unreachable S3 fails fast,
            # and ModelStore bounds how long any request waits for a load anyway.
            config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 3, "mode": "standard"}),
        )
        return open_storage(settings.model_uri, s3_client=client)
    return open_storage(settings.model_uri)


class ModelStore:
    """Holds the one loaded model of this container."""

    def __init__(
        self,
        settings: Settings,
        storage_factory: Callable[[Settings], RegistryStorage] = default_storage,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._storage_factory = storage_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._model: LoadedModel | None = None
        self._last_failure: tuple[float, ModelUnavailableError] | None = None
        self._pending: Future[LoadedModel] | None = None
        self._checked_at = 0.0  # when the alias was last resolved against the registry
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load")

    @property
    def current(self) -> LoadedModel | None:
        """The loaded model as it is, without touching the registry."""
        return self._model

    def loaded(self) -> LoadedModel | None:
        """The loaded model, or None; never waits. Starts a background alias check when one is due.

        The request path uses this: a loaded model is served at once, and the refresh that keeps
        it following its alias is triggered here rather than only from ``get``.
        """
        model = self._model
        if model is not None:
            self._maybe_refresh()
        return model

    def get(self) -> LoadedModel:
        """The loaded model, loading it first if needed.

        Raises:
            ModelUnavailableError: no model could be loaded (the reason is logged).
        """
        model = self._model
        if model is not None:
            self._maybe_refresh()
            return model
        with self._lock:  # one load at a time: concurrent first requests share it
            if self._model is not None:
                return self._model
            if self._pending is None:
                if self._last_failure is not None:
                    failed_at, error = self._last_failure
                    if self._clock() - failed_at < self._settings.model_retry_seconds:
                        raise error
                self._pending = self._executor.submit(self._load_and_keep)
            pending = self._pending
        timeout = self._settings.model_load_timeout_seconds
        try:
            return pending.result(timeout=timeout)
        except FutureTimeoutError:
            logger.warning("model load still running", extra={"waited_seconds": timeout})
            raise ModelUnavailableError(
                f"no model is available yet: loading it took longer than {timeout:g} s; retry shortly",
                retry_after=max(1, math.ceil(timeout)),
            ) from None

    def _load_and_keep(self) -> LoadedModel:
        """Run in the load thread: keep the model, or remember the failure for the retry window."""
        try:
            model = self._load()
        except ModelUnavailableError as error:
            with self._lock:
                self._last_failure = (self._clock(), error)
                self._pending = None
            raise
        with self._lock:
            self._model = model
            self._last_failure = None
            self._pending = None
            self._checked_at = self._clock()
        return model

    def _maybe_refresh(self) -> None:
        """Every MODEL_REFRESH_SECONDS, check the alias in the background; never make a request wait."""
        ttl = self._settings.model_refresh_seconds
        if not ttl or self._settings.model_version:
            return
        if self._clock() - self._checked_at < ttl:
            return
        with self._lock:
            if self._clock() - self._checked_at < ttl or self._pending is not None:
                return
            self._checked_at = self._clock()
            self._pending = self._executor.submit(self._refresh)

    def _refresh(self) -> LoadedModel:
        """Run in the load thread: swap in the alias's new version, or keep the current model."""
        current = self._model
        assert current is not None  # refreshes start only once a model is loaded
        try:
            version = resolve_version(self._storage_factory(self._settings), self._settings.model_alias)
            if version == current.manifest.version:
                return current
            model = self._load(version)
        except Exception as exc:  # a failed reload must never take the service down
            metrics.add_metric(name="ModelReloadFailed", unit=MetricUnit.Count, value=1)
            logger.error(
                "model reload failed; the loaded model keeps serving",
                extra={"model_version": current.manifest.version, "reason": str(exc)},
            )
            return current
        finally:
            with self._lock:
                self._pending = None
        with self._lock:
            self._model = model  # one reference swap: a request sees the old model or the new one
        logger.info(
            "model reloaded",
            extra={"model_version": model.manifest.version, "previous_version": current.manifest.version},
        )
        return model

    def try_load(self) -> bool:
        """Load now (the Lambda init phase) without raising; True when a model is loaded."""
        try:
            self.get()
        except ModelUnavailableError:
            return False
        return True

    @traced
    def _load(self, version: str | None = None) -> LoadedModel:
        settings = self._settings
        wanted = version or settings.model_version or f"alias {settings.model_alias!r}"
        try:
            storage = self._storage_factory(settings)
            version = version or settings.model_version or resolve_version(storage, settings.model_alias)
            manifest = read_manifest(storage, version)
            serving = read_verified(storage, manifest, manifest.artifact("serving"))
            predictor = build_predictor(manifest, serving, self._settings.threads)
        except ArtifactNotFoundError as exc:
            logger.error("model not found", extra={"model_uri": settings.model_uri, "reason": str(exc)})
            raise ModelUnavailableError(f"no model is available: nothing published for {wanted}") from exc
        except ArtifactIntegrityError as exc:
            logger.error("model artifact refused", extra={"reason": str(exc)})
            raise ModelUnavailableError(
                "no model is available: the model artifact failed its integrity check"
            ) from exc
        except (RegistryError, ValueError) as exc:
            logger.error("model manifest refused", extra={"reason": str(exc)})
            raise ModelUnavailableError("no model is available: the model's manifest is invalid") from exc
        except Exception as exc:  # registry unreachable, credentials, a graph ONNX Runtime refuses...
            logger.exception("model load failed", extra={"model_uri": settings.model_uri})
            raise ModelUnavailableError(
                f"no model is available: loading {wanted} failed ({type(exc).__name__})"
            ) from exc
        logger.info(
            "model loaded",
            extra={"model_version": manifest.version, "task": manifest.task, "model_uri": settings.model_uri},
        )
        return LoadedModel(
            manifest=manifest,
            predictor=predictor,
            loaded_at=datetime.now(UTC),
            drift=DriftMonitor.for_manifest(manifest),
        )
