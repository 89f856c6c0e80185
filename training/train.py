"""The training run: data -> validated arrays -> fitted model -> threshold -> evaluation -> registry."""

from __future__ import annotations

import dataclasses
import logging
import time
from html import escape
from typing import Any

import numpy as np

from lambda_app.explain.artifact import load as load_explanation
from lambda_app.explain.explainer import Explainer
from lambda_app.registry import Provenance, open_storage
from training.config import TrainingConfig
from training.data.leakage import FeatureLeak, near_perfect, refuse_leaks
from training.data.stream import load_dataset
from training.data.validate import Dataset
from training.estimators.convert import ensure_compilable
from training.estimators.explanation import explanation_for_publishing
from training.estimators.families import AUTO, AUTO_FAMILIES, build_estimator, estimator_name, seeded_params
from training.estimators.footprint import Footprint, measure, refuse_if_too_big
from training.estimators.preprocess import MIN_OTHER_ROWS, OTHER_SHARE, fit_preprocessing
from training.evaluation.importance import MAX_ROWS as IMPORTANCE_ROWS
from training.evaluation.importance import global_importance, importance_section
from training.evaluation.report import selection_section, tuning_section, with_section
from training.exceptions import DataValidationError
from training.publish import Published, code_revision, library_versions, publish
from training.selection.auto import choose_estimator, unranked_reason
from training.selection.tune import candidate_count, fit_params, tune, tuning_rows
from training.tasks import Splits, gate_on_baseline, parity_probe, split_indices, task_kind, tuning_metric
from training.tasks.base import PARITY_HOLDOUT_ROWS, PARITY_PROBE_ROWS, at_most, compile_with_parity

log = logging.getLogger("training")

MIN_ROWS = 20


def sample_section(dataset: Dataset, holdout: int) -> str:
    """What a sampled run's figures were computed on, said in the report."""
    share = 100 * dataset.rows / (dataset.file_rows or dataset.rows)
    return (
        f"<h2>Data</h2><p>The file has {dataset.file_rows:,} rows, every one validated; the model was"
        f" trained, tuned and evaluated on a uniform sample of {dataset.rows:,} ({share:.1f}%, seed"
        f" {dataset.sample_seed}, <code>[data] sample_rows</code>). The holdout metrics above are over"
        f" {holdout:,} held-out rows of that sample.</p>"
    )


def footprint_section(footprint: Footprint) -> str:
    return (
        f"<h2>Serving footprint</h2><p>ONNX file {footprint.onnx_mb:,.2f} MB; serving it takes about"
        f" {footprint.peak_mb:,.0f} MB ({footprint.runtime_mb:,.0f} MB runtime + {footprint.model_mb:,.0f} MB"
        f" for the model, loaded and scoring 1,000 rows), loading in {footprint.load_seconds:.2f} s. Checked"
        f" against a function of {footprint.memory_mb:,} MB ([serving] memory_mb).</p>"
    )


