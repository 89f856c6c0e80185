"""Anomaly detection: a score (higher is more anomalous) and a decision threshold.

Labels (0/1) are optional: with them, the threshold maximises F1 on the validation split and the
holdout is scored beside a robust z-score baseline; without them, a quantile rule sets it.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lambda_app.models import AnomalyPrediction, Prediction
from lambda_app.registry import ANOMALY_SCORE, Manifest, Reference, Task
from training.estimators.convert import PARITY_TOLERANCE, CompileError, is_compact
from training.estimators.families import estimator_name, final_estimator
from training.estimators.robust_z import RobustZScore
from training.evaluation.evaluate import (
    anomaly_scores,
    classification_metrics,
    evaluation_html,
    threshold_max_f1,
    threshold_quantile,
)
from training.tasks.base import (
    SUMMARY_ROWS,
    Outcome,
    Splits,
    at_most,
    feature_reference,
    quantiles,
    run_graph,
)

log = logging.getLogger("training")

ROBUST_Z_SCORE = (
    "largest robust z-score over the features, |x - median| / (1.4826 x MAD), minus {cutoff:g}: higher is"
    " more anomalous; >= threshold is an anomaly"
)


class AnomalyTask:
    name: ClassVar[Task] = "anomaly"
    metrics: ClassVar[tuple[str, ...]] = ("pr_auc", "roc_auc", "f1", "precision", "recall")
    tuning_metrics: ClassVar[tuple[str, ...]] = ("pr_auc", "roc_auc")
    default_metric: ClassVar[str] = "pr_auc"
    lower_is_better: ClassVar[frozenset[str]] = frozenset()
    proper_score: ClassVar[str | None] = None  # no probabilities or numbers to score properly

    def labels(self, column: pd.Series, name: str) -> np.ndarray:
        from training.data.validate import anomaly_labels

        return anomaly_labels(column, name)

    def usable(self, labels: np.ndarray | None, source: str) -> np.ndarray | None:
        if labels is not None and len(np.unique(labels)) < 2:
            log.warning("label column has a single class: evaluating without labels")
            return None
        return labels

    def stratify(self, labels: np.ndarray | None) -> np.ndarray | None:
        if labels is not None and np.bincount(labels, minlength=2).min() >= 3:
            return labels
        return None

    def fold_score(
        self, estimator: Any, features: np.ndarray, labels: np.ndarray | None, metric: str
    ) -> float:
        from sklearn.metrics import average_precision_score, roc_auc_score

        # Unlabelled tuning scores rank stability instead (training/selection/tune.py).
        assert labels is not None
        scorer = average_precision_score if metric == "pr_auc" else roc_auc_score
        return float(scorer(labels, anomaly_scores(estimator, features)))

    def outcome(self, estimator: Any, splits: Splits, config: Any) -> Outcome:
        x, labels = splits.features, splits.labels
        train, validation, test = splits.train, splits.validation, splits.test
        train_scores = anomaly_scores(estimator, x[at_most(train, SUMMARY_ROWS)])
        if config.threshold.strategy == "estimator":
            threshold = own_threshold(estimator)
            rule = "the estimator's own decision rule (decision_function < 0 is an outlier)"
        elif config.threshold.strategy == "max_f1" and labels is not None:
            threshold = threshold_max_f1(anomaly_scores(estimator, x[validation]), labels[validation])
            rule = "maximises F1 on the validation split (placed between two scores)"
        else:
            if config.threshold.strategy == "max_f1":
                log.warning("no labels: falling back to the quantile threshold rule")
            threshold = threshold_quantile(train_scores, config.threshold.quantile)
            rule = f"the {config.threshold.quantile} quantile of training scores (placed between two scores)"
        test_scores = anomaly_scores(estimator, x[test])
        # The drift reference is normal traffic: with labels, the anomalies are left out (they would
        # stretch the range until a real shift barely leaves it); without, the range is robust quantiles.
        served = splits.served
        normal = served[train] if labels is None else served[train][labels[train] == 0]
        reference = Reference(
            features=feature_reference(
                normal, splits.feature_names, robust=labels is None, categories=splits.categories
            ),
            score_quantiles=quantiles(train_scores),
            anomaly_rate=float(np.mean(train_scores >= threshold)),
        )
        metrics = baseline_metrics = baseline_scores = None
        if labels is not None:
            baseline = RobustZScore().fit(x[train])
            metrics = classification_metrics(test_scores, labels[test], threshold)
            baseline_threshold = threshold_max_f1(anomaly_scores(baseline, x[validation]), labels[validation])
            baseline_scores = anomaly_scores(baseline, x[test])
            baseline_metrics = classification_metrics(baseline_scores, labels[test], baseline_threshold)
            log.info(
                "holdout: pr_auc=%.3f (baseline %.3f) roc_auc=%.3f f1=%.3f threshold=%.4f",
                metrics["pr_auc"],
                baseline_metrics["pr_auc"],
                metrics["roc_auc"],
                metrics["f1"],
                threshold,
            )
        report = evaluation_html(
            config.name,
            splits.feature_names,
            reference,
            served[test],
            test_scores,
            None if labels is None else labels[test],
            threshold,
            metrics,
            baseline_metrics,
            baseline_scores,
        )
        score = (
            ANOMALY_SCORE
            if is_compact(estimator)
            else ROBUST_Z_SCORE.format(cutoff=final_estimator(estimator).cutoff)
            if isinstance(final_estimator(estimator), RobustZScore)
            else f"negated decision function of {estimator_name(estimator)}: higher is more anomalous;"
            " >= threshold is an anomaly"
        )
        return Outcome(
            metrics=metrics,
            baseline_metrics=baseline_metrics,
            baseline_name="per-feature robust z-score (max over features)",
            reference=reference,
            report_html=report,
            evaluation={
                "threshold": threshold,
                "threshold_rule": rule,
                "test_anomaly_rate_predicted": float(np.mean(test_scores >= threshold)),
            },
            threshold=threshold,
            score_description=score,
        )

    def parity(self, estimator: Any, graph: bytes, rows: np.ndarray, outcome: Outcome) -> dict[str, Any]:
        assert outcome.threshold is not None
        return check_parity(estimator, graph, rows, outcome.threshold)

    def served_metrics(
        self, prediction: Prediction, labels: np.ndarray, manifest: Manifest
    ) -> dict[str, float | int | None]:
        assert isinstance(prediction, AnomalyPrediction)
        assert manifest.threshold is not None
        return classification_metrics(prediction.scores, labels, manifest.threshold)


FLOAT32_ONLY_TOLERANCE = {"OneClassSVM": 1e-3}
"""Detectors ONNX Runtime can only run in float32 (no float64 SVM kernel), with the tolerance that
float32 kernel sums reach (seen: 4.9e-4 on a score of 0.17 on the example flows). Stated and tested;
decisions must still agree for every row outside that band around the threshold."""


def own_threshold(estimator: Any) -> float:
    """The score above which scikit-learn's ``predict`` says -1 (outlier), in the service's score terms.

    ``predict`` is -1 exactly when ``decision_function`` < 0; the served score is the negated decision
    function (or, for the compact IsolationForest graph, the negated ``score_samples``, which is the
    decision function minus ``offset_``), so an outlier is a score strictly above 0 (or -offset_).
    """
    boundary = -float(estimator.offset_) if is_compact(estimator) else 0.0
    return float(np.nextafter(boundary, np.inf))


def check_parity(estimator: Any, graph: bytes, rows: np.ndarray, threshold: float) -> dict[str, Any]:
    """Score ``rows`` with both; raise CompileError unless they agree (score and decision)."""
    (served,) = run_graph(graph, ("score",), rows)
    served = served.reshape(-1).astype(np.float64)
    reference = anomaly_scores(estimator, rows)
    error = np.abs(served - reference)
    # The compact graph reproduces the paper's score in (0, 1]: 1e-5 absolute. Other detectors' decision
    # functions are unbounded (a Mahalanobis distance reaches 1e7 far out), so each row's tolerance is
    # 1e-5 of its own score, and never below 1e-5: a far-out row cannot loosen the rows near the threshold.
    tolerance = np.full(len(rows), PARITY_TOLERANCE)
    relaxed = FLOAT32_ONLY_TOLERANCE.get(type(final_estimator(estimator)).__name__)
    if not is_compact(estimator):
        tolerance = (relaxed or PARITY_TOLERANCE) * np.maximum(1.0, np.abs(reference))
    decided = np.abs(reference - threshold) > tolerance  # rows on the threshold itself may go either way
    mismatches = int(np.sum(((served >= threshold) != (reference >= threshold)) & decided))
    worst = int(np.argmax(error / tolerance)) if len(rows) else 0
    if len(rows) and (error[worst] > tolerance[worst] or mismatches):
        raise CompileError(
            f"compiled model disagrees with scikit-learn on {len(rows)} rows: score difference"
            f" {error[worst]:.2e} where the tolerance is {tolerance[worst]:.1e}"
            f" (score {reference[worst]:.4g}), {mismatches} prediction mismatches"
        )
    return {
        "rows": len(rows),
        "max_abs_score_diff": float(error.max(initial=0.0)),
        "max_relative_score_diff": float((error / np.maximum(1.0, np.abs(reference))).max(initial=0.0)),
        "tolerance": (
            "1e-5 absolute"
            if is_compact(estimator)
            else f"{relaxed or PARITY_TOLERANCE:g} x max(1, |score|) per row"
        ),
        "prediction_mismatches": 0,
        "rows_on_threshold": int(np.sum(~decided)),
    }
