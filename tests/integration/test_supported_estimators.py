"""Every estimator docs/models.md lists as supported trains, converts, passes parity and serves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lambda_app.models import build_predictor
from lambda_app.registry import read_verified
from tests.conftest import ROOT
from training.config import TrainingConfig
from training.data.synthetic import LABELS, generate
from training.estimators.families import SUPPORTED_ESTIMATORS

# What some estimators need to be sensible on 1,200 rows (and quiet: warnings fail the tests).
PARAMS: dict[str, dict[str, Any]] = {
    "sklearn.neural_network.MLPClassifier": {"hidden_layer_sizes": [16], "max_iter": 2000, "random_state": 0},
    "sklearn.neural_network.MLPRegressor": {"hidden_layer_sizes": [16], "max_iter": 3000, "random_state": 0},
    "sklearn.linear_model.LogisticRegression": {"max_iter": 2000},
    "sklearn.linear_model.Lasso": {"alpha": 0.01},
    "sklearn.linear_model.ElasticNet": {"alpha": 0.01},
    **{
        f"{module}.{name}": {"n_estimators": 20}
        for module, name in [
            ("xgboost", "XGBClassifier"),
            ("xgboost", "XGBRegressor"),
            ("lightgbm", "LGBMClassifier"),
            ("lightgbm", "LGBMRegressor"),
        ]
    },
    "sklearn.ensemble.HistGradientBoostingClassifier": {"max_iter": 20},
    "sklearn.ensemble.HistGradientBoostingRegressor": {"max_iter": 20},
}
SCALED = {"sklearn.svm.SVR", "sklearn.neural_network.MLPClassifier", "sklearn.neural_network.MLPRegressor"}
CASES = [(task, estimator) for task, names in SUPPORTED_ESTIMATORS.items() for estimator in names]


def test_the_docs_list_exactly_the_supported_estimators() -> None:
    text = (ROOT / "docs" / "models.md").read_text()
    section = text.split("### Supported estimators", 1)[1].split("\n## ", 1)[0]
    listed = set(
        re.findall(
            r"`((?:sklearn\.[\w.]+)|(?:xgboost|lightgbm)\.\w+|isolation_forest|local_outlier_factor|one_class_svm|elliptic_envelope|robust_z_score)`",
            section,
        )
    )
    assert listed == {name for names in SUPPORTED_ESTIMATORS.values() for name in names}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tables")
    paths = {}
    for task in LABELS:
        paths[task] = root / f"{task}.csv"
        generate(1200, seed=3, task=task, anomaly_rate=0.25 if task == "classification" else 0.03).to_csv(
            paths[task], index=False
        )
    return paths


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("task", "estimator"), CASES, ids=[name.rsplit(".", 1)[-1] for _, name in CASES])
def test_supported_estimator_trains_and_serves(
    task: str, estimator: str, tables: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training import train

    monkeypatch.setattr(train, "PARITY_PROBE_ROWS", 20_000)  # the published default is 100,000
    config = TrainingConfig.model_validate(
        {
            "data": {"features": ["one", "two", "three"], "label": LABELS[task]},
            "model": {
                "task": task,
                "estimator": estimator,
                "params": PARAMS.get(estimator, {}),
                **({"scale": True} if estimator in SCALED else {}),
            },
            "tuning": {"enabled": False},
        }
    )
    published = train.run_training(
        str(tables[task]), str(tmp_path / "registry"), config, allow_worse_than_baseline=True
    )
    manifest = published.manifest
    assert manifest.task == task
    from lambda_app.registry import LocalStorage

    storage = LocalStorage(tmp_path / "registry")
    predictor = build_predictor(manifest, read_verified(storage, manifest, manifest.artifact("serving")))
    rows = generate(50, seed=8, task=task)[["one", "two", "three"]].to_numpy(dtype=np.float64)
    fields = predictor.predict(rows).fields()
    assert len(fields["predictions"]) == 50
