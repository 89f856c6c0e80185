"""``python -m training retrain``: newest data under a prefix, a candidate, promotion through the gate."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lambda_app.registry import LocalStorage, read_alias, read_manifest
from tests.conftest import SAMPLE_DATA
from training.__main__ import GATE_REFUSED_EXIT, main
from training.data.read import latest_data_uri
from training.data.synthetic import generate
from training.exceptions import TrainingError


def test_newest_local_file_wins_by_modification_time(tmp_path: Path) -> None:
    (tmp_path / "2026" / "12").mkdir(parents=True)
    older, newer = tmp_path / "z-older.csv", tmp_path / "2026" / "12" / "a-newer.parquet"
    older.write_text("x")
    newer.write_text("x")
    (tmp_path / "notes.txt").write_text("newest, but not data")
    os.utime(older, (1_000, 1_000))
    os.utime(newer, (2_000, 2_000))
    assert latest_data_uri(f"{tmp_path}/") == str(newer)
    assert latest_data_uri(str(older)) == str(older)  # a file is taken as is


def test_newest_s3_object_under_the_prefix_wins() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        s3.put_object(Bucket="data", Key="incoming/b.csv", Body=b"x")
        time.sleep(1.1)  # S3 LastModified has one-second resolution
        for key in ("incoming/a.csv", "incoming/readme.txt", "incoming-archive/z.csv"):
            s3.put_object(Bucket="data", Key=key, Body=b"x")
        # the last .csv put under incoming/ (not the lexically last; not another prefix; not a .txt)
        assert latest_data_uri("s3://data/incoming/", s3_client=s3) == "s3://data/incoming/a.csv"
        assert latest_data_uri("s3://data/incoming/b.csv", s3_client=s3) == "s3://data/incoming/b.csv"
        with pytest.raises(TrainingError, match=r"no \.csv or \.parquet file under s3://data/empty/"):
            latest_data_uri("s3://data/empty/", s3_client=s3)


def test_an_empty_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retrain", "--data", f"{tmp_path}/", "--model-uri", str(tmp_path / "reg")]) == 1
    assert "no .csv or .parquet file under" in capsys.readouterr().err


LIGHT_CONFIG = """
[data]
label = "label"
[model]
estimator = "isolation_forest"
[model.params]
n_estimators = 50
[tuning]
enabled = false
"""


def test_retrain_promotes_then_keeps_production_when_the_gate_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incoming, registry = tmp_path / "incoming", tmp_path / "registry"
    incoming.mkdir()
    shutil.copy(SAMPLE_DATA, incoming / "week-1.csv")
    config = tmp_path / "light.toml"
    config.write_text(LIGHT_CONFIG)  # the gate is under test here, not the default model's training
    retrain = ["retrain", "--data", f"{incoming}/", "--model-uri", str(registry), "--config", str(config)]
    assert main(retrain) == 0
    storage = LocalStorage(registry)
    first = read_alias(storage, "production").version
    assert read_alias(storage, "candidate").version == first
    assert read_manifest(storage, first).provenance.data_uri == str(incoming / "week-1.csv")

    week2 = incoming / "week-2.csv"
    generate(4000, seed=11).to_csv(week2, index=False)
    os.utime(week2, (os.path.getmtime(incoming / "week-1.csv") + 60,) * 2)
    capsys.readouterr()
    # A margin of -1 demands a PR-AUC one whole point better: impossible, so the gate refuses.
    code = main([*retrain, "--margin", "-1"])
    assert code == GATE_REFUSED_EXIT
    err = capsys.readouterr().err
    assert "not promoted" in err
    second = read_alias(storage, "candidate").version
    # the way to serve it anyway is a promote command that exists (retrain has no --force)
    assert (
        f"python -m training promote --model-uri {registry} --version {second} --to production --force" in err
    )
    assert "use --force" not in err
    assert second != first
    assert read_manifest(storage, second).provenance.data_uri == str(week2)
    assert read_alias(storage, "production").version == first

    # A margin of 1 accepts any candidate: the comparison is printed and production moves.
    assert main([*retrain, "--margin", "1"]) == 0
    out = capsys.readouterr().out
    assert "gate pr_auc: candidate" in out
    assert read_alias(storage, "production").version == read_alias(storage, "candidate").version != first
