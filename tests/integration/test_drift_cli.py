"""Offline drift: a stable window passes, a shifted one fails the run, both write JSON and HTML reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.__main__ import main
from training.synthetic import generate


def test_a_stable_window_passes_and_a_shifted_window_exits_1(
    trained_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stable = tmp_path / "stable.csv"
    generate(3000, seed=42).to_csv(stable, index=False)
    shifted = tmp_path / "shifted.parquet"
    frame = generate(3000, seed=43)
    frame["two"] += 2.5
    frame.to_parquet(shifted, index=False)

    assert (
        main(
            [
                "drift",
                "--data",
                str(stable),
                "--model-uri",
                str(trained_registry),
                "--out",
                str(tmp_path / "ok"),
            ]
        )
        == 0
    )
    ok = json.loads((tmp_path / "ok" / "drift.json").read_text())
    assert ok["drifted_features"] == []
    assert max(v["psi"] for v in ok["features"].values()) < 0.1

    code = main(
        [
            "drift",
            "--data",
            str(shifted),
            "--model-uri",
            str(trained_registry),
            "--out",
            str(tmp_path / "bad"),
        ]
    )
    assert code == 1
    bad = json.loads((tmp_path / "bad" / "drift.json").read_text())
    assert bad["drifted_features"] == ["two"]
    assert bad["anomaly_rate"] > ok["anomaly_rate"]
    assert "drift: two above PSI 0.25" in capsys.readouterr().err
    page = (tmp_path / "bad" / "drift.html").read_text()
    assert "Drift in two" in page
    assert page.count("data:image/png;base64,") == 1


def test_the_threshold_is_configurable(trained_registry: Path, tmp_path: Path) -> None:
    window = tmp_path / "window.csv"
    generate(3000, seed=44).to_csv(window, index=False)
    args = [
        "drift",
        "--data",
        str(window),
        "--model-uri",
        str(trained_registry),
        "--out",
        str(tmp_path / "r"),
    ]
    assert main([*args, "--threshold", "0.000001"]) == 1
