"""What batch scoring promises about the rows and files it is given, tried with files that broke it:
no row invented or lost (rows in == rows written + rows rejected, counted by a reference parser),
no input ever written, deleted or overwritten, one bad file fails alone, a bad value is a rejected
row, a skipped file is named, and nothing partial is left behind."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambda_app.batch import run as batch_run
from lambda_app.batch.__main__ import EXIT_ERROR, EXIT_OK, EXIT_REJECTED, main
from tests.conftest import SAMPLE_DATA

FLOWS = pd.read_csv(SAMPLE_DATA).head(40)


def score(source: Path | str, output: Path | str, registry: Path, *extra: str) -> int:
    return main(
        ["--input", str(source), "--output", str(output), "--model-uri", str(registry), "--quiet", *extra]
    )


def csv_records(path: Path) -> int:
    """Data records as Python's csv module reads them (blank lines are not records)."""
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        return sum(1 for row in csv.reader(handle) if row) - 1


def everything_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_quote_inside_an_unquoted_cell_never_invents_a_row(registry: Path, tmp_path: Path) -> None:
    """Two records; the old reader cut the quoted line break in two and scored an invented third row."""
    source = tmp_path / "notes.csv"
    source.write_text('one,two,three,note\n20,12.6,15.8,he is 5" tall\n21,12.7,15.9,"two\nlines"\n')
    out = tmp_path / "out.csv"
    assert score(source, out, registry) == EXIT_OK
    scored = pd.read_csv(out)
    assert scored["note"].tolist() == ['he is 5" tall', "two\nlines"]
    assert csv_records(out) == csv_records(source) == 2


