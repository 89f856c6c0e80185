"""lambda_app.batch.handler: the image's batch entry point, as Step Functions Distributed Map calls it,
against moto's S3."""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from lambda_app.invoke import LocalLambdaContext
from tests.conftest import EVENTS_DIR, SAMPLE_DATA

BUCKET = "flows"
PREFIXES = {"bucket": BUCKET, "input_prefix": "batch/input/", "output_prefix": "batch/output/"}


@dataclass
class Batch:
    module: ModuleType
    s3: Any

    def put(self, key: str, frame: pd.DataFrame) -> int:
        buffer = io.BytesIO()
        if key.endswith(".parquet"):
            frame.to_parquet(buffer, index=False)
        else:
            frame.to_csv(buffer, index=False, compression="gzip" if key.endswith(".gz") else None)
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
        return len(buffer.getvalue())

    def read(self, key: str) -> pd.DataFrame:
        body = io.BytesIO(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        if key.endswith(".parquet"):
            return pd.read_parquet(body)
        return pd.read_csv(body, compression="gzip" if key.endswith(".gz") else None)

    def output_keys(self, prefix: str = "batch/output/") -> list[str]:
        return sorted(
            o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        )


def load_batch(monkeypatch: pytest.MonkeyPatch, registry: Path, **env: str) -> ModuleType:
    monkeypatch.setenv("MODEL_URI", str(registry))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import lambda_app.batch.handler

    return importlib.reload(lambda_app.batch.handler)  # a new container: settings and clients afresh


@pytest.fixture
def batch(registry: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Batch]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield Batch(load_batch(monkeypatch, registry), s3)


FLOWS = pd.read_csv(SAMPLE_DATA).head(60)


def test_one_item_is_scored_to_its_deterministic_output_key(batch: Batch) -> None:
    size = batch.put("batch/input/day=1/a.csv", FLOWS)
    result = batch.module.handler(
        {**PREFIXES, "Key": "batch/input/day=1/a.csv", "Size": size}, LocalLambdaContext()
    )
    (scored,) = result["objects"]
    assert scored["output"] == f"s3://{BUCKET}/batch/output/day=1/a.csv"
    assert (scored["rows"], scored["rejected"], scored["rejects"]) == (60, 0, None)
    assert result["rows"] == 60
    output = batch.read("batch/output/day=1/a.csv")
    assert list(output.columns) == [*FLOWS.columns, "prediction", "score", "model_version"]
    assert output["model_version"].unique().tolist() == [scored["model_version"]]


def test_a_batch_of_every_format_is_scored_and_a_rerun_rewrites_the_same_objects(batch: Batch) -> None:
    bad = FLOWS.astype({"two": "object"})
    bad.loc[5, "two"] = "n/a"
    items = [
        {"Key": "batch/input/a.csv", "Size": batch.put("batch/input/a.csv", FLOWS)},
        {"Key": "batch/input/b.csv.gz", "Size": batch.put("batch/input/b.csv.gz", bad)},
        {"Key": "batch/input/c.parquet", "Size": batch.put("batch/input/c.parquet", FLOWS)},
    ]
    event = {"BatchInput": PREFIXES, "Items": items}
    first = batch.module.handler(event, LocalLambdaContext())
    assert (first["rows"], first["rejected"]) == (180, 1)
    expected = [
        "batch/output/a.csv",
        "batch/output/b.csv.gz",
        "batch/output/b.rejects.csv.gz",
        "batch/output/c.parquet",
    ]
    assert batch.output_keys() == expected
    rejects = batch.read("batch/output/b.rejects.csv.gz")
    assert rejects[["row_number", "reason"]].values.tolist() == [
        [6, "field 'two': must be a number, got 'n/a'"]
    ]
    before = {key: batch.read(key) for key in expected}
    second = batch.module.handler(event, LocalLambdaContext())  # a retried item: same keys, same content
    assert second == first
    assert batch.output_keys() == expected
    for key, frame in before.items():
        pd.testing.assert_frame_equal(batch.read(key), frame)
    batch.put("batch/input/b.csv.gz", FLOWS)  # fixed: the stale rejects object goes
    batch.module.handler(event, LocalLambdaContext())
    assert "batch/output/b.rejects.csv.gz" not in batch.output_keys()


def test_an_object_over_the_size_limit_is_refused_naming_the_limit(
    registry: Path, monkeypatch: pytest.MonkeyPatch, batch: Batch
) -> None:
    module = load_batch(monkeypatch, registry, BATCH_MAX_OBJECT_BYTES="1000")
    batch.put("batch/input/big.csv", FLOWS)
    with pytest.raises(module.ObjectTooLargeError, match=r"over this function's limit of 1,000 bytes"):
        module.handler({**PREFIXES, "Key": "batch/input/big.csv"}, LocalLambdaContext())  # size from S3
    assert batch.output_keys() == []


class RunningOut(LocalLambdaContext):
    """Plenty of time for the first chunks, then almost none."""

    calls = 0

    def get_remaining_time_in_millis(self) -> int:
        self.calls += 1
        return 600_000 if self.calls <= 3 else 1_000  # once before the object, then once per chunk


def test_running_out_of_time_writes_nothing(
    registry: Path, monkeypatch: pytest.MonkeyPatch, batch: Batch
) -> None:
    module = load_batch(monkeypatch, registry, BATCH_CHUNK_ROWS="10")
    batch.put("batch/input/slow.csv", FLOWS)
    with pytest.raises(module.BatchTimeLimitError, match="stopped after 20 rows, out of time"):
        module.handler({**PREFIXES, "Key": "batch/input/slow.csv"}, RunningOut())
    assert batch.output_keys() == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({**PREFIXES, "Key": "elsewhere/a.csv"}, "is not under the input prefix"),
        (
            {"bucket": BUCKET, "input_prefix": "batch/input/", "Key": "batch/input/a.csv"},
            "lacks 'output_prefix'",
        ),
        (
            {**PREFIXES, "output_prefix": "batch/input/scored/", "Key": "batch/input/a.csv"},
            "outside input_prefix",
        ),
        ({"BatchInput": PREFIXES, "Items": []}, "'Items' must be a non-empty list"),
        ({"BatchInput": PREFIXES, "Items": [{"key": "a.csv"}]}, "the S3 'Key' to score"),
        (["batch/input/a.csv"], "must be a JSON object"),
    ],
)
def test_events_that_do_not_name_objects_it_may_score_are_refused(
    event: Any, message: str, batch: Batch
) -> None:
    with pytest.raises(batch.module.BatchItemError, match=message):
        batch.module.handler(event, LocalLambdaContext())


