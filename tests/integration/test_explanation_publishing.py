"""Training and import publish the explanation artifact beside the graph when the model has an exact
one (listed with the role "other"), and record why not when it has none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from lambda_app.explain.artifact import EXPLANATION_FILE, load
from lambda_app.registry import LocalStorage, Manifest, read_manifest, resolve_version
from training.__main__ import main
from training.estimators.explanation import explained_output


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer

    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    path = tmp_path_factory.mktemp("data") / "cancer.csv"
    frame.to_csv(path, index=False)
    return path, frame


@pytest.fixture(autouse=True)
def fewer_parity_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parity on 2,000 random rows rather than the published 100,000: the explanation is under test."""
    from training import importer, train

    monkeypatch.setattr(train, "PARITY_PROBE_ROWS", 2000)
    monkeypatch.setattr(importer, "PARITY_PROBE_ROWS", 2000)


def train(tmp_path: Path, data: Path, frame: pd.DataFrame, model: str) -> Path:
    """Train a classifier of ``frame`` with the CLI, ``model`` the [model] table's own lines."""
    features = json.dumps([c for c in frame.columns if c != "target"])
    config = tmp_path / "config.toml"
    config.write_text(
        f'[data]\nfeatures = {features}\nlabel = "target"\n[model]\ntask = "classification"\n{model}\n'
    )
    registry = tmp_path / "registry"
    assert main(["--data", str(data), "--model-uri", str(registry), "--config", str(config)]) == 0
    return registry


def production(registry: Path) -> tuple[Manifest, Path, dict[str, Any]]:
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    folder = registry / manifest.version
    return manifest, folder, json.loads((folder / "evaluation.json").read_text())


def test_a_trained_forest_is_published_with_its_explanation(
    tmp_path: Path, cancer: tuple[Path, pd.DataFrame]
) -> None:
    # GIVEN a forest trained by the training job
    data, frame = cancer
    model = (
        'estimator = "sklearn.ensemble.RandomForestClassifier"\nparams = {n_estimators = 10, max_depth = 4}'
    )
    registry = train(tmp_path, data, frame, model)
    # THEN the explanation is listed with the role "other" and recorded in the evaluation
    manifest, folder, evaluation = production(registry)
    listed = {a.path: a for a in manifest.artifacts}
    assert listed[EXPLANATION_FILE].role == "other"
    data_bytes = (folder / EXPLANATION_FILE).read_bytes()
    artifact = load(data_bytes)
    assert artifact.space == "probability"
    assert artifact.inputs == manifest.input_width
    record = evaluation["explanation"]
    assert record["available"] is True
    assert record["space"] == "probability"
    assert record["bytes"] == len(data_bytes)
    assert record["paths"] > 0
    assert record["max_difference"] < 1e-9
    # AND the artifact adds up to the published model's probabilities on every row
    model = joblib.load(folder / "model.joblib")
    x = frame.drop(columns="target").to_numpy(dtype=np.float64)
    np.testing.assert_allclose(explained_output(artifact, x), model.predict_proba(x), rtol=0, atol=1e-9)


def test_a_model_without_an_exact_explanation_is_published_without_one_and_says_why(
    tmp_path: Path, cancer: tuple[Path, pd.DataFrame]
) -> None:
    data, frame = cancer
    model = 'estimator = "sklearn.neighbors.KNeighborsClassifier"\nscale = true\nparams = {n_neighbors = 15}'
    registry = train(tmp_path, data, frame, model)
    manifest, folder, evaluation = production(registry)
    assert EXPLANATION_FILE not in {a.path for a in manifest.artifacts}
    assert not (folder / EXPLANATION_FILE).exists()
    assert evaluation["explanation"] == {
        "available": False,
        "reason": "KNeighborsClassifier has no exact explanation: explanations cover tree ensembles and"
        " linear models",
    }


def test_an_imported_lightgbm_file_is_published_with_its_explanation(
    tmp_path: Path, cancer: tuple[Path, pd.DataFrame]
) -> None:
    import lightgbm

    data, frame = cancer
    model = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=8, verbose=-1)
    model.fit(frame.drop(columns="target"), frame["target"])
    path = tmp_path / "model.txt"
    model.booster_.save_model(str(path))
    registry = tmp_path / "registry"
    argv = ["import", "--model", str(path), "--data", str(data), "--model-uri", str(registry)]
    assert main([*argv, "--label", "target"]) == 0
    manifest, folder, evaluation = production(registry)
    assert {a.path: a.role for a in manifest.artifacts}[EXPLANATION_FILE] == "other"
    artifact = load((folder / EXPLANATION_FILE).read_bytes())
    assert artifact.space == "log_odds"
    assert evaluation["explanation"]["available"] is True
    x = frame.drop(columns="target").to_numpy(dtype=np.float64)
    raw = model.predict(frame.drop(columns="target"), raw_score=True)
    np.testing.assert_allclose(explained_output(artifact, x)[:, 0], raw, rtol=0, atol=1e-9)
