"""Batch scoring reads the records a real CSV parser reads, whatever the block and chunk sizes.

The reference is Python's ``csv`` module reading the whole file at once (blank lines are not
records; a UTF-8 byte order mark is not text). Generated files hold what broke the old reader:
quotes inside unquoted cells (``5" tall``), quoted commas, quotes and line breaks, LF / CRLF / CR
line ends, a BOM, blank lines, a missing final line break.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lambda_app.batch import formats
from lambda_app.batch.formats import open_table

EXAMPLES = 300
"""Enough to find the quote-in-an-unquoted-cell case: the old quote-counting reader failed within
the first 10-40 examples in every run tried (the explicit examples below fail it at once)."""

CELL_TEXT = st.text(alphabet=["a", "5", " ", '"', ",", "\n", "\r", "é", "x"], max_size=8)


def reference(raw: bytes) -> list[list[str]]:
    """What Python's csv module reads: the header and every record, blank lines left out."""
    text = raw.decode("utf-8").removeprefix("\ufeff")
    return [row for row in csv.reader(io.StringIO(text, newline="")) if row]


def reader_rows(
    raw: bytes, tmp_path: Path, block_bytes: int, chunk_rows: int, gz: bool = False
) -> list[list[str]]:
    path = tmp_path / ("t.csv.gz" if gz else "t.csv")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    original = formats.CSV_BLOCK_BYTES
    formats.CSV_BLOCK_BYTES = block_bytes
    try:
        table = open_table(path, "csv.gz" if gz else "csv", chunk_rows)
        try:
            rows = [list(table.schema.names)]
            for chunk in table.chunks:
                assert chunk.batch.num_rows <= chunk_rows
                assert not chunk.bad_text
                rows.extend([list(map(str, row.values())) for row in chunk.batch.to_pylist()])
        finally:
            table.close()
    finally:
        formats.CSV_BLOCK_BYTES = original
    return rows


def render(cell: str, style: str) -> str:
    """One cell as CSV text: quoted (always valid), or bare when nothing in it needs quoting."""
    bare_ok = cell and not any(c in cell for c in ",\r\n") and not cell.startswith('"')
    if style == "bare" and bare_ok:
        return cell
    return '"' + cell.replace('"', '""') + '"'


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(1, 4))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    header = [f"c{i}" if i else draw(st.sampled_from(["c0", 'say "x"', "a,b"])) for i in range(width)]
    lines = [",".join(render(name, "bare") for name in header)]
    for _ in range(draw(st.integers(0, 12))):
        cells = draw(st.lists(CELL_TEXT, min_size=width, max_size=width))
        styles = draw(st.lists(st.sampled_from(["bare", "bare", "quoted"]), min_size=width, max_size=width))
        line = ",".join(render(cell, style) for cell, style in zip(cells, styles, strict=True))
        if line == "":  # one empty bare cell is a blank line, not a record: quote it
            line = '""'
        lines.append(line)
        if draw(st.integers(0, 9)) == 0:
            lines.append("")  # a blank line
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    bom = "\ufeff" if draw(st.integers(0, 4)) == 0 else ""
    return (bom + text).encode()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=csv_files(),
    block_bytes=st.sampled_from([1, 7, 64, 1 << 20]),
    chunk_rows=st.sampled_from([1, 3, 1000]),
)
@example(raw=b'id,note\n1,he is 5" tall\n2,"two\nlines"\n', block_bytes=7, chunk_rows=1000)
@example(raw=b'a,b\n5",x\n"q\nq",y\n', block_bytes=1 << 20, chunk_rows=1000)
def test_records_are_what_the_reference_parser_reads(
    raw: bytes, block_bytes: int, chunk_rows: int, tmp_path: Path
) -> None:
    assert reader_rows(raw, tmp_path, block_bytes, chunk_rows) == reference(raw)


def test_quotes_inside_unquoted_cells_never_invent_rows(tmp_path: Path) -> None:
    """100,001 records with a literal quote in an unquoted cell and a quoted line break further on:
    the old reader read 100,002 (one record cut in two, scored as an invented row)."""
    lines = ["id,note"] + [
        f'{i},he is 5" tall' if i == 0 else f'{i},"multi\nline"' if i == 1 else f"{i},ok"
        for i in range(100_001)
    ]
    raw = ("\n".join(lines) + "\n").encode()
    rows = reader_rows(raw, tmp_path, 1 << 16, 10_000)
    assert len(rows) - 1 == 100_001 == len(reference(raw)) - 1
    assert rows == reference(raw)
    whole = pa_csv.read_csv(pa.py_buffer(raw), parse_options=pa_csv.ParseOptions(newlines_in_values=True))
    assert whole.num_rows == 100_001  # pyarrow reading the whole file agrees


@pytest.mark.parametrize("gz", [False, True])
def test_bom_crlf_and_cr_files_read_alike(gz: bool, tmp_path: Path) -> None:
    plain = b"one,two\n1,2\n3,4\n"
    for variant in (
        plain,
        b"\xef\xbb\xbf" + plain,
        plain.replace(b"\n", b"\r\n"),
        plain.replace(b"\n", b"\r"),
    ):
        assert reader_rows(variant, tmp_path, 5, 10, gz=gz) == [["one", "two"], ["1", "2"], ["3", "4"]]


def test_a_quoted_field_never_closed_fails_the_file_instead_of_swallowing_rows(tmp_path: Path) -> None:
    raw = b'id,note\n1,"never closed\n2,b\n3,c\n'
    with pytest.raises(formats.UnsupportedFormatError, match="quoted field is never closed"):
        reader_rows(raw, tmp_path, 8, 10)


def test_a_cell_that_is_not_utf8_sets_its_row_aside_with_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"one,city\n1,Paris\n2,Montr\xe9al\n3,Lyon\n")
    table = open_table(path, "csv", 10)
    chunks = list(table.chunks)
    table.close()
    assert [c.batch.num_rows for c in chunks] == [3]
    assert chunks[0].bad_text == {1: "field 'city': not UTF-8 text (byte 0xe9); save the file as UTF-8"}
    assert chunks[0].batch.column("city").to_pylist() == ["Paris", "Montr\ufffdal", "Lyon"]


def test_a_header_that_is_not_utf8_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"one,t\xe9l\n1,2\n")
    with pytest.raises(formats.UnsupportedFormatError, match=r"header row is not UTF-8 text \(byte 0xe9"):
        open_table(path, "csv", 10)


@settings(max_examples=200, deadline=None)
@given(raw=csv_files())
def test_the_one_cut_a_block_needs_is_the_last_of_all_record_ends(raw: bytes) -> None:
    """Blocks are cut at ``last_record_end`` (and the header at ``first_record_end``), computed alone
    for speed: they must be the last and first of ``record_ends``."""
    block = raw.removeprefix(b"\xef\xbb\xbf")
    ends = formats.record_ends(block)
    assert formats.last_record_end(block) == (int(ends[-1]) if len(ends) else None)
    assert formats.first_record_end(block) == (int(ends[0]) if len(ends) else None)
