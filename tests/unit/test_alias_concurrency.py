"""Concurrent alias moves: every promote, rollback or publish lands in the alias history.

Twenty movers start together (a barrier) on one alias; afterwards the record's history plus its
current version must name every version moved to exactly once. Locally from threads and from
separate processes, and on S3 (moto) from threads.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.s3.responses import S3Response

from lambda_app import registry as reg
from lambda_app.registry import (
    MANIFEST_FILE,
    AliasConflictError,
    LocalStorage,
    RegistryStorage,
    S3Storage,
)

ALIAS = "production"
MOVERS = 20  # history keeps 50 entries: 20 moves plus the first target all stay in it
FIRST = "v-first"
TIMEOUT = 120  # seconds; spawning 20 interpreters on a busy machine takes a while


@pytest.fixture(scope="module")
def manifest(trained_registry: Path) -> dict[str, Any]:
    """The trained example's manifest: a valid one to publish under other version ids."""
    storage = LocalStorage(trained_registry)
    version = reg.resolve_version(storage, ALIAS)
    loaded: dict[str, Any] = json.loads(storage.read(reg.manifest_key(version)))
    return loaded


def _publish(storage: RegistryStorage, manifest: dict[str, Any], *versions: str) -> None:
    """Publish ``manifest`` under each of ``versions``: enough for move_alias to accept them."""
    for version in versions:
        storage.publish_version(
            version, {MANIFEST_FILE: json.dumps({**manifest, "version": version}).encode()}
        )


def _versions_with_alias(storage: RegistryStorage, manifest: dict[str, Any]) -> list[str]:
    """Publish FIRST plus MOVERS versions, point ALIAS at FIRST; the versions to move to."""
    versions = [f"v{i:02d}" for i in range(MOVERS)]
    _publish(storage, manifest, FIRST, *versions)
    reg.move_alias(storage, ALIAS, FIRST, reason="first")
    return versions


def _assert_every_move_recorded(storage: RegistryStorage, moved: list[str]) -> None:
    record = reg.read_alias(storage, ALIAS)
    assert record is not None
    served = [entry.version for entry in record.history] + [record.version]
    assert len(served) == len(moved) + 1, f"{len(served) - 1} of {len(moved)} moves reached the history"
    assert sorted(served) == sorted([FIRST, *moved])  # each version exactly once


def _move_from_threads(storage: RegistryStorage, versions: list[str]) -> None:
    barrier = threading.Barrier(len(versions))

    def move(version: str) -> reg.AliasRecord:
        barrier.wait(timeout=TIMEOUT)
        return reg.move_alias(storage, ALIAS, version, reason=f"move to {version}")

    with ThreadPoolExecutor(max_workers=len(versions)) as pool:
        records = list(pool.map(move, versions))  # re-raises any mover's failure
    assert [record.version for record in records] == versions


def test_concurrent_moves_from_threads_keep_every_history_entry(
    tmp_path: Path, manifest: dict[str, Any]
) -> None:
    # GIVEN a local registry whose alias points at a first version
    storage = LocalStorage(tmp_path)
    versions = _versions_with_alias(storage, manifest)
    # WHEN twenty threads move the alias at once
    _move_from_threads(storage, versions)
    # THEN no move is lost
    _assert_every_move_recorded(storage, versions)


def _move_in_process(root: str, version: str, barrier: Any) -> None:
    """Runs in a spawned interpreter: one mover."""
    barrier.wait(timeout=TIMEOUT)
    reg.move_alias(LocalStorage(root), ALIAS, version, reason=f"move to {version}")


def test_concurrent_moves_from_processes_keep_every_history_entry(
    tmp_path: Path, manifest: dict[str, Any]
) -> None:
    # GIVEN a local registry whose alias points at a first version
    storage = LocalStorage(tmp_path)
    versions = _versions_with_alias(storage, manifest)
    # WHEN twenty processes move the alias at once
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(versions))
    movers = [
        context.Process(target=_move_in_process, args=(str(tmp_path), version, barrier))
        for version in versions
    ]
    for mover in movers:
        mover.start()
    try:
        for mover in movers:
            mover.join(timeout=TIMEOUT)
    finally:
        for mover in movers:
            if mover.is_alive():
                mover.kill()
    # THEN every process succeeded and no move is lost
    assert [mover.exitcode for mover in movers] == [0] * len(versions)
    _assert_every_move_recorded(storage, versions)


