"""Tuning is reproducible and recorded; an HTML report per version; a model the baseline beats is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lambda_app.models import AnomalyPrediction, build_predictor
from lambda_app.registry import LocalStorage, read_manifest, read_verified, resolve_version
from training.data.synthetic import generate
from training.exceptions import TrainingError
from training.publish import Published
from training.tasks.checks import load_config
from training.train import run_training


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "flows.csv"
    generate(2000, seed=11).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def published(flows: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Published]:
    """The default config trained once on the flows: the registry and what was published."""
    registry = tmp_path_factory.mktemp("tuned") / "registry"
    return registry, run_training(str(flows), str(registry), load_config())


def scores(registry: Path, rows: np.ndarray) -> np.ndarray:
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    predictor = build_predictor(manifest, read_verified(storage, manifest, manifest.artifact("serving")))
    prediction = predictor.predict(rows)
    assert isinstance(prediction, AnomalyPrediction)
    return prediction.scores


def test_same_seed_and_data_give_the_same_model(
    published: tuple[Path, Published], flows: Path, tmp_path: Path
) -> None:
    first_registry, first = published
    second = run_training(str(flows), str(tmp_path / "b"), load_config())
    assert first.manifest.tuning == second.manifest.tuning
    probe = generate(3000, seed=99)[["one", "two", "three"]].to_numpy(dtype=float)
    assert np.array_equal(scores(first_registry, probe), scores(tmp_path / "b", probe))


def test_the_search_is_recorded_in_the_manifest_and_its_winner_is_fitted(
    published: tuple[Path, Published],
) -> None:
    config = load_config()
    _, trained = published
    tuning = trained.manifest.tuning
    assert tuning is not None
    assert tuning["objective"] == "pr_auc"
    assert len(tuning["trials"]) == config.tuning.budget
    best = max(tuning["trials"], key=lambda t: t["mean"])
    assert tuning["best_score"] == best["mean"]
    for name, value in best["params"].items():
        assert (
            trained.manifest.provenance.params[name] == min(value, 1200) if name == "max_samples" else value
        )


def test_without_labels_tuning_optimises_ranking_stability(tmp_path: Path) -> None:
    data = tmp_path / "unlabelled.csv"
    generate(1500, seed=2).drop(columns=["label"]).to_csv(data, index=False)
    published = run_training(str(data), str(tmp_path / "r"), load_config())
    assert published.manifest.tuning is not None
    assert published.manifest.tuning["objective"].startswith("stability")
    assert 0 < published.manifest.tuning["best_score"] <= 1


def test_every_version_has_an_html_report_with_the_baseline_beside_the_model(
    published: tuple[Path, Published],
) -> None:
    registry, trained = published
    version_dir = registry / trained.manifest.version
    report = (version_dir / "evaluation.html").read_text()
    assert "robust z-score baseline" in report
    assert "Confusion matrix" in report
    assert "<h2>Tuning (pr_auc)</h2>" in report  # every trial, best first
    assert report.count("data:image/png;base64,") == 4  # scores, ROC+PR, feature distributions, importance
    assert trained.manifest.artifact("report").path == "evaluation.html"
    evaluation = json.loads((version_dir / "evaluation.json").read_text())
    assert evaluation["baseline"]["metrics"]["pr_auc"] < evaluation["metrics"]["pr_auc"]


def test_a_model_the_baseline_beats_is_not_published(flows: Path, tmp_path: Path) -> None:
    config = load_config()
    weak = config.model_copy(
        update={
            "tuning": config.tuning.model_copy(update={"enabled": False}),
            "model": config.model.model_copy(
                update={"params": {"n_estimators": 2, "max_samples": 8, "random_state": 5}}
            ),
        }
    )
    with pytest.raises(TrainingError, match=r"worse than the baseline \(per-feature robust z-score"):
        run_training(str(flows), str(tmp_path / "r"), weak)
    assert not (tmp_path / "r").exists()
    run_training(str(flows), str(tmp_path / "r"), weak, allow_worse_than_baseline=True)


def test_feature_charts_are_labelled_with_the_features_own_values(trained_registry: Path) -> None:
    """A port reads 20, 22, 25, 53, 80, 443 under its bars, not bin numbers 1...6."""
    from training.evaluation.report import bin_labels

    storage = LocalStorage(trained_registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    labels = bin_labels(manifest.reference.features["one"])
    assert labels[0] == "<20"
    assert labels[1:7] == ["20", "22", "25", "53", "80", "443"]
    assert labels[-1].startswith(">")