def data_use_section(rows: dict[str, Any], test: int, seed: int, leaks: list[FeatureLeak]) -> str:
    """Which rows did what, and how strongly each feature alone predicts the label, for the report."""
    tuned = f", tuned by cross-validation on {rows['tuned']:,} of them" if rows["tuned"] else ""
    html = (
        f"<h2>Rows used</h2><p>Fitted on {rows['fitted']:,} rows ({rows['what']}){tuned}; evaluated once on"
        f" {test:,} held-out rows. Seed {seed} (splits, sampling, tuning, the estimator's random_state).</p>"
    )
    if leaks:
        items = "".join(
            f"<tr><td>{escape(leak.name)}</td><td>{leak.score:.3f}</td></tr>" for leak in leaks[:10]
        )
        html += (
            f"<h3>Each feature alone against the label ({escape(leaks[0].scoring)}, cross-validated)</h3>"
            f"<table><tr><th>feature</th><th>score</th></tr>{items}</table>"
        )
    return html


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far (Linux), to show where memory goes stage by stage."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class _Stage:
    """Progress lines on stderr: '[3/6] fitting IsolationForest on 600000 rows ... done in 1.2s
    (500,000 rows/s)'. The total is the number of stages this run will go through."""

    def __init__(self, total: int) -> None:
        self.number = 0
        self.TOTAL = total
        self.rows: int | None = None

    def __call__(self, text: str, rows: int | None = None) -> _Stage:
        self.number += 1
        self.text = text
        self.rows = rows
        return self

    def __enter__(self) -> None:
        self.started = time.perf_counter()
        log.info("[%d/%d] %s ...", self.number, self.TOTAL, self.text)

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            seconds = time.perf_counter() - self.started
            figures = [f"{self.rows / max(seconds, 1e-9):,.0f} rows/s"] if self.rows else []
            peak = peak_rss_mb()
            if peak is not None:
                figures.append(f"peak RSS {peak:,.0f} MB")
            extra = f" ({', '.join(figures)})" if figures else ""
            log.info("[%d/%d] %s done in %.1fs%s", self.number, self.TOTAL, self.text, seconds, extra)


