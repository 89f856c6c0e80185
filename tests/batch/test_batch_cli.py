"""``python -m lambda_app.batch``: files in, files out, every row answered as /predict answers it."""

from __future__ import annotations

import gzip
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambda_app.batch.__main__ import EXIT_ERROR, EXIT_OK, EXIT_REJECTED, main
from tests.conftest import SAMPLE_DATA, predict_event, response_json


def score(source: Path | str, output: Path | str, registry: Path, *extra: str) -> int:
    return main(
        ["--input", str(source), "--output", str(output), "--model-uri", str(registry), "--quiet", *extra]
    )


def predict(handler_module: Callable[..., ModuleType], registry: Path, records: list[dict[str, Any]]) -> Any:
    from lambda_app.invoke import LocalLambdaContext

    module = handler_module(MODEL_URI=str(registry), MODEL_REFRESH_SECONDS="0")
    response = module.handler(predict_event(records), LocalLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    return response_json(response)


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    """300 rows of the sample flows plus a text column whose cells need CSV quoting."""
    frame = pd.read_csv(SAMPLE_DATA).head(300)
    frame.insert(0, "flow_id", [f'f-{i}, "x"' if i % 50 == 0 else f"f-{i}" for i in range(len(frame))])
    path = tmp_path / "flows.csv"
    frame.to_csv(path, index=False)
    return path


def test_scores_are_what_predict_answers_and_every_input_column_is_kept(
    flows: Path, registry: Path, tmp_path: Path, handler_module: Callable[..., ModuleType]
) -> None:
    out = tmp_path / "out" / "scored.csv"
    assert score(flows, out, registry) == EXIT_OK
    scored = pd.read_csv(out, dtype={"flow_id": str})
    original = pd.read_csv(flows, dtype={"flow_id": str})
    pd.testing.assert_frame_equal(scored[original.columns], original)  # every input column, as it was
    records = original[["one", "two", "three"]].to_dict(orient="records")
    answer = predict(handler_module, registry, records)
    assert scored["prediction"].tolist() == answer["predictions"]
    assert scored["score"].tolist() == answer["scores"]  # exactly: same float64, written round-trip
    assert set(scored["model_version"]) == {answer["version"]}
    assert not (tmp_path / "out" / "scored.rejects.csv").exists()
    assert '"f-0, ""x"""' in out.read_text()  # the cell that needs quoting, quoted as CSV does


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_task_answers_as_predict_does(
    task: str, task_registries: dict[str, Path], tmp_path: Path, handler_module: Callable[..., ModuleType]
) -> None:
    from training.data.synthetic import generate

    frame = generate(200, seed=11, task=task)
    source = tmp_path / "rows.parquet"
    frame.to_parquet(source, index=False)
    out = tmp_path / "scored.parquet"
    assert score(source, out, task_registries[task]) == EXIT_OK
    scored = pd.read_parquet(out)
    features = ["one", "two", "three"]
    answer = predict(handler_module, task_registries[task], frame[features].to_dict(orient="records"))
    assert scored["prediction"].tolist() == answer["predictions"]
    if task == "classification":
        for row, probabilities in enumerate(answer["probabilities"]):
            for label, probability in probabilities.items():
                assert scored[f"probability_{label}"][row] == probability
    else:
        assert list(scored.columns) == [*frame.columns, "prediction", "model_version"]


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_each_format_in_gives_the_same_format_out_and_rejects_beside_it(
    fmt: str, registry: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(SAMPLE_DATA).head(40).astype({"one": "float64"})
    frame.loc[3, "two"] = np.nan  # a missing value
    frame.loc[7, "one"] = np.inf  # not a finite number
    frame.loc[9, "three"] = 1e13  # beyond the sanity bound
    source = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(source, index=False)
    else:
        frame.to_csv(source, index=False, compression="gzip" if fmt == "csv.gz" else None)
    out = tmp_path / f"out.{fmt}"
    assert score(source, out, registry) == EXIT_REJECTED
    rejects_path = tmp_path / f"out.rejects.{fmt}"
    if fmt == "parquet":
        scored, rejects = pd.read_parquet(out), pd.read_parquet(rejects_path)
    else:
        scored, rejects = pd.read_csv(out), pd.read_csv(rejects_path)
        if fmt == "csv.gz":
            with gzip.open(out, "rt") as handle:  # really gzip
                assert handle.readline().startswith("one,two,three,label")
    assert len(scored) == 37
    assert rejects["row_number"].tolist() == [4, 8, 10]  # 1-based data rows
    assert rejects["reason"].tolist() == [
        "field 'two': missing value",
        "field 'one': must be a finite number",
        "field 'three': must be between -1e+12 and 1e+12",
    ]
    # The same codes as /predict's errors[].code (lambda_app/row_rules.py).
    assert rejects["reason_code"].tolist() == ["missing_value", "not_finite", "out_of_range"]
    assert list(rejects.columns) == ["row_number", "reason", "reason_code", *frame.columns]


def test_text_cells_that_are_not_finite_numbers_are_rejected_with_their_reason(
    registry: Path, tmp_path: Path
) -> None:
    source = tmp_path / "odd.csv"
    source.write_text("one,two,three\n1,2,3\nNA,2,3\n1,nan,3\n1,2,1e999\n1,2,twelve\n+4,.5,6e-1\n1, 2,3\n")
    out = tmp_path / "odd-scored.csv"
    assert score(source, out, registry) == EXIT_REJECTED
    rejects = pd.read_csv(tmp_path / "odd-scored.rejects.csv", keep_default_na=False)
    assert dict(zip(rejects["row_number"], rejects["reason"], strict=True)) == {
        2: "field 'one': must be a number, got 'NA'",
        3: "field 'two': must be a finite number",
        4: "field 'three': must be a finite number",
        5: "field 'three': must be a number, got 'twelve'",
        7: "field 'two': must be a number, got ' 2'",
    }
    assert pd.read_csv(out)["one"].tolist() == [1, 4]  # '+4,.5,6e-1' is a number written as one


def test_row_numbers_and_scores_do_not_depend_on_the_chunk_size(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One ONNX Runtime thread: with more, a small batch is split across trees and its float32 sum
    # may differ in the 7th digit from a large batch's (docs/batch.md).
    monkeypatch.setenv("INFERENCE_THREADS", "1")
    frame = pd.read_csv(SAMPLE_DATA).head(500).astype({"two": "object"})
    for row in (0, 6, 7, 250, 499):
        frame.loc[row, "two"] = "bad"
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    assert score(source, tmp_path / "whole.csv", registry) == EXIT_REJECTED
    assert score(source, tmp_path / "chunked.csv", registry, "--chunk-rows", "7") == EXIT_REJECTED
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    rejects = pd.read_csv(tmp_path / "chunked.rejects.csv")
    assert rejects["row_number"].tolist() == [1, 7, 8, 251, 500]


def test_a_directory_is_scored_file_by_file_and_a_rerun_rewrites_the_same_files(
    registry: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    (source / "day=2").mkdir(parents=True)
    frame = pd.read_csv(SAMPLE_DATA).head(30)
    frame.to_csv(source / "a.csv", index=False)
    frame.to_parquet(source / "day=2" / "b.parquet", index=False)
    (source / "README.txt").write_text("not a table")
    bad = frame.astype({"one": "object"})
    bad.loc[0, "one"] = ""
    bad.to_csv(source / "c.csv.gz", index=False, compression="gzip")
    out = tmp_path / "out"
    assert score(source, out, registry) == EXIT_REJECTED
    first = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert first == ["a.csv", "c.csv.gz", "c.rejects.csv.gz", "day=2", "day=2/b.parquet"]
    bad.loc[0, "one"] = 5  # fixed: the re-run scores it and the stale rejects file goes
    bad.to_csv(source / "c.csv.gz", index=False, compression="gzip")
    assert score(source, out, registry) == EXIT_OK
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "a.csv",
        "c.csv.gz",
        "day=2",
        "day=2/b.parquet",
    ]


def test_a_file_that_cannot_be_scored_leaves_no_output_and_exits_1(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    pd.read_csv(SAMPLE_DATA).head(10).to_csv(source / "good.csv", index=False)
    (source / "typo.csv").write_text("one,tow,three\n1,2,3\n")
    rows = "".join(f"{i},2,3\n" for i in range(20_000))
    (source / "ragged.csv").write_text(f"one,two,three\n{rows}1,2,3,4\n")
    out = tmp_path / "out"
    assert score(source, out, registry, "--chunk-rows", "1000") == EXIT_ERROR
    err = capsys.readouterr().err
    assert "lacks the model's feature column(s) 'two' (is 'tow' it?); found: one, tow, three" in err
    assert "ragged.csv" in err
    assert "Expected 3 columns, got 4" in err
    assert sorted(p.name for p in out.iterdir()) == ["good.csv"]  # no partial file for either failure


def test_a_spreadsheet_is_refused_with_how_to_export_it(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workbook = tmp_path / "flows.xlsx"
    workbook.write_bytes(b"PK\x03\x04 not really a workbook")
    assert (
        main(
            [
                "--input",
                str(workbook),
                "--output",
                str(tmp_path / "scored.xlsx"),
                "--model-uri",
                str(registry),
            ]
        )
        == EXIT_ERROR
    )
    err = capsys.readouterr().err
    assert "not a table batch scoring reads" in err
    assert "export the spreadsheet as CSV first (Excel: File > Save As > CSV UTF-8" in err
    assert not (tmp_path / "scored.xlsx").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "missing.csv", "--output", "x.csv"], "missing.csv: no such file or directory"),
        (["--input", "{flows}", "--output", "x.parquet"], "write the same format as the input (csv)"),
        (["--input", "{dir}", "--output", "{dir}/scored"], "must not be the input or lie under it"),
        (["--input", "{flows}", "--output", "x.json"], "not a table batch scoring reads"),
    ],
)
def test_usage_mistakes_are_one_line_errors(
    args: list[str],
    message: str,
    flows: Path,
    registry: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    filled = [arg.format(flows=flows, dir=flows.parent) for arg in args]
    assert main([*filled, "--model-uri", str(registry), "--quiet"]) == EXIT_ERROR
    assert message in capsys.readouterr().err


def test_a_scored_file_is_not_scored_again_by_accident(
    registry: Path, flows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert score(flows, tmp_path / "once.csv", registry) == EXIT_OK
    assert score(tmp_path / "once.csv", tmp_path / "twice.csv", registry) == EXIT_ERROR
    assert "already has column(s) prediction, score, model_version" in capsys.readouterr().err
    assert not (tmp_path / "twice.csv").exists()


def test_no_model_is_exit_1_naming_what_is_missing(
    flows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert score(flows, tmp_path / "o.csv", tmp_path / "empty-registry") == EXIT_ERROR
    assert "nothing published for alias 'production'" in capsys.readouterr().err


def test_summary_counts_anomalies_and_rejects(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(SAMPLE_DATA)
    source = tmp_path / "all.csv"
    frame.to_csv(source, index=False)
    assert score(source, tmp_path / "all-scored.csv", registry) == EXIT_OK
    scored = pd.read_csv(tmp_path / "all-scored.csv")
    anomalies = int(scored["prediction"].sum())
    share = 100 * anomalies / len(frame)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(
        f"done: 1 file(s), {len(frame):,} rows, {len(frame):,} scored: anomalies {anomalies:,}"
    )
    assert f"({share:.2f}%); 0 rejected;" in line


def test_s3_prefix_in_and_out(s3: Any, registry: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE_DATA).head(25)
    frame.to_csv(tmp_path / "a.csv", index=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp_path / "b.parquet")
    s3.upload_file(str(tmp_path / "a.csv"), "flows", "in/2026-11-28/a.csv")
    s3.upload_file(str(tmp_path / "b.parquet"), "flows", "in/2026-11-28/b.parquet")
    s3.put_object(Bucket="flows", Key="in/2026-11-28/_SUCCESS", Body=b"")
    assert score("s3://flows/in/2026-11-28/", "s3://flows/out/2026-11-28", registry) == EXIT_OK
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="flows", Prefix="out/")["Contents"])
    assert keys == ["out/2026-11-28/a.csv", "out/2026-11-28/b.parquet"]
    s3.download_file("flows", "out/2026-11-28/b.parquet", str(tmp_path / "b-scored.parquet"))
    scored = pd.read_parquet(tmp_path / "b-scored.parquet")
    assert len(scored) == 25
    assert not math.isnan(scored["score"].sum())


def test_the_api_path_never_imports_the_batch_stack() -> None:
    """pyarrow is in the image for batch scoring only: /predict's cold start must not load it."""
    import subprocess
    import sys

    probe = (
        "import sys, lambda_app.handler; print(sorted(m for m in ('pyarrow', 'tqdm') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={
            "PRELOAD_MODEL": "false",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": ".",
        },
    )
    assert result.stdout.strip() == "[]"


def test_the_command_leaves_the_service_logger_as_it_found_it(
    flows: Path, registry: Path, tmp_path: Path
) -> None:
    """It quiets the JSON logs while it runs; the logger is the process's (caught by CI: a later test of
    the service's logs saw nothing)."""
    from lambda_app.observability import logger

    before = logger.log_level
    assert score(flows, tmp_path / "o.csv", registry) == EXIT_OK
    assert logger.log_level == before
