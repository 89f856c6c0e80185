"""Reading and writing versions: manifests, integrity-checked artifacts, new version ids."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel

from lambda_app.registry.errors import ArtifactIntegrityError
from lambda_app.registry.manifest import ArtifactFile, ArtifactRole, Manifest, parse_manifest
from lambda_app.registry.storage import RegistryStorage, artifact_key, manifest_key


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_version(now: datetime | None = None) -> str:
    """A sortable, unique version id: ``20261126T101500Z-1a2b3c4d``."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def read_manifest(storage: RegistryStorage, version: str) -> Manifest:
    """The manifest of ``version`` (schema_version 1 upgraded in memory)."""
    return parse_manifest(storage.read(manifest_key(version)), version)


def read_verified(storage: RegistryStorage, manifest: Manifest, artifact: ArtifactFile) -> bytes:
    """An artifact's bytes, only after its size and sha256 match the manifest."""
    data = storage.read(artifact_key(manifest.version, artifact.path))
    if len(data) != artifact.size:
        raise ArtifactIntegrityError(
            f"{artifact.path} of version {manifest.version} is {len(data)} bytes;"
            f" the manifest says {artifact.size}"
        )
    digest = sha256_hex(data)
    if digest != artifact.sha256:
        raise ArtifactIntegrityError(
            f"{artifact.path} of version {manifest.version} has sha256 {digest};"
            f" the manifest says {artifact.sha256}"
        )
    return data


@dataclass(frozen=True)
class PendingArtifact:
    """A file about to be published, with the manifest entry that describes it."""

    path: str
    role: ArtifactRole
    data: bytes

    def describe(self) -> ArtifactFile:
        return ArtifactFile(path=self.path, role=self.role, sha256=sha256_hex(self.data), size=len(self.data))


def dump_json(model: BaseModel) -> bytes:
    return model.model_dump_json(indent=2).encode()
