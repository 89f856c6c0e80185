"""No silent mistakes in what a model is trained on: ``features = "auto"`` says what it chose and why it
skipped the rest, and a label column that is not there is an error or a loud unlabelled run."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.config import DataConfig, TrainingConfig
from training.data.features import choose_features
from training.data.validate import validate
from training.exceptions import DataValidationError
from training.tasks.checks import load_config

ROWS = 60


def mixed_table() -> pd.DataFrame:
    """The sample's three features beside every kind of column auto must not use, as a CSV reads them."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "one": rng.integers(1, 500, ROWS),
            "two": rng.normal(14, 1, ROWS),
            "three": rng.normal(15, 1, ROWS),
            "is_anomaly": rng.integers(0, 2, ROWS),
            "protocol": rng.choice(["tcp", "udp", "icmp"], ROWS),
            "encrypted": rng.choice(["True", "False"], ROWS),
            "flow_id": np.arange(1000, 1000 + ROWS),
            "seen_at": pd.date_range("2026-11-01", periods=ROWS, freq="min").astype(str),
            "bytes": np.where(np.arange(ROWS) % 10 == 0, np.nan, rng.integers(1, 9000, ROWS)),
            "region": ["eu"] * ROWS,
            "note": [""] * ROWS,
            "customer": [f"C-{i:05d}" for i in rng.permutation(ROWS)],
        }
    )
    return frame.astype(str).replace("nan", "")  # every cell text, as training reads a CSV


def test_auto_chooses_every_usable_column_and_names_a_reason_for_every_other() -> None:
    choice = choose_features(mixed_table(), label="label", exclude=[])
    # True/False text: a boolean; tcp/udp/icmp: a category; 10% missing: imputed (the default)
    assert choice.names == ["one", "two", "three", "protocol", "encrypted", "bytes"]
    reasons = dict(choice.skipped)
    assert list(reasons) == ["is_anomaly", "flow_id", "seen_at", "region", "note", "customer"]
    assert reasons["is_anomaly"].startswith(
        "its name and its 2 distinct values say it is probably the label; set [data] label = 'is_anomaly'"
        " (or --label is_anomaly)"
    )
    assert reasons["flow_id"].startswith("increasing whole numbers, one per row: a row id")
    assert reasons["seen_at"].startswith("datetimes: derive numeric features")
    assert reasons["region"] == "constant: it carries no information"
    assert reasons["note"] == "empty: no values"
    assert reasons["customer"].startswith("text with a different value on every row (e.g. 'C-")
    assert "an id, not a category" in reasons["customer"]


def test_auto_skips_missing_values_when_refused_and_text_past_the_category_cap() -> None:
    choice = choose_features(mixed_table(), label="label", exclude=[], missing="refuse", max_categories=2)
    reasons = dict(choice.skipped)
    assert reasons["bytes"].startswith('6 missing values (10.0%) and [data] missing = "refuse"')
    assert reasons["protocol"].startswith("text with 3 distinct values (e.g.")
    assert "more than [data] max_categories = 2: free text or an id" in reasons["protocol"]
    assert choice.names == ["one", "two", "three", "encrypted"]


def test_types_override_what_the_values_show() -> None:
    frame = mixed_table()
    choice = choose_features(frame, label=None, exclude=[], types={"one": "category"})
    assert "one" in choice.names
    dataset = validate(frame, ["one", "two"], None, "t.csv", "0" * 64, types={"one": "category"})
    assert dataset.feature_dtypes == ["category", "number"]
    assert dataset.categories["one"] == sorted(set(frame["one"]))  # as text: "80" is a category name
    with pytest.raises(DataValidationError, match=r"column 'two', row 1: .* is not an integer"):
        validate(frame, ["two"], None, "t.csv", "0" * 64, types={"two": "integer"})


