"""CSVs as spreadsheets export them: semicolons or tabs between fields, a decimal comma in numbers.

A file read with another separator is scored exactly as its comma-separated twin, and written back
with the separator it came with; a decimal comma is read only where declared.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lambda_app.batch.__main__ import EXIT_OK, EXIT_REJECTED, main
from lambda_app.batch.formats import detect_separator
from lambda_app.config import Settings
from tests.conftest import SAMPLE_DATA


def score(source: Path, output: Path, registry: Path, *extra: str) -> int:
    return main(
        ["--input", str(source), "--output", str(output), "--model-uri", str(registry), "--quiet", *extra]
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    """200 sample flows with a text column whose cells hold the separators and a quote."""
    rows = pd.read_csv(SAMPLE_DATA).head(200)
    rows.insert(0, "note", [f'a;b, "c"\td {i}' if i % 40 == 0 else f"n{i}" for i in range(len(rows))])
    return rows


@pytest.fixture
def reference(frame: pd.DataFrame, registry: Path, tmp_path: Path) -> pd.DataFrame:
    """The comma-separated twin, scored."""
    source = tmp_path / "comma.csv"
    frame.to_csv(source, index=False)
    assert score(source, tmp_path / "comma-scored.csv", registry) == EXIT_OK
    return pd.read_csv(tmp_path / "comma-scored.csv", dtype={"note": str})


@pytest.mark.parametrize(("separator", "named"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_header_without_commas_is_read_with_its_separator_and_said_once(
    separator: str,
    named: str,
    frame: pd.DataFrame,
    reference: pd.DataFrame,
    registry: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "export.csv"
    frame.to_csv(source, index=False, sep=separator)
    out = tmp_path / "scored.csv"
    capsys.readouterr()
    assert score(source, out, registry) == EXIT_OK
    err = capsys.readouterr().err
    assert f"its header has no comma but {named}" in err
    assert "--separator" in err
    scored = pd.read_csv(out, sep=separator, dtype={"note": str})
    pd.testing.assert_frame_equal(scored, reference)  # every cell and every score, as the comma twin's
    assert out.read_text().splitlines()[0].count(separator) == len(reference.columns) - 1


def test_a_declared_separator_and_decimal_comma_score_what_the_plain_file_scores(
    frame: pd.DataFrame, reference: pd.DataFrame, registry: Path, tmp_path: Path
) -> None:
    source = tmp_path / "piped.csv"
    frame.to_csv(source, index=False, sep="|", decimal=",")
    assert "," in source.read_text().splitlines()[1]  # 12,5 written as a decimal comma
    out = tmp_path / "scored.csv"
    assert score(source, out, registry, "--separator", "|", "--decimal", ",") == EXIT_OK
    scored = pd.read_csv(out, sep="|", dtype={"note": str}, decimal=",")
    pd.testing.assert_frame_equal(scored, reference)  # the numbers it adds are written with a comma too
    score_cell = out.read_text().splitlines()[1].split("|")[-2]
    assert "," in score_cell
    assert "." not in score_cell


def test_with_a_decimal_comma_a_dot_in_a_number_is_a_rejected_row_not_a_guess(
    registry: Path, tmp_path: Path
) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("one;two;three\n80;12,5;1,25\n80;1.250;1,25\n")
    out = tmp_path / "scored.csv"
    assert score(source, out, registry, "--decimal", ",") == EXIT_REJECTED
    assert len(pd.read_csv(out, sep=";")) == 1
    rejects = pd.read_csv(tmp_path / "scored.rejects.csv", sep=";")
    assert rejects["row_number"].tolist() == [2]
    assert "field 'two'" in rejects["reason"][0]


def test_a_separator_batch_scoring_does_not_read_is_a_usage_error(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("one,two,three\n80,1,2\n")
    with pytest.raises(SystemExit) as exit_:
        score(source, tmp_path / "out.csv", registry, "--separator", ":")
    assert exit_.value.code == 2
    assert "':': use ',' ';' 'tab' or '|'" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_detection_reads_a_comma_unless_the_header_is_one_column_holding_others() -> None:
    assert detect_separator(b"one,two;x,three\n1,2,3\n") == ","
    assert detect_separator(b"\xef\xbb\xbfone;two;three\r\n1;2;3\r\n") == ";"
    assert detect_separator(b"one\ttwo\n") == "\t"
    assert detect_separator(b"only\n1\n") == ","


def test_the_lambda_entry_point_reads_the_separator_from_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BATCH_SEPARATOR", "tab")
    monkeypatch.setenv("BATCH_DECIMAL", ",")
    settings = Settings()
    assert (settings.batch_separator, settings.batch_decimal) == ("\t", ",")
    monkeypatch.setenv("BATCH_SEPARATOR", "")
    assert Settings().batch_separator is None
    monkeypatch.setenv("BATCH_SEPARATOR", ":")
    with pytest.raises(ValueError, match="batch_separator"):
        Settings()
