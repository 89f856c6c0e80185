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
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
CSV_BLOCK_BYTES = 8 << 20
"""CSV text parsed at a time (whole records); chunks are cut from each block."""
MAX_RECORD_BYTES = 64 << 20
"""A record (or an unclosed quoted field) longer than this fails its file instead of filling memory."""
LF, CR, QUOTE = ord("\n"), ord("\r"), ord('"')
BOM = b"\xef\xbb\xbf"
SEPARATORS = (",", ";", "\t", "|")
"""The separators a CSV may declare (--separator, BATCH_SEPARATOR)."""
DETECTED_SEPARATORS = (";", "\t")
"""What a CSV whose header has no comma may be separated by instead (a spreadsheet's export in
locales that write a decimal comma uses semicolons)."""


class UnsupportedFormatError(ValueError):
    """A file batch scoring cannot read."""


def format_of(name: str) -> Format:
    """The format a file name says it has; raises UnsupportedFormatError otherwise."""
    for suffix, fmt in SUFFIXES.items():
        if name.lower().endswith(suffix):
            return fmt
    message = f"{name}: not a table batch scoring reads (.csv, .csv.gz or .parquet)"
    if name.lower().endswith(SPREADSHEET_SUFFIXES):
        message += (
            "; export the spreadsheet as CSV first (Excel: File > Save As > CSV UTF-8;"
            " LibreOffice: File > Save As > Text CSV)"
        )
    raise UnsupportedFormatError(message)


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
    """A file's schema, its row count when the format knows it, and its rows in chunks; a CSV's
    separator (declared, or detected from its header)."""

    schema: pa.Schema
    rows: int | None
    chunks: Iterator[Chunk]
    close: Callable[[], None]
    separator: str = ","


def open_table(path: Path, fmt: Format, chunk_rows: int, separator: str | None = None) -> TableReader:
    """Read ``path`` in chunks of at most ``chunk_rows`` rows (CSV cells as text).

    ``separator``: a CSV's field separator; None reads a comma, unless the header reads as one
    column holding semicolons or tabs (then those).
    """
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
        if separator is None:
            separator = detect_separator(handle.read(64 << 10))
            handle.seek(0)
        blocks = record_blocks(handle, separator=separator)
        first = next(blocks, b"")
        header_end = _header_end(first, separator)
        names = _header(first[:header_end], separator)
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
        chunks=_parsed(_chained(rest, blocks), schema, chunk_rows, separator),
        close=handle.close,
        separator=separator,
    )


