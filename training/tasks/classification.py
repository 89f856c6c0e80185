"""Classification (binary and multiclass; integer or string classes).

Predictions are the classes as they were in the training data; probabilities are per class, in the
order of the manifest's ``classes``. The baseline predicts the most frequent class with the
training class shares as probabilities (scikit-learn's DummyClassifier, strategy "prior").
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lambda_app.models import ClassPrediction, Prediction
from lambda_app.registry import ClassLabel, Manifest, Reference, Task
from training.estimators.convert import PARITY_TOLERANCE, CompileError
from training.exceptions import DataValidationError
from training.tasks.base import (
    SUMMARY_ROWS,
    Outcome,
    Splits,
    at_most,
    feature_reference,
    run_graph,
    sklearn_frame,
    unlabelled_outcome,
)

log = logging.getLogger("training")

MIN_ROWS_PER_CLASS_TO_STRATIFY = 3


def class_labels(column: pd.Series, name: str) -> np.ndarray:
    """Integers stay integers (int64), anything else is a string class (object array)."""
    from training.data.validate import MISSING_LABEL, row_number

    if pd.api.types.is_bool_dtype(column):
        return np.asarray(column.to_numpy(dtype=np.int64))
    missing = np.flatnonzero(column.isna().to_numpy())
    text = column.astype(str).str.strip()
    empty = np.flatnonzero((text == "").to_numpy())
    if len(missing) or len(empty):
        row = int(min([*missing[:1], *empty[:1]]))
        raise DataValidationError(f"column '{name}', row {row_number(column, row)}: {MISSING_LABEL}")
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        fractional = np.flatnonzero((numbers != numbers.round()).to_numpy())
        if len(fractional):
            row = int(fractional[0])
            raise DataValidationError(
                f"column '{name}', row {row_number(column, row)}: class {text.iloc[row][:40]!r}"
                " is not an integer;"
                " classes are integers or strings (for a number to predict, use model.task = 'regression')"
            )
        return np.asarray(numbers.to_numpy(dtype=np.int64))
    return np.asarray(text.to_numpy(dtype=object))


def plain_classes(classes: Any) -> list[ClassLabel]:
    """An estimator's ``classes_`` as JSON-able Python values, integers kept as integers."""
    values: list[ClassLabel] = []
    for value in list(classes):
        if isinstance(value, (bool, np.bool_, int, np.integer)):
            values.append(int(value))
        else:
            values.append(str(value))
    return values


