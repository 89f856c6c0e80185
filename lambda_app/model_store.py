"""Finds, verifies and loads the model from the registry, once per container.

The first request (or the Lambda init phase) loads the model; every later request reuses it.
The load runs in a background thread that all waiting requests share (one download however
many arrive at once), and a request waits for it at most ``model_load_timeout_seconds``: a slow
or unreachable registry gives a prompt 503 with Retry-After, well inside the function's timeout,
while the load goes on. A failed load is remembered for ``model_retry_seconds`` so a broken
registry is not hammered, and then retried, so the service recovers by itself once the registry does.

A load that never returns (a read blocked on a hung network mount) would otherwise keep the
container at 503 for good: once it has run ``model_load_abandon_seconds`` it is abandoned, and the
next request starts a fresh load on a fresh thread. A thread cannot be killed, so the hung one is
left behind and whatever it eventually returns is ignored; at most MAX_ABANDONED_LOADS are left
behind at once. Background refreshes follow the same rules, while the loaded model keeps serving.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from lambda_app.config import Settings
from lambda_app.drift import DriftMonitor
from lambda_app.errors import ModelUnavailableError
from lambda_app.explain.loader import LazyExplainer
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
    explainer: LazyExplainer | None = None  # None only for a model built outside the store (tests, tools)


MAX_ABANDONED_LOADS = 4
"""Abandoned loads left hanging at most; beyond that none is started, so a hung registry leaks few threads."""


@dataclass(eq=False)  # compared and hashed by identity: each is one thread's load
class _LoadAttempt:
    """One load (or refresh of ``serving``) on its own thread; its outcome counts only while it is current."""

    generation: int
    started_at: float
    serving: LoadedModel | None
    future: Future[LoadedModel] = field(default_factory=Future)


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
        self._attempt: _LoadAttempt | None = None  # the load or refresh in progress
        self._abandoned: set[_LoadAttempt] = set()  # given up on, their threads not returned yet
        self._generation = 0
        self._checked_at = 0.0  # when the alias was last resolved against the registry

    @property
    def current(self) -> LoadedModel | None:
        """The loaded model as it is, without touching the registry."""
        return self._model

    @property
    def abandoned_loads(self) -> int:
        """Loads given up on that have not returned yet: each holds a thread blocked on the registry."""
        with self._lock:
            return len(self._abandoned)

    @property
    def _pending(self) -> Future[LoadedModel] | None:
        """The outcome of the load or refresh in progress, if any; ``settle`` is the public way to wait."""
        attempt = self._attempt
        return attempt.future if attempt is not None else None

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
            attempt = self._attempt
            if attempt is not None and self._overdue(attempt):
                if not self._abandon(attempt):
                    raise ModelUnavailableError(
                        "no model is available: the model registry has not answered for"
                        f" {self._clock() - attempt.started_at:.0f} s; retry later",
                        retry_after=max(1, math.ceil(self._settings.model_load_abandon_seconds)),
                    )
                attempt = None
            if attempt is None:
                if self._last_failure is not None:
                    failed_at, error = self._last_failure
                    if self._clock() - failed_at < self._settings.model_retry_seconds:
                        raise error
                attempt = self._start(serving=None)
        timeout = self._settings.model_load_timeout_seconds
        try:
            return attempt.future.result(timeout=timeout)
        except FutureTimeoutError:
            logger.warning("model load still running", extra={"waited_seconds": timeout})
            raise ModelUnavailableError(
                f"no model is available yet: loading it took longer than {timeout:g} s; retry shortly",
                retry_after=max(1, math.ceil(timeout)),
            ) from None

    def settle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds (real time) for the load or refresh in progress.

        For callers that need the outcome, not a prompt answer: tools, tests, a graceful shutdown.

        Returns:
            True when no load or refresh is left running (abandoned ones aside).
        """
        deadline = time.monotonic() + timeout
        while (attempt := self._attempt) is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            wait([attempt.future], timeout=remaining)
        return True

    def try_load(self) -> bool:
        """Load now (the Lambda init phase) without raising; True when a model is loaded."""
        try:
            self.get()
        except ModelUnavailableError:
            return False
        return True

    def _maybe_refresh(self) -> None:
        """Every MODEL_REFRESH_SECONDS, check the alias in the background; never make a request wait."""
        ttl = self._settings.model_refresh_seconds
        if not ttl or self._settings.model_version:
            return
        if self._clock() - self._checked_at < ttl:
            return
        with self._lock:
            now = self._clock()
            if now - self._checked_at < ttl or self._model is None:
                return
            attempt = self._attempt
            if attempt is not None:
                if not self._overdue(attempt):
                    return
                if not self._abandon(attempt):
                    self._checked_at = now  # at the cap: look again after another interval, not every request
                    return
            self._checked_at = now
            self._start(serving=self._model)

    def _overdue(self, attempt: _LoadAttempt) -> bool:
        return self._clock() - attempt.started_at >= self._settings.model_load_abandon_seconds

    def _start(self, serving: LoadedModel | None) -> _LoadAttempt:
        """Start a first load (``serving`` None) or a refresh on a new thread; call with the lock held.

        A new thread each time, not a pool: a load blocked forever in a read cannot be interrupted,
        and must not stand in the way of the next one.
        """
        self._generation += 1
        attempt = _LoadAttempt(self._generation, self._clock(), serving)
        threading.Thread(
            target=self._run, args=(attempt,), name=f"model-load-{attempt.generation}", daemon=True
        ).start()
        self._attempt = attempt  # before the thread can look: it publishes under the lock we hold
        return attempt

    def _abandon(self, attempt: _LoadAttempt) -> bool:
        """Give up on the overdue ``attempt``, so a new one can start; call with the lock held.

        Its thread cannot be stopped: it is left to finish (or hang) as a daemon, and whatever it
        returns is ignored. Returns False, abandoning nothing, when MAX_ABANDONED_LOADS are still
        hung: a registry that stays hung then costs a bounded number of threads, not one per request.
        """
        running = round(self._clock() - attempt.started_at, 1)
        if len(self._abandoned) >= MAX_ABANDONED_LOADS:
            logger.warning(
                "model load overdue, not starting another: too many abandoned loads still hang",
                extra={"running_seconds": running, "abandoned_loads": len(self._abandoned)},
            )
            return False
        self._attempt = None
        self._abandoned.add(attempt)
        metrics.add_metric(name="ModelLoadAbandoned", unit=MetricUnit.Count, value=1)
        logger.warning(
            "model load abandoned: the registry did not answer in time; the next load starts afresh",
            extra={
                "refresh": attempt.serving is not None,
                "running_seconds": running,
                "abandoned_loads": len(self._abandoned),
                "model_uri": self._settings.model_uri,
            },
        )
        # Requests still waiting for it are answered now rather than at the end of their wait.
        if attempt.serving is not None:
            attempt.future.set_result(attempt.serving)
        else:
            abandon = self._settings.model_load_abandon_seconds
            attempt.future.set_exception(
                ModelUnavailableError(
                    f"no model is available yet: loading it took longer than {abandon:g} s; retry shortly",
                    retry_after=max(1, math.ceil(self._settings.model_retry_seconds)),
                )
            )
        return True

    def _run(self, attempt: _LoadAttempt) -> None:
        """The load thread: the slow part runs unlocked; its outcome counts only if not abandoned."""
        serving = attempt.serving
        outcome: LoadedModel | Exception
        try:
            outcome = self._load() if serving is None else self._reload(serving)
        except Exception as exc:  # _load raises ModelUnavailableError; a refresh may fail in any way
            outcome = exc
        with self._lock:
            abandoned = attempt is not self._attempt
            if abandoned:
                self._abandoned.discard(attempt)
            else:
                self._attempt = None
                self._keep(outcome, serving)
        if abandoned:
            late = (
                {"model_version": outcome.manifest.version}
                if isinstance(outcome, LoadedModel)
                else {"reason": str(outcome)}
            )
            logger.info("an abandoned model load finished; its result is ignored", extra=late)
        elif serving is not None:
            self._report_refresh(outcome, serving)
            attempt.future.set_result(outcome if isinstance(outcome, LoadedModel) else serving)
        elif isinstance(outcome, LoadedModel):
            attempt.future.set_result(outcome)
        else:
            attempt.future.set_exception(outcome)

    def _keep(self, outcome: LoadedModel | Exception, serving: LoadedModel | None) -> None:
        """Publish the current attempt's outcome; call with the lock held."""
        if isinstance(outcome, LoadedModel):
            self._model = outcome  # one reference swap: a request sees the old model or the new one
            if serving is None:
                self._last_failure = None
                self._checked_at = self._clock()
        elif serving is None and isinstance(outcome, ModelUnavailableError):  # all that _load raises
            self._last_failure = (self._clock(), outcome)  # the retry window starts
        # A failed refresh changes nothing: the loaded model serves until the next interval's check.

    def _reload(self, serving: LoadedModel) -> LoadedModel:
        """The model the alias names now: ``serving`` itself when the alias has not moved."""
        version = resolve_version(self._storage_factory(self._settings), self._settings.model_alias)
        if version == serving.manifest.version:
            return serving
        return self._load(version)

    @staticmethod
    def _report_refresh(outcome: LoadedModel | Exception, serving: LoadedModel) -> None:
        if not isinstance(outcome, LoadedModel):  # a failed reload must never take the service down
            metrics.add_metric(name="ModelReloadFailed", unit=MetricUnit.Count, value=1)
            logger.error(
                "model reload failed; the loaded model keeps serving",
                extra={"model_version": serving.manifest.version, "reason": str(outcome)},
            )
        elif outcome is not serving:
            logger.info(
                "model reloaded",
                extra={
                    "model_version": outcome.manifest.version,
                    "previous_version": serving.manifest.version,
                },
            )

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
            raise ModelUnavailableError(
                f"no model is available: nothing published for {wanted} in {settings.model_uri} (MODEL_URI)"
            ) from exc
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
            explainer=LazyExplainer(manifest, lambda file: read_verified(storage, manifest, file)),
        )
