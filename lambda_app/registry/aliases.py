"""Aliases (``production``, ``candidate``, ...): promote and roll back by moving one."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambda_app.registry.errors import AliasConflictError, ArtifactNotFoundError, ManifestError
from lambda_app.registry.storage import RegistryStorage, alias_key
from lambda_app.registry.versions import dump_json, read_manifest

HISTORY_LIMIT = 50
"""An alias record keeps the latest 50 earlier targets."""
ALIAS_MOVE_ATTEMPTS = 20
"""How often a move re-reads and retries when another move got there first, before giving up."""
_BACKOFF_FIRST = 0.01  # seconds; doubles per attempt, capped, with full jitter
_BACKOFF_CAP = 1.0
# Not the global generator: forked processes would share its state and retry in lockstep.
_jitter = random.SystemRandom()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AliasHistoryEntry(_Strict):
    version: str
    updated_at: datetime
    reason: str = ""


class AliasRecord(_Strict):
    """``aliases/<alias>.json``: the version an alias points at, and where it pointed before."""

    schema_version: Literal[1] = 1
    alias: str
    version: str
    updated_at: datetime
    reason: str = ""
    history: list[AliasHistoryEntry] = Field(default_factory=list)


def read_alias(storage: RegistryStorage, alias: str) -> AliasRecord | None:
    """The alias record, or None when the alias has never been set."""
    try:
        raw = storage.read(alias_key(alias))
    except ArtifactNotFoundError:
        return None
    return _parse(alias, raw)


def _parse(alias: str, raw: bytes) -> AliasRecord:
    try:
        return AliasRecord.model_validate(json.loads(raw))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"alias {alias!r} is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        raise ManifestError(f"alias {alias!r} is invalid: {exc}") from exc


def resolve_version(storage: RegistryStorage, alias: str) -> str:
    """The version ``alias`` points at; raises ArtifactNotFoundError when it is unset."""
    record = read_alias(storage, alias)
    if record is None:
        raise ArtifactNotFoundError(f"no alias {alias!r} in {storage.uri}")
    return record.version


def move_alias(
    storage: RegistryStorage,
    alias: str,
    version: str,
    *,
    reason: str = "",
    now: datetime | None = None,
) -> AliasRecord:
    """Point ``alias`` at an existing ``version``, keeping where it pointed before.

    Moves are serialised: the record is written only if no other move changed it since it was
    read; otherwise it is read again and the move re-applied, so concurrent promotions, rollbacks
    and publishes each land in the history.

    Raises:
        ArtifactNotFoundError: ``version`` has no manifest.
        AliasConflictError: other moves kept winning for ALIAS_MOVE_ATTEMPTS attempts.
    """
    read_manifest(storage, version)  # refuse to point at a version that is not there
    conflict: AliasConflictError | None = None
    for attempt in range(1, ALIAS_MOVE_ATTEMPTS + 1):
        if conflict is not None:
            time.sleep(_jitter.uniform(0, min(_BACKOFF_CAP, _BACKOFF_FIRST * 2**attempt)))
        current = storage.read_alias_snapshot(alias)
        previous = None if current is None else _parse(alias, current.data)
        record = _moved(previous, alias, version, reason, now or datetime.now(UTC))
        try:
            storage.replace_alias(alias, dump_json(record), expected=current)
        except AliasConflictError as exc:
            conflict = exc
        else:
            return record
    raise AliasConflictError(
        f"alias {alias!r} in {storage.uri} kept being moved by others while moving it to {version}:"
        f" gave up after {ALIAS_MOVE_ATTEMPTS} attempts; try again"
    ) from conflict


def _moved(previous: AliasRecord | None, alias: str, version: str, reason: str, now: datetime) -> AliasRecord:
    """The record after a move: ``previous``'s target joins its history."""
    history: list[AliasHistoryEntry] = []
    if previous is not None:
        history = [
            *previous.history,
            AliasHistoryEntry(
                version=previous.version, updated_at=previous.updated_at, reason=previous.reason
            ),
        ]
    return AliasRecord(
        alias=alias, version=version, updated_at=now, reason=reason, history=history[-HISTORY_LIMIT:]
    )
