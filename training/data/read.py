"""Where training data comes from: a local path or s3:// (downloaded to a temporary file), its hash,
its columns, and the newest file under a prefix."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from lambda_app.registry import parse_s3_uri
from training.exceptions import DataValidationError, TrainingError

log = logging.getLogger("training")


@contextlib.contextmanager
def local_copy(uri: str, s3_client: Any = None) -> Iterator[Path]:
    """A local path to the data: the file itself, or a temporary download from S3."""
    if not uri.startswith("s3://"):
        path = Path(uri)
        if not path.is_file():
            raise TrainingError(f"data file {uri} does not exist")
        yield path
        return
    bucket, key = parse_s3_uri(uri)
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    suffix = "".join(Path(key).suffixes[-2:])
    fd, name = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
    try:
        try:
            s3_client.download_file(bucket, key, name)
        except Exception as exc:  # botocore raises ClientError / endpoint errors
            raise TrainingError(f"cannot download {uri}: {exc}") from exc
        yield Path(name)
    finally:
        os.unlink(name)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


DETECTED_SEPARATORS = (";", "\t")
"""What a CSV whose header has no comma may be separated by instead (a spreadsheet's export in locales
that write a decimal comma uses semicolons)."""


def csv_separator(path: Path, uri: str, declared: str | None = None) -> str:
    """``declared``, else a comma, unless the header reads as one column holding semicolons or tabs."""
    if declared:
        return declared
    try:
        header = [str(c) for c in pd.read_csv(path, nrows=0, sep=",").columns]
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return ","  # the reader says what is wrong with the file
    if len(header) == 1:
        counts = {sep: header[0].count(sep) for sep in DETECTED_SEPARATORS}
        best = max(counts, key=lambda sep: counts[sep])
        if counts[best]:
            shown = "tab" if best == "\t" else f"'{best}'"
            log.warning(
                "%s: its header has no comma but %d %s: read as %s-separated"
                ' (set [data] separator = "%s" to say so)',
                uri,
                counts[best],
                "tabs" if best == "\t" else "semicolons",
                shown,
                "\\t" if best == "\t" else best,
            )
            return best
    return ","


def read_columns(uri: str, *, s3_client: Any = None, separator: str | None = None) -> list[str]:
    """The column names of a CSV or Parquet file, without reading its rows."""
    with local_copy(uri, s3_client) as path:
        name = uri.lower()
        try:
            if name.endswith((".parquet", ".pq")):
                import pyarrow.parquet as pq

                return [str(c) for c in pq.read_schema(path).names]
            if name.endswith((".csv", ".csv.gz")):
                sep = csv_separator(path, uri, separator)
                return [str(c) for c in pd.read_csv(path, nrows=0, sep=sep).columns]
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise DataValidationError(f"cannot parse {uri}: {str(exc).splitlines()[0]}") from exc
    raise unsupported_format(uri)


DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")


def unsupported_format(uri: str) -> TrainingError:
    """The refusal of a file that is not CSV or Parquet; a spreadsheet's says how to export it."""
    message = f"unsupported data format for {uri}: use .csv, .csv.gz or .parquet"
    if uri.lower().endswith(SPREADSHEET_SUFFIXES):
        message += (
            "; a spreadsheet is read once exported as CSV (Excel: File > Save As > CSV UTF-8;"
            " LibreOffice: File > Save As > Text CSV), or in Python:"
            " pandas.read_excel(path).to_csv('data.csv', index=False)"
        )
    return TrainingError(message)


def latest_data_uri(uri: str, *, s3_client: Any = None) -> str:
    """The newest data file under a prefix (``s3://bucket/prefix/`` or a local directory); a file as is.

    Scheduled retraining points at where new data lands (e.g. ``s3://bucket/data/``) and trains
    on the most recently written CSV or Parquet file there (latest modification time, then key).
    """
    if uri.startswith("s3://"):
        if not uri.endswith("/"):
            return uri
        bucket, prefix = parse_s3_uri(uri)
        prefix = f"{prefix}/" if prefix else ""
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        newest: tuple[Any, str] | None = None
        try:
            for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if item["Key"].endswith(DATA_SUFFIXES) and (
                        newest is None or (item["LastModified"], item["Key"]) > newest
                    ):
                        newest = (item["LastModified"], item["Key"])
        except Exception as exc:  # botocore raises ClientError / endpoint errors
            raise TrainingError(f"cannot list {uri}: {exc}") from exc
        if newest is None:
            raise TrainingError(f"no .csv or .parquet file under {uri}")
        return f"s3://{bucket}/{newest[1]}"
    path = Path(uri)
    if not path.is_dir():
        return uri
    files = [p for p in path.rglob("*") if p.is_file() and p.name.endswith(DATA_SUFFIXES)]
    if not files:
        raise TrainingError(f"no .csv or .parquet file under {uri}")
    return str(max(files, key=lambda p: (p.stat().st_mtime, str(p))))