@pytest.mark.parametrize(
    ("name", "output"),
    [
        ("scored.rejects.csv", "scored.csv"),  # the stale-rejects clean-up deleted the input
        ("fixed.rejects.csv", "fixed.csv"),  # the rejects of its 3 bad rows overwrote the input
    ],
)
def test_no_path_a_run_writes_or_deletes_is_an_input(
    name: str, output: str, registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = FLOWS.astype(object)
    frame.loc[:2, "two"] = "n/a"  # 3 rows that will be rejected
    source = tmp_path / name
    frame.to_csv(source, index=False)
    before = everything_under(tmp_path)
    assert score(source, tmp_path / output, registry) == EXIT_ERROR
    assert "which is one of its inputs" in capsys.readouterr().err
    assert everything_under(tmp_path) == before  # nothing written, nothing deleted


def test_an_output_that_links_to_the_input_is_refused(registry: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    FLOWS.to_csv(source, index=False)
    (tmp_path / "out.csv").symlink_to(source)
    before = source.read_bytes()
    assert score(source, tmp_path / "out.csv", registry) == EXIT_ERROR
    assert source.read_bytes() == before


def test_an_output_that_is_a_directory_is_refused_before_anything_is_written(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    source = work / "in.csv"
    FLOWS.to_csv(source, index=False)
    (work / "out.csv").mkdir()
    assert score(source, work / "out.csv", registry) == EXIT_ERROR
    assert "is a directory" in capsys.readouterr().err
    assert sorted(p.name for p in work.iterdir()) == ["in.csv", "out.csv"]  # no .out.csv.partial


def test_a_failure_while_putting_outputs_in_place_leaves_nothing_partial(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = FLOWS.astype(object)
    frame.loc[0, "two"] = "n/a"
    source = tmp_path / "in" / "flows.csv"
    source.parent.mkdir()
    frame.to_csv(source, index=False)
    real_put = batch_run.put

    def put(local: Path, uri: str, s3: Any = None) -> None:
        if ".rejects." in uri:
            raise OSError("disk full")
        real_put(local, uri, s3)

    monkeypatch.setattr(batch_run, "put", put)
    assert score(source, tmp_path / "out" / "flows.csv", registry) == EXIT_ERROR
    assert list((tmp_path / "out").iterdir()) == []  # no output without its rejects, no temporary file


def bad_files(root: Path) -> dict[str, str]:
    """A directory of good and bad files; returns each bad file's expected reason."""
    root.mkdir()
    FLOWS.to_csv(root / "a_good.csv", index=False)
    FLOWS.to_csv(root / "cr_only.csv", index=False, lineterminator="\r")  # read as CSV parsers read it
    (root / "with_bom.csv").write_bytes(b"\xef\xbb\xbf" + FLOWS.to_csv(index=False).encode())
    FLOWS.to_parquet(root / "z_good.parquet", index=False)
    (root / "truncated.csv.gz").write_bytes(gzip.compress(FLOWS.to_csv(index=False).encode())[:-30])
    (root / "latin1_header.csv").write_bytes("one,two,three,caf\xe9\n1,2,3,x\n".encode("latin-1"))
    (root / "ragged.csv").write_text("one,two,three\n1,2,3\n4,5\n")
    (root / "not_parquet.parquet").write_bytes(b"PAR1 this is not a parquet file")
    (root / "unclosed.csv").write_text('one,two,three,note\n1,2,3,"never closed\n4,5,6,x\n')
    return {
        "truncated.csv.gz": "compressed file is truncated",
        "latin1_header.csv": "header row is not UTF-8 text (byte 0xe9",
        "ragged.csv": "Expected 3 columns, got 2",
        "not_parquet.parquet": "",
        "unclosed.csv": "quoted field is never closed",
    }


def test_every_bad_file_fails_alone_and_every_good_file_is_scored(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = bad_files(tmp_path / "in")
    out = tmp_path / "out"
    assert score(tmp_path / "in", out, registry) == EXIT_ERROR
    err = capsys.readouterr().err
    for name, reason in expected.items():
        line = next(line for line in err.splitlines() if line.startswith(f"error: {tmp_path / 'in' / name}:"))
        assert reason in line, line
        assert line.endswith("(no output written)"), line
    assert f"error: {len(expected)} of 9 file(s) failed" in err
    assert "done: 4 file(s), 160 rows, 160 scored" in err
    assert f"{len(expected)} file(s) failed" in err
    assert sorted(p.name for p in out.iterdir()) == [
        "a_good.csv",
        "cr_only.csv",
        "with_bom.csv",
        "z_good.parquet",
    ]
    for name in ("a_good.csv", "cr_only.csv", "with_bom.csv"):  # rows in == rows written (+ 0 rejected)
        assert csv_records(out / name) == csv_records(tmp_path / "in" / name) == len(FLOWS)
    bom = pd.read_csv(out / "with_bom.csv")
    assert bom.equals(pd.read_csv(out / "a_good.csv"))  # a BOM changes nothing
    assert pq.read_metadata(out / "z_good.parquet").num_rows == len(FLOWS)


def test_bad_values_are_rejected_rows_never_a_failed_file(registry: Path, tmp_path: Path) -> None:
    """An integer beyond 2**53 in a Parquet feature; a latin-1 byte in one text cell of a CSV."""
    frame = FLOWS.head(5).copy()
    table = pa.table(
        {
            "one": pa.array([20, 2**53 + 1, 21, -(2**63), 22], pa.int64()),
            "two": frame["two"],
            "three": frame["three"],
        }
    )
    pq.write_table(table, tmp_path / "big_ints.parquet")
    assert score(tmp_path / "big_ints.parquet", tmp_path / "big.parquet", registry) == EXIT_REJECTED
    rejects = pq.read_table(tmp_path / "big.rejects.parquet").to_pylist()
    assert [r["row_number"] for r in rejects] == [2, 4]
    assert {r["reason"] for r in rejects} == {"field 'one': must be between -1e+12 and 1e+12"}
    assert pq.read_metadata(tmp_path / "big.parquet").num_rows == 3

    text = frame.to_csv(index=False).encode().splitlines()
    text[0] += b",city"
    lines = [text[0]] + [line + (b",Montr\xe9al" if i == 2 else b",Lyon") for i, line in enumerate(text[1:])]
    source = tmp_path / "latin1_cell.csv"
    source.write_bytes(b"\n".join(lines) + b"\n")
    assert score(source, tmp_path / "cell.csv", registry) == EXIT_REJECTED
    rejected = pd.read_csv(tmp_path / "cell.rejects.csv")
    assert rejected["row_number"].tolist() == [3]
    assert rejected["reason"].tolist() == ["field 'city': not UTF-8 text (byte 0xe9); save the file as UTF-8"]
    assert csv_records(tmp_path / "cell.csv") + len(rejected) == 5


def test_a_skipped_file_is_named_with_why(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    FLOWS.to_csv(tmp_path / "in" / "jan.csv", index=False)
    FLOWS.to_csv(tmp_path / "in" / "feb.rejects.csv", index=False)
    (tmp_path / "in" / "README.txt").write_text("notes")
    assert score(tmp_path / "in", tmp_path / "out", registry) == EXIT_OK
    err = capsys.readouterr().err
    assert f"skipped: {tmp_path / 'in' / 'feb.rejects.csv'}: its name marks it as a rejects file" in err
    assert f"skipped: {tmp_path / 'in' / 'README.txt'}: not a .csv, .csv.gz or .parquet table" in err
    assert "2 file(s) skipped" in err
    # named explicitly, it is scored
    assert score(tmp_path / "in" / "feb.rejects.csv", tmp_path / "feb.csv", registry) == EXIT_OK


def test_an_s3_output_that_would_replace_an_input_object_is_refused(
    s3: Any, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = io.BytesIO()
    FLOWS.to_csv(buffer, index=False)
    s3.put_object(Bucket="flows", Key="in/scored.rejects.csv", Body=buffer.getvalue())
    code = score("s3://flows/in/scored.rejects.csv", "s3://flows/in/scored.csv", registry)
    assert code == EXIT_ERROR
    assert "which is one of its inputs" in capsys.readouterr().err
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="flows")["Contents"]]
    assert keys == ["in/scored.rejects.csv"]
    assert s3.get_object(Bucket="flows", Key="in/scored.rejects.csv")["Body"].read() == buffer.getvalue()
