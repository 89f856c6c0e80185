"""Where a registry lives (a local directory or ``s3://bucket/prefix``) and its key layout.

Layout under a registry root::

    <root>/<version>/manifest.json      written last: a version exists once its manifest does
    <root>/<version>/<artifact files>   sha256 + size of each in the manifest
    <root>/aliases/<alias>.json         points an alias (production, staging, ...) at a version
    <root>/aliases/.<alias>.lock        local only: held while an alias is compared and replaced

An alias is only ever replaced by a conditional write (compare-and-swap): read it with a tag (local:
the sha256 of its bytes; S3: its ETag), then write only if the tag is unchanged, so two moves can
never both build on the same record.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lambda_app.registry.errors import AliasConflictError, ArtifactNotFoundError, VersionExistsError
from lambda_app.registry.manifest import VERSION_PATTERN

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mypy_boto3_s3 import S3Client  # type: ignore[import-not-found]

MANIFEST_FILE = "manifest.json"
ALIASES_DIR = "aliases"
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
# How S3 refuses a conditional write: the object changed (412), another conditional write to it was
# in flight (409), or it was deleted since it was read (If-Match on a missing key: 404).
_CONDITIONAL_WRITE_REFUSALS = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"})
_VERSION_RACE_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
"""S3 refusing a version file written only if absent: another publisher got there first."""


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


@dataclass(frozen=True)
class AliasSnapshot:
    """An alias record as read, with the tag of that exact write: what a conditional write compares."""

    data: bytes
    tag: str  # local: the sha256 of the bytes; S3: the object's ETag


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

    def read_alias_snapshot(self, alias: str) -> AliasSnapshot | None:
        """``aliases/<alias>.json`` with its tag, or None when the alias has never been set."""
        ...

    def list_versions(self) -> list[str]:
        """The names of the version folders, sorted (oldest first: names start with the UTC time).

        Listing is for people and tools (``python -m training list``); the service never lists.
        A folder whose manifest is not written yet may be among them: reading it says so.
        """
        ...

    def list_aliases(self) -> list[str]:
        """The aliases ever set, sorted."""
        ...

    def replace_alias(self, alias: str, data: bytes, *, expected: AliasSnapshot | None) -> None:
        """Atomically replace ``aliases/<alias>.json``, only if it is still what ``expected`` read.

        ``expected=None`` creates the alias only if it does not exist yet.

        Raises:
            AliasConflictError: the alias was moved (or created) since ``expected`` was read.
        """
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

    def read_alias_snapshot(self, alias: str) -> AliasSnapshot | None:
        try:
            data = self._path(alias_key(alias)).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return AliasSnapshot(data=data, tag=hashlib.sha256(data).hexdigest())

    def list_versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            path.name
            for path in self.root.iterdir()
            if path.is_dir() and path.name != ALIASES_DIR and VERSION_PATTERN.match(path.name)
        )

    def list_aliases(self) -> list[str]:
        folder = self.root / ALIASES_DIR
        if not folder.is_dir():
            return []
        return sorted(path.stem for path in folder.glob("*.json") if ALIAS_PATTERN.match(path.stem))

    def replace_alias(self, alias: str, data: bytes, *, expected: AliasSnapshot | None) -> None:
        path = self._path(alias_key(alias))
        path.parent.mkdir(parents=True, exist_ok=True)
        # Every writer of this alias, in any thread or process, holds the lock while it compares and
        # replaces; readers need no lock, os.replace shows them the old record or the new one.
        lock = os.open(path.with_name(f".{alias}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read_alias_snapshot(alias)
            current_tag = current.tag if current is not None else None
            expected_tag = expected.tag if expected is not None else None
            if current_tag != expected_tag:
                raise AliasConflictError(f"alias {alias!r} in {self.uri} was moved by someone else")
            _replace_file(path, data)
        finally:
            os.close(lock)  # releases the lock


def _replace_file(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary sibling and a rename: readers see the old or the new bytes."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
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
        data, _ = self._get(key)
        return data

    def _get(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and ETag."""
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
        etag: str = response["ETag"]
        return body, etag

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
                if exc.response.get("Error", {}).get("Code") in _VERSION_RACE_CODES:
                    raise VersionExistsError(f"version {version} already exists in {self.uri}") from exc
                raise

    def read_alias_snapshot(self, alias: str) -> AliasSnapshot | None:
        try:
            data, etag = self._get(alias_key(alias))
        except ArtifactNotFoundError:
            return None
        return AliasSnapshot(data=data, tag=etag)

    def _list(self, folder: str, delimiter: str) -> list[str]:
        """Names directly under ``folder`` (keys, or sub-folders when ``delimiter`` is "/")."""
        start = self._key(folder)
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start, Delimiter=delimiter
        ):
            entries = page.get("CommonPrefixes", []) if delimiter else page.get("Contents", [])
            key = "Prefix" if delimiter else "Key"
            names += [entry[key][len(start) :].rstrip("/") for entry in entries]
        return names

    def list_versions(self) -> list[str]:
        folders = self._list("", "/")
        return sorted(name for name in folders if name != ALIASES_DIR and VERSION_PATTERN.match(name))

    def list_aliases(self) -> list[str]:
        names = self._list(f"{ALIASES_DIR}/", "")
        return sorted(
            name.removesuffix(".json")
            for name in names
            if name.endswith(".json") and ALIAS_PATTERN.match(name.removesuffix(".json"))
        )

    def replace_alias(self, alias: str, data: bytes, *, expected: AliasSnapshot | None) -> None:
        # S3 evaluates the condition and the write as one step (conditional writes).
        condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected.tag}
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(alias_key(alias)),
                Body=data,
                ContentType="application/json",
                **condition,
            )
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _CONDITIONAL_WRITE_REFUSALS:
                raise AliasConflictError(f"alias {alias!r} in {self.uri} was moved by someone else") from exc
            raise


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