def test_a_file_the_model_cannot_take_fails_the_item_and_writes_nothing(batch: Batch) -> None:
    from lambda_app.batch.columns import TableSchemaError

    batch.put("batch/input/typo.csv", FLOWS.rename(columns={"two": "tow"}))
    with pytest.raises(TableSchemaError, match="lacks the model's feature column"):
        batch.module.handler({**PREFIXES, "Key": "batch/input/typo.csv"}, LocalLambdaContext())
    assert batch.output_keys() == []


@pytest.mark.parametrize("name", ["distributed_map_item.json", "distributed_map_batch.json"])
def test_the_sample_events_score_their_objects(name: str, batch: Batch) -> None:
    """events/batch/: what Distributed Map sends with and without an ItemBatcher."""
    event = json.loads((EVENTS_DIR / "batch" / name).read_text())
    for item in event.get("Items", [event]):
        batch.put(item["Key"], FLOWS)
    result = batch.module.handler(event, LocalLambdaContext())
    outputs = [o["output"] for o in result["objects"]]
    assert outputs == [
        f"s3://{BUCKET}/" + item["Key"].replace("batch/input/", "batch/output/")
        for item in event.get("Items", [event])
    ]
    assert batch.output_keys("batch/output/2026-11-28/") == sorted(
        o.removeprefix(f"s3://{BUCKET}/") for o in outputs
    )


def test_objects_that_are_not_tables_are_skipped_not_failed(batch: Batch) -> None:
    """Distributed Map lists everything under the prefix: Spark's _SUCCESS, a folder marker, notes."""
    batch.put("batch/input/a.csv", FLOWS)
    for key in ("batch/input/_SUCCESS", "batch/input/day=1/", "batch/input/README.txt"):
        batch.s3.put_object(Bucket=BUCKET, Key=key, Body=b"")
    items = [
        {"Key": k, "Size": 0}
        for k in ("batch/input/a.csv", "batch/input/_SUCCESS", "batch/input/day=1/", "batch/input/README.txt")
    ]
    result = batch.module.handler({"BatchInput": PREFIXES, "Items": items}, LocalLambdaContext())
    assert [o["input"] for o in result["objects"]] == [f"s3://{BUCKET}/batch/input/a.csv"]
    assert [s["input"].rsplit("/input/", 1)[1] for s in result["skipped"]] == [
        "_SUCCESS",
        "day=1/",
        "README.txt",
    ]
    assert batch.output_keys() == ["batch/output/a.csv"]


def test_a_bad_object_fails_alone_and_its_siblings_are_scored(batch: Batch) -> None:
    """One truncated .csv.gz among three: the two others are written, then the invocation fails
    naming only the bad object (Step Functions records it; a re-run rewrites the same keys)."""
    batch.put("batch/input/a.csv", FLOWS)
    batch.put("batch/input/c.parquet", FLOWS)
    whole = io.BytesIO()
    FLOWS.to_csv(whole, index=False, compression="gzip")
    batch.s3.put_object(Bucket=BUCKET, Key="batch/input/b.csv.gz", Body=whole.getvalue()[:-30])
    items = [{"Key": f"batch/input/{name}"} for name in ("a.csv", "b.csv.gz", "c.parquet")]
    with pytest.raises(
        batch.module.BatchObjectsFailedError, match=r"1 of 3 object\(s\) failed \(2 scored"
    ) as err:
        batch.module.handler({"BatchInput": PREFIXES, "Items": items}, LocalLambdaContext())
    assert "s3://flows/batch/input/b.csv.gz: EOFError" in str(err.value)
    assert "a.csv:" not in str(err.value)
    assert batch.output_keys() == ["batch/output/a.csv", "batch/output/c.parquet"]


def test_an_output_prefix_that_holds_the_input_prefix_is_refused(batch: Batch) -> None:
    """With input batch/out/in/ and output batch/out/, the key batch/out/in/in/a.csv would be scored
    to batch/out/in/a.csv: an input object."""
    event = {"bucket": BUCKET, "input_prefix": "batch/out/in/", "output_prefix": "batch/out/"}
    with pytest.raises(batch.module.BatchItemError, match="outside input_prefix"):
        batch.module.handler({**event, "Key": "batch/out/in/in/a.csv"}, LocalLambdaContext())