def detect_separator(head: bytes) -> str:
    """A comma, unless the first line read with commas is one column holding semicolons or tabs."""
    line = head.removeprefix(BOM).lstrip(b"\r\n").split(b"\n", 1)[0].decode("utf-8", "replace")
    header = next(csv.reader(io.StringIO(line.rstrip("\r"), newline="")), [])
    if len(header) != 1:
        return ","
    counts = {sep: header[0].count(sep) for sep in DETECTED_SEPARATORS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _chained(first: bytes, blocks: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from blocks


def _header_end(block: bytes, separator: str = ",") -> int:
    """Where the header record ends in the first block (the whole block when it is the only record)."""
    end = first_record_end(block, separator)
    return len(block) if end is None else end


def _header(raw: bytes, separator: str = ",") -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedFormatError(
            f"the header row is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start});"
            " save the file as UTF-8"
        ) from None
    lines = io.StringIO(text.removesuffix("\n").removesuffix("\r"), newline="")
    return next(csv.reader(lines, delimiter=separator), [])


def record_blocks(handle: Any, block_bytes: int | None = None, separator: str = ",") -> Iterator[bytes]:
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
                if _open_quote_at_end(block, separator):
                    raise UnsupportedFormatError(
                        "a quoted field is never closed (a '\"' opens a cell that runs to the end of the"
                        f" file; the record starts with {_shown(block)})"
                    )
                yield block
            return
        cut = last_record_end(block, separator)
        if cut is None:  # one record longer than a block: read on
            if len(block) > MAX_RECORD_BYTES:
                raise UnsupportedFormatError(
                    f"a record longer than {MAX_RECORD_BYTES >> 20} MB, or a quoted field that is never"
                    f" closed, starts with {_shown(block)}"
                )
            carry = block
            continue
        carry = block[cut:]
        yield block[:cut]


def _shown(raw: bytes) -> str:
    return repr(raw[:60].decode("utf-8", "replace") + ("..." if len(raw) > 60 else ""))


def record_ends(block: bytes, separator: str = ",") -> np.ndarray:
    """Offsets just past each line break of ``block`` that ends a record, for a block that starts
    at a record's start. A CR at the very end is left out (its LF may be in the next block).

    The lexing rules of RFC 4180 as Python's csv and pyarrow apply them, vectorised over runs of
    consecutive quote characters: a run that starts a field (after the separator, a line break or
    the block's start) opens a quoted field, and an odd-length run opens it (its other quotes pair up
    as escaped ``""``); inside a quoted field an even run is escaped quotes and an odd run closes it;
    a run in the middle of an unquoted cell (``5" tall``) is text. So each run either toggles the
    state (odd, starting a field), resets it to "outside" (odd, elsewhere), or leaves it (even).
    """
    raw = np.frombuffer(block, dtype=np.uint8)
    breaks = _line_ends(raw)
    quotes = np.flatnonzero(raw == QUOTE)
    if not len(quotes) or not len(breaks):
        return breaks + 1
    runs = _QuoteRuns(raw, quotes, separator)
    return np.asarray([b + 1 for b in breaks.tolist() if runs.outside_at(b)], dtype=np.int64)


def first_record_end(block: bytes, separator: str = ",") -> int | None:
    """``record_ends(block)[0]`` without computing the others (the header's end)."""
    return _one_record_end(block, last=False, separator=separator)


def last_record_end(block: bytes, separator: str = ",") -> int | None:
    """``record_ends(block)[-1]`` without computing the others (where a block is cut): the state at
    one line break costs a pass over the quote runs, not a search for every break."""
    return _one_record_end(block, last=True, separator=separator)


def _one_record_end(block: bytes, *, last: bool, separator: str = ",") -> int | None:
    raw = np.frombuffer(block, dtype=np.uint8)
    breaks = _line_ends(raw)
    if not len(breaks):
        return None
    quotes = np.flatnonzero(raw == QUOTE)
    if not len(quotes):
        return int(breaks[-1 if last else 0]) + 1
    runs = _QuoteRuns(raw, quotes, separator)
    for b in (breaks[::-1] if last else breaks).tolist():  # mostly the first one tried
        if runs.outside_at(b):
            return int(b) + 1
    return None


def _line_ends(raw: np.ndarray) -> np.ndarray:
    """Where a line break may end a record: every LF, and a CR not followed by an LF (not the last byte)."""
    breaks = np.flatnonzero((raw == LF) | (raw == CR))
    if len(breaks):
        following = np.full(len(breaks), LF, dtype=np.uint8)
        inner = breaks + 1 < len(raw)
        following[inner] = raw[breaks[inner] + 1]
        breaks = breaks[(raw[breaks] == LF) | ((following != LF) & inner)]
    return breaks


class _QuoteRuns:
    """The runs of quote characters of a block, each a toggle, a reset or neither (see record_ends)."""

    def __init__(self, raw: np.ndarray, quotes: np.ndarray, separator: str = ",") -> None:
        new_run = np.ones(len(quotes), dtype=bool)
        new_run[1:] = np.diff(quotes) != 1
        self.starts = quotes[new_run]
        odd = np.diff(np.append(np.flatnonzero(new_run), len(quotes))) % 2 == 1
        before = raw[np.maximum(self.starts - 1, 0)]
        field_start = (self.starts == 0) | (before == ord(separator)) | (before == LF) | (before == CR)
        self.toggle = odd & field_start
        self.resets = np.flatnonzero(odd & ~field_start)

    def outside_at(self, offset: int) -> bool:
        """Whether ``offset`` (not a quote) lies outside quoted fields: an even number of toggles
        since the last reset before it."""
        runs = int(np.searchsorted(self.starts, offset))  # the runs before it
        reset = int(np.searchsorted(self.resets, runs)) - 1
        since = int(self.resets[reset]) + 1 if reset >= 0 else 0
        return int(np.count_nonzero(self.toggle[since:runs])) % 2 == 0

    def open_at_end(self) -> bool:
        return not self.outside_at(int(self.starts[-1]) + 1)


def _open_quote_at_end(block: bytes, separator: str = ",") -> bool:
    raw = np.frombuffer(block, dtype=np.uint8)
    quotes = np.flatnonzero(raw == QUOTE)
    return bool(len(quotes)) and _QuoteRuns(raw, quotes, separator).open_at_end()


def _parsed(
    blocks: Iterator[bytes], schema: pa.Schema, chunk_rows: int, separator: str = ","
) -> Iterator[Chunk]:
    """Each block parsed on its own (cells as bytes, then checked as UTF-8), cut into chunks."""
    convert = pa_csv.ConvertOptions(
        column_types={name: pa.binary() for name in schema.names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    for block in blocks:
        if not block.strip(b"\r\n"):
            continue
        parse = pa_csv.ParseOptions(delimiter=separator, newlines_in_values=b'"' in block)
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

    CSV text cells are quoted only in the chunks where some cell needs it (the separator, a quote or
    a line break): plain files stay plain (``80,13.7,...``), and each chunk is valid CSV either way.
    A CSV is written with the separator its input was read with, and with ``decimal`` as the
    decimal separator of the numbers it adds.
    """

    def __init__(
        self, path: Path, fmt: Format, schema: pa.Schema, separator: str = ",", decimal: str = "."
    ) -> None:
        self.path = path
        self._separator = separator
        self._decimal = decimal
        self._quote_needed = re.compile(f'[{re.escape(separator)}"\r\n]')
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
            self._plain_header = not any(self._quote_needed.search(name) for name in schema.names)

    def write(self, batch: pa.RecordBatch) -> None:
        if self._parquet is not None:
            self._parquet.write_batch(batch)
        else:
            self._write_csv(batch)
        self.rows += batch.num_rows

    def _write_csv(self, batch: pa.RecordBatch) -> None:
        if self._decimal != ".":
            batch = _with_decimal(batch, self._decimal)
        plain = not any(
            pc.any(pc.match_substring_regex(batch.column(name), self._quote_needed.pattern)).as_py()
            for name in self._text
        )
        options = pa_csv.WriteOptions(
            include_header=self._header,
            delimiter=self._separator,
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


def _with_decimal(batch: pa.RecordBatch, decimal: str) -> pa.RecordBatch:
    """The batch's floating-point columns as text written with ``decimal`` (``12,5``)."""
    columns = [
        pc.replace_substring(column.cast(pa.string()), ".", decimal)
        if pa.types.is_floating(column.type)
        else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def is_text(kind: pa.DataType) -> bool:
    """A string column (pyarrow's two string types)."""
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)
