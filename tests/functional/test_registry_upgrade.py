"""A registry written before model kinds existed (schema_version 1) keeps serving unchanged.

tests/fixtures/registry_v1 was written by the code at commit dbd744f; registry_v1_expected.json
holds what that code's service answered. The upgraded service must answer the same, through the
real Lambda handler, and training must still promote and roll back over such a registry.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lambda_app.registry import LocalStorage, read_alias, read_manifest, resolve_version
from tests.conftest import FIXTURES_DIR, SAMPLE_DATA, load_event, predict_event, response_json


@pytest.fixture
def v1_registry(tmp_path: Path) -> Path:
    target = tmp_path / "registry"
    shutil.copytree(FIXTURES_DIR / "registry_v1", target)
    return target


def test_the_fixture_is_a_schema_version_1_registry(v1_registry: Path) -> None:
    storage = LocalStorage(v1_registry)
    version = resolve_version(storage, "production")
    stored = json.loads((v1_registry / version / "manifest.json").read_text())
    assert stored["schema_version"] == 1
    assert "task" not in stored
    manifest = read_manifest(storage, version)
    assert (manifest.schema_version, manifest.task, manifest.classes) == (1, "anomaly", None)
    assert manifest.threshold == stored["threshold"]


def test_a_v1_registry_serves_the_same_answers_through_the_handler(
    handler_module: Callable[..., ModuleType], v1_registry: Path, lambda_context: Any
) -> None:
    expected = json.loads((FIXTURES_DIR / "registry_v1_expected.json").read_text())
    handler = handler_module(MODEL_URI=str(v1_registry)).handler
    response = handler(predict_event(expected["records"]), lambda_context)
    assert response["statusCode"] == 200
    body = response_json(response)
    before = expected["response"]
    assert body["predictions"] == before["predictions"]
    assert body["version"] == before["version"]
    assert body["errors"] is None
    assert body["scores"] == pytest.approx(before["scores"], abs=1e-7)
    model = response_json(handler(load_event("apigw_v2_model.json"), lambda_context))
    assert (model["task"], model["schema_version"], model["classes"]) == ("anomaly", 1, None)


def test_a_new_model_is_promoted_over_a_v1_model_and_rolled_back(v1_registry: Path) -> None:
    from training.lifecycle import promote, rollback
    from training.tasks.checks import load_config
    from training.train import run_training

    storage = LocalStorage(v1_registry)
    old = resolve_version(storage, "production")
    candidate = run_training(str(SAMPLE_DATA), str(v1_registry), load_config(), alias="candidate")
    comparison, record = promote(storage, candidate.manifest.version, "production", data_uri=str(SAMPLE_DATA))
    assert comparison is not None
    assert comparison.current is not None
    assert comparison.current["version"] == old  # the v1 model was scored on the same rows
    assert comparison.metric == "pr_auc"
    assert record.version == candidate.manifest.version
    assert rollback(storage, "production").version == old
    alias = read_alias(storage, "production")
    assert alias is not None
    assert alias.version == old


def test_a_v1_versions_own_holdout_is_rederived_from_its_recorded_config(v1_registry: Path) -> None:
    """A v1 config names no task: it reads as the default (anomaly); its test split comes back as recorded."""
    from training.lifecycle import holdout

    storage = LocalStorage(v1_registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    features, labels, uri = holdout(manifest, None)
    assert uri == "data/sample.csv"
    assert features.shape == (1000, 3)  # 20 % of the 5,000 rows, as at dbd744f
    assert int(labels.sum()) == 30