def load_training_data(data_uri: str, config: TrainingConfig, s3_client: Any = None) -> Dataset:
    """The configured features and label, validated for the configured task."""
    kind = task_kind(config.model.task)
    return load_dataset(
        data_uri,
        config.data.features,
        config.data.label,
        s3_client=s3_client,
        labels_of=kind.labels,
        exclude=config.data.exclude,
        # classes and numbers cannot be learned without their label: an error naming the likely column,
        # never the unlabelled run an anomaly detector may make
        label_required=config.data.label_required or config.model.task != "anomaly",
        min_rows=MIN_ROWS,
        missing=config.data.missing,
        max_categories=config.data.max_categories,
        types=dict(config.data.types),
        sample_rows=config.data.sample_rows,
        seed=config.split.seed,
        separator=config.data.separator,
        decimal=config.data.decimal,
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
    kind = task_kind(config.model.task)
    requested = config  # as the user wrote it ("auto" stays "auto": a retrain chooses again)
    auto = config.model.estimator == AUTO
    tuning_on = bool(config.tuning.enabled and (config.tuning.space or auto))
    stage = _Stage(total=6 + tuning_on + auto)
    supervised = config.model.task != "anomaly"
    with stage(f"reading and validating {data_uri}"):
        dataset = load_training_data(data_uri, config, s3_client)
        labels = kind.usable(dataset.labels, data_uri)
        dataset = dataclasses.replace(dataset, labels=labels)
        if config.model.target_transform == "log" and labels is not None and float(np.min(labels)) < 0:
            raise DataValidationError(
                f"[model] target_transform = \"log\" needs a label of zero or more; '{config.data.label}'"
                f" goes down to {float(np.min(labels)):g}"
            )
        train, validation, test = split_indices(dataset, config)
        # Supervised models are tuned by cross-validation on train + validation and the winner is fitted
        # on both: nothing else needs the validation rows. An anomaly detector is fitted on train and its
        # threshold chosen on validation, rows it never saw (scores of training rows are biased).
        fit_rows = np.sort(np.concatenate([train, validation])) if supervised else train
        leaks = []
        if labels is not None:
            leaks = refuse_leaks(
                dataset.features[fit_rows],
                labels[fit_rows],
                dataset.feature_names,
                config.data.label or "label",
                classes=config.model.task != "regression",
                threshold=config.data.leak_threshold,
                allowed=config.data.allow_leaky,
                seed=config.split.seed,
            )
    fit_labels = labels if supervised else None
    selection = None
    if auto:
        rows = tuning_rows(fit_rows, config.tuning.max_rows, config.tuning_seed)
        unranked = unranked_reason(None if labels is None else labels[rows], kind, config.tuning.folds)
        families = len(AUTO_FAMILIES[config.model.task])
        text = (
            f"choosing the estimator: {unranked}, so the unlabelled default"
            if unranked
            else f"choosing the estimator: {families} families x {config.tuning.folds} folds on {len(rows)}"
            f" rows ({kind.proper_score or tuning_metric(config)})"
        )
        with stage(text):
            selection = choose_estimator(config, kind, dataset, fit_rows, labels)
            config = selection.config
            tuning_on = bool(config.tuning.enabled and config.tuning.space)
            log.info("chosen: %s", config.model.estimator)

    params = seeded_params(config.model, config.split.seed, config.tuning.space if tuning_on else ())
    estimator = build_estimator(config.model, params)  # the config checked estimator, parameters, space
    # Categories and missing values: fitted on the fitting rows, encoded as the service will encode them.
    preprocessing = fit_preprocessing(dataset, fit_rows, estimator, config.data.missing)
    x = preprocessing.encode(dataset.features)
    # Teach the model an "other" value from real rows (training/estimators/preprocess.py).
    if dataset.categories:
        x = preprocessing.with_other(x, fit_rows, config.split.seed)
        log.info(
            "categories: %.0f%% of the fitting rows (at least %d) per category feature are shown as 'other',"
            " so a value never seen in training is answered as that learned 'other'",
            100 * OTHER_SHARE,
            MIN_OTHER_ROWS,
        )
    # Fail before any real fitting, not after: a copy fitted on a small sample must convert.
    ensure_compilable(
        estimator, config.model.task, x[fit_rows], None if fit_labels is None else fit_labels[fit_rows]
    )
    tuning = None
    if tuning_on:
        metric = tuning_metric(config)
        rows = tuning_rows(fit_rows, config.tuning.max_rows, config.tuning_seed)
        text = (
            f"tuning: {candidate_count(config.tuning)} configurations x {config.tuning.folds} folds"
            f" on {len(rows)} rows"
        )
        with stage(f"{text} ({metric})"):
            result = tune(
                lambda p: build_estimator(config.model, p),
                kind,
                x[rows],
                None if labels is None else labels[rows],
                config.tuning,
                metric,
                params,
            )
            params = result.best_params
            tuning = {**result.as_dict(config.tuning), "rows": len(rows)}
            log.info(
                "tuning (%s): best %.4f with %s", result.objective, result.best_score, result.best_params
            )
    params = fit_params(params, len(fit_rows))
    estimator = build_estimator(config.model, params)
    name = estimator_name(estimator)
    what = "train + validation" if supervised else "train"
    with stage(f"fitting {name} on {len(fit_rows)} rows ({what})", rows=len(fit_rows)):
        if fit_labels is None:
            estimator.fit(x[fit_rows])
        else:
            estimator.fit(x[fit_rows], fit_labels[fit_rows])

    splits = Splits(
        x,
        labels,
        fit_rows,
        validation,
        test,
        dataset.feature_names,
        table=None if x is dataset.features else dataset.features,
        categories=dataset.categories,
    )
    with stage(f"evaluating on {len(test)} held-out rows, beside a baseline", rows=len(x)):
        outcome = kind.outcome(estimator, splits, config)
        if selection:
            outcome.report_html = with_section(outcome.report_html, selection_section(selection.as_dict()))
        if tuning:
            outcome.report_html = with_section(outcome.report_html, tuning_section(tuning))
        if dataset.sampled:
            outcome.report_html = with_section(outcome.report_html, sample_section(dataset, len(test)))
        rows_used = {"fitted": len(fit_rows), "what": what, "tuned": tuning["rows"] if tuning else 0}
        outcome.report_html = with_section(
            outcome.report_html, data_use_section(rows_used, len(test), config.split.seed, leaks)
        )
        warning = near_perfect(outcome.metrics)
        if warning:
            log.warning("near-perfect holdout score: %s", warning)
            section = f"<h2>Warning: a near-perfect holdout score</h2><p>{escape(warning)}</p>"
            outcome.report_html = with_section(outcome.report_html, section)
        gate_on_baseline(
            kind,
            config,
            outcome.metrics,
            outcome.baseline_metrics,
            outcome.baseline_name,
            allow_worse_than_baseline,
        )
        evaluation = {
            "task": config.model.task,
            "split": {
                "train": len(train),
                "validation": len(validation),
                "test": len(test),
                "fitted_on": len(fit_rows),
                "fitted_on_splits": what,
                "tuned_on": tuning["rows"] if tuning else 0,
                "evaluated_on": len(test),
                "seed": config.split.seed,
            },
            "data": {
                "file_rows": dataset.file_rows or dataset.rows,
                "sample_rows": dataset.rows,
                "sampled": dataset.sampled,
                "sample_seed": dataset.sample_seed if dataset.sampled else None,
            },
            "metrics": outcome.metrics,
            "baseline": {"name": outcome.baseline_name, "metrics": outcome.baseline_metrics},
            "selection": selection.as_dict() if selection else None,
            "tuning": tuning,
            "params": params,
            **outcome.evaluation,
        }

    with stage("compiling the serving graph and checking parity"):
        probe = parity_probe(x, PARITY_PROBE_ROWS, config.split.seed)
        serving_model, converter, parity = compile_with_parity(
            kind, estimator, outcome, {"holdout": x[at_most(test, PARITY_HOLDOUT_ROWS)], "random": probe}
        )
        if preprocessing.native_missing:  # how many random rows showed the graph missing values
            parity["random"]["with_missing"] = int(np.isnan(probe).any(axis=1).sum())
        parity["preprocessing"] = preprocessing.check(dataset.features[test], config.split.seed)
        evaluation["parity"] = parity
        log.info("parity: %s", parity)
        footprint = measure(serving_model, x.shape[1], config.serving.memory_mb)
        log.info(
            "serving footprint: %.1f MB ONNX, about %.0f MB to serve (%.0f MB for the model),"
            " loads in %.2f s; checked against %d MB",
            footprint.onnx_mb,
            footprint.peak_mb,
            footprint.model_mb,
            footprint.load_seconds,
            footprint.memory_mb,
        )
        evaluation["footprint"] = footprint.as_dict()
        outcome.report_html = with_section(outcome.report_html, footprint_section(footprint))
        refuse_if_too_big(footprint)
        converter = {**converter, **footprint.as_converter_entries()}
        evaluation["converter"] = converter

    with stage("exporting the per-prediction explanation and checking it against the model"):
        explanation = explanation_for_publishing(
            estimator, config.model.task, x[fit_rows], outcome.classes, preprocessing.native_missing
        )
        evaluation["explanation"] = explanation.record
        if explanation.data is not None:
            explainer = Explainer(load_explanation(explanation.data), preprocessing.specs, outcome.classes)
            importance = global_importance(explainer, x[test], config.split.seed)
            evaluation["explanation"]["importance"] = importance
            section = importance_section(importance, explainer.answer_space, min(len(test), IMPORTANCE_ROWS))
            outcome.report_html = with_section(outcome.report_html, section)

    with stage(f"publishing to {model_uri}"):
        storage = open_storage(model_uri, s3_client=s3_client)
        published = publish(
            storage,
            name=config.name,
            task=config.model.task,
            estimator=preprocessing.pipeline(estimator),
            serving_model=serving_model,
            converter=converter,
            estimator_name=name,
            features=preprocessing.specs,
            label=config.data.label if labels is not None else None,
            outcome=outcome,
            evaluation=evaluation,
            tuning=tuning,
            provenance=Provenance(
                data_uri=data_uri,
                data_sha256=dataset.sha256,
                rows=dataset.file_rows or dataset.rows,
                sample={"rows": dataset.rows, "seed": dataset.sample_seed or 0} if dataset.sampled else None,
                params={"estimator": config.model.estimator, **params},
                library_versions=library_versions(),
                code_revision=code_revision(),
                config=requested.model_dump(mode="json"),
            ),
            alias=alias,
            explanation=explanation.data,
        )
    return published
