"""What a registry holds: ``python -m training list --model-uri URI [--json]``.

Every version (created, task, estimator, its task's key holdout metric, the size of its files) and every
alias with the version it points at and where it pointed before. A version that cannot be read (a
publish still in flight, a manifest from a newer release) is listed with the reason, not skipped: the
listing is where one looks for what is wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from lambda_app.registry import (
    AliasRecord,
    RegistryError,
    RegistryStorage,
    read_alias,
    read_manifest,
)
from training.tasks import task_kind


@dataclass(frozen=True)
class VersionLine:
    version: str
    created_at: str | None = None
    task: str | None = None
    estimator: str | None = None
    metric: str | None = None
    value: float | None = None
    bytes: int | None = None
    aliases: list[str] = field(default_factory=list)
    problem: str | None = None  # why the version could not be read


@dataclass(frozen=True)
class Listing:
    uri: str
    versions: list[VersionLine]
    aliases: list[AliasRecord]
    unreadable_aliases: dict[str, str] = field(default_factory=dict)  # alias -> why

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_uri": self.uri,
            "versions": [asdict(line) for line in self.versions],
            "aliases": [record.model_dump(mode="json") for record in self.aliases],
            "unreadable_aliases": self.unreadable_aliases,
        }


def list_registry(storage: RegistryStorage) -> Listing:
    """Every version, oldest first, and every alias with its history."""
    aliases = []
    unreadable = {}
    for name in storage.list_aliases():
        try:
            record = read_alias(storage, name)
        except (RegistryError, ValueError) as exc:
            unreadable[name] = str(exc).splitlines()[0]
            continue
        if record is not None:
            aliases.append(record)
    pointing: dict[str, list[str]] = {}
    for record in aliases:
        pointing.setdefault(record.version, []).append(record.alias)
    return Listing(
        storage.uri,
        [_version_line(storage, version, pointing.get(version, [])) for version in storage.list_versions()],
        aliases,
        unreadable,
    )


def _version_line(storage: RegistryStorage, version: str, aliases: list[str]) -> VersionLine:
    try:
        manifest = read_manifest(storage, version)
    except (RegistryError, ValueError) as exc:
        return VersionLine(version, aliases=aliases, problem=str(exc).splitlines()[0])
    metric = task_kind(manifest.task).default_metric
    value = (manifest.metrics or {}).get(metric)
    return VersionLine(
        version,
        created_at=manifest.created_at.isoformat(timespec="seconds"),
        task=manifest.task,
        estimator=manifest.estimator,
        metric=metric,
        value=None if value is None else float(value),
        bytes=sum(artifact.size for artifact in manifest.artifacts),
        aliases=aliases,
    )


def render(listing: Listing) -> str:
    """The listing as two Markdown tables (versions, aliases) and each alias's history below."""
    lines = [f"registry {listing.uri}: {len(listing.versions)} versions, {len(listing.aliases)} aliases", ""]
    if listing.versions:
        lines += [
            "| version | created | task | estimator | holdout metric | size | aliases |",
            "| --- | --- | --- | --- | --- | ---: | --- |",
        ]
        for line in listing.versions:
            if line.problem:
                lines.append(
                    f"| {line.version} | unreadable: {line.problem} | | | | | {', '.join(line.aliases)} |"
                )
                continue
            score = "-" if line.value is None else f"{line.metric} {line.value:.4f}"
            size = f"{(line.bytes or 0) / 1e6:.2f} MB"
            lines.append(
                f"| {line.version} | {line.created_at} | {line.task} | {line.estimator} | {score} | {size}"
                f" | {', '.join(line.aliases)} |"
            )
    for record in listing.aliases:
        why = f": {record.reason}" if record.reason else ""
        lines += ["", f"{record.alias} -> {record.version} (since {_when(record.updated_at)}{why})"]
        for entry in reversed(record.history):  # newest first
            why = f": {entry.reason}" if entry.reason else ""
            lines.append(f"  before: {entry.version} (since {_when(entry.updated_at)}{why})")
    for name, problem in listing.unreadable_aliases.items():
        lines += ["", f"{name}: unreadable: {problem}"]
    return "\n".join(lines)


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
