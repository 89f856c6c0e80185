"""The model-registry contract: manifest format, key layout, storage and integrity checks.

Serving (this package) owns it and training imports it, so the writer and the reader can
never disagree and the Lambda image never needs training code.

Layout under a registry root (``s3://bucket/prefix`` or a local directory)::

    <root>/<version>/manifest.json      written last: a version exists once its manifest does
    <root>/<version>/<artifact files>   model.joblib (scikit-learn, the source of truth), model.onnx
                                    (what the service runs), evaluation.json; sha256 + size in the manifest
    <root>/aliases/<alias>.json         points an alias (production, staging, ...) at a version

Versions are immutable: publishing refuses to overwrite an existing version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mypy_boto3_s3 import S3Client  # type: ignore[import-not-found]

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
ALIASES_DIR = "aliases"
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class RegistryError(Exception):
    """Base class for registry failures."""


class ArtifactNotFoundError(RegistryError):
    """A manifest, alias or artifact file does not exist in the registry."""


class ManifestError(RegistryError):
    """A manifest or alias record is unreadable or of an unknown schema version."""


class ArtifactIntegrityError(RegistryError):
    """An artifact's bytes do not match the sha256 or size its manifest records."""


class VersionExistsError(RegistryError):
    """A version is immutable: publishing it a second time is refused."""


# --------------------------------------------------------------------------- models


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtifactFile(_Strict):
    """One file of a version, with what it takes to verify it before use."""

    path: str
    role: Literal["model", "serving", "evaluation", "report", "other"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class FeatureSpec(_Strict):
    """One input feature, in the order the model expects it."""

    name: str
    dtype: Literal["integer", "number"]


class FeatureReference(_Strict):
    """A summary of one feature's training distribution, the reference for drift checks."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    quantiles: dict[str, float]
    bin_edges: list[float]
    bin_fractions: list[float]


class Reference(_Strict):
    """The training distribution: per-feature summaries and the score distribution."""

    features: dict[str, FeatureReference]
    score_quantiles: dict[str, float]
    anomaly_rate: float


class Provenance(_Strict):
    """Where a version came from, so it can be reproduced and audited."""

    data_uri: str
    data_sha256: str
    rows: int
    params: dict[str, Any]
    library_versions: dict[str, str]
    code_revision: str
    config: dict[str, Any]


class Manifest(_Strict):
    """Everything the service needs to know about one immutable model version."""

    schema_version: Literal[1] = 1
    name: str
    version: str = Field(pattern=VERSION_PATTERN.pattern)
    created_at: datetime
    estimator: str
    artifacts: list[ArtifactFile]
    features: list[FeatureSpec] = Field(min_length=1)
    label: str | None
    threshold: float
    score: str = "anomaly score in (0, 1]: higher is more anomalous; >= threshold is an anomaly"
    metrics: dict[str, float | int | None] | None
    reference: Reference
    provenance: Provenance
    tuning: dict[str, Any] | None = None  # the hyperparameter search: objective, trials, best

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def artifact(self, role: str) -> ArtifactFile:
        """The artifact with ``role``; raises ManifestError if the manifest lists none."""
        for artifact in self.artifacts:
            if artifact.role == role:
                return artifact
        raise ManifestError(f"manifest of version {self.version} lists no {role!r} artifact")


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


# --------------------------------------------------------------------------- keys


def manifest_key(version: str) -> str:
    return f"{_checked_version(version)}/{MANIFEST_FILE}"


def artifact_key(version: str, path: str) -> str:
    return f"{_checked_version(version)}/{path}"


def alias_key(alias: str) -> str:
    if not ALIAS_PATTERN.match(alias):
        raise ValueError(f"invalid alias {alias!r}: use lowercase letters, digits, '-' or '_'")
    return f"{ALIASES_DIR}/{alias}.json"


def _checked_version(version: str) -> str:
    if not VERSION_PATTERN.match(version) or version == ALIASES_DIR:
        raise ValueError(f"invalid version {version!r}")
    return version


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_version(now: datetime | None = None) -> str:
    """A sortable, unique version id: ``20261126T101500Z-1a2b3c4d``."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- storage


class RegistryStorage(Protocol):
    """Where a registry lives. Keys are relative to the registry root, '/'-separated."""

    uri: str

    def read(self, key: str) -> bytes:
        """The object's bytes; raises ArtifactNotFoundError if absent."""
        ...

    def exists(self, key: str) -> bool: ...

    def publish_version(self, version: str, files: Mapping[str, bytes]) -> None:
        """Make ``<version>/*`` visible all at once, manifest last; refuse an existing version."""
        ...

    def write_alias(self, alias: str, data: bytes) -> None:
        """Atomically replace ``aliases/<alias>.json``."""
        ...


class LocalStorage:
    """A registry in a local directory: the embedded default, no AWS needed."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ArtifactNotFoundError(f"{self.uri}/{key} does not exist") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def publish_version(self, version: str, files: Mapping[str, bytes]) -> None:
        target = self._path(_checked_version(version))
        if target.exists():
            raise VersionExistsError(f"version {version} already exists in {self.uri}")
        self.root.mkdir(parents=True, exist_ok=True)
        # Stage in a hidden sibling directory, then rename: readers see all files or none.
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{version}-", dir=self.root))
        staging.chmod(0o755)  # mkdtemp makes it private; a registry is read by other processes
        try:
            for name, data in files.items():
                path = staging.joinpath(*name.split("/"))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            try:
                staging.rename(target)
            except OSError as exc:
                raise VersionExistsError(f"version {version} already exists in {self.uri}") from exc
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def write_alias(self, alias: str, data: bytes) -> None:
        path = self._path(alias_key(alias))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{alias}-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)  # mkstemp makes it private
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class S3Storage:
    """A registry under ``s3://bucket/prefix``."""

    def __init__(self, bucket: str, prefix: str, client: S3Client) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey as exc:
            raise ArtifactNotFoundError(f"{self.uri}/{key} does not exist") from exc
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"AccessDenied", "403"}:
                # Without s3:ListBucket, S3 answers a missing key with 403, not 404.
                raise ArtifactNotFoundError(f"{self.uri}/{key} is missing or not readable") from exc
            raise
        body: bytes = response["Body"].read()
        return body

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def publish_version(self, version: str, files: Mapping[str, bytes]) -> None:
        manifest = manifest_key(version)
        if self.exists(manifest):
            raise VersionExistsError(f"version {version} already exists in {self.uri}")
        # Every object is written only if absent (If-None-Match), so a racing publisher can never
        # replace a file of an existing version; the manifest goes last and makes the version visible.
        names = [name for name in files if name != MANIFEST_FILE] + [MANIFEST_FILE]
        for name in names:
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(artifact_key(version, name)),
                    Body=files[name],
                    IfNoneMatch="*",
                )
            except self.client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                    raise VersionExistsError(f"version {version} already exists in {self.uri}") from exc
                raise

    def write_alias(self, alias: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(alias_key(alias)),
            Body=data,
            ContentType="application/json",
        )


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, prefix.strip("/")


