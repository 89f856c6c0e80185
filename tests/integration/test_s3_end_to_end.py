"""Training from S3 into an S3 registry (moto, in-process), then serving from that bucket."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import SAMPLE_DATA, load_event, response_json
from training.__main__ import main as training_main

SMALL_CONFIG = """
[model]
estimator = "isolation_forest"
[model.params]
n_estimators = 20
[tuning]
enabled = false
"""


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="flows")
        client.create_bucket(Bucket="models")
        client.upload_file(str(SAMPLE_DATA), "flows", "raw/2026-11-26/sample.csv")
        yield client


def test_train_from_s3_publish_to_s3_and_serve_from_it(
    s3: Any,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = training_main(
        [
            "--data",
            "s3://flows/raw/2026-11-26/sample.csv",
            "--model-uri",
            "s3://models/registry",
            "--alias",
            "production",
        ]
    )
    assert code == 0
    assert "published anomaly-detector version" in capsys.readouterr().out

    alias = json.loads(s3.get_object(Bucket="models", Key="registry/aliases/production.json")["Body"].read())
    version = alias["version"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="models", Prefix=f"registry/{version}/")["Contents"]}
    assert keys == {
        f"registry/{version}/{name}"
        for name in (
            "manifest.json",
            "model.joblib",
            "model.onnx",
            "evaluation.json",
            "evaluation.html",
            "explanation.npz",
        )
    }
    manifest = json.loads(
        s3.get_object(Bucket="models", Key=f"registry/{version}/manifest.json")["Body"].read()
    )
    assert manifest["provenance"]["data_uri"] == "s3://flows/raw/2026-11-26/sample.csv"

    module = handler_module(MODEL_URI="s3://models/registry")
    response = module.handler(load_event("apigw_v2_predict_single.json"), lambda_context)
    assert response["statusCode"] == 200
    assert response_json(response)["version"] == version


def test_tampered_s3_artifact_is_refused_with_503(
    s3: Any, handler_module: Callable[..., ModuleType], lambda_context: Any, tmp_path: Path
) -> None:
    config = tmp_path / "small.toml"  # any published model will do: the check is on its bytes
    config.write_text(SMALL_CONFIG)
    argv = ["--data", str(SAMPLE_DATA), "--model-uri", "s3://models/reg", "--config", str(config)]
    assert training_main(argv) == 0
    version = json.loads(s3.get_object(Bucket="models", Key="reg/aliases/production.json")["Body"].read())[
        "version"
    ]
    key = f"reg/{version}/model.onnx"
    data = bytearray(s3.get_object(Bucket="models", Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    s3.put_object(Bucket="models", Key=key, Body=bytes(data))

    module = handler_module(MODEL_URI="s3://models/reg")
    response = module.handler(load_event("apigw_v2_predict_single.json"), lambda_context)
    assert response["statusCode"] == 503
    assert "integrity check" in response_json(response)["message"]


def test_missing_s3_data_fails_with_one_line(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert training_main(["--data", "s3://flows/missing.csv", "--model-uri", "s3://models/r"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot download s3://flows/missing.csv")
    assert s3.list_objects_v2(Bucket="models").get("KeyCount") == 0  # nothing half-written