@pytest.fixture
def atomic_moto_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 answers each request on a key as one step; moto does it in several Python steps.

    Unserialised, two threads can both pass moto's If-Match / If-None-Match check before either
    writes (a lost update real S3 never allows), a put can close the buffer of the object another
    put is still hashing, and a get can read a buffer a concurrent put has just closed (ValueError:
    I/O operation on closed file). So the fake answers one key request at a time here. The race
    under test is unchanged: it lies between a mover's read and its conditional write, two requests.
    """
    key_response = S3Response.key_response
    lock = threading.Lock()

    @functools.wraps(key_response)
    def atomic(self: S3Response, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return key_response(self, *args, **kwargs)

    monkeypatch.setattr(S3Response, "key_response", atomic)


@pytest.fixture
def s3_storage(atomic_moto_objects: None) -> Iterator[S3Storage]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="models")
        storage = reg.open_storage("s3://models/registry", s3_client=client)
        assert isinstance(storage, S3Storage)
        yield storage


def test_concurrent_moves_on_s3_keep_every_history_entry(
    s3_storage: S3Storage, manifest: dict[str, Any]
) -> None:
    # GIVEN an S3 registry whose alias points at a first version
    versions = _versions_with_alias(s3_storage, manifest)
    # WHEN twenty threads move the alias at once
    _move_from_threads(s3_storage, versions)
    # THEN no move is lost
    _assert_every_move_recorded(s3_storage, versions)


@pytest.fixture(params=["local", "s3"])
def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> RegistryStorage:
    """Each backend in turn: a local directory, then S3 (moto)."""
    if request.param == "local":
        return LocalStorage(tmp_path)
    storage: S3Storage = request.getfixturevalue("s3_storage")
    return storage


def test_an_alias_is_created_only_if_still_absent(any_storage: RegistryStorage) -> None:
    assert any_storage.read_alias_snapshot(ALIAS) is None
    any_storage.replace_alias(ALIAS, b"first", expected=None)
    with pytest.raises(AliasConflictError, match=repr(ALIAS)):
        any_storage.replace_alias(ALIAS, b"second", expected=None)
    snapshot = any_storage.read_alias_snapshot(ALIAS)
    assert snapshot is not None
    assert snapshot.data == b"first"


def test_an_alias_is_replaced_only_if_unchanged_since_read(any_storage: RegistryStorage) -> None:
    any_storage.replace_alias(ALIAS, b"first", expected=None)
    read = any_storage.read_alias_snapshot(ALIAS)
    assert read is not None
    # WHEN someone else moves the alias after our read
    any_storage.replace_alias(ALIAS, b"theirs", expected=read)
    # THEN our write, based on the stale read, is refused and theirs stays
    with pytest.raises(AliasConflictError, match=repr(ALIAS)):
        any_storage.replace_alias(ALIAS, b"ours", expected=read)
    assert any_storage.read(reg.alias_key(ALIAS)) == b"theirs"


@pytest.mark.parametrize("code", ["PreconditionFailed", "ConditionalRequestConflict"])
def test_s3_conditional_write_refusals_are_conflicts(
    s3_storage: S3Storage, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    # S3 answers 409 ConditionalRequestConflict when another conditional write to the key is in flight.
    status = 412 if code == "PreconditionFailed" else 409

    def refuse(**kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
        )

    monkeypatch.setattr(s3_storage.client, "put_object", refuse)
    with pytest.raises(AliasConflictError, match=repr(ALIAS)):
        s3_storage.replace_alias(ALIAS, b"x", expected=None)


def test_s3_other_write_errors_are_not_conflicts(
    s3_storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deny(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied"}}, "PutObject")

    monkeypatch.setattr(s3_storage.client, "put_object", deny)
    with pytest.raises(ClientError, match="AccessDenied"):
        s3_storage.replace_alias(ALIAS, b"x", expected=None)


class _AlwaysMoved(LocalStorage):
    """A registry where someone else moves the alias between every read and write."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writes = 0

    def replace_alias(self, alias: str, data: bytes, *, expected: reg.AliasSnapshot | None) -> None:
        self.writes += 1
        raise AliasConflictError(f"alias {alias!r} changed")


def test_a_move_that_keeps_losing_gives_up_naming_the_alias(
    tmp_path: Path, manifest: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _AlwaysMoved(tmp_path)
    _publish(storage, manifest, "v1")
    sleeps: list[float] = []
    monkeypatch.setattr(reg.aliases.time, "sleep", sleeps.append)
    with pytest.raises(AliasConflictError, match=r"alias 'production' .*v1.* attempts"):
        reg.move_alias(storage, ALIAS, "v1")
    assert storage.writes == reg.ALIAS_MOVE_ATTEMPTS
    assert len(sleeps) == reg.ALIAS_MOVE_ATTEMPTS - 1
    assert all(pause >= 0 for pause in sleeps)


def test_a_move_retried_after_a_conflict_keeps_both_moves(
    tmp_path: Path, manifest: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a mover whose first write loses to another move made right after its read
    storage = LocalStorage(tmp_path)
    _publish(storage, manifest, "v1", "v2", "v3")
    reg.move_alias(storage, ALIAS, "v1")
    replace = storage.replace_alias
    raced: list[bool] = []

    def replace_after_a_rival(alias: str, data: bytes, *, expected: reg.AliasSnapshot | None) -> None:
        if not raced:
            raced.append(True)
            reg.move_alias(LocalStorage(tmp_path), ALIAS, "v2", reason="rival")
        replace(alias, data, expected=expected)

    monkeypatch.setattr(storage, "replace_alias", replace_after_a_rival)
    # WHEN it moves the alias to v3
    record = reg.move_alias(storage, ALIAS, "v3")
    # THEN it re-read and re-applied: both moves are in the record
    assert [entry.version for entry in record.history] == ["v1", "v2"]
    assert reg.read_alias(storage, ALIAS) == record
