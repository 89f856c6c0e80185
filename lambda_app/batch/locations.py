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


@dataclass(frozen=True)
class Plan:
    """The jobs of one run, and every file under the input that is not scored, with why."""

    jobs: list[Job]
    skipped: list[tuple[str, str]]


NOT_A_TABLE = "not a .csv, .csv.gz or .parquet table"
A_REJECTS_FILE = "its name marks it as a rejects file of an earlier run (rename it to score it)"


def plan(source: str, output: str, s3: Any = None) -> Plan:
    """One Job per input table: a file maps to ``output`` itself, a directory or prefix maps each
    table under it to the same relative path under ``output``.

    Refused before anything is written (LocationError): an output, rejects or temporary path that
    is, after resolving links, one of the input's files, and an output under the input.
    """
    files = _s3_files(source, s3) if is_s3(source) else _local_files(source)
    single = len(files) == 1 and files[0][0] == ""
    if single:  # a file named explicitly is scored whatever its name
        tables, skipped = files, []
    else:
        tables = [(rel, size) for rel, size in files if is_table(rel) and not _is_rejects(rel)]
        skipped = [
            (_joined(source, rel), NOT_A_TABLE if not is_table(rel) else A_REJECTS_FILE)
            for rel, _ in files
            if not is_table(rel) or _is_rejects(rel)
        ]
    if not tables:
        shown = ", ".join(path.rsplit("/", 1)[-1] for path, _ in skipped[:5])
        reason = f" (found only {shown}{', ...' if len(skipped) > 5 else ''})" if skipped else ""
        raise LocationError(f"{source}: no .csv, .csv.gz or .parquet files there to score{reason}")
    if single:  # the output of one file is a file: its name says the format
        if format_of(output) != format_of(source):
            raise LocationError(f"{output}: write the same format as the input ({format_of(source)})")
        jobs = [Job(source, output, beside(output, REJECTS_TAG), tables[0][1])]
    else:
        base = output.rstrip("/") + "/"
        root = source.rstrip("/") + "/"
        jobs = [Job(root + rel, base + rel, beside(base + rel, REJECTS_TAG), size) for rel, size in tables]
    _refuse_overlap(source, output)
    _refuse_writing_inputs(jobs, [_joined(source, rel) for rel, _ in files])
    return Plan(jobs, skipped)


def _joined(source: str, rel: str) -> str:
    return source if not rel else source.rstrip("/") + "/" + rel


def _is_rejects(name: str) -> bool:
    return f".{REJECTS_TAG}." in name.rsplit("/", 1)[-1]


def written_paths(job: Job) -> list[str]:
    """Every path a job may write: its output and rejects, and locally their temporary files."""
    paths = [job.output, job.rejects]
    if not is_s3(job.output):
        paths += [str(partial_path(Path(job.output))), str(partial_path(Path(job.rejects)))]
    return paths


def _refuse_writing_inputs(jobs: list[Job], inputs: list[str]) -> None:
    """No path a run writes (or deletes: a stale rejects file) may be one of its input files."""

    def norm(uri: str) -> str:
        return uri if is_s3(uri) else str(Path(uri).resolve())

    sources = {norm(uri): uri for uri in inputs}
    for job in jobs:
        for path in written_paths(job):
            hit = sources.get(norm(path))
            if hit is not None:
                raise LocationError(
                    f"{path}: this run would write or replace that path, which is one of its inputs"
                    f" ({hit}); choose another --output"
                )
            if not is_s3(path) and Path(path).is_dir():
                raise LocationError(f"{path}: is a directory; the output of one file is a file")


def _refuse_overlap(source: str, output: str) -> None:
    def norm(uri: str) -> str:
        return uri if is_s3(uri) else str(Path(uri).resolve())

    src, out = norm(source).rstrip("/"), norm(output).rstrip("/")
    if src == out or out.startswith(src + "/"):
        raise LocationError(f"{output}: the output must not be the input or lie under it ({source})")


def _local_files(source: str) -> list[tuple[str, int]]:
    """Every file at ``source`` (relative path, size): "" for the file itself."""
    path = Path(source)
    if path.is_file():
        format_of(path.name)
        return [("", path.stat().st_size)]
    if not path.is_dir():
        raise LocationError(f"{source}: no such file or directory")
    return [
        (found.relative_to(path).as_posix(), found.stat().st_size)
        for found in sorted(path.rglob("*"))
        if found.is_file()
    ]


def _s3_files(source: str, s3: Any) -> list[tuple[str, int]]:
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
            if not name.endswith("/"):  # a folder marker is not a file
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
    return partial_path(target)


def partial_path(target: Path) -> Path:
    """The temporary file beside a local output, renamed into place when complete."""
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
    "Plan",
    "UnsupportedFormatError",
    "fetched",
    "plan",
    "put",
    "remove",
    "scratch_for",
]
