"""CSVs as users have them: semicolon- or tab-separated files are read as such, found from the header or
declared with ``[data] separator``; a comma file is read as always."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.config import TrainingConfig
from training.data.read import read_columns
from training.data.stream import load_dataset
from training.exceptions import ConfigError, DataValidationError
from training.tasks.checks import load_config


def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "bytes": rng.integers(1, 5000, size=300),
            "duration": rng.normal(10, 2, size=300).round(3),
            "protocol": rng.choice(["tcp", "udp"], size=300),
            "label": rng.integers(0, 2, size=300),
        }
    )


@pytest.mark.parametrize(("separator", "said"), [(";", "semicolons: read as ';'-separated"), ("\t", "tabs")])
def test_a_file_whose_header_has_no_comma_but_semicolons_or_tabs_is_read_with_them(
    tmp_path: Path, separator: str, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "export.csv"
    table().to_csv(path, sep=separator, index=False)
    dataset = load_dataset(str(path), "auto", "label")
    assert dataset.feature_names == ["bytes", "duration", "protocol"]
    assert dataset.rows == 300
    np.testing.assert_allclose(dataset.features[:, 1], table()["duration"].to_numpy())
    notice = next(r.getMessage() for r in caplog.records if "header has no comma" in r.getMessage())
    assert said in notice
    assert "[data] separator" in notice
    assert read_columns(str(path)) == ["bytes", "duration", "protocol", "label"]


def test_a_declared_separator_is_used_and_a_comma_file_is_read_as_always(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    piped = tmp_path / "piped.csv"
    table().to_csv(piped, sep="|", index=False)  # never guessed: only declared
    dataset = load_dataset(str(piped), "auto", "label", separator="|")
    assert dataset.feature_names == ["bytes", "duration", "protocol"]
    commas = tmp_path / "commas.csv"
    table().to_csv(commas, index=False)
    assert load_dataset(str(commas), "auto", "label").rows == 300
    assert not any("header has no comma" in r.getMessage() for r in caplog.records)


def test_the_separator_setting_is_one_character(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[data]\nseparator = "\\t"\n')
    assert load_config(path).data.separator == "\t"
    path.write_text('[data]\nseparator = ";;"\n')
    with pytest.raises(ConfigError, match=r"data\.separator"):
        load_config(path)
    assert TrainingConfig.model_validate({}).data.separator is None


def test_a_declared_decimal_comma_reads_the_numbers_a_locale_export_writes(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    table().to_csv(path, sep=";", decimal=",", index=False)
    assert "," in path.read_text().splitlines()[1]  # e.g. 9,874
    dataset = load_dataset(str(path), "auto", "label", decimal=",")
    assert dataset.feature_names == ["bytes", "duration", "protocol"]  # duration a number, not a category
    np.testing.assert_array_equal(dataset.features[:, 1], table()["duration"].to_numpy())
    config = TrainingConfig.model_validate({"data": {"decimal": ","}})
    assert config.data.decimal == ","


def test_with_a_decimal_comma_a_number_written_with_a_dot_is_an_error_not_a_guess(tmp_path: Path) -> None:
    frame = table()
    frame["duration"] = frame["duration"].astype(str).str.replace(".", ",", regex=False)
    frame.loc[7, "duration"] = "1.250"
    path = tmp_path / "export.csv"
    frame.to_csv(path, sep=";", index=False)
    with pytest.raises(DataValidationError) as error:
        load_dataset(str(path), "auto", "label", decimal=",")
    message = str(error.value)
    assert "column 'duration', row 8: '1.250' is a number written with a dot" in message
    assert "thousands separators" in message
