"""The CSV reader cuts files into blocks of whole records: quoted line breaks, quotes and commas
inside cells, records longer than a block, CRLF and a missing final line break all survive."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lambda_app.batch import formats
from lambda_app.batch.formats import open_table


def read_all(path: Path, fmt: formats.Format, chunk_rows: int = 3) -> pd.DataFrame:
    table = open_table(path, fmt, chunk_rows)
    try:
        frames = [chunk.batch.to_pandas() for chunk in table.chunks]
    finally:
        table.close()
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=table.schema.names)


@pytest.mark.parametrize("block_bytes", [7, 64, 1 << 20])
@pytest.mark.parametrize("fmt", ["csv", "csv.gz"])
def test_blocks_end_between_records_whatever_the_cells_hold(
    block_bytes: int, fmt: formats.Format, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "CSV_BLOCK_BYTES", block_bytes)
    notes = ["plain", 'say "hi"', "two\nlines", "a,b", "", "x" * 200, '"\n"\n', "end"] * 5
    frame = pd.DataFrame({"one": range(len(notes)), "note": notes, "two": [1.5] * len(notes)})
    path = tmp_path / f"t.{fmt}"
    frame.to_csv(path, index=False, compression="gzip" if fmt == "csv.gz" else None)
    got = read_all(path, fmt)
    expected = frame.astype(str)
    expected["two"] = "1.5"
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_crlf_and_no_final_line_break(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"one,two\r\n1,2\r\n3,4")
    got = read_all(path, "csv")
    assert got.values.tolist() == [["1", "2"], ["3", "4"]]


def test_a_header_only_file_has_columns_and_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("one,two\n")
    table = open_table(path, "csv", 10)
    assert table.schema.names == ["one", "two"]
    assert list(table.chunks) == []
    table.close()


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("")
    with pytest.raises(formats.UnsupportedFormatError, match="empty file"):
        open_table(path, "csv", 10)
