"""The table formats batch scoring reads and writes: CSV (plain or gzip) and Parquet, in chunks.

pyarrow does the reading and writing (Parquet row groups keep memory bounded by the chunk, not the
file). CSV cells are read as text, so every input column is written back exactly as it came; only
the feature columns are parsed as numbers. The output has the input's format, and each output file
is written to a temporary path first: a failure leaves nothing behind that looks complete.

CSV records are what a real CSV parser reads (RFC 4180, as Python's ``csv`` module and pyarrow read
it): a quote opens a quoted field only at the start of a field, ``""`` inside one is a quote, a line
break (LF, CRLF or CR) inside one is part of the cell, blank lines are not records, a UTF-8 byte
order mark is not part of the first column's name. A cell that is not UTF-8 text makes its row a
rejected row (its reason names the column and the byte), never a failed file.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
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
MAX_RECORD_BYTES = 64 << 20
"""A record (or an unclosed quoted field) longer than this fails its file instead of filling memory."""
LF, CR, QUOTE, COMMA = ord("\n"), ord("\r"), ord('"'), ord(",")
BOM = b"\xef\xbb\xbf"


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
class Chunk:
    """Rows of a table, and the rows whose cells are not text (row in the chunk -> reason)."""

    batch: pa.RecordBatch
    bad_text: dict[int, str] = field(default_factory=dict)


@dataclass
class TableReader:
    """A file's schema, its row count when the format knows it, and its rows in chunks."""

    schema: pa.Schema
    rows: int | None
    chunks: Iterator[Chunk]
    close: Callable[[], None]


def open_table(path: Path, fmt: Format, chunk_rows: int) -> TableReader:
    """Read ``path`` in chunks of at most ``chunk_rows`` rows (CSV cells as text)."""
    if fmt == "parquet":
        parquet = pq.ParquetFile(path)
        return TableReader(
            schema=parquet.schema_arrow,
            rows=parquet.metadata.num_rows,
            chunks=(Chunk(batch) for batch in parquet.iter_batches(batch_size=chunk_rows)),
            close=parquet.close,
        )
    opener: Any = gzip.open if fmt == "csv.gz" else open
    handle = opener(path, "rb")
    try:
        blocks = record_blocks(handle)
        first = next(blocks, b"")
        header_end = _header_end(first)
        names = _header(first[:header_end])
    except BaseException:
        handle.close()
        raise
    if not names:
        handle.close()
        raise UnsupportedFormatError(f"{path.name}: empty file (a CSV needs a header row)")
    schema = pa.schema([pa.field(name, pa.string()) for name in names])
    rest = first[header_end:]
    return TableReader(
        schema=schema,
        rows=None,
        chunks=_parsed(_chained(rest, blocks), schema, chunk_rows),
        close=handle.close,
    )


