"""``python -m training --data FILE --label COL``: the label's values choose the task when the config
does not, 0/1 asks, and a config that says otherwise is a conflict named as such."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from training.__main__ import main


def manifest(registry: Path) -> dict[str, object]:
    found: dict[str, object] = json.loads(next(registry.glob("*/manifest.json")).read_text())
    return found


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("table", "label", "task", "metric"),
    [
        ("wine", "cultivar", "classification", "f1_macro"),  # three whole-number classes
        ("wine_text", "cultivar", "classification", "f1_macro"),  # text classes
        ("diabetes", "progression", "regression", "rmse"),  # a measurement
    ],
)
def test_the_label_values_choose_the_task_and_its_defaults(
    table: str, label: str, task: str, metric: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if table.startswith("wine"):
        frame = load_wine(as_frame=True).frame.rename(columns={"target": label})
        if table == "wine_text":
            frame[label] = frame[label].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    else:
        frame = load_diabetes(as_frame=True).frame.rename(columns={"target": label})
    data = write(frame, tmp_path / f"{table}.csv")
    assert main(["--data", str(data), "--model-uri", str(tmp_path / "r"), "--label", label]) == 0
    published = manifest(tmp_path / "r")
    assert published["task"] == task
    assert published["label"] == label
    assert metric in published["metrics"]  # type: ignore[operator]
    assert label not in published["features"]  # type: ignore[operator]


def test_a_0_1_label_asks_which_task_and_takes_the_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "benign"})
    data = write(frame, tmp_path / "cancer.csv")
    assert main(["--data", str(data), "--model-uri", str(tmp_path / "r"), "--label", "benign"]) == 1
    err = capsys.readouterr().err
    assert "label column 'benign' holds 0/1: say which task it is. --task classification" in err
    assert "--task anomaly" in err
    assert not (tmp_path / "r").exists()
    code = main(
        [
            "--data",
            str(data),
            "--model-uri",
            str(tmp_path / "r"),
            "--label",
            "benign",
            "--task",
            "classification",
        ]
    )
    assert code == 0
    assert manifest(tmp_path / "r")["task"] == "classification"


def test_a_config_that_sets_another_task_is_a_conflict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    data = write(frame, tmp_path / "wine.csv")
    config = tmp_path / "mine.toml"
    config.write_text('[model]\ntask = "anomaly"\nestimator = "isolation_forest"\n')
    args = ["--data", str(data), "--model-uri", str(tmp_path / "r"), "--config", str(config)]
    assert main([*args, "--label", "cultivar", "--task", "regression"]) == 1
    err = capsys.readouterr().err
    assert "--task regression, but" in err
    assert "sets [model] task = 'anomaly' (estimator isolation_forest)" in err
