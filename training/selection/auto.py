"""``[model] estimator = "auto"``: the best of a few estimator families for this table, chosen for the user.

Each family of the task (training/estimators/families.py: AUTO_FAMILIES) is cross-validated on the same
folds of the same tuning rows, each with its own preprocessing (ordinal categories for trees, one-hot and
a scaler for the linear model), from its default parameters, and scored by the task's proper score (log
loss for classes, RMSE for numbers): the score that rewards honest probabilities and penalises large
errors, not a threshold metric one lucky fold can flatter. Anomaly detectors have no proper score: they
are fitted without labels and ranked by the held-out labels' PR-AUC (or ``[tuning] metric``); without
labels, or with too few anomalies to put some in every fold, there is nothing to rank by and the choice
is an IsolationForest with scikit-learn's defaults (the one-line leaderboard says why). The best wins; a
tie goes to the earlier family. Families are tried in order until ``[tuning] budget_s`` is spent (the
first always runs). The run then tunes the winner over its family's space and fits it like any configured
estimator, and the leaderboard (each family's score, spread, time) goes into evaluation.json and the
report.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training.config import TrainingConfig, TuningConfig
from training.data.validate import Dataset
from training.estimators.families import (
    AUTO_FAMILIES,
    UNLABELLED_DEFAULT,
    Family,
    build_estimator,
    family_model,
    seeded_params,
)
from training.estimators.preprocess import fit_preprocessing
from training.exceptions import TrainingError
from training.selection.tune import tune, tuning_rows
from training.tasks import TaskKind

log = logging.getLogger("training")


@dataclass(frozen=True)
class Standing:
    """One family's line on the leaderboard."""

    estimator: str
    score: float | None
    std: float | None
    seconds: float
    status: str  # "chosen", "ranked", "skipped: ..." or "failed: ..."


@dataclass(frozen=True)
class Selection:
    config: TrainingConfig  # the run's config with the winner's estimator and its tuning space
    metric: str
    lower_is_better: bool
    rows: int
    folds: int
    budget_s: float
    standings: list[Standing]
    ranked: bool = True  # False: nothing to rank by, the task's default chosen (the one standing says why)

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "lower_is_better": self.lower_is_better,
            "rows": self.rows,
            "folds": self.folds,
            "budget_s": self.budget_s,
            "chosen": self.config.model.estimator,
            "ranked": self.ranked,
            "leaderboard": [asdict(standing) for standing in self.standings],
        }


def choose_estimator(
    config: TrainingConfig,
    kind: TaskKind,
    dataset: Dataset,
    fit_rows: np.ndarray,
    labels: np.ndarray | None,
) -> Selection:
    """Cross-validate the task's families on the fitting rows and return the config of the best."""
    families = AUTO_FAMILIES[config.model.task]
    metric = kind.proper_score or config.tuning.metric or kind.tuning_metrics[0]
    lower = metric in kind.lower_is_better
    seed = config.split.seed
    rows = tuning_rows(fit_rows, config.tuning.max_rows, config.tuning_seed)
    folds = config.tuning.model_copy(update={"space": {}, "seed": config.tuning_seed})
    unranked = unranked_reason(labels[rows] if labels is not None else None, kind, config.tuning.folds)
    if unranked:
        return _unlabelled_default(config, metric, len(rows), unranked)
    assert labels is not None
    started = time.perf_counter()
    standings: list[Standing] = []
    for number, family in enumerate(families):
        spent = time.perf_counter() - started
        if number and spent >= config.tuning.budget_s:
            reason = (
                f"skipped: {spent:.0f} s of the {config.tuning.budget_s:g} s budget ([tuning] budget_s) spent"
            )
            standings.append(Standing(family.estimator, None, None, 0.0, reason))
            continue
        if family.max_rows is not None and len(fit_rows) > family.max_rows:
            reason = f"skipped: more than {family.max_rows:,} fitting rows ({family.skip_reason})"
            standings.append(Standing(family.estimator, None, None, 0.0, reason))
            continue
        standings.append(
            _cross_validate(family, config, kind, dataset, fit_rows, rows, labels, folds, metric, seed)
        )
        line = standings[-1]
        if line.score is None:
            log.warning("choosing the estimator: %s %s", family.estimator, line.status)
        else:
            log.info(
                "choosing the estimator: %s %s %.4f (+/- %.4f) in %.1f s",
                family.estimator,
                metric,
                line.score,
                line.std,
                line.seconds,
            )
    scored = [
        (index, s) for index, s in enumerate(standings) if s.score is not None and math.isfinite(s.score)
    ]
    if not scored:
        reasons = "; ".join(f"{s.estimator}: {s.status}" for s in standings)
        raise TrainingError(f'estimator = "auto": no family could be cross-validated ({reasons})')
    best_index = min(scored, key=lambda item: (_sign(lower) * float(item[1].score or 0.0), item[0]))[0]
    standings = [
        s if index != best_index else Standing(s.estimator, s.score, s.std, s.seconds, "chosen")
        for index, s in enumerate(standings)
    ]
    winner = families[best_index]
    chosen = config.model_copy(
        update={
            "model": family_model(config.model, winner),
            # tuned on the same proper score, unless [tuning] metric says otherwise
            "tuning": config.tuning.model_copy(
                update={"space": dict(winner.space), "metric": config.tuning.metric or metric}
            ),
        }
    )
    return Selection(chosen, metric, lower, len(rows), config.tuning.folds, config.tuning.budget_s, standings)


