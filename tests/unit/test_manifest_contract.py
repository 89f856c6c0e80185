"""The manifest as a contract: a version the service could not serve correctly is refused when it loads.

Stored manifests are tampered with as a hand edit or a foreign writer would: NaN, Infinity and 1e999
written as JSON tokens, a threshold written as a string or a boolean, inconsistent feature lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lambda_app.config import Settings
from lambda_app.main import create_app
from lambda_app.registry import (
    FeatureSpec,
    LocalStorage,
    ManifestError,
    dump_json,
    parse_manifest,
    read_manifest,
    resolve_version,
)
from tests.conftest import FIXTURES_DIR, SEED_RECORD

(V1_FILE,) = (FIXTURES_DIR / "registry_v1").glob("*/manifest.json")
VERSION = V1_FILE.parent.name
RAW = "__raw_json_token__"


def stored_v1() -> dict[str, Any]:
    """The schema_version 1 manifest of the fixture registry, as stored."""
    data: dict[str, Any] = json.loads(V1_FILE.read_text())
    return data


def stored_v2(task: str = "anomaly") -> dict[str, Any]:
    """A valid schema_version 2 manifest of ``task``, as training writes it (the fixture, upgraded)."""
    data: dict[str, Any] = json.loads(dump_json(parse_manifest(V1_FILE.read_bytes(), VERSION)))
    data["schema_version"] = 2
    reference = data["reference"]
    if task != "anomaly":
        data.update(task=task, threshold=None, score=None)
        reference.update(score_quantiles=None, anomaly_rate=None)
    if task == "classification":
        data["classes"] = ["normal", "attack"]
        reference["class_fractions"] = {"normal": 0.9, "attack": 0.1}
    if task == "regression":
        reference["prediction_quantiles"] = {"p50": 3.5}
        reference["prediction_mean"] = 3.4
    return data


def at(data: Any, path: str) -> tuple[Any, str | int]:
    """The container holding ``path`` (dots between keys, ``[i]`` for list items) and its last key."""
    keys: list[str | int] = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        keys.append(name)
        if index:
            keys.append(int(index.rstrip("]")))
    for key in keys[:-1]:
        data = data[key]
    return data, keys[-1]


def written(data: dict[str, Any], path: str | None = None, token: str | None = None) -> bytes:
    """``data`` as stored JSON, with the raw JSON ``token`` written at ``path``."""
    if path is not None:
        container, key = at(data, path)
        container[key] = RAW
    return json.dumps(data, indent=2).replace(json.dumps(RAW), token or "null").encode()


def refusal(raw: bytes) -> str:
    with pytest.raises(ManifestError) as refused:
        parse_manifest(raw, VERSION)
    message = str(refused.value)
    assert message.startswith(f"manifest of version {VERSION} is invalid")
    return message


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999"]


@pytest.mark.parametrize("token", [*NON_FINITE, '"0.5"', "true", "false", "[0.5]"])
@pytest.mark.parametrize("stored", [stored_v1, stored_v2], ids=["schema_v1", "schema_v2"])
def test_a_threshold_that_is_not_a_finite_number_is_refused(
    stored: Callable[[], dict[str, Any]], token: str
) -> None:
    assert "threshold" in refusal(written(stored(), "threshold", token))


@pytest.mark.parametrize("token", NON_FINITE)
@pytest.mark.parametrize(
    ("task", "path"),
    [
        ("anomaly", "reference.features.two.mean"),
        ("anomaly", "reference.features.two.std"),
        ("anomaly", "reference.features.one.min"),
        ("anomaly", "reference.features.one.max"),
        ("anomaly", "reference.features.three.quantiles.p50"),
        ("anomaly", "reference.features.three.bin_edges[0]"),
        ("anomaly", "reference.features.three.bin_fractions[4]"),
        ("anomaly", "reference.features.two.missing_fraction"),
        ("anomaly", "reference.score_quantiles.p99"),
        ("anomaly", "reference.anomaly_rate"),
        ("classification", "reference.class_fractions.attack"),
        ("regression", "reference.prediction_quantiles.p50"),
        ("regression", "reference.prediction_mean"),
        ("anomaly", "metrics.f1"),
    ],
)
def test_a_non_finite_number_the_service_uses_is_refused_naming_it(task: str, path: str, token: str) -> None:
    assert path.replace("[", ".").rstrip("]") in refusal(written(stored_v2(task), path, token))


@pytest.mark.parametrize("token", ['"0.5"', "true"])
def test_a_drift_statistic_written_as_a_string_or_boolean_is_refused(token: str) -> None:
    path = "reference.features.two.mean"
    assert path in refusal(written(stored_v2(), path, token))


@pytest.mark.parametrize("token", NON_FINITE)
def test_a_non_finite_fill_is_refused(token: str) -> None:
    data = stored_v2()
    data["features"][1]["fill"] = RAW
    assert "number feature 'two': fill must be a finite number" in refusal(written(data, None, token))


def category_feature(**changes: Any) -> dict[str, Any]:
    """The fixture with its first feature turned into a category (and a reference that agrees)."""
    data = stored_v2()
    data["features"][0] = {"name": "one", "dtype": "category", "encoding": "ordinal", **changes}
    categories = changes.get("categories") or ["a"]
    data["reference"]["features"]["one"].update(
        categories=categories,
        bin_edges=[i - 0.5 for i in range(len(categories) + 1)],
        bin_fractions=[1 / len(categories)] * len(categories),
    )
    return data


def test_a_category_feature_is_accepted_as_training_writes_it() -> None:
    manifest = parse_manifest(written(category_feature(categories=["tcp", "udp"])), VERSION)
    assert manifest.features[0].categories == ["tcp", "udp"]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"categories": []}, "category feature 'one' needs its categories"),
        ({"categories": ["tcp", ""]}, "category feature 'one' lists an empty category"),
        ({"categories": [""], "fill": ""}, "category feature 'one' lists an empty category"),
    ],
)
def test_categories_that_could_never_be_matched_are_refused(changes: dict[str, Any], fragment: str) -> None:
    assert fragment in refusal(written(category_feature(**changes)))


@pytest.mark.parametrize("categories", [[], ["tcp", ""]])
def test_a_reference_with_categories_that_could_never_be_matched_is_refused(categories: list[str]) -> None:
    data = category_feature(categories=["tcp", "udp"])
    data["reference"]["features"]["one"]["categories"] = categories
    assert "reference.features.one" in refusal(written(data))


def test_a_feature_listed_twice_is_refused() -> None:
    data = stored_v2()
    data["features"][2]["name"] = "two"
    assert "features list 'two' twice" in refusal(written(data))


def test_a_reference_missing_a_feature_is_refused() -> None:
    data = stored_v2()
    del data["reference"]["features"]["three"]
    assert "reference.features has no summary of 'three'" in refusal(written(data))


def test_a_reference_of_a_feature_the_model_does_not_take_is_refused() -> None:
    data = stored_v2()
    data["reference"]["features"]["four"] = data["reference"]["features"]["three"]
    assert "reference.features summarises 'four', which is not a feature" in refusal(written(data))


def test_drift_bins_that_do_not_fit_their_edges_are_refused() -> None:
    data = stored_v2()
    data["reference"]["features"]["two"]["bin_fractions"].pop()
    message = refusal(written(data))
    assert "reference.features.two" in message
    assert "11 bin_edges make 10 bins, but bin_fractions has 9" in message


def test_drift_bin_edges_out_of_order_are_refused() -> None:
    data = stored_v2()
    data["reference"]["features"]["two"]["bin_edges"].reverse()
    assert "bin_edges must be in increasing order" in refusal(written(data))


@pytest.mark.parametrize("stored", [stored_v1, stored_v2], ids=["schema_v1", "schema_v2"])
def test_a_threshold_written_as_a_json_integer_is_a_number(stored: Callable[[], dict[str, Any]]) -> None:
    manifest = parse_manifest(written(stored(), "threshold", "1"), VERSION)
    assert manifest.threshold == 1.0
    assert isinstance(manifest.threshold, float)


def test_undefined_metrics_stay_null() -> None:
    data = stored_v2()
    data["metrics"]["roc_auc"] = None
    assert parse_manifest(written(data), VERSION).metrics == {**data["metrics"], "roc_auc": None}
    assert parse_manifest(written({**data, "metrics": None}), VERSION).metrics is None


def manifests(root: Path) -> Iterator[Path]:
    yield from root.glob("*/manifest.json")


def test_manifests_training_writes_for_every_task_load(
    trained_registry: Path, task_registries: dict[str, Path]
) -> None:
    roots = [trained_registry, *task_registries.values()]
    stored = [path for root in roots for path in manifests(root)]
    assert {parse_manifest(path.read_bytes(), path.parent.name).task for path in stored} == {
        "anomaly",
        "classification",
        "regression",
    }
    for path in stored:
        assert b"NaN" not in path.read_bytes()
        assert b"Infinity" not in path.read_bytes()


def test_a_published_manifest_with_a_nan_threshold_is_never_served(
    registry: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the production version's manifest edited to a NaN threshold (artifacts untouched)
    storage = LocalStorage(registry)
    version = resolve_version(storage, "production")
    assert read_manifest(storage, version).threshold is not None
    stored = registry / version / "manifest.json"
    data = json.loads(stored.read_text())
    stored.write_bytes(written(data, "threshold", "NaN"))
    # WHEN the service starts on it
    with TestClient(create_app(Settings(model_uri=str(registry)))) as client:
        health = client.get("/health")
        predict = client.post("/predict", json=SEED_RECORD)
    # THEN it serves nothing, says why in its log, and answers 503 rather than a prediction of 0
    for response in (health, predict):
        assert response.status_code == 503
        assert response.json()["error"] == "model_unavailable"
        assert response.json()["message"] == "no model is available: the model's manifest is invalid"
    (refused,) = [r for r in caplog.records if r.getMessage() == "model manifest refused"]
    assert "threshold" in refused.reason


def test_a_feature_left_to_the_model_takes_missing_values_without_a_fill() -> None:
    native = FeatureSpec(name="bytes", dtype="number", missing="native")
    assert native.takes_missing
    assert native.fill is None
    assert FeatureSpec(name="bytes", dtype="number", fill=2.0).takes_missing
    assert not FeatureSpec(name="bytes", dtype="number").takes_missing
    assert "missing" not in FeatureSpec(name="bytes", dtype="number").model_dump()  # older services read it


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "bytes", "dtype": "number", "missing": "native", "fill": 2.0},
        {
            "name": "proto",
            "dtype": "category",
            "categories": ["tcp"],
            "encoding": "ordinal",
            "missing": "native",
        },
        {"name": "bytes", "dtype": "number", "missing": "zero"},
    ],
)
def test_a_missing_value_is_either_filled_or_left_to_the_model_never_both(spec: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="missing"):
        FeatureSpec.model_validate(spec)