def classification_metrics(
    truth: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray, classes: list[ClassLabel]
) -> dict[str, float | int | None]:
    """Accuracy, macro F1, ROC-AUC (one-vs-rest when multiclass) and log loss."""
    from sklearn.metrics import f1_score, log_loss, roc_auc_score

    # Compared as strings: the classes' JSON keys, and one type whatever the labels were.
    truth = np.asarray([str(v) for v in truth])
    predicted = np.asarray([str(v) for v in predicted])
    proba = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    labels = np.asarray([str(c) for c in classes])
    # scikit-learn reads probability columns in the sorted order of the labels: as strings, 10 sorts
    # before 9, and a model file's classes named with --classes keep the file's order.
    order = np.argsort(labels, kind="stable")
    labels, proba = labels[order], proba[:, order]
    auc: float | None
    try:
        if len(classes) == 2:
            auc = float(roc_auc_score(truth == labels[1], proba[:, 1]))
        else:
            auc = float(roc_auc_score(truth, proba, multi_class="ovr", labels=labels))
    except ValueError:  # a class absent from these rows
        auc = None
    return {
        "accuracy": float(np.mean(truth == predicted)),
        "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "roc_auc": auc,
        "log_loss": float(log_loss(truth, proba, labels=labels)),
        "rows": len(truth),
    }


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: list[ClassLabel]) -> list[list[int]]:
    index = {str(c): i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for actual, guess in zip(truth, predicted, strict=True):
        matrix[index[str(actual)], index[str(guess)]] += 1
    return [[int(v) for v in row] for row in matrix]


class ClassificationTask:
    name: ClassVar[Task] = "classification"
    metrics: ClassVar[tuple[str, ...]] = ("f1_macro", "accuracy", "roc_auc", "log_loss")
    tuning_metrics: ClassVar[tuple[str, ...]] = metrics
    default_metric: ClassVar[str] = "f1_macro"
    lower_is_better: ClassVar[frozenset[str]] = frozenset({"log_loss"})
    proper_score: ClassVar[str | None] = "log_loss"

    def labels(self, column: pd.Series, name: str) -> np.ndarray:
        return class_labels(column, name)

    def usable(self, labels: np.ndarray | None, source: str) -> np.ndarray | None:
        if labels is None:
            raise DataValidationError(f"{source}: a classification model needs the label column")
        if len({str(v) for v in labels}) < 2:
            raise DataValidationError(
                f"{source}: the label column holds a single class; a classifier needs two"
            )
        return labels

    def stratify(self, labels: np.ndarray | None) -> np.ndarray | None:
        if labels is None:
            return None
        _, counts = np.unique(labels.astype(str), return_counts=True)
        return labels if counts.min() >= MIN_ROWS_PER_CLASS_TO_STRATIFY else None

    def fold_score(
        self, estimator: Any, features: np.ndarray, labels: np.ndarray | None, metric: str
    ) -> float:
        assert labels is not None
        frame = sklearn_frame(estimator, features)
        classes = plain_classes(estimator.classes_)
        value = classification_metrics(
            labels, estimator.predict(frame), estimator.predict_proba(frame), classes
        )[metric]
        return float("nan") if value is None else float(value)

    def outcome(self, estimator: Any, splits: Splits, config: Any) -> Outcome:
        from sklearn.dummy import DummyClassifier

        from training.evaluation.report import class_report

        x, labels = splits.features, splits.labels
        train, test = splits.train, splits.test
        classes = plain_classes(estimator.classes_)
        train_predicted = estimator.predict(sklearn_frame(estimator, x[at_most(train, SUMMARY_ROWS)]))
        keys, counts = np.unique(np.asarray([str(v) for v in train_predicted]), return_counts=True)
        shares = dict(zip(keys.tolist(), (counts / counts.sum()).tolist(), strict=True))
        reference = Reference(
            features=feature_reference(
                splits.served[train], splits.feature_names, categories=splits.categories
            ),
            class_fractions={str(c): float(shares.get(str(c), 0.0)) for c in classes},
        )
        if labels is None:  # an imported model with an unlabelled sample: no metrics to compute
            return unlabelled_outcome(config.name, splits, reference, classes=classes)
        frame = sklearn_frame(estimator, x[test])
        predicted = estimator.predict(frame)
        probabilities = estimator.predict_proba(frame)
        metrics = classification_metrics(labels[test], predicted, probabilities, classes)
        baseline = DummyClassifier(strategy="prior").fit(x[train], labels[train])
        baseline_proba = _aligned(baseline.predict_proba(x[test]), plain_classes(baseline.classes_), classes)
        baseline_metrics = classification_metrics(
            labels[test], baseline.predict(x[test]), baseline_proba, classes
        )
        confusion = confusion_matrix(labels[test], predicted, classes)
        log.info(
            "holdout: f1_macro=%.3f (baseline %.3f) accuracy=%.3f log_loss=%.3f",
            metrics["f1_macro"],
            baseline_metrics["f1_macro"],
            metrics["accuracy"],
            metrics["log_loss"],
        )
        report = class_report(
            config.name,
            splits.feature_names,
            reference,
            splits.served[test],
            labels[test],
            probabilities,
            classes,
            metrics,
            baseline_metrics,
            confusion,
        )
        return Outcome(
            metrics=metrics,
            baseline_metrics=baseline_metrics,
            baseline_name="most frequent class, training class shares as probabilities",
            reference=reference,
            report_html=report,
            evaluation={"classes": classes, "confusion_matrix": confusion},
            classes=classes,
        )

    def parity(self, estimator: Any, graph: bytes, rows: np.ndarray, outcome: Outcome) -> dict[str, Any]:
        served_labels, served_proba = run_graph(graph, ("label", "probabilities"), rows)
        frame = sklearn_frame(estimator, rows)
        reference_labels = estimator.predict(frame)
        reference_proba = estimator.predict_proba(frame)
        diff = float(np.max(np.abs(served_proba - reference_proba))) if len(rows) else 0.0
        # Where scikit-learn's two most likely classes are within the tolerance, float32 may pick either.
        top_two = np.sort(reference_proba, axis=1)[:, -2:]
        decided = (top_two[:, 1] - top_two[:, 0]) > PARITY_TOLERANCE
        differ = np.asarray(
            [str(a) != str(b) for a, b in zip(served_labels.reshape(-1), reference_labels, strict=True)]
        )
        mismatches = int(np.sum(differ & decided))
        if diff > PARITY_TOLERANCE or mismatches:
            raise CompileError(
                f"compiled model disagrees with scikit-learn on {len(rows)} rows: max probability difference"
                f" {diff:.2e} (tolerance {PARITY_TOLERANCE:.0e}), {mismatches} class mismatches"
            )
        return {
            "rows": len(rows),
            "max_abs_probability_diff": diff,
            "tolerance": PARITY_TOLERANCE,
            "class_mismatches": 0,
            "rows_with_tied_classes": int(np.sum(~decided)),
        }

    def served_metrics(
        self, prediction: Prediction, labels: np.ndarray, manifest: Manifest
    ) -> dict[str, float | int | None]:
        assert isinstance(prediction, ClassPrediction)
        assert manifest.classes is not None
        return classification_metrics(
            labels, np.asarray(prediction.labels, dtype=object), prediction.probabilities, manifest.classes
        )


def _aligned(probabilities: np.ndarray, have: list[ClassLabel], want: list[ClassLabel]) -> np.ndarray:
    """Probability columns reordered (and zero-filled) from ``have`` classes to ``want``."""
    out = np.zeros((len(probabilities), len(want)))
    index = {str(c): i for i, c in enumerate(have)}
    for j, c in enumerate(want):
        if str(c) in index:
            out[:, j] = probabilities[:, index[str(c)]]
    return out
