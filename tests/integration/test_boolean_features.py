"""Boolean features (issue 12, part): a true/false column is found by ``features = "auto"`` (CSV text or a
Parquet bool), recorded as ``boolean`` in the manifest, fed to the model as 1/0, and answered as
JSON true/false by /predict and as true/false cells by batch scoring."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from lambda_app.registry import LocalStorage, read_manifest, resolve_version
from tests.conftest import predict_event, response_json
from training.config import TrainingConfig
from training.data.synthetic import generate
from training.evaluation.evaluate import anomaly_scores
from training.train import run_training

FAST = TrainingConfig.model_validate({"tuning": {"enabled": False}})


def flows_with_encryption(rows: int = 1500) -> pd.DataFrame:
    frame = generate(rows, seed=21)
    rng = np.random.default_rng(21)
    # Anomalies are mostly unencrypted, normal flows mostly encrypted: the flag carries signal.
    frame.insert(
        3, "encrypted", np.where(frame["label"] == 1, rng.random(rows) < 0.2, rng.random(rows) < 0.9)
    )
    return frame


@pytest.fixture(scope="module")
def boolean_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("boolean")
    frame = flows_with_encryption()
    frame.to_csv(root / "flows.csv", index=False)  # the flag as CSV text: True/False
    run_training(str(root / "flows.csv"), str(root / "registry"), FAST)
    return root / "registry", frame


def test_a_true_false_column_becomes_a_boolean_feature(boolean_registry: tuple[Path, pd.DataFrame]) -> None:
    registry, _ = boolean_registry
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    assert [(f.name, f.dtype) for f in manifest.features] == [
        ("one", "number"),
        ("two", "number"),
        ("three", "number"),
        ("encrypted", "boolean"),
    ]


def test_predict_takes_true_false_and_answers_what_scikit_learn_answers_on_1_0(
    boolean_registry: tuple[Path, pd.DataFrame],
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
) -> None:
    registry, frame = boolean_registry
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    estimator = joblib.load(registry / manifest.version / "model.joblib")
    rows = frame.head(300)
    records = [
        {"one": int(r.one), "two": float(r.two), "three": float(r.three), "encrypted": bool(r.encrypted)}
        for r in rows.itertuples()
    ]
    module = handler_module(MODEL_URI=str(registry))
    response = module.handler(predict_event(records), lambda_context)
    assert response["statusCode"] == 200, response["body"]
    body = response_json(response)
    expected = anomaly_scores(estimator, rows[["one", "two", "three", "encrypted"]].to_numpy(dtype=float))
    np.testing.assert_allclose(body["scores"], expected, atol=1e-5)
    assert manifest.threshold is not None
    near = np.abs(expected - manifest.threshold) < 1e-5
    assert (np.array(body["predictions"])[~near] == (expected >= manifest.threshold)[~near]).all()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1, "must be true or false, got number"),
        ("true", "must be true or false, got string"),
        (None, "got null"),
    ],
)
def test_a_boolean_feature_takes_only_true_or_false(
    value: Any,
    message: str,
    boolean_registry: tuple[Path, pd.DataFrame],
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
) -> None:
    registry, _ = boolean_registry
    module = handler_module(MODEL_URI=str(registry))
    record = {"one": 80, "two": 14.1, "three": 15.2, "encrypted": value}
    response = module.handler(predict_event([record]), lambda_context)
    assert response["statusCode"] == 422
    detail = response_json(response)["errors"][0]
    assert (detail["row"], detail["field"]) == (0, "encrypted")
    assert message in detail["message"]
    numbers = module.handler(predict_event([{**record, "encrypted": True, "two": True}]), lambda_context)
    assert numbers["statusCode"] == 422  # and a number feature still refuses true
    assert response_json(numbers)["errors"][0]["field"] == "two"


def test_openapi_documents_the_boolean(
    boolean_registry: tuple[Path, pd.DataFrame],
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
) -> None:
    from tests.conftest import load_event

    registry, _ = boolean_registry
    module = handler_module(MODEL_URI=str(registry))
    event = load_event("apigw_v2_root.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/openapi.json"
    schema = response_json(module.handler(event, lambda_context))
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    record = body["schema"]["oneOf"][0]
    assert record["properties"]["encrypted"] == {"type": "boolean"}
    assert isinstance(body["examples"]["single"]["value"]["encrypted"], bool)


def test_batch_scoring_reads_true_false_cells_and_parquet_bools(
    boolean_registry: tuple[Path, pd.DataFrame],
    tmp_path: Path,
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
) -> None:
    from lambda_app.batch.__main__ import EXIT_REJECTED, main

    registry, frame = boolean_registry
    rows = frame.head(50).copy()
    rows.to_parquet(tmp_path / "in.parquet", index=False)  # a real bool column
    text = rows.astype({"encrypted": "object"})
    text.loc[4, "encrypted"] = "maybe"
    text.to_csv(tmp_path / "in.csv", index=False)
    args = ["--model-uri", str(registry), "--quiet"]
    assert (
        main(["--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out.parquet"), *args]) == 0
    )
    assert (
        main(["--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"), *args])
        == EXIT_REJECTED
    )
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects[["row_number", "reason"]].values.tolist() == [
        [5, "field 'encrypted': must be true or false, got 'maybe'"]
    ]
    scored = pd.read_parquet(tmp_path / "out.parquet")
    records = [
        {"one": int(r.one), "two": float(r.two), "three": float(r.three), "encrypted": bool(r.encrypted)}
        for r in rows.itertuples()
    ]
    answer = response_json(
        handler_module(MODEL_URI=str(registry)).handler(predict_event(records), lambda_context)
    )
    assert scored["score"].tolist() == answer["scores"]
    assert pd.read_csv(tmp_path / "out.csv")["encrypted"].tolist() == [
        v for i, v in enumerate(rows["encrypted"].tolist()) if i != 4
    ]


def test_a_boolean_feature_drifts_when_its_share_moves(boolean_registry: tuple[Path, pd.DataFrame]) -> None:
    """Its reference has one bin per value (deciles of 0/1 would collapse into one bin, PSI always 0)."""
    from lambda_app.drift import DriftMonitor

    registry, frame = boolean_registry
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    reference = manifest.reference.features["encrypted"]
    assert reference.bin_edges == [0.0, 0.5, 1.0]
    share = float(frame["encrypted"].mean())
    assert reference.bin_fractions[1] == pytest.approx(share, abs=0.05)
    rows = frame[["one", "two", "three", "encrypted"]].head(400).to_numpy(dtype=float)
    psi = {}
    for name, window in (
        ("as trained", rows),
        ("none encrypted", np.column_stack([rows[:, :3], np.zeros(400)])),
    ):
        monitor = DriftMonitor(manifest.reference, manifest.feature_names)
        snapshot = monitor.observe(window)
        assert snapshot.fresh
        psi[name] = snapshot.psi["encrypted"]
    assert psi["as trained"] < 0.1
    assert psi["none encrypted"] > 1.0