def unranked_reason(labels: np.ndarray | None, kind: TaskKind, folds: int) -> str:
    """Why detectors cannot be ranked on rows with these labels ("" when they can): no labels, or too few
    anomalies for every fold to hold some (a fold without one has no PR-AUC)."""
    if kind.name != "anomaly":
        return ""
    if labels is None:
        return "no labels to rank detectors by"
    anomalies = int(np.sum(labels == 1))
    if anomalies < max(folds, 3):
        return f"{anomalies} labelled anomalies, too few to rank detectors on {folds} folds"
    return ""


def _unlabelled_default(config: TrainingConfig, metric: str, rows: int, reason: str) -> Selection:
    """The anomaly default when detectors cannot be ranked: an untuned IsolationForest."""
    chosen = config.model_copy(
        update={
            "model": family_model(config.model, UNLABELLED_DEFAULT),
            "tuning": config.tuning.model_copy(update={"space": {}}),
        }
    )
    line = Standing(UNLABELLED_DEFAULT.estimator, None, None, 0.0, f"chosen: {reason}")
    return Selection(chosen, metric, False, rows, config.tuning.folds, config.tuning.budget_s, [line], False)


def _sign(lower_is_better: bool) -> float:
    return 1.0 if lower_is_better else -1.0


def _cross_validate(
    family: Family,
    config: TrainingConfig,
    kind: TaskKind,
    dataset: Dataset,
    fit_rows: np.ndarray,
    rows: np.ndarray,
    labels: np.ndarray,
    folds: TuningConfig,
    metric: str,
    seed: int,
) -> Standing:
    """One family from its default parameters, on the tuning rows' folds, with its own preprocessing."""
    started = time.perf_counter()
    model = family_model(config.model, family)
    params = seeded_params(model, seed)
    try:
        preprocessing = fit_preprocessing(
            dataset, fit_rows, build_estimator(model, params), config.data.missing
        )
        x = preprocessing.encode(dataset.features)
        if dataset.categories:
            x = preprocessing.with_other(x, fit_rows, seed)
        result = tune(lambda p: build_estimator(model, p), kind, x[rows], labels[rows], folds, metric, params)
    except Exception as exc:  # one family failing (a fit error on this table) leaves the others to rank
        return Standing(family.estimator, None, None, time.perf_counter() - started, f"failed: {exc}")
    trial = result.trials[0]
    seconds = time.perf_counter() - started
    if not math.isfinite(trial["mean"]):
        return Standing(family.estimator, None, None, seconds, "failed: no finite score on any fold")
    return Standing(family.estimator, trial["mean"], trial["std"], seconds, "ranked")
