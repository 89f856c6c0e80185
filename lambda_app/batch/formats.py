"""The table formats batch scoring reads and writes: CSV (plain or gzip) and Parquet, in chunks.

pyarrow does the reading and writing (its streaming CSV reader and Parquet row groups keep memory
bounded by the chunk, not the file). CSV cells are read as text, so every input column is written
back exactly as it came; only the feature columns are parsed as numbers. The output has the input's
format, and each output file is written to a temporary path first: a failure leaves nothing behind
that looks complete.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

Format = Literal["csv", "csv.gz", "parquet"]
SUFFIXES: dict[str, Format] = {".csv.gz": "csv.gz", ".csv": "csv", ".parquet": "parquet"}
CSV_BLOCK_BYTES = 8 << 20
"""pyarrow's CSV reader parses this much text per block; chunks are cut from blocks."""


class UnsupportedFormatError(ValueError):
    """A file batch scoring cannot read."""


def format_of(name: str) -> Format:
    """The format a file name says it has; raises UnsupportedFormatError otherwise."""
    for suffix, fmt in SUFFIXES.items():
        if name.lower().endswith(suffix):
            return fmt
    raise UnsupportedFormatError(f"{name}: not a table batch scoring reads (.csv, .csv.gz or .parquet)")


def is_table(name: str) -> bool:
    return any(name.lower().endswith(suffix) for suffix in SUFFIXES)


def beside(name: str, tag: str) -> str:
    """``scored.csv.gz`` -> ``scored.rejects.csv.gz``: a sibling of the same format."""
    fmt = format_of(name)
    stem = name[: len(name) - len(fmt) - 1]
    return f"{stem}.{tag}.{fmt}"


@dataclass
class TableReader:
    """A file's schema, its row count when the format knows it, and its rows in chunks."""

    schema: pa.Schema
    rows: int | None
    chunks: Iterator[pa.RecordBatch]


def open_table(path: Path, fmt: Format, chunk_rows: int) -> TableReader:
    """Read ``path`` in chunks of at most ``chunk_rows`` rows (CSV cells as text)."""
    if fmt == "parquet":
        parquet = pq.ParquetFile(path)
        return TableReader(
            schema=parquet.schema_arrow,
            rows=parquet.metadata.num_rows,
            chunks=parquet.iter_batches(batch_size=chunk_rows),
        )
    header = _csv_header(path, fmt)
    if not header:
        raise UnsupportedFormatError(f"{path.name}: empty file (a CSV needs a header row)")
    stream = pa.input_stream(str(path), compression="gzip" if fmt == "csv.gz" else None)
    text = pa.string()
    reader = pa_csv.open_csv(
        stream,
        read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(header, text),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return TableReader(schema=reader.schema, rows=None, chunks=_sliced(reader, chunk_rows, stream))


def _csv_header(path: Path, fmt: Format) -> list[str]:
    opener: Any = gzip.open if fmt == "csv.gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def _sliced(reader: Any, chunk_rows: int, stream: Any) -> Iterator[pa.RecordBatch]:
    try:
        for block in reader:
            for offset in range(0, block.num_rows, chunk_rows):
                yield block.slice(offset, chunk_rows)
    finally:
        stream.close()


class TableWriter:
    """Writes chunks of one schema to ``path`` in ``fmt``.

    CSV text cells are quoted only in the chunks where some cell needs it (a comma, quote or line
    break): plain files stay plain (``80,13.7,...``), and each chunk is valid CSV either way.
    """

    def __init__(self, path: Path, fmt: Format, schema: pa.Schema) -> None:
        self.path = path
        self.rows = 0
        self._schema = schema
        self._header = True
        self._parquet: Any = None
        self._sink: Any = None
        if fmt == "parquet":
            self._parquet = pq.ParquetWriter(path, schema, compression="snappy")
        else:
            self._sink = pa.output_stream(str(path), compression="gzip" if fmt == "csv.gz" else None)
            self._text = [name for name in schema.names if _is_text(schema.field(name).type)]
            self._plain_header = not any(QUOTE_NEEDED.search(name) for name in schema.names)

    def write(self, batch: pa.RecordBatch) -> None:
        if self._parquet is not None:
            self._parquet.write_batch(batch)
        else:
            self._write_csv(batch)
        self.rows += batch.num_rows

    def _write_csv(self, batch: pa.RecordBatch) -> None:
        plain = not any(
            pc.any(pc.match_substring_regex(batch.column(name), QUOTE_NEEDED.pattern)).as_py()
            for name in self._text
        )
        options = pa_csv.WriteOptions(
            include_header=self._header,
            quoting_style="none" if plain else "needed",
            quoting_header="none" if self._plain_header else "needed",
        )
        pa_csv.write_csv(batch, self._sink, options)
        self._header = False

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            return
        if self._header:  # no chunk came: the file still gets its header
            self._write_csv(_empty(self._schema))
        self._sink.close()

    def abandon(self) -> None:
        """Close without caring whether the file is whole; the caller deletes it."""
        with suppress(Exception):
            self.close()


QUOTE_NEEDED = re.compile(r'[,"\r\n]')


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)
