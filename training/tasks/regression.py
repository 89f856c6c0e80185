"""Regression: one number per row. The baseline predicts the training mean (DummyRegressor)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lambda_app.models import Prediction, RegressionPrediction
from lambda_app.registry import Manifest, Reference, Task
from training.estimators.convert import PARITY_TOLERANCE, CompileError
from training.exceptions import DataValidationError
from training.tasks.base import (
    SUMMARY_ROWS,
    Outcome,
    Splits,
    at_most,
    feature_reference,
    quantiles,
    run_graph,
    sklearn_frame,
    unlabelled_outcome,
)

log = logging.getLogger("training")


def regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float | int | None]:
    """MAE, RMSE and R² (None when the truth is constant)."""
    truth = np.asarray(truth, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    errors = predicted - truth
    total = float(np.sum((truth - truth.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(errors))),
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "r2": 1.0 - float(np.sum(errors**2)) / total if total > 0 else None,
        "rows": len(truth),
    }


def outside_label_range(predicted: np.ndarray, train_labels: np.ndarray) -> dict[str, float]:
    """How many predictions fall below / above the labels seen in training, and that range."""
    low, high = float(np.min(train_labels)), float(np.max(train_labels))
    return {
        "min": low,
        "max": high,
        "below": int(np.sum(predicted < low)),
        "above": int(np.sum(predicted > high)),
    }


class RegressionTask:
    name: ClassVar[Task] = "regression"
    metrics: ClassVar[tuple[str, ...]] = ("rmse", "mae", "r2")
    tuning_metrics: ClassVar[tuple[str, ...]] = metrics
    default_metric: ClassVar[str] = "rmse"
    lower_is_better: ClassVar[frozenset[str]] = frozenset({"rmse", "mae"})
    proper_score: ClassVar[str | None] = "rmse"

    def labels(self, column: pd.Series, name: str) -> np.ndarray:
        from training.data.validate import label_numbers

        return label_numbers(column, name)

    def usable(self, labels: np.ndarray | None, source: str) -> np.ndarray | None:
        if labels is None:
            raise DataValidationError(f"{source}: a regression model needs the label column (its target)")
        return labels

    def stratify(self, labels: np.ndarray | None) -> np.ndarray | None:
        return None

    def fold_score(
        self, estimator: Any, features: np.ndarray, labels: np.ndarray | None, metric: str
    ) -> float:
        assert labels is not None
        value = regression_metrics(labels, estimator.predict(sklearn_frame(estimator, features)))[metric]
        return float("nan") if value is None else float(value)

    def outcome(self, estimator: Any, splits: Splits, config: Any) -> Outcome:
        from sklearn.dummy import DummyRegressor

        from training.evaluation.report import regression_report, with_section

        x, labels = splits.features, splits.labels
        train, test = splits.train, splits.test
        summarised = x[at_most(train, SUMMARY_ROWS)]
        train_predicted = np.asarray(
            estimator.predict(sklearn_frame(estimator, summarised)), dtype=np.float64
        )
        reference = Reference(
            features=feature_reference(
                splits.served[train], splits.feature_names, categories=splits.categories
            ),
            prediction_quantiles=quantiles(train_predicted),
            prediction_mean=float(train_predicted.mean()),
        )
        if labels is None:  # an imported model with an unlabelled sample: no metrics to compute
            return unlabelled_outcome(config.name, splits, reference)
        predicted = np.asarray(estimator.predict(sklearn_frame(estimator, x[test])), dtype=np.float64)
        metrics = regression_metrics(labels[test], predicted)
        baseline = DummyRegressor(strategy="mean").fit(x[train], labels[train])
        baseline_metrics = regression_metrics(labels[test], baseline.predict(x[test]))
        log.info(
            "holdout: rmse=%.4g (baseline %.4g) mae=%.4g r2=%s",
            metrics["rmse"],
            baseline_metrics["rmse"],
            metrics["mae"],
            metrics["r2"],
        )
        report = regression_report(
            config.name,
            splits.feature_names,
            reference,
            splits.served[test],
            labels[test],
            predicted,
            metrics,
            baseline_metrics,
        )
        outside = outside_label_range(predicted, labels[train])
        if outside["below"] or outside["above"]:
            text = (
                f"{outside['below'] + outside['above']:,} of {len(predicted):,} holdout predictions fall"
                f" outside the label's training range [{outside['min']:.6g}, {outside['max']:.6g}]"
                f" ({outside['below']:,} below, {outside['above']:,} above): a price or a count below"
                " zero, say, is an answer no one should act on; consider a model that cannot leave the"
                " range (trees do not) or clip at the caller"
            )
            log.warning("%s", text)
            report = with_section(report, f"<h2>Predictions outside the training range</h2><p>{text}</p>")
        return Outcome(
            metrics=metrics,
            baseline_metrics=baseline_metrics,
            baseline_name="the training mean",
            reference=reference,
            report_html=report,
            evaluation={"outside_label_range": outside},
        )

    def parity(self, estimator: Any, graph: bytes, rows: np.ndarray, outcome: Outcome) -> dict[str, Any]:
        (served,) = run_graph(graph, ("prediction",), rows)
        served = served.reshape(-1).astype(np.float64)
        reference = np.asarray(estimator.predict(sklearn_frame(estimator, rows)), dtype=np.float64).reshape(
            -1
        )
        diff = float(np.max(np.abs(served - reference))) if len(rows) else 0.0
        # Relative to the largest prediction: float32 carries about 7 significant digits, and a sum
        # of many trees loses a little more, so an absolute tolerance would not fit every target's scale.
        scale = float(np.max(np.abs(reference), initial=0.0))
        tolerance = PARITY_TOLERANCE * max(scale, float(np.finfo(np.float32).tiny))
        if diff > tolerance:
            raise CompileError(
                f"compiled model disagrees with scikit-learn on {len(rows)} rows: max difference {diff:.3e}"
                f" > {PARITY_TOLERANCE:.0e} x the largest prediction ({scale:.4g})"
            )
        return {
            "rows": len(rows),
            "max_abs_diff": diff,
            "largest_prediction": scale,
            "relative_tolerance": PARITY_TOLERANCE,
        }

    def served_metrics(
        self, prediction: Prediction, labels: np.ndarray, manifest: Manifest
    ) -> dict[str, float | int | None]:
        assert isinstance(prediction, RegressionPrediction)
        return regression_metrics(labels, prediction.values)
