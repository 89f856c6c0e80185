"""Leakage: a feature that alone predicts the label almost perfectly is refused before fitting.

Such a column is the label under another name (``alive`` beside ``survived``) or something known only
after the fact; a model trained with it scores near 1.0 on the holdout and fails in production. Each
feature is judged by evidence, not by its name: a one-feature decision tree, cross-validated on the
fitting rows (balanced accuracy for classes, R^2 for numbers). A category is its value index, so the
tree learns a category -> label mapping. Missing values stay NaN (the tree routes them itself).

A column the user knows is fine (a real, very strong signal) is allowed with ``[data] allow_leaky``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from training.exceptions import DataValidationError

log = logging.getLogger("training")

MAX_ROWS = 20_000
"""Rows the check looks at: enough to see a near-perfect mapping, a cost that does not grow with data."""
FOLDS = 3
NEAR_PERFECT_HOLDOUT = 0.999
"""A holdout accuracy or R^2 at least this high is worth a loud warning: perfection is rare, leaks are not."""


@dataclass(frozen=True)
class FeatureLeak:
    name: str
    score: float
    scoring: str  # "balanced accuracy" or "R^2"


def single_feature_scores(
    table: np.ndarray, labels: np.ndarray, names: list[str], classes: bool, seed: int
) -> list[FeatureLeak]:
    """Each feature's cross-validated score at predicting ``labels`` alone, best first."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    rows = np.arange(len(table))
    if len(rows) > MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=MAX_ROWS, replace=False))
    y = labels[rows]
    if classes:
        y = np.asarray([str(v) for v in y])
        _, counts = np.unique(y, return_counts=True)
        if len(counts) < 2 or counts.min() < FOLDS:
            return []
        folds: object = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
        scoring = "balanced_accuracy"
    else:
        y = np.asarray(y, dtype=np.float64)
        if np.ptp(y) == 0:
            return []
        folds = KFold(FOLDS, shuffle=True, random_state=seed)
        scoring = "r2"
    found = []
    for index, name in enumerate(names):
        column = table[rows, index : index + 1]
        tree = (
            DecisionTreeClassifier(min_samples_leaf=5, random_state=seed)
            if classes
            else DecisionTreeRegressor(min_samples_leaf=5, random_state=seed)
        )
        score = float(np.mean(cross_val_score(tree, column, y, cv=folds, scoring=scoring)))
        found.append(FeatureLeak(name, score, "balanced accuracy" if classes else "R^2"))
    return sorted(found, key=lambda leak: -leak.score)


def refuse_leaks(
    table: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    label: str,
    *,
    classes: bool,
    threshold: float,
    allowed: list[str],
    seed: int,
) -> list[FeatureLeak]:
    """Raise DataValidationError naming the first feature (not allowed) that alone predicts the label
    with a score >= ``threshold``; return every feature's score (for the report)."""
    scores = single_feature_scores(table, labels, names, classes, seed)
    if scores:
        best = scores[0]
        log.info(
            "leakage check: the strongest single feature, '%s', predicts '%s' with %s %.3f (refused at %g)",
            best.name,
            label,
            best.scoring,
            best.score,
            threshold,
        )
    for leak in scores:
        if leak.score < threshold:
            break
        if leak.name in allowed:
            log.warning(
                "feature '%s' alone predicts '%s' (%s %.3f): allowed by [data] allow_leaky",
                leak.name,
                label,
                leak.scoring,
                leak.score,
            )
            continue
        raise DataValidationError(
            f"column '{leak.name}' alone predicts the label '{label}' almost perfectly on the training rows"
            f" ({leak.scoring} {leak.score:.3f} >= {threshold:g}): it is likely the label under another name"
            f' or known only after the fact. Leave it out with [data] exclude = ["{leak.name}"], or, if it'
            f' is truly known when predicting, keep it with [data] allow_leaky = ["{leak.name}"]'
        )
    return scores


def near_perfect(metrics: dict[str, float | int | None] | None) -> str | None:
    """A warning when the holdout score looks too good to be true, else None."""
    if not metrics:
        return None
    for name in ("accuracy", "r2"):
        value = metrics.get(name)
        if isinstance(value, float) and value >= NEAR_PERFECT_HOLDOUT:
            return (
                f"the holdout {name} is {value:.4f}: near perfect. Check that no feature is the label under"
                " another name or known only after the fact (a leak scores like this and fails in production)"
            )
    return None