def _chained(first: bytes, blocks: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from blocks


def _header_end(block: bytes) -> int:
    """Where the header record ends in the first block (the whole block when it is the only record)."""
    ends = record_ends(block)
    return int(ends[0]) if len(ends) else len(block)


def _header(raw: bytes) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedFormatError(
            f"the header row is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start});"
            " save the file as UTF-8"
        ) from None
    return next(csv.reader(io.StringIO(text.removesuffix("\n").removesuffix("\r"), newline="")), [])


def record_blocks(handle: Any, block_bytes: int | None = None) -> Iterator[bytes]:
    """The file in blocks of whole records, each ending just after a line break that ends a record.

    Written by hand because pyarrow's streaming CSV reader reads ahead without bound (measured: its
    peak memory grows with the file, 330 MB for a 216 MB CSV); parsing each block with
    ``pyarrow.csv.read_csv`` keeps one block in memory. Where records end comes from the same lexing
    rules the parser follows (``record_ends``), never from counting quote characters alone. A byte
    order mark at the start is dropped; blank lines before the header are skipped.

    Raises:
        UnsupportedFormatError: a quoted field is never closed, or one record outgrows MAX_RECORD_BYTES.
    """
    size = block_bytes or CSV_BLOCK_BYTES
    carry = b""
    start = True
    while True:
        data = handle.read(max(size, len(BOM)) if start else size)
        if start and data:
            data = data.removeprefix(BOM).lstrip(b"\r\n")
            if not data:
                continue
            start = False
        block = carry + data if carry else data
        if not data:
            if block:
                if _open_quote_at_end(block):
                    raise UnsupportedFormatError(
                        "a quoted field is never closed (a '\"' opens a cell that runs to the end of the"
                        f" file; the record starts with {_shown(block)})"
                    )
                yield block
            return
        ends = record_ends(block)
        if not len(ends):  # one record longer than a block: read on
            if len(block) > MAX_RECORD_BYTES:
                raise UnsupportedFormatError(
                    f"a record longer than {MAX_RECORD_BYTES >> 20} MB, or a quoted field that is never"
                    f" closed, starts with {_shown(block)}"
                )
            carry = block
            continue
        cut = int(ends[-1])
        carry = block[cut:]
        yield block[:cut]


def _shown(raw: bytes) -> str:
    return repr(raw[:60].decode("utf-8", "replace") + ("..." if len(raw) > 60 else ""))


def record_ends(block: bytes) -> np.ndarray:
    """Offsets just past each line break of ``block`` that ends a record, for a block that starts
    at a record's start. A CR at the very end is left out (its LF may be in the next block).

    The lexing rules of RFC 4180 as Python's csv and pyarrow apply them, vectorised over runs of
    consecutive quote characters: a run that starts a field (after a comma, a line break or the
    block's start) opens a quoted field, and an odd-length run opens it (its other quotes pair up
    as escaped ``""``); inside a quoted field an even run is escaped quotes and an odd run closes it;
    a run in the middle of an unquoted cell (``5" tall``) is text. So each run either toggles the
    state (odd, starting a field), resets it to "outside" (odd, elsewhere), or leaves it (even).
    """
    raw = np.frombuffer(block, dtype=np.uint8)
    breaks = np.flatnonzero((raw == LF) | (raw == CR))
    if len(breaks):
        # a CR followed by LF is not an end (the LF is); a CR at the very end may be one: wait for more
        following = np.full(len(breaks), LF, dtype=np.uint8)
        inner = breaks + 1 < len(raw)
        following[inner] = raw[breaks[inner] + 1]
        breaks = breaks[(raw[breaks] == LF) | ((following != LF) & inner)]
    quotes = np.flatnonzero(raw == QUOTE)
    if not len(quotes) or not len(breaks):
        return breaks + 1
    inside = _inside_after_runs(raw, quotes)
    starts, state = inside
    run = np.searchsorted(starts, breaks, side="right") - 1  # the last quote run before each break
    outside = np.ones(len(breaks), dtype=bool)
    has_run = run >= 0
    outside[has_run] = ~state[run[has_run]]
    return breaks[outside] + 1


def _inside_after_runs(raw: np.ndarray, quotes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The start of each run of quote characters and whether a quoted field is open after it."""
    new_run = np.ones(len(quotes), dtype=bool)
    new_run[1:] = np.diff(quotes) != 1
    starts = quotes[new_run]
    lengths = np.diff(np.append(np.flatnonzero(new_run), len(quotes)))
    before = raw[np.maximum(starts - 1, 0)]
    field_start = (starts == 0) | (before == COMMA) | (before == LF) | (before == CR)
    odd = lengths % 2 == 1
    toggle = odd & field_start
    reset = odd & ~field_start
    toggles = np.cumsum(toggle)
    last_reset = np.maximum.accumulate(np.where(reset, np.arange(len(starts)), -1))
    before_reset = np.where(last_reset >= 0, toggles[np.maximum(last_reset, 0)], 0)
    return starts, (toggles - before_reset) % 2 == 1


def _open_quote_at_end(block: bytes) -> bool:
    raw = np.frombuffer(block, dtype=np.uint8)
    quotes = np.flatnonzero(raw == QUOTE)
    if not len(quotes):
        return False
    return bool(_inside_after_runs(raw, quotes)[1][-1])


def _parsed(blocks: Iterator[bytes], schema: pa.Schema, chunk_rows: int) -> Iterator[Chunk]:
    """Each block parsed on its own (cells as bytes, then checked as UTF-8), cut into chunks."""
    convert = pa_csv.ConvertOptions(
        column_types={name: pa.binary() for name in schema.names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    for block in blocks:
        if not block.strip(b"\r\n"):
            continue
        parse = pa_csv.ParseOptions(newlines_in_values=b'"' in block)
        read = pa_csv.ReadOptions(column_names=schema.names, block_size=len(block) + 1)
        table = pa_csv.read_csv(
            pa.py_buffer(block), read_options=read, parse_options=parse, convert_options=convert
        )
        for batch in table.to_batches(max_chunksize=chunk_rows):
            yield _as_text(batch, schema)


def _as_text(batch: pa.RecordBatch, schema: pa.Schema) -> Chunk:
    """Binary cells -> text; a cell that is not UTF-8 is shown with U+FFFD and its row set aside."""
    columns = []
    bad: dict[int, str] = {}
    for name, column in zip(schema.names, batch.columns, strict=True):
        try:
            columns.append(column.cast(pa.string()))
            continue
        except pa.ArrowInvalid:
            pass
        cells = []
        for row, raw in enumerate(column.to_pylist()):
            try:
                cells.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                cells.append(raw.decode("utf-8", "replace"))
                reason = (
                    f"field '{name}': not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
                )
                bad[row] = f"{bad[row]}; {reason}" if row in bad else reason
        columns.append(pa.array(cells, pa.string()))
    return Chunk(pa.RecordBatch.from_arrays(columns, schema=schema), bad)


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
