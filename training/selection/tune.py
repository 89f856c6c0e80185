"""Hyperparameter search with cross-validation, from the training config's search space.

Each candidate is the configured estimator (whatever it is) with the candidate's parameters,
fitted on folds and scored on the held-out fold by the task's metric (training/tasks/): PR-AUC by
default for labelled anomaly data, macro F1 for classification, RMSE for regression (lower is
better there: the search knows the direction). Without labels an anomaly detector is scored by
stability: the mean pairwise Spearman correlation of held-out anomaly-score rankings from models
fitted on different folds. The same seed and data give the same choice. The caller passes at most
``[tuning] max_rows`` training rows (training/train.py), and the (candidate, fold) fits run on every core.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.config import TuningConfig
from training.data.labels import class_codes
from training.evaluation.evaluate import anomaly_scores
from training.tasks import TaskKind


@dataclass(frozen=True)
class TuningResult:
    objective: str
    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    lower_is_better: bool = False

    def as_dict(self, config: TuningConfig) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "lower_is_better": self.lower_is_better,
            "folds": config.folds,
            "budget": config.budget,
            "seed": config.seed,
            "space": config.space,
            "best_params": self.best_params,
            "best_score": self.best_score,
            "trials": self.trials,
        }


def tuning_rows(train: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """The training rows tuning cross-validates on: all of them, or a seeded sample of ``max_rows``."""
    if len(train) <= max_rows:
        return train
    return np.sort(np.random.default_rng(seed).choice(train, size=max_rows, replace=False))


def candidate_count(config: TuningConfig) -> int:
    """How many configurations the search tries: the budget, or the whole grid when it is smaller."""
    grid_size = int(np.prod([len(v) for v in config.space.values()])) if config.space else 1
    return min(config.budget, grid_size)


def fit_params(params: dict[str, Any], rows: int) -> dict[str, Any]:
    """``params`` made valid for ``rows`` training rows (max_samples cannot exceed them)."""
    adjusted = dict(params)
    if isinstance(adjusted.get("max_samples"), int) and adjusted["max_samples"] > rows:
        adjusted["max_samples"] = rows
    return adjusted


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks


def _fit(
    build: Callable[[dict[str, Any]], Any], params: dict[str, Any], x: np.ndarray, y: np.ndarray | None
) -> Any:
    estimator = build(fit_params(params, len(x)))
    return estimator.fit(x) if y is None else estimator.fit(x, y)


def tune(
    build: Callable[[dict[str, Any]], Any],
    kind: TaskKind,
    features: np.ndarray,
    labels: np.ndarray | None,
    config: TuningConfig,
    metric: str,
    fixed: dict[str, Any],
) -> TuningResult:
    """The best of ``config.budget`` configurations sampled from ``config.space``.

    ``build(params)`` returns an unfitted estimator; ``labels`` is None for unlabelled anomaly data.
    Anomaly detectors are fitted without labels even when labels score them.
    """
    from sklearn.model_selection import KFold, ParameterSampler, StratifiedKFold

    space = {name: list(values) for name, values in config.space.items()}
    candidates = list(ParameterSampler(space, n_iter=candidate_count(config), random_state=config.seed))
    stratify = kind.stratify(labels)
    if stratify is not None:
        _, counts = np.unique(class_codes(stratify), return_counts=True)
        if counts.min() < config.folds:
            stratify = None
    if stratify is not None:
        splitter: Any = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
        folds = list(splitter.split(features, class_codes(stratify)))
    else:
        folds = list(KFold(n_splits=config.folds, shuffle=True, random_state=config.seed).split(features))
    supervised = kind.name != "anomaly"
    ranked = labels is not None and (supervised or stratify is not None)
    lower = ranked and metric in kind.lower_is_better
    if ranked:
        objective = metric
    else:
        objective = "stability (mean pairwise Spearman correlation of held-out score rankings)"
        probe = features[np.random.default_rng(config.seed).permutation(len(features))[:2000]]

    def fold(params: dict[str, Any], train: np.ndarray, test: np.ndarray) -> Any:
        """One candidate on one fold: its held-out score, or (unlabelled) its ranking of the probe."""
        if ranked:
            assert labels is not None
            fitted = _fit(build, params, features[train], labels[train] if supervised else None)
            return kind.fold_score(fitted, features[test], labels[test], metric)
        return _ranks(anomaly_scores(_fit(build, params, features[train], None), probe))

    # Every (candidate, fold) fit is independent: they run on all cores, in threads (scikit-learn's tree
    # building and scoring release the GIL; threads share the data instead of copying it to processes).
    # Each fit's randomness comes from its own parameters, so the result does not depend on the order.
    from joblib import Parallel, delayed

    jobs = [({**fixed, **candidate}, train, test) for candidate in candidates for train, test in folds]
    outcomes = Parallel(n_jobs=min(len(jobs), os.cpu_count() or 1), prefer="threads")(
        delayed(fold)(*job) for job in jobs
    )
    trials = []
    for number, candidate in enumerate(candidates):
        results = outcomes[number * len(folds) : (number + 1) * len(folds)]
        if ranked:
            fold_scores = [float(r) for r in results]
        else:
            fold_scores = [float(np.corrcoef(a, b)[0, 1]) for a, b in itertools.combinations(results, 2)]
        finite = [s for s in fold_scores if not math.isnan(s)]
        mean = float(np.mean(finite)) if finite else float("nan")
        trials.append({"params": candidate, "mean": mean, "std": float(np.std(finite)) if finite else 0.0})

    def rank(trial: dict[str, Any]) -> tuple[float, float]:
        mean = trial["mean"]
        if math.isnan(mean):
            return (-math.inf, 0.0)
        return (-mean if lower else mean, -trial["std"])

    best = max(trials, key=rank)
    return TuningResult(
        objective=objective,
        best_params={**fixed, **best["params"]},
        best_score=best["mean"],
        trials=trials,
        lower_is_better=lower,
    )
