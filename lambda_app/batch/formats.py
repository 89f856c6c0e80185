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
import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

Format = Literal["csv", "csv.gz", "parquet"]
SUFFIXES: dict[str, Format] = {".csv.gz": "csv.gz", ".csv": "csv", ".parquet": "parquet"}
CSV_BLOCK_BYTES = 8 << 20
"""CSV text parsed at a time (whole records); chunks are cut from each block."""
NEWLINE, QUOTE = ord("\n"), ord('"')


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
    close: Callable[[], None]


def open_table(path: Path, fmt: Format, chunk_rows: int) -> TableReader:
    """Read ``path`` in chunks of at most ``chunk_rows`` rows (CSV cells as text)."""
    if fmt == "parquet":
        parquet = pq.ParquetFile(path)
        return TableReader(
            schema=parquet.schema_arrow,
            rows=parquet.metadata.num_rows,
            chunks=parquet.iter_batches(batch_size=chunk_rows),
            close=parquet.close,
        )
    opener: Any = gzip.open if fmt == "csv.gz" else open
    handle = opener(path, "rb")
    blocks = _record_blocks(handle)
    first = next(blocks, b"")
    header_end = first.find(b"\n") + 1 or len(first)
    header = next(csv.reader([first[:header_end].decode("utf-8")]), [])
    if not header:
        handle.close()
        raise UnsupportedFormatError(f"{path.name}: empty file (a CSV needs a header row)")
    schema = pa.schema([pa.field(name, pa.string()) for name in header])
    return TableReader(
        schema=schema,
        rows=None,
        chunks=_parsed(itertools.chain([first[header_end:]], blocks), schema, chunk_rows),
        close=handle.close,
    )


def _record_blocks(handle: Any) -> Iterator[bytes]:
    """The file in blocks of whole records: each block ends at a line break outside quotes.

    Written by hand because pyarrow's streaming CSV reader reads ahead without bound (measured: its
    peak memory grows with the file, 330 MB for a 216 MB CSV); parsing each block with
    ``pyarrow.csv.read_csv`` keeps one block in memory. In RFC 4180 CSV a line break is a record
    boundary exactly when an even number of quote characters precede it, and every block starts at
    a boundary, so the count starts afresh per block.
    """
    carry = b""
    while True:
        data = handle.read(CSV_BLOCK_BYTES)
        block = carry + data if carry else data
        if not data:
            if block:
                yield block
            return
        cut = _last_record_end(block)
        if cut is None:  # one record longer than a block: read on
            carry = block
            continue
        carry = block[cut:]
        yield block[:cut]


def _last_record_end(block: bytes) -> int | None:
    """The offset just past the last line break outside quotes, or None."""
    raw = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(raw == NEWLINE)
    if not len(newlines):
        return None
    quotes = np.flatnonzero(raw == QUOTE)
    if len(quotes):
        newlines = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
        if not len(newlines):
            return None
    return int(newlines[-1]) + 1


def _parsed(blocks: Iterator[bytes], schema: pa.Schema, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """Each block parsed on its own (all cells as text), cut into chunks of ``chunk_rows``."""
    convert = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in schema.names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    for block in blocks:
        if not block.strip():
            continue
        parse = pa_csv.ParseOptions(newlines_in_values=b'"' in block)
        read = pa_csv.ReadOptions(column_names=schema.names, block_size=len(block) + 1)
        table = pa_csv.read_csv(
            pa.py_buffer(block), read_options=read, parse_options=parse, convert_options=convert
        )
        yield from table.to_batches(max_chunksize=chunk_rows)


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
            self._text = [name for name in schema.names if is_text(schema.field(name).type)]
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


def is_text(kind: pa.DataType) -> bool:
    """A string column (pyarrow's two string types)."""
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)
