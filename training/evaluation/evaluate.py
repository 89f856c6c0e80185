"""Anomaly scores, decision threshold, evaluation metrics, baseline and report of anomaly detectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from lambda_app.registry import Reference

SCORE_SLICE_ROWS = 50_000


def anomaly_scores(estimator: Any, features: np.ndarray) -> np.ndarray:
    """The service's score, higher is more anomalous.

    An IsolationForest's is the paper's score in (0, 1] (negated ``score_samples``); every other
    detector's is its negated ``decision_function`` (the same ranking, shifted by its offset), which is
    what its converted graph computes.
    """
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    own = type(final).__name__ == "IsolationForest" and not hasattr(estimator, "steps")
    score = estimator.score_samples if own else estimator.decision_function
    # In slices: scikit-learn's forest scoring holds each tree's decision path for every row it is given
    # (hundreds of MB for a million rows); slices keep that flat whatever the number of rows.
    parts = [
        -np.asarray(score(features[start : start + SCORE_SLICE_ROWS]), dtype=np.float64)
        for start in range(0, len(features), SCORE_SLICE_ROWS)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def threshold_max_f1(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold that maximises F1 on labelled validation data."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros_like(precision),
        where=(precision + recall) > 0,
    )
    return between_scores(scores, float(thresholds[int(np.argmax(f1[:-1]))]))


def threshold_quantile(scores: np.ndarray, quantile: float) -> float:
    """The score below which ``quantile`` of the rows fall: the rest are flagged."""
    return between_scores(scores, float(np.quantile(scores, quantile)))


def between_scores(scores: np.ndarray, threshold: float) -> float:
    """The same decision on ``scores``, with the threshold moved into the gap below it.

    A threshold equal to some score flips on float noise (the served graph computes in float32);
    halfway between the scores on either side, no row sits on it.
    """
    above = scores[scores >= threshold]
    below = scores[scores < threshold]
    if not len(above):
        return threshold
    upper = float(above.min())
    lower = float(below.max()) if len(below) else upper - 1e-3
    return (upper + lower) / 2


def classification_metrics(
    scores: np.ndarray, labels: np.ndarray, threshold: float
) -> dict[str, float | int | None]:
    """Precision, recall, F1 at the threshold; ROC-AUC and PR-AUC over all thresholds."""
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

    predicted = (scores >= threshold).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, average="binary", zero_division=0
    )
    both_classes = len(np.unique(labels)) == 2
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else None,
        "pr_auc": float(average_precision_score(labels, scores)) if both_classes else None,
        "threshold": float(threshold),
        "rows": len(labels),
        "anomalies": int(labels.sum()),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "true_negatives": tn,
    }


def evaluation_html(
    name: str,
    feature_names: list[str],
    reference: Reference,
    test_features: np.ndarray,
    test_scores: np.ndarray,
    test_labels: np.ndarray | None,
    threshold: float,
    metrics: dict[str, Any] | None,
    baseline_metrics: dict[str, Any] | None,
    baseline_scores: np.ndarray | None,
) -> str:
    """The self-contained evaluation report written next to every version."""
    from training.evaluation.report import (
        confusion,
        feature_histograms,
        page,
        roc_and_pr_curves,
        score_distributions,
        table,
    )

    sections = [f"<p>Decision threshold {threshold:.4f}; {len(test_scores)} held-out rows.</p>"]
    if metrics and baseline_metrics and test_labels is not None and baseline_scores is not None:
        keys = ["pr_auc", "roc_auc", "f1", "precision", "recall"]
        sections.append("<h2>Holdout metrics</h2>")
        sections.append(
            table(
                ["model", *keys],
                [
                    [name, *[metrics[k] for k in keys]],
                    ["robust z-score baseline", *[baseline_metrics[k] for k in keys]],
                ],
            )
        )
        beaten = (baseline_metrics["pr_auc"] or 0) > (metrics["pr_auc"] or 0)
        verdict = "bad'>The baseline beats the model" if beaten else "good'>The model beats the baseline"
        sections.append(f"<p class='{verdict} on PR-AUC.</p>")
        sections.append("<h2>Confusion matrix at the threshold</h2>" + confusion(metrics))
        sections.append(score_distributions(test_scores, test_labels, threshold))
        sections.append(
            roc_and_pr_curves(
                {name: (test_scores, test_labels), "baseline": (baseline_scores, test_labels)},
                {name: threshold},
            )
        )
    else:
        sections.append(
            "<p><strong>Unlabelled</strong>: the data had no labels, so there are no precision, recall or"
            " PR-AUC figures and the threshold is a quantile of the training scores; see the score and"
            " feature distributions.</p>"
        )
    sections.append("<h2>Holdout features against the training reference</h2>")
    sections.append(
        feature_histograms(reference, feature_names, test_features, "Feature distributions", "holdout")
    )
    return page(f"Evaluation report: {name}", sections)
