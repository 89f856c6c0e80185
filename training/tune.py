"""Hyperparameter search with cross-validation, from the training config's search space.

With labels, each candidate is scored by the stated metric (PR-AUC by default: anomalies are
rare, so precision-recall is the informative curve) on held-out folds. Without labels, by
stability: the mean pairwise Spearman correlation of held-out anomaly-score rankings from
models fitted on different folds (a configuration whose rankings depend on which rows it
happened to see is not one to trust). The same seed and data give the same choice.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.config import TuningConfig


@dataclass(frozen=True)
class TuningResult:
    objective: str
    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self, config: TuningConfig) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "folds": config.folds,
            "budget": config.budget,
            "seed": config.seed,
            "space": config.space,
            "best_params": self.best_params,
            "best_score": self.best_score,
            "trials": self.trials,
        }


def fit_params(params: dict[str, Any], rows: int) -> dict[str, Any]:
    """``params`` made valid for ``rows`` training rows (max_samples cannot exceed them)."""
    adjusted = dict(params)
    if isinstance(adjusted.get("max_samples"), int) and adjusted["max_samples"] > rows:
        adjusted["max_samples"] = rows
    return adjusted


def _anomaly_scores(params: dict[str, Any], fit_rows: np.ndarray, score_rows: np.ndarray) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(**fit_params(params, len(fit_rows))).fit(fit_rows)
    return -np.asarray(forest.score_samples(score_rows), dtype=np.float64)


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks


def tune(
    features: np.ndarray, labels: np.ndarray | None, config: TuningConfig, fixed: dict[str, Any]
) -> TuningResult:
    """The best of ``config.budget`` configurations sampled from ``config.space``."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import KFold, ParameterSampler, StratifiedKFold

    space = {name: list(values) for name, values in config.space.items()}
    grid_size = int(np.prod([len(v) for v in space.values()])) if space else 1
    candidates = list(ParameterSampler(space, n_iter=min(config.budget, grid_size), random_state=config.seed))
    labelled = labels is not None and np.bincount(labels, minlength=2).min() >= config.folds
    if labelled:
        assert labels is not None
        splitter: Any = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
        folds = list(splitter.split(features, labels))
        objective: str = config.metric
        scorer = average_precision_score if config.metric == "pr_auc" else roc_auc_score
    else:
        folds = list(KFold(n_splits=config.folds, shuffle=True, random_state=config.seed).split(features))
        objective = "stability (mean pairwise Spearman correlation of held-out score rankings)"
        probe = features[np.random.default_rng(config.seed).permutation(len(features))[:2000]]

    trials = []
    for candidate in candidates:
        params = {**fixed, **candidate}
        if labelled:
            assert labels is not None
            fold_scores = [
                float(scorer(labels[test], _anomaly_scores(params, features[train], features[test])))
                for train, test in folds
            ]
        else:
            rankings = [_ranks(_anomaly_scores(params, features[train], probe)) for train, _ in folds]
            fold_scores = [float(np.corrcoef(a, b)[0, 1]) for a, b in itertools.combinations(rankings, 2)]
        trials.append(
            {"params": candidate, "mean": float(np.mean(fold_scores)), "std": float(np.std(fold_scores))}
        )
    best = max(trials, key=lambda trial: (trial["mean"], -trial["std"]))
    return TuningResult(
        objective=objective, best_params={**fixed, **best["params"]}, best_score=best["mean"], trials=trials
    )
