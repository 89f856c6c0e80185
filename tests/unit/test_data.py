"""Training data: read CSV/Parquet, validate with one clear line naming column and row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data.stream import load_dataset
from training.data.synthetic import generate
from training.exceptions import DataValidationError, TrainingError

FEATURES = ["one", "two", "three"]


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return str(path)


def test_reads_csv_with_labels_and_infers_dtypes(tmp_path: Path) -> None:
    generate(100, seed=1).to_csv(tmp_path / "d.csv", index=False)
    dataset = load_dataset(str(tmp_path / "d.csv"), FEATURES, "label")
    assert dataset.features.shape == (100, 3)
    # whole ports in the file do not make `one` an integer: a number unless declared ([data] types)
    assert dataset.feature_dtypes == ["number", "number", "number"]
    declared = load_dataset(str(tmp_path / "d.csv"), FEATURES, "label", types={"one": "integer"})
    assert declared.feature_dtypes == ["integer", "number", "number"]
    assert dataset.labels is not None
    assert dataset.labels.dtype == np.int64
    assert len(dataset.sha256) == 64


def test_reads_parquet(tmp_path: Path) -> None:
    frame = generate(50, seed=1)
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    dataset = load_dataset(str(tmp_path / "d.parquet"), FEATURES, "label")
    np.testing.assert_allclose(dataset.features, frame[FEATURES].to_numpy(dtype=float))


def test_missing_label_column_means_unlabelled(tmp_path: Path) -> None:
    uri = _csv(tmp_path, "one,two,three\n80,14,15\n")
    assert load_dataset(uri, FEATURES, "label").labels is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no data rows"),
        ("one,two,three,label\n", "no data rows"),
        ("one,two,label\n80,14,0\n", "missing column(s) 'three'"),
        ("one,two,three,label\n80,14,15,0\n80,abc,15,0\n", "column 'two', row 2: non-numeric value 'abc'"),
        ("one,two,three,label\n80,14,15,0\n80,14,,0\n", "column 'three', row 2: missing value (NaN)"),
        ("one,two,three,label\n80,NaN,15,0\n", "column 'two', row 1: missing value (NaN)"),
        ("one,two,three,label\n80,14,inf,0\n", "column 'three', row 1: infinite value"),
        (
            "one,two,three,label\n80,14,15,0\n80,14,15,2\n",
            "column 'label', row 2: label must be 0 or 1, got 2",
        ),
        ("one,two,three,label\n80,14,15,yes\n", "column 'label', row 1: non-numeric value 'yes'"),
    ],
)
def test_invalid_data_fails_with_one_line_naming_column_and_row(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(DataValidationError) as caught:
        load_dataset(_csv(tmp_path, text), FEATURES, "label", missing="refuse")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_values_are_kept_as_nan_when_imputed_and_refused_otherwise(tmp_path: Path) -> None:
    path = _csv(tmp_path, "one,two,three,label\n80,14,15,0\n80,n/a,,0\n81,NA,16,1\n")
    dataset = load_dataset(path, FEATURES, "label")  # the default: missing = "impute"
    assert np.isnan(dataset.features[1:, 1]).all()
    assert np.isnan(dataset.features[1, 2])
    assert dataset.features[0].tolist() == [80, 14, 15]
    with pytest.raises(DataValidationError, match="column 'two', row 2: missing value"):
        load_dataset(path, FEATURES, "label", missing="refuse")


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="does not exist"):
        load_dataset(str(tmp_path / "nope.csv"), FEATURES, None)
    (tmp_path / "d.json").write_text("{}")
    with pytest.raises(TrainingError, match="unsupported data format"):
        load_dataset(str(tmp_path / "d.json"), FEATURES, None)


def test_anomaly_labels_may_be_true_false(tmp_path: Path) -> None:
    path = _csv(tmp_path, "one,two,three,label\n80,14,15,False\n80,14,16,TRUE\n81,13,16,false\n")
    dataset = load_dataset(path, FEATURES, "label")
    assert dataset.labels is not None
    assert dataset.labels.tolist() == [0, 1, 0]
    with pytest.raises(DataValidationError, match="column 'label', row 2: missing value"):
        load_dataset(_csv(tmp_path, "one,two,three,label\n80,14,15,False\n80,14,16,\n"), FEATURES, "label")


@pytest.mark.parametrize("task", ["anomaly", "regression", "classification"])
def test_a_missing_label_is_refused_as_a_label_never_imputed(task: str, tmp_path: Path) -> None:
    from training.tasks import task_kind

    path = tmp_path / "t.csv"
    path.write_text("one,two,target\n80,14,1\n81,15,\n82,16,0\n")
    with pytest.raises(
        DataValidationError, match=r"column 'target', row 2: missing label: the label is never imputed"
    ):
        load_dataset(str(path), ["one", "two"], "target", labels_of=task_kind(task).labels)
