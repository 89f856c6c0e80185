"""Where tables come from and go to: a local file or directory, an S3 object or prefix.

Scoring itself only sees local files: an S3 input is downloaded to a scratch directory first
(Parquet needs random access; Lambda's /tmp holds it), and an output is written to a scratch path
and then moved into place (``os.replace`` locally, one upload to S3). Either way an output object
appears whole or not at all, and re-scoring an input rewrites the same output key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambda_app.batch.formats import UnsupportedFormatError, beside, format_of, is_table

REJECTS_TAG = "rejects"


class LocationError(ValueError):
    """An input that does not exist or holds no tables, or an output that would overwrite the input."""


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise LocationError(f"{uri}: not an S3 URI (s3://bucket/key)")
    return bucket, key


@dataclass(frozen=True)
class Job:
    """One input table and where its scored rows and rejects go."""

    source: str
    output: str
    rejects: str
    size: int

    @property
    def name(self) -> str:
        return self.source.rsplit("/", 1)[-1]


def plan(source: str, output: str, s3: Any = None) -> list[Job]:
    """One Job per input table: a file maps to ``output`` itself, a directory or prefix maps each
    table under it to the same relative path under ``output``."""
    files = _s3_tables(source, s3) if is_s3(source) else _local_tables(source)
    if not files:
        raise LocationError(f"{source}: no .csv, .csv.gz or .parquet files there")
    single = len(files) == 1 and files[0][0] == ""
    if single:  # the output of one file is a file: its name says the format
        if format_of(output) != format_of(source):
            raise LocationError(f"{output}: write the same format as the input ({format_of(source)})")
        jobs = [Job(source, output, beside(output, REJECTS_TAG), files[0][1])]
    else:
        base = output.rstrip("/") + "/"
        root = source.rstrip("/") + "/"
        jobs = [Job(root + rel, base + rel, beside(base + rel, REJECTS_TAG), size) for rel, size in files]
    _refuse_overlap(source, output)
    return jobs


def _refuse_overlap(source: str, output: str) -> None:
    def norm(uri: str) -> str:
        return uri if is_s3(uri) else str(Path(uri).resolve())

    src, out = norm(source).rstrip("/"), norm(output).rstrip("/")
    if src == out or out.startswith(src + "/"):
        raise LocationError(f"{output}: the output must not be the input or lie under it ({source})")


def _local_tables(source: str) -> list[tuple[str, int]]:
    path = Path(source)
    if path.is_file():
        format_of(path.name)
        return [("", path.stat().st_size)]
    if not path.is_dir():
        raise LocationError(f"{source}: no such file or directory")
    return [
        (str(found.relative_to(path)), found.stat().st_size)
        for found in sorted(path.rglob("*"))
        if found.is_file() and is_table(found.name) and f".{REJECTS_TAG}." not in found.name
    ]


def _s3_tables(source: str, s3: Any) -> list[tuple[str, int]]:
    bucket, key = split_s3(source)
    if key and not key.endswith("/") and is_table(key):
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError as exc:
            raise LocationError(f"{source}: cannot read it ({exc.response['Error'].get('Code')})") from exc
        return [("", int(head["ContentLength"]))]
    prefix = key.rstrip("/") + "/" if key else ""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"]
            if is_table(name) and f".{REJECTS_TAG}." not in name.rsplit("/", 1)[-1]:
                found.append((name[len(prefix) :], int(item["Size"])))
    return sorted(found)


@contextmanager
def fetched(uri: str, scratch: Path, s3: Any = None) -> Iterator[Path]:
    """A local path holding ``uri``: the file itself, or a download removed afterwards."""
    if not is_s3(uri):
        yield Path(uri)
        return
    bucket, key = split_s3(uri)
    local = scratch / ("input." + format_of(key))
    s3.download_file(bucket, key, str(local))
    try:
        yield local
    finally:
        local.unlink(missing_ok=True)


def scratch_for(uri: str, scratch: Path, tag: str) -> Path:
    """Where to write ``uri`` before it is put in place: beside it locally (same filesystem, so the
    final rename is atomic), in the scratch directory for S3."""
    if is_s3(uri):
        return scratch / f"{tag}.{format_of(uri)}"
    target = Path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".{target.name}.partial")


def put(local: Path, uri: str, s3: Any = None) -> None:
    """Move a finished file into place (atomically: a rename, or one S3 upload)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3.upload_file(str(local), bucket, key)
        local.unlink(missing_ok=True)
    else:
        os.replace(local, uri)


def remove(uri: str, s3: Any = None) -> None:
    """Delete ``uri`` if it exists: a stale rejects file from an earlier run of the same input."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3.delete_object(Bucket=bucket, Key=key)
    else:
        with suppress(FileNotFoundError):
            Path(uri).unlink()


__all__ = [
    "Job",
    "LocationError",
    "UnsupportedFormatError",
    "fetched",
    "plan",
    "put",
    "remove",
    "scratch_for",
]