def test_auto_on_typed_parquet_columns() -> None:
    frame = pd.DataFrame(
        {
            "two": np.linspace(0, 1, ROWS),
            "flag": np.arange(ROWS) % 2 == 0,
            "at": pd.date_range("2026-11-01", periods=ROWS, freq="h"),
            "level": [3] * ROWS,
        }
    )
    choice = choose_features(frame, label=None, exclude=["two"])
    assert choice.names == ["flag"]  # a bool column is a feature
    assert [name for name, _ in choice.skipped] == ["two", "at", "level"]
    assert dict(choice.skipped)["two"] == "listed in [data] exclude"
    assert dict(choice.skipped)["level"].startswith("constant")


def test_validate_under_auto_logs_the_choice_and_each_skip(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="training")
    dataset = validate(mixed_table(), "auto", "is_anomaly", "flows.csv", "0" * 64)
    assert dataset.feature_names == ["one", "two", "three", "protocol", "encrypted", "bytes"]
    assert dataset.feature_dtypes == ["number", "number", "number", "category", "boolean", "number"]
    assert dataset.categories == {"protocol": ["icmp", "tcp", "udp"]}
    assert set(dataset.features[:, 3].tolist()) == {0.0, 1.0, 2.0}
    assert np.isnan(dataset.features[::10, 5]).all()
    assert dataset.labels is not None
    messages = [r.getMessage() for r in caplog.records]
    assert 'features = "auto": one, two, three, protocol, encrypted, bytes' in messages
    assert (
        "feature types: one number; two number; three number; protocol category (3 values: icmp, tcp, udp);"
        " encrypted boolean; bytes number, 10.0% missing"
    ) in messages
    assert any(m.startswith("feature 'seen_at' skipped: datetimes") for m in messages)
    assert not any("is_anomaly" in m and "skipped" in m for m in messages)  # it is the label now


def test_auto_with_nothing_usable_is_an_error_listing_why() -> None:
    frame = pd.DataFrame({"region": ["eu"] * 60})
    with pytest.raises(
        DataValidationError, match=r'features = "auto" found no usable column \(region: constant'
    ):
        validate(frame, "auto", None, "t.csv", "0" * 64)


def test_a_label_named_explicitly_that_the_data_lacks_is_an_error_listing_the_columns() -> None:
    with pytest.raises(DataValidationError) as raised:
        validate(mixed_table(), "auto", "target", "flows.csv", "0" * 64, label_required=True)
    message = str(raised.value)
    assert message.startswith(
        "label column 'target' is not in flows.csv; found: one, two, three, is_anomaly,"
    )
    assert "'is_anomaly' looks like a label" in message
    assert "pass --label is_anomaly, or set [data] label" in message


def test_the_default_label_name_missing_trains_unlabelled_after_one_loud_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="training")
    dataset = validate(mixed_table(), "auto", "label", "flows.csv", "0" * 64)
    assert dataset.labels is None
    (loud,) = [r for r in caplog.records if r.getMessage().startswith("NO LABEL")]
    assert loud.levelno == logging.WARNING
    text = loud.getMessage()
    assert "has no column 'label' (found: one, two, three, is_anomaly, protocol" in text
    assert "trained UNLABELLED" in text
    assert "'is_anomaly' looks like a label (2 values, " in text
    assert "to train on it, pass --label is_anomaly (and --task if it holds 0/1)" in text


def test_without_a_label_a_rare_flag_is_named_as_the_likely_label(caplog: pytest.LogCaptureFixture) -> None:
    """A customer table whose target is `churned`: not a target-like name, but a 0/1 with 15% ones."""
    caplog.set_level(logging.INFO, logger="training")
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 60, 200),
            "spend": rng.normal(50, 10, 200),
            "churned": (rng.random(200) < 0.15).astype(int),
        }
    ).astype(str)
    validate(frame, "auto", "label", "customers.csv", "0" * 64)
    (loud,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("NO LABEL")]
    assert "'churned' looks like a label (2 values, 1" in loud
    assert "pass --label churned (and --task if it holds 0/1)" in loud


