"""The artifact contract: layout, immutability, aliases, integrity."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lambda_app import registry as reg
from lambda_app.registry import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    LocalStorage,
    ManifestError,
    S3Storage,
    VersionExistsError,
)


def _latest(root: Path) -> str:
    return reg.resolve_version(LocalStorage(root), "production")


def test_layout_is_version_dir_with_manifest_and_alias_file(registry: Path) -> None:
    version = _latest(registry)
    assert (registry / version / "manifest.json").is_file()
    assert (registry / version / "model.joblib").is_file()
    assert (registry / version / "evaluation.json").is_file()
    assert json.loads((registry / "aliases" / "production.json").read_text())["version"] == version


def test_manifest_records_sha256_and_size_of_every_artifact(registry: Path) -> None:
    storage = LocalStorage(registry)
    manifest = registry_read(storage)
    for artifact in manifest.artifacts:
        data = (registry / manifest.version / artifact.path).read_bytes()
        assert artifact.size == len(data)
        assert artifact.sha256 == _sha(data)
    assert manifest.feature_names == ["one", "two", "three"]
    assert [f.dtype for f in manifest.features] == ["number", "number", "number"]
    assert manifest.label == "label"
    assert set(manifest.reference.features) == {"one", "two", "three"}
    assert manifest.provenance.rows == 5000
    assert len(manifest.provenance.data_sha256) == 64
    assert "scikit-learn" in manifest.provenance.library_versions


def registry_read(storage: LocalStorage) -> reg.Manifest:
    return reg.read_manifest(storage, reg.resolve_version(storage, "production"))


def _sha(data: bytes) -> str:
    return reg.sha256_hex(data)


def test_versions_are_immutable(registry: Path) -> None:
    storage = LocalStorage(registry)
    version = _latest(registry)
    with pytest.raises(VersionExistsError):
        storage.publish_version(version, {"manifest.json": b"{}"})
    assert registry_read(storage).version == version  # the original is untouched


def test_local_publish_leaves_no_staging_directory_behind(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.publish_version("v1", {"manifest.json": b"{}", "model.bin": b"x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1"]


def test_tampered_artifact_is_refused(registry: Path) -> None:
    storage = LocalStorage(registry)
    manifest = registry_read(storage)
    model = manifest.artifact("model")
    path = registry / manifest.version / model.path
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        reg.read_verified(storage, manifest, model)


def test_truncated_artifact_is_refused_on_size(registry: Path) -> None:
    storage = LocalStorage(registry)
    manifest = registry_read(storage)
    model = manifest.artifact("model")
    path = registry / manifest.version / model.path
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactIntegrityError, match="bytes"):
        reg.read_verified(storage, manifest, model)


def test_unknown_manifest_schema_version_is_refused(registry: Path) -> None:
    version = _latest(registry)
    path = registry / version / "manifest.json"
    data = json.loads(path.read_text())
    data["schema_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="schema_version 99"):
        reg.read_manifest(LocalStorage(registry), version)


def test_manifest_that_is_not_json_is_refused(registry: Path) -> None:
    version = _latest(registry)
    (registry / version / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        reg.read_manifest(LocalStorage(registry), version)


def test_alias_cannot_point_at_a_missing_version(registry: Path) -> None:
    with pytest.raises(ArtifactNotFoundError):
        reg.move_alias(LocalStorage(registry), "production", "20990101T000000Z-deadbeef")


def test_moving_an_alias_keeps_its_history(registry: Path) -> None:
    storage = LocalStorage(registry)
    first = _latest(registry)
    manifest = registry_read(storage)
    files = {"manifest.json": manifest.model_copy(update={"version": "v2"}).model_dump_json().encode()}
    storage.publish_version("v2", files)
    record = reg.move_alias(storage, "production", "v2", reason="test")
    assert record.version == "v2"
    assert [h.version for h in record.history] == [first]
    assert reg.resolve_version(storage, "production") == "v2"


@pytest.mark.parametrize("bad", ["", "../etc", "aliases", "a/b", "x" * 200])
def test_invalid_version_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid version"):
        reg.manifest_key(bad)


def test_invalid_alias_is_rejected() -> None:
    with pytest.raises(ValueError, match="invalid alias"):
        reg.alias_key("../Production")


def test_parse_s3_uri() -> None:
    assert reg.parse_s3_uri("s3://bucket/a/b/") == ("bucket", "a/b")
    assert reg.parse_s3_uri("s3://bucket") == ("bucket", "")
    with pytest.raises(ValueError, match="no bucket"):
        reg.parse_s3_uri("s3:///x")


@mock_aws
def test_s3_storage_publishes_manifest_last_and_refuses_a_second_publish() -> None:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="models")
    storage = reg.open_storage("s3://models/registry", s3_client=client)
    assert isinstance(storage, S3Storage)
    storage.publish_version("v1", {"manifest.json": b"{}", "model.bin": b"abc"})
    assert storage.read("v1/model.bin") == b"abc"
    assert storage.exists("v1/manifest.json")
    assert not storage.exists("v2/manifest.json")
    with pytest.raises(VersionExistsError):
        storage.publish_version("v1", {"manifest.json": b"{}"})
    with pytest.raises(ArtifactNotFoundError):
        storage.read("v2/manifest.json")
    storage.replace_alias("production", b'{"x": 1}', expected=None)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="models")["Contents"])
    assert keys == ["registry/aliases/production.json", "registry/v1/manifest.json", "registry/v1/model.bin"]


@mock_aws
def test_s3_publish_race_never_overwrites_an_existing_versions_files(monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="models")
    storage = reg.open_storage("s3://models/r", s3_client=client)
    storage.publish_version("v1", {"manifest.json": b"{}", "model.bin": b"ORIGINAL"})
    # A second publisher that checked before the first finished (the exists() check lost the race):
    monkeypatch.setattr(S3Storage, "exists", lambda self, key: False)
    with pytest.raises(VersionExistsError):
        storage.publish_version("v1", {"manifest.json": b"{}", "model.bin": b"EVIL"})
    assert storage.read("v1/model.bin") == b"ORIGINAL"


def test_local_registry_is_readable_by_other_users(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.publish_version("v1", {"manifest.json": b"{}"})
    storage.replace_alias("production", b"{}", expected=None)
    assert (tmp_path / "v1").stat().st_mode & 0o055 == 0o055
    assert (tmp_path / "aliases" / "production.json").stat().st_mode & 0o044 == 0o044


@mock_aws
def test_s3_access_denied_reads_as_missing_or_not_readable() -> None:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="models")
    client.put_bucket_policy(
        Bucket="models",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::models/*",
                    }
                ],
            }
        ),
    )
    with pytest.raises(ArtifactNotFoundError, match="missing or not readable"):
        reg.open_storage("s3://models/r", s3_client=client).read("aliases/production.json")
