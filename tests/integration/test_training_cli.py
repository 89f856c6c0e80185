"""The training CLI as a user runs it: exit codes, one-line errors, nothing half-published."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_DATA
from training.__main__ import main


def test_generate_then_train_parquet_without_alias(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "flows.parquet"
    assert main(["generate", "--rows", "400", "--out", str(data), "--seed", "1"]) == 0
    assert main(["--data", str(data), "--model-uri", str(tmp_path / "reg"), "--alias", ""]) == 0
    assert "holdout: pr_auc=" in capsys.readouterr().out
    assert not (tmp_path / "reg" / "aliases").exists()
    assert len([p for p in (tmp_path / "reg").iterdir()]) == 1


def test_unlabelled_data_uses_the_quantile_threshold(tmp_path: Path) -> None:
    data = tmp_path / "unlabelled.csv"
    lines = SAMPLE_DATA.read_text().splitlines()
    data.write_text("\n".join(",".join(line.split(",")[:3]) for line in lines[:500]) + "\n")
    assert main(["--data", str(data), "--model-uri", str(tmp_path / "reg")]) == 0
    alias = json.loads((tmp_path / "reg" / "aliases" / "production.json").read_text())
    manifest = json.loads((tmp_path / "reg" / alias["version"] / "manifest.json").read_text())
    assert manifest["label"] is None
    assert manifest["metrics"] is None
    assert 0.01 < manifest["reference"]["anomaly_rate"] < 0.06


def test_params_come_from_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training import train
    from training.tasks import base

    monkeypatch.setattr(train, "PARITY_PROBE_ROWS", base.PARITY_PROBE_ROWS)  # the published default
    config = tmp_path / "config.toml"
    config.write_text(
        'name = "small-forest"\n[data]\nfeatures = ["one", "two", "three"]\n'
        '[model]\nestimator = "isolation_forest"\n[model.params]\nn_estimators = 25\nmax_features = 0.67\n'
        "random_state = 3\n"
    )
    code = main(["--data", str(SAMPLE_DATA), "--model-uri", str(tmp_path / "reg"), "--config", str(config)])
    assert code == 0
    alias = json.loads((tmp_path / "reg" / "aliases" / "production.json").read_text())
    manifest = json.loads((tmp_path / "reg" / alias["version"] / "manifest.json").read_text())
    assert manifest["name"] == "small-forest"
    assert manifest["provenance"]["params"]["n_estimators"] == 25
    evaluation = json.loads((tmp_path / "reg" / alias["version"] / "evaluation.json").read_text())
    assert evaluation["parity"]["random"]["rows"] == 100_000
    assert evaluation["parity"]["random"]["prediction_mismatches"] == 0


def test_an_estimator_the_service_cannot_run_is_refused_before_fitting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[data]\nfeatures = ["one", "two", "three"]\n[model]\ntask = "regression"\n'
        'estimator = "sklearn.kernel_ridge.KernelRidge"\n'
    )
    code = main(["--data", str(SAMPLE_DATA), "--model-uri", str(tmp_path / "reg"), "--config", str(config)])
    assert code == 1
    err = capsys.readouterr().err
    # skl2onnx has no converter for it: refused with the converter's reason.
    assert "sklearn.kernel_ridge.KernelRidge cannot be converted to ONNX for serving: " in err
    assert "Unable to find a shape calculator" in err
    assert "fitting" not in err
    assert not (tmp_path / "reg").exists()


def test_bad_data_exits_1_with_one_line_and_publishes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("one,two,three,label\n" + "80,14,15,0\n" * 30 + "80,oops,15,0\n")
    result = subprocess.run(
        [sys.executable, "-m", "training", "--data", str(data), "--model-uri", str(tmp_path / "reg")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: column 'two', row 31: non-numeric value 'oops'"
    assert not (tmp_path / "reg").exists()


def test_too_few_rows_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "tiny.csv"
    data.write_text("one,two,three\n80,14,15\n")
    assert main(["--data", str(data), "--model-uri", str(tmp_path / "reg")]) == 1
    assert "training needs at least 20" in capsys.readouterr().err


def test_missing_arguments_exit_2() -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2


def test_invoke_module_prints_the_handler_response(trained_registry: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lambda_app.invoke", "events/apigw_v2_predict_single.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "MODEL_URI": str(trained_registry),
            "POWERTOOLS_TRACE_DISABLED": "true",
        },
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout.split("--- response ---", 1)[1])
    assert response["statusCode"] == 200
    assert set(response["body"]) == {"predictions", "scores", "version", "errors"}


def test_invoke_module_reports_an_unreadable_event(tmp_path: Path) -> None:
    from lambda_app.invoke import main as invoke_main

    assert invoke_main([str(tmp_path / "nope.json")]) == 2


@pytest.mark.parametrize("command", [[], ["generate"], ["drift"], ["import"], ["rollback"], ["list"]])
def test_help_lists_every_command_and_explains_every_option(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name in ("train", "generate", "import", "promote", "rollback", "retrain", "drift", "list"):
        assert f"\n  {name} " in text
    lines = text.splitlines()
    options = [index for index, line in enumerate(lines) if line.startswith("  --")]
    assert options
    # Every option has a help text, on its line or the next (argparse wraps long option names).
    for index in options:
        if len(lines[index].split()) <= 2:
            assert lines[index + 1].startswith(" " * 20), f"no help for {lines[index].strip()}"


def test_a_file_of_another_format_is_refused_with_the_supported_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "flows.txt"
    text.write_text(SAMPLE_DATA.read_text())
    assert main(["--data", str(text), "--model-uri", str(tmp_path / "reg")]) == 1
    assert "unsupported data format" in capsys.readouterr().err
    assert not (tmp_path / "reg").exists()


def test_a_spreadsheet_is_refused_with_how_to_export_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workbook = tmp_path / "flows.xlsx"
    workbook.write_bytes(b"PK\x03\x04 not really a workbook")
    assert main(["--data", str(workbook), "--model-uri", str(tmp_path / "reg")]) == 1
    err = capsys.readouterr().err
    assert "unsupported data format for" in err
    assert "File > Save As > CSV UTF-8" in err
    assert "pandas.read_excel" in err


def test_a_classifier_without_its_label_is_one_error_naming_the_likely_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from sklearn.datasets import load_breast_cancer

    data = tmp_path / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(data, index=False)
    config = tmp_path / "classifier.toml"
    config.write_text('[model]\ntask = "classification"\n')  # the label is not named: "label" is absent
    registry = tmp_path / "registry"
    assert main(["--data", str(data), "--model-uri", str(registry), "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "error: label column 'label' is not in" in err
    assert "'target' looks like a label (2 values" in err
    assert "pass --label target" in err
    # not the anomaly detector's unlabelled warning first: a classifier has no unlabelled run
    assert not any("UNLABELLED" in record.getMessage() for record in caplog.records)
    assert not registry.exists()
