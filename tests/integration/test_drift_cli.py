"""Offline drift: a stable window passes, a shifted one fails the run, both write JSON and HTML reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.__main__ import main
from training.data.synthetic import generate


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
    assert "drift: two (PSI above 0.25, or missing share up by more than 10%)" in capsys.readouterr().err
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


def test_a_three_sigma_shift_trips_the_out_of_range_signal(trained_registry: Path) -> None:
    """The reference range is normal traffic's (labelled anomalies left out), so shifting one feature by
    three standard deviations moves a large share of it out of range, past the 5 % alarm."""
    from lambda_app.drift import DriftMonitor
    from lambda_app.registry import LocalStorage, read_manifest, resolve_version

    storage = LocalStorage(trained_registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    two = manifest.reference.features["two"]
    window = generate(3000, seed=44)
    normal = window[window["label"] == 0][["one", "two", "three"]].to_numpy(dtype=float)
    assert two.max < 25  # the anomalies' out-of-range values (up to 40) are not in the reference
    calm = DriftMonitor(manifest.reference, manifest.feature_names).observe(normal)
    assert calm.out_of_range_share < 0.01
    shifted = normal.copy()
    shifted[:, 1] += 3 * two.std
    snapshot = DriftMonitor(manifest.reference, manifest.feature_names).observe(shifted)
    assert snapshot.out_of_range_share > 0.05  # averaged over the three features: terraform's default alarm


def test_training_reports_what_drives_the_answers_and_drift_compares_it(
    trained_registry: Path, tmp_path: Path
) -> None:
    version = json.loads((trained_registry / "aliases" / "production.json").read_text())["version"]
    evaluation = json.loads((trained_registry / version / "evaluation.json").read_text())
    importance = evaluation["explanation"]["importance"]
    assert set(importance) == {"one", "two", "three"}
    assert all(value > 0 for value in importance.values())
    report = (trained_registry / version / "evaluation.html").read_text()
    assert "Feature importance from the served explanations" in report

    # a window where 'two' moved far: its contribution to the score grows, the report says so
    shifted = tmp_path / "shifted.csv"
    frame = generate(1500, seed=44)
    frame["two"] += 4.0
    frame.to_csv(shifted, index=False)
    main(
        ["drift", "--data", str(shifted), "--model-uri", str(trained_registry), "--out", str(tmp_path / "d")]
    )
    drift = json.loads((tmp_path / "d" / "drift.json").read_text())
    assert drift["explanation_space"] == "score"
    two = drift["features"]["two"]
    assert two["reference_importance"] == pytest.approx(importance["two"])
    assert two["importance_ratio"] > 1.5
    assert "How much each feature drives the answers" in (tmp_path / "d" / "drift.html").read_text()
