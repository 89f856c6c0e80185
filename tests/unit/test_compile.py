"""The compiled serving graph: same scores as scikit-learn, refused when it is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from lambda_app.models import AnomalyPrediction, build_predictor
from lambda_app.registry import LocalStorage, read_manifest, read_verified, resolve_version
from training.data.synthetic import generate
from training.estimators.convert import CompileError, average_path_length, compile_isolation_forest
from training.tasks import parity_probe
from training.tasks.anomaly import check_parity


def random_rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [rng.choice([20, 22, 53, 80, 443, 4444, 31337], n), rng.uniform(-10, 45, n), rng.uniform(-10, 45, n)]
    )


def test_published_serving_graph_matches_scikit_learn_on_holdout_and_100k_random_rows(
    trained_registry: Path,
) -> None:
    storage = LocalStorage(trained_registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    forest = joblib.load(trained_registry / manifest.version / "model.joblib")
    predictor = build_predictor(manifest, read_verified(storage, manifest, manifest.artifact("serving")))
    holdout = generate(20_000, seed=99)[["one", "two", "three"]].to_numpy(dtype=float)
    for rows in (holdout, random_rows(100_000, seed=1)):
        served = predictor.predict(rows)
        assert isinstance(served, AnomalyPrediction)
        reference = -forest.score_samples(rows)
        assert np.max(np.abs(served.scores - reference)) <= 1e-5
        assert np.array_equal(served.labels, (reference >= manifest.threshold).astype(np.int64))


@pytest.mark.parametrize(
    "params",
    [
        {"n_estimators": 30, "random_state": 0},
        {"n_estimators": 20, "max_features": 0.67, "max_samples": 500, "random_state": 1},
        {"n_estimators": 10, "max_samples": 2, "random_state": 2},  # degenerate tiny trees
        {"n_estimators": 15, "bootstrap": True, "random_state": 3},
    ],
)
def test_parity_across_forest_shapes(params: dict[str, Any]) -> None:
    data = generate(3000, seed=4)[["one", "two", "three"]].to_numpy(dtype=float)
    forest = IsolationForest(**params).fit(data)
    report = check_parity(
        forest, compile_isolation_forest(forest), random_rows(20_000, seed=5), threshold=0.55
    )
    assert report["max_abs_score_diff"] <= 1e-5
    assert report["prediction_mismatches"] == 0


def test_a_graph_that_disagrees_is_refused() -> None:
    data = generate(2000, seed=6)[["one", "two", "three"]].to_numpy(dtype=float)
    one = IsolationForest(n_estimators=10, random_state=0).fit(data)
    other = IsolationForest(n_estimators=10, random_state=1).fit(data)
    with pytest.raises(CompileError, match="disagrees with scikit-learn"):
        check_parity(one, compile_isolation_forest(other), data, threshold=0.55)


def test_average_path_length_matches_the_paper() -> None:
    values = average_path_length(np.array([0, 1, 2, 256]))
    assert values[:3].tolist() == [0.0, 0.0, 1.0]
    harmonic = np.log(255) + np.euler_gamma
    assert values[3] == pytest.approx(2 * harmonic - 2 * 255 / 256)


def test_training_refuses_to_publish_when_parity_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training import train
    from training.estimators import convert
    from training.tasks.checks import load_config

    other = IsolationForest(n_estimators=5, random_state=9).fit(random_rows(500, seed=2))
    monkeypatch.setattr(
        convert, "compile_model", lambda *args: (compile_isolation_forest(other), {"name": "tampered"})
    )
    data = tmp_path / "flows.csv"
    generate(600, seed=3).to_csv(data, index=False)
    with pytest.raises(CompileError):
        train.run_training(str(data), str(tmp_path / "reg"), load_config(), allow_worse_than_baseline=True)
    assert not (tmp_path / "reg").exists()


def test_a_float32_graph_that_fails_parity_is_converted_again_in_float64(tmp_path: Path) -> None:
    """LocalOutlierFactor picks other neighbours when float32 distances round; its float64 graph agrees."""
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from training.tasks import task_kind
    from training.tasks.base import Outcome, compile_with_parity

    data = generate(5000, seed=7)[["one", "two", "three"]].to_numpy(dtype=float)  # data/sample.csv
    lof = make_pipeline(StandardScaler(), LocalOutlierFactor(novelty=True)).fit(data[:3000])
    outcome = Outcome(None, None, "", None, "", threshold=0.0)  # type: ignore[arg-type]
    _, converter, parity = compile_with_parity(
        task_kind("anomaly"), lof, outcome, {"random": parity_probe(data[:3000], 100_000, seed=42)}
    )
    assert converter["input"] == "float64"
    assert "float32_refused" in parity
    assert parity["random"]["max_relative_score_diff"] <= 1e-5


def test_no_float64_kernel_is_a_refusal_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime has no float64 SVM kernel: without its stated float32 tolerance, the SVM is refused."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    from training.tasks import anomaly, task_kind
    from training.tasks.base import Outcome, compile_with_parity

    monkeypatch.setattr(anomaly, "FLOAT32_ONLY_TOLERANCE", {})
    data = generate(5000, seed=7)[["one", "two", "three"]].to_numpy(dtype=float)  # data/sample.csv
    svm = make_pipeline(StandardScaler(), OneClassSVM()).fit(data[:3000])
    outcome = Outcome(None, None, "", None, "", threshold=0.0)  # type: ignore[arg-type]
    with pytest.raises(CompileError, match="no float64 graph runs"):
        compile_with_parity(task_kind("anomaly"), svm, outcome, {"holdout": data[3000:]})


def test_the_parity_probe_shows_missing_values_only_where_the_model_takes_them() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 3))
    before = parity_probe(features, 1000, seed=1)
    low, high = features.min(axis=0), features.max(axis=0)
    span = np.maximum(high - low, 1.0)
    expected = np.random.default_rng(1).uniform(low - span, high + span, size=(1000, 3))
    np.testing.assert_array_equal(before, expected)  # without missing values: the range, as it always was

    features[::7, 1] = np.nan  # a column the model takes missing values of
    probe = parity_probe(features, 1000, seed=1)
    missing = np.isnan(probe)
    assert not missing[:, [0, 2]].any()
    assert 0.15 < missing[:, 1].mean() < 0.25
    present = probe[~missing[:, 1], 1]
    assert np.nanmin(features[:, 1]) - span[1] - 1 < present.min()
    assert present.max() < high[1] + span[1] + 1