def open_storage(uri: str, *, s3_client: S3Client | None = None) -> RegistryStorage:
    """The storage behind a ``MODEL_URI``: ``s3://bucket/prefix`` or a local directory."""
    if uri.startswith("s3://"):
        bucket, prefix = parse_s3_uri(uri)
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Storage(bucket, prefix, s3_client)
    return LocalStorage(uri)


# --------------------------------------------------------------------------- reading


def _load_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{what} is not valid JSON: {exc}") from exc


def read_manifest(storage: RegistryStorage, version: str) -> Manifest:
    """The manifest of ``version``, validated against this schema version."""
    data = _load_json(storage.read(manifest_key(version)), f"manifest of version {version}")
    if isinstance(data, dict) and data.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(
            f"manifest of version {version} has schema_version {data.get('schema_version')!r};"
            f" this service reads {SCHEMA_VERSION}"
        )
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"manifest of version {version} is invalid: {exc}") from exc
    if manifest.version != version:
        raise ManifestError(f"manifest under {version} claims version {manifest.version}")
    return manifest


def read_alias(storage: RegistryStorage, alias: str) -> AliasRecord | None:
    """The alias record, or None when the alias has never been set."""
    try:
        raw = storage.read(alias_key(alias))
    except ArtifactNotFoundError:
        return None
    try:
        return AliasRecord.model_validate(_load_json(raw, f"alias {alias!r}"))
    except ValidationError as exc:
        raise ManifestError(f"alias {alias!r} is invalid: {exc}") from exc


def resolve_version(storage: RegistryStorage, alias: str) -> str:
    """The version ``alias`` points at; raises ArtifactNotFoundError when it is unset."""
    record = read_alias(storage, alias)
    if record is None:
        raise ArtifactNotFoundError(f"no alias {alias!r} in {storage.uri}")
    return record.version


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


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class PendingArtifact:
    """A file about to be published, with the manifest entry that describes it."""

    path: str
    role: Literal["model", "serving", "evaluation", "report", "other"]
    data: bytes

    def describe(self) -> ArtifactFile:
        return ArtifactFile(path=self.path, role=self.role, sha256=sha256_hex(self.data), size=len(self.data))


def dump_json(model: BaseModel) -> bytes:
    return model.model_dump_json(indent=2).encode()


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
