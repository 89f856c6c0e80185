"""The robust z-score detector: a scikit-learn estimator, exactly its ONNX graph, and the anomaly baseline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from training.estimators.convert import compile_model
from training.estimators.families import build_estimator, estimator_name
from training.estimators.robust_z import RobustZScore
from training.evaluation.evaluate import anomaly_scores
from training.tasks.base import run_graph


def test_it_passes_scikit_learns_estimator_checks() -> None:
    from sklearn.utils.estimator_checks import check_estimator

    # These two expect a share of the training rows to be outliers (scikit-learn's detectors take a
    # contamination); a z-score cutoff flags none of the checks' small Gaussian samples.
    contamination = "flags rows beyond a fixed z-score cutoff, not a share of the training rows"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            RobustZScore(),
            on_fail=None,
            expected_failed_checks={
                "check_outliers_fit_predict": contamination,
                "check_outliers_train": contamination,
            },
        )
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed
    assert len(results) > 30


def test_the_score_is_the_largest_robust_z_and_outliers_lie_beyond_the_cutoff() -> None:
    rng = np.random.default_rng(0)
    normal = rng.normal(loc=[5.0, -3.0, 100.0], scale=[1.0, 0.1, 10.0], size=(2000, 3))
    detector = RobustZScore(cutoff=3.5).fit(normal)
    np.testing.assert_allclose(detector.median_, np.median(normal, axis=0))
    np.testing.assert_allclose(detector.scale_, [1.0, 0.1, 10.0], rtol=0.08)  # MAD x 1.4826 ~ sigma
    rows = detector.median_ + np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 6.0], [0.0, 0.0, 60.0]])
    z = np.abs(rows - detector.median_) / detector.scale_
    np.testing.assert_allclose(-detector.score_samples(rows), z.max(axis=1))
    np.testing.assert_allclose(detector.decision_function(rows), 3.5 - z.max(axis=1))
    assert detector.predict(rows).tolist() == [1, 1, -1]


def test_a_constant_or_mostly_constant_column_still_has_a_scale() -> None:
    rows = np.column_stack([np.zeros(100), np.r_[np.zeros(95), np.ones(5)], np.arange(100.0)])
    detector = RobustZScore().fit(rows)
    assert detector.scale_[0] == 1.0  # no spread at all: 1
    assert detector.scale_[1] == pytest.approx(rows[:, 1].std())  # MAD 0: the standard deviation
    assert np.isfinite(detector.score_samples(rows)).all()


def test_its_graph_answers_the_served_score_exactly() -> None:
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(3000, 5)) * [1.0, 1e3, 1e-3, 50.0, 1.0]
    detector = build_estimator(_model("robust_z_score")).fit(rows[:2000])
    graph, converter = compile_model(detector, "anomaly", 5)
    (served,) = run_graph(graph, ("score",), rows)
    reference = anomaly_scores(detector, rows)  # the negated decision function: max z - cutoff
    np.testing.assert_allclose(served, reference, rtol=1e-6, atol=1e-5)
    assert converter["name"] == "skl2onnx"
    assert estimator_name(detector) == "training.estimators.robust_z.RobustZScore"


def _model(estimator: str) -> object:
    from training.config import ModelConfig

    return ModelConfig.model_validate({"task": "anomaly", "estimator": estimator})
