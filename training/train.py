"""The training run: data -> validated arrays -> fitted model -> threshold -> evaluation -> registry."""

from __future__ import annotations

import logging
import platform
import subprocess
import time
from typing import Any

import numpy as np

from lambda_app.registry import FeatureSpec, Provenance, open_storage
from training.compile import PARITY_TOLERANCE, check_parity, compile_isolation_forest, ensure_compilable
from training.config import TrainingConfig
from training.data import Dataset, load_dataset
from training.evaluate import (
    RobustZBaseline,
    anomaly_scores,
    classification_metrics,
    evaluation_html,
    reference_summary,
    threshold_max_f1,
    threshold_quantile,
)
from training.exceptions import DataValidationError, TrainingError
from training.model import build_estimator, estimator_name
from training.publish import Published, publish
from training.tune import fit_params, tune

log = logging.getLogger("training")

MIN_ROWS = 20
PARITY_PROBE_ROWS = 100_000


def code_revision() -> str:
    """The git commit of the training code, or 'unknown' outside a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def library_versions() -> dict[str, str]:
    import joblib
    import onnx
    import onnxruntime
    import pandas
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def parity_probe(features: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """Random rows over (and beyond) the training range, to check the compiled graph off-distribution."""
    rng = np.random.default_rng(seed)
    low, high = features.min(axis=0), features.max(axis=0)
    span = np.maximum(high - low, 1.0)
    return rng.uniform(low - span, high + span, size=(rows, features.shape[1]))


def split_indices(dataset: Dataset, config: TrainingConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation / test row indices; stratified on the label when there is one."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(dataset.rows)
    labels = dataset.labels
    stratify = labels if labels is not None and np.bincount(labels, minlength=2).min() >= 3 else None
    seed = config.split.seed
    rest, test = train_test_split(
        indices, test_size=config.split.test_fraction, random_state=seed, stratify=stratify
    )
    fraction = config.split.validation_fraction / (1 - config.split.test_fraction)
    train, validation = train_test_split(
        rest,
        test_size=fraction,
        random_state=seed,
        stratify=None if stratify is None else labels[rest],  # type: ignore[index]
    )
    return train, validation, test


class _Stage:
    """Progress lines on stderr: '[2/5] fitting IsolationForest ... done in 1.2s'."""

    TOTAL = 7

    def __init__(self) -> None:
        self.number = 0

    def __call__(self, text: str) -> _Stage:
        self.number += 1
        self.text = text
        return self

    def __enter__(self) -> None:
        self.started = time.perf_counter()
        log.info("[%d/%d] %s ...", self.number, self.TOTAL, self.text)

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            log.info(
                "[%d/%d] %s done in %.1fs",
                self.number,
                self.TOTAL,
                self.text,
                time.perf_counter() - self.started,
            )


def run_training(
    data_uri: str,
    model_uri: str,
    config: TrainingConfig,
    *,
    alias: str | None = "production",
    s3_client: Any = None,
    allow_worse_than_baseline: bool = False,
) -> Published:
    """Train on ``data_uri`` and publish a new version under ``model_uri``; move ``alias``."""
    stage = _Stage()
    with stage(f"reading and validating {data_uri}"):
        dataset = load_dataset(data_uri, config.data.features, config.data.label, s3_client=s3_client)
    if dataset.rows < MIN_ROWS:
        raise DataValidationError(f"{data_uri}: {dataset.rows} rows; training needs at least {MIN_ROWS}")
    labelled = dataset.labels is not None and len(np.unique(dataset.labels)) == 2
    if dataset.labels is not None and not labelled:
        log.warning("label column has a single class: evaluating without labels")
    train, validation, test = split_indices(dataset, config)
    x = dataset.features
    labels = dataset.labels if labelled else None

    ensure_compilable(build_estimator(config.model))  # fail before any fitting, not after
    params = dict(config.model.params)
    tuning = None
    if config.tuning.enabled and config.tuning.space:
        with stage(f"tuning: {config.tuning.budget} configurations x {config.tuning.folds} folds"):
            result = tune(x[train], None if labels is None else labels[train], config.tuning, params)
            params = result.best_params
            tuning = result.as_dict(config.tuning)
            log.info(
                "tuning (%s): best %.4f with %s", result.objective, result.best_score, result.best_params
            )
    params = fit_params(params, len(train))
    estimator = build_estimator(config.model.model_copy(update={"params": params}))
    name = estimator_name(estimator)
    with stage(f"fitting {name} on {len(train)} rows"):
        estimator.fit(x[train])

    with stage(f"choosing the threshold ({config.threshold.strategy}) on {len(validation)} rows"):
        validation_scores = anomaly_scores(estimator, x[validation])
        if config.threshold.strategy == "max_f1" and labels is not None:
            threshold = threshold_max_f1(validation_scores, labels[validation])
            rule = "maximises F1 on the validation split (placed between two scores)"
        else:
            if config.threshold.strategy == "max_f1":
                log.warning("no labels: falling back to the quantile threshold rule")
            threshold = threshold_quantile(anomaly_scores(estimator, x[train]), config.threshold.quantile)
            rule = f"the {config.threshold.quantile} quantile of training scores (placed between two scores)"

    with stage(f"evaluating on {len(test)} held-out rows, beside a robust z-score baseline"):
        test_scores = anomaly_scores(estimator, x[test])
        train_scores = anomaly_scores(estimator, x[train])
        reference = reference_summary(x[train], dataset.feature_names, train_scores, threshold)
        metrics = None
        baseline_metrics = None
        baseline = RobustZBaseline.fit(x[train])
        if labels is not None:
            metrics = classification_metrics(test_scores, labels[test], threshold)
            baseline_threshold = threshold_max_f1(baseline.score(x[validation]), labels[validation])
            baseline_metrics = classification_metrics(
                baseline.score(x[test]), labels[test], baseline_threshold
            )
        evaluation = {
            "split": {"train": len(train), "validation": len(validation), "test": len(test)},
            "threshold": threshold,
            "threshold_rule": rule,
            "metrics": metrics,
            "baseline": {
                "name": "per-feature robust z-score (max over features)",
                "metrics": baseline_metrics,
            },
            "tuning": tuning,
            "params": params,
            "test_anomaly_rate_predicted": float(np.mean(test_scores >= threshold)),
        }
        if metrics and baseline_metrics:
            log.info(
                "holdout: pr_auc=%.3f (baseline %.3f) roc_auc=%.3f f1=%.3f threshold=%.4f",
                metrics["pr_auc"],
                baseline_metrics["pr_auc"],
                metrics["roc_auc"],
                metrics["f1"],
                threshold,
            )
            gate = config.promotion.metric
            if (
                config.evaluation.beat_baseline
                and not allow_worse_than_baseline
                and (metrics[gate] or 0) < (baseline_metrics[gate] or 0)
            ):
                raise TrainingError(
                    f"the model's holdout {gate} {metrics[gate]:.4f} is below the robust z-score baseline's"
                    f" {baseline_metrics[gate]:.4f}: not published (--allow-worse-than-baseline to override)"
                )
        report_html = evaluation_html(
            config.name,
            dataset.feature_names,
            reference,
            x[test],
            test_scores,
            None if labels is None else labels[test],
            threshold,
            metrics,
            baseline_metrics,
            None if labels is None else baseline.score(x[test]),
            tuning,
        )

    with stage("compiling the serving graph and checking parity"):
        serving_model = compile_isolation_forest(estimator)
        parity = [
            check_parity(estimator, serving_model, x[test], threshold),
            check_parity(
                estimator, serving_model, parity_probe(x, PARITY_PROBE_ROWS, config.split.seed), threshold
            ),
        ]
        evaluation["parity"] = {
            "holdout": parity[0].__dict__,
            "random": parity[1].__dict__,
            "tolerance": PARITY_TOLERANCE,
        }
        log.info(
            "parity: max score difference %.1e over %d rows, 0 prediction mismatches",
            max(p.max_abs_score_diff for p in parity),
            sum(p.rows for p in parity),
        )

    with stage(f"publishing to {model_uri}"):
        storage = open_storage(model_uri, s3_client=s3_client)
        published = publish(
            storage,
            name=config.name,
            estimator=estimator,
            serving_model=serving_model,
            estimator_name=name,
            features=[
                FeatureSpec(name=n, dtype=d)
                for n, d in zip(dataset.feature_names, dataset.feature_dtypes, strict=True)
            ],
            label=config.data.label if dataset.labels is not None else None,
            threshold=threshold,
            metrics=metrics,
            evaluation=evaluation,
            report_html=report_html,
            tuning=tuning,
            reference=reference,
            provenance=Provenance(
                data_uri=data_uri,
                data_sha256=dataset.sha256,
                rows=dataset.rows,
                params={"estimator": config.model.estimator, **params},
                library_versions=library_versions(),
                code_revision=code_revision(),
                config=config.model_dump(mode="json"),
            ),
            alias=alias,
        )
    return published
