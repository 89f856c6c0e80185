"""Aliases (``production``, ``candidate``, ...): promote and roll back by moving one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambda_app.registry.errors import ArtifactNotFoundError, ManifestError
from lambda_app.registry.storage import RegistryStorage, alias_key
from lambda_app.registry.versions import dump_json, read_manifest


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
    """Point ``alias`` at an existing ``version``, keeping where it pointed before."""
    read_manifest(storage, version)  # refuse to point at a version that is not there
    now = now or datetime.now(UTC)
    previous = read_alias(storage, alias)
    history: list[AliasHistoryEntry] = []
    if previous is not None:
        history = [
            *previous.history,
            AliasHistoryEntry(
                version=previous.version, updated_at=previous.updated_at, reason=previous.reason
            ),
        ]
    record = AliasRecord(alias=alias, version=version, updated_at=now, reason=reason, history=history[-50:])
    storage.write_alias(alias, dump_json(record))
    return record
