"""The model-registry contract: manifest, storage, versions, aliases, drift reference.

Serving owns it and training imports it, so the writer and the reader can never disagree
and the Lambda image never needs training code. One concern per module:

    manifest.py   the manifest schema (v2, and v1 read and upgraded in memory)
    storage.py    local directory and S3 backends, key layout
    versions.py   reading manifests, integrity-checked artifacts, new version ids
    aliases.py    alias records: move (serialised by a conditional write), resolve, history
    reference.py  binning and PSI against the training reference (drift)
    errors.py     what can go wrong

Versions are immutable: publishing refuses to overwrite an existing version.
"""

from lambda_app.registry.aliases import (
    ALIAS_MOVE_ATTEMPTS,
    HISTORY_LIMIT,
    AliasHistoryEntry,
    AliasRecord,
    move_alias,
    read_alias,
    resolve_version,
)
from lambda_app.registry.errors import (
    AliasConflictError,
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ManifestError,
    RegistryError,
    VersionExistsError,
)
from lambda_app.registry.manifest import (
    ANOMALY_SCORE,
    SCHEMA_VERSION,
    TASKS,
    ArtifactFile,
    ClassLabel,
    FeatureReference,
    FeatureSpec,
    Manifest,
    ManifestV1,
    Provenance,
    Reference,
    Task,
    parse_manifest,
)
from lambda_app.registry.storage import (
    ALIASES_DIR,
    MANIFEST_FILE,
    AliasSnapshot,
    LocalStorage,
    RegistryStorage,
    S3Storage,
    alias_key,
    artifact_key,
    manifest_key,
    open_storage,
    parse_s3_uri,
)
from lambda_app.registry.versions import (
    PendingArtifact,
    dump_json,
    new_version,
    read_manifest,
    read_verified,
    sha256_hex,
)

__all__ = [
    "ALIASES_DIR",
    "ALIAS_MOVE_ATTEMPTS",
    "ANOMALY_SCORE",
    "HISTORY_LIMIT",
    "MANIFEST_FILE",
    "SCHEMA_VERSION",
    "TASKS",
    "AliasConflictError",
    "AliasHistoryEntry",
    "AliasRecord",
    "AliasSnapshot",
    "ArtifactFile",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "ClassLabel",
    "FeatureReference",
    "FeatureSpec",
    "LocalStorage",
    "Manifest",
    "ManifestError",
    "ManifestV1",
    "PendingArtifact",
    "Provenance",
    "Reference",
    "RegistryError",
    "RegistryStorage",
    "S3Storage",
    "Task",
    "VersionExistsError",
    "alias_key",
    "artifact_key",
    "dump_json",
    "manifest_key",
    "move_alias",
    "new_version",
    "open_storage",
    "parse_manifest",
    "parse_s3_uri",
    "read_alias",
    "read_manifest",
    "read_verified",
    "resolve_version",
    "sha256_hex",
]