def test_which_labels_must_be_present() -> None:
    assert not DataConfig().label_required  # the default name may be absent
    assert DataConfig(label="is_anomaly").label_required
    assert DataConfig(require_label=True).label_required  # what --label sets
    assert not DataConfig(label=None).label_required


def test_features_default_to_auto_and_lists_are_still_checked() -> None:
    assert load_config().data.features == "auto"
    with pytest.raises(ValueError, match='list at least one feature, or use features = "auto"'):
        TrainingConfig.model_validate({"data": {"features": []}})
    with pytest.raises(ValueError, match="the label cannot also be a feature"):
        TrainingConfig.model_validate({"data": {"features": ["one", "label"]}})


def test_the_command_trains_on_auto_features_and_refuses_a_missing_explicit_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lambda_app.registry import LocalStorage, read_manifest, resolve_version
    from training.__main__ import main
    from training.data.synthetic import generate

    frame = generate(1500, seed=4)
    frame.insert(0, "flow_id", range(len(frame)))
    frame["region"] = "eu"
    data = tmp_path / "flows.csv"
    frame.to_csv(data, index=False)
    registry = tmp_path / "registry"
    config = tmp_path / "fast.toml"
    config.write_text('[data]\nfeatures = "auto"\n[tuning]\nenabled = false\n')
    assert main(["--data", str(data), "--model-uri", str(registry), "--config", str(config)]) == 0
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    assert manifest.feature_names == ["one", "two", "three"]
    assert manifest.metrics is not None  # labelled: the default 'label' column is there

    assert (
        main(["--data", str(data), "--model-uri", str(registry), "--config", str(config), "--label", "kind"])
        == 1
    )
    assert "label column 'kind' is not in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("seen_at", "column 'seen_at' holds datetimes: derive numeric features from it first"),
        ("region", "column 'region' is constant (eu in every row): it carries no information"),
        ("flow_id", None),  # a row id, listed explicitly: the user's call
    ],
)
def test_what_auto_skips_is_a_one_line_error_when_listed_explicitly(column: str, message: str | None) -> None:
    frame = mixed_table()
    if message is None:
        assert validate(frame, ["two", column], None, "t.csv", "0" * 64).feature_names == ["two", column]
        return
    with pytest.raises(DataValidationError) as raised:
        validate(frame, ["two", column], None, "t.csv", "0" * 64)
    assert str(raised.value).startswith(message)


def test_free_text_past_the_category_cap_is_an_error_when_listed() -> None:
    with pytest.raises(DataValidationError, match="column 'protocol': 3 distinct values, more than"):
        validate(mixed_table(), ["two", "protocol"], None, "t.csv", "0" * 64, max_categories=2)


def test_once_the_label_is_known_no_column_is_skipped_for_its_name() -> None:
    """A passenger list's `class` beside the label `survived`; a stone's width `y` beside `price`."""
    rng = np.random.default_rng(0)
    passengers = pd.DataFrame(
        {"survived": rng.integers(0, 2, ROWS), "class": rng.choice(["First", "Second", "Third"], ROWS)}
    ).astype(str)
    assert choose_features(passengers, label="survived", exclude=[]).names == ["class"]
    stones = pd.DataFrame(
        {"price": rng.normal(4000, 900, ROWS), "x": rng.normal(5, 1, ROWS), "y": rng.normal(5, 1, ROWS)}
    ).astype(str)
    assert choose_features(stones, label="price", exclude=[]).names == ["x", "y"]


def test_without_a_label_a_target_name_alone_does_not_skip_a_column() -> None:
    """`y` holding measurements is a feature; `target` holding 0/1 is the likely label, said so."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"y": rng.normal(5, 1, ROWS), "target": rng.integers(0, 2, ROWS), "two": rng.normal(size=ROWS)}
    ).astype(str)
    choice = choose_features(frame, label="label", exclude=[])
    assert choice.names == ["y", "two"]
    assert dict(choice.skipped)["target"].startswith("its name and its 2 distinct values say it is probably")
