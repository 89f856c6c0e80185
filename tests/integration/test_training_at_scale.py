"""Training on a file larger than [data] sample_rows (issue 15): a seeded sample, recorded and said in
the report, the same model for the same seed, tuning on at most [tuning] max_rows, and the promotion
gate re-deriving the very holdout training used. Sizes are small here; make bench-train measures 1M-20M."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from lambda_app.registry import LocalStorage, read_manifest
from training.config import TrainingConfig
from training.data.synthetic import generate
from training.lifecycle import compare
from training.train import run_training

CONFIG = {
    "data": {"sample_rows": 1500},
    "tuning": {"max_rows": 400, "budget": 2, "space": {"n_estimators": [50, 100]}},
    "model": {"params": {"n_estimators": 100, "random_state": 42}},
}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scale") / "flows.csv"
    generate(4000, seed=12).to_csv(path, index=False)
    return path


def test_a_file_over_the_sample_size_trains_on_a_recorded_sample(
    big: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="training")
    published = run_training(str(big), str(tmp_path / "r"), TrainingConfig.model_validate(CONFIG))
    manifest = published.manifest
    assert manifest.provenance.rows == 4000
    assert manifest.provenance.sample == {"rows": 1500, "seed": 42}
    assert manifest.tuning is not None
    assert manifest.tuning["rows"] == 400  # of the sample's 900 training rows
    evaluation = json.loads((tmp_path / "r" / manifest.version / "evaluation.json").read_text())
    assert evaluation["data"] == {"file_rows": 4000, "sample_rows": 1500, "sampled": True, "sample_seed": 42}
    assert evaluation["split"] == {
        "train": 900,
        "validation": 300,
        "test": 300,
        "fitted_on": 900,  # an anomaly detector: its threshold is chosen on the validation rows
        "fitted_on_splits": "train",
        "tuned_on": 400,
        "evaluated_on": 300,
        "seed": 42,
    }
    report = (tmp_path / "r" / manifest.version / "evaluation.html").read_text()
    assert "The file has 4,000 rows, every one validated" in report
    assert "uniform sample of 1,500 (37.5%, seed 42" in report
    messages = [r.getMessage() for r in caplog.records]
    assert any("training on a uniform sample of 1500 (seed 42)" in m for m in messages)
    stages = [m for m in messages if m.startswith("[") and " done in " in m]
    assert [m.split("]")[0] for m in stages] == [
        f"[{i}/7" for i in range(1, 8)
    ]  # the counter tells the truth
    assert "rows/s" in next(m for m in stages if "fitting" in m)


def test_the_same_seed_gives_the_same_sample_and_model(big: Path, tmp_path: Path) -> None:
    config = TrainingConfig.model_validate(CONFIG)
    first = run_training(str(big), str(tmp_path / "a"), config)
    second = run_training(str(big), str(tmp_path / "b"), config)
    graph = "model.onnx"
    assert (tmp_path / "a" / first.manifest.version / graph).read_bytes() == (
        tmp_path / "b" / second.manifest.version / graph
    ).read_bytes()
    other = run_training(
        str(big), str(tmp_path / "c"), TrainingConfig.model_validate({**CONFIG, "split": {"seed": 7}})
    )
    assert other.manifest.provenance.sample == {"rows": 1500, "seed": 7}


def test_promotion_judges_on_the_holdout_training_used(big: Path, tmp_path: Path) -> None:
    registry = tmp_path / "r"
    published = run_training(str(big), str(registry), TrainingConfig.model_validate(CONFIG), alias=None)
    comparison = compare(LocalStorage(registry), published.manifest.version, "production")
    assert comparison.holdout_rows == 300  # the sample's test split, re-derived
    recorded = read_manifest(LocalStorage(registry), published.manifest.version).metrics
    assert recorded is not None
    assert comparison.candidate["pr_auc"] == pytest.approx(recorded["pr_auc"], abs=1e-6)
    assert np.isfinite(comparison.candidate["pr_auc"])
