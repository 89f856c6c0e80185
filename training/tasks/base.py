"""What a task contributes to training: labels, metrics and their direction, tuning folds, the
threshold or classes, evaluation beside a baseline, the reference summary and the parity gate.

Adding a task adds a module here and an entry in training/tasks/__init__.py; the training run,
tuning, publishing and promotion call these hooks and never branch on the task themselves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from lambda_app.models import Prediction
from lambda_app.registry import ClassLabel, FeatureReference, Manifest, Reference, Task
from training.exceptions import TrainingError

QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
PARITY_PROBE_ROWS = 100_000

log = logging.getLogger("training")


@dataclass(frozen=True)
class Splits:
    """Row indices of the three splits, and the arrays they index."""

    features: np.ndarray
    labels: np.ndarray | None
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    feature_names: list[str]
    # The served table (lambda_app/preprocess.py) when it differs from the model's input (categories,
    # missing values): drift references and feature plots describe features as served, not as encoded.
    table: np.ndarray | None = None
    categories: dict[str, list[str]] = field(default_factory=dict)

    @property
    def served(self) -> np.ndarray:
        return self.features if self.table is None else self.table


@dataclass
class Outcome:
    """What a task decided and measured once the model is fitted, before it is compiled."""

    metrics: dict[str, float | int | None] | None
    baseline_metrics: dict[str, float | int | None] | None
    baseline_name: str
    reference: Reference
    report_html: str
    evaluation: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None
    classes: list[ClassLabel] | None = None
    score_description: str | None = None


class TaskKind(Protocol):
    """One task's training hooks (see the module docstring)."""

    name: ClassVar[Task]
    metrics: ClassVar[tuple[str, ...]]  # what the baseline gate and promotion may compare on
    tuning_metrics: ClassVar[tuple[str, ...]]  # the first is the default
    default_metric: ClassVar[str]
    lower_is_better: ClassVar[frozenset[str]]
    # A proper scoring rule the model must beat the trivial baseline on, whatever the gate metric
    # (a classifier can win on F1 with probabilities worse than the class shares)
    proper_score: ClassVar[str | None]

    def labels(self, column: pd.Series, name: str) -> np.ndarray:
        """The label column validated and typed for the task; DataValidationError names the row."""
        ...

    def usable(self, labels: np.ndarray | None, source: str) -> np.ndarray | None:
        """The labels to train and evaluate with; None where the task can do without (anomaly)."""
        ...

    def stratify(self, labels: np.ndarray | None) -> np.ndarray | None:
        """What to stratify the splits on, if anything."""
        ...

    def fold_score(
        self, estimator: Any, features: np.ndarray, labels: np.ndarray | None, metric: str
    ) -> float:
        """One fitted tuning candidate's score on held-out rows (labels may be None for anomaly)."""
        ...

    def outcome(self, estimator: Any, splits: Splits, config: Any) -> Outcome:
        """Threshold or classes, holdout metrics beside the baseline, reference summary, report."""
        ...

    def parity(self, estimator: Any, graph: bytes, rows: np.ndarray, outcome: Outcome) -> dict[str, Any]:
        """Compare the graph with scikit-learn on ``rows``; raise CompileError on any disagreement."""
        ...

    def served_metrics(
        self, prediction: Prediction, labels: np.ndarray, manifest: Manifest
    ) -> dict[str, float | int | None]:
        """The task's metrics for what the service answered (the promotion gate)."""
        ...


ROBUST_RANGE = (0.001, 0.999)
"""Without labels to set the anomalies aside, the reference range is these quantiles, not min and max:
a few extreme rows in the training data must not widen what counts as in range."""


def feature_reference(
    features: np.ndarray,
    names: list[str],
    *,
    robust: bool = False,
    categories: dict[str, list[str]] | None = None,
) -> dict[str, FeatureReference]:
    """Per-feature distribution summaries: deciles as histogram bins, quantiles, moments.

    ``features`` is the served table (NaN = missing: its share is recorded, the rest summarised).
    ``robust``: the range (min, max and the outer bin edges) is the 0.1-99.9 % quantile range.
    ``categories``: a category feature's bins are its values, one each (its shares).
    """
    summaries = {}
    categories = categories or {}
    for i, name in enumerate(names):
        column = features[:, i]
        missing = np.isnan(column)
        column = column[~missing]
        if not column.size:
            raise TrainingError(f"feature '{name}' has no values in the training split")
        known = categories.get(name)
        if known:
            counts = np.bincount(column.astype(np.int64), minlength=len(known))
            summaries[name] = FeatureReference(
                count=int(column.size),
                mean=float(column.mean()),
                std=float(column.std()),
                min=0.0,
                max=float(len(known) - 1),
                quantiles={k: float(np.quantile(column, q)) for k, q in QUANTILES.items()},
                bin_edges=[float(e) for e in np.arange(len(known) + 1) - 0.5],
                bin_fractions=[float(c) / column.size for c in counts],
                categories=known,
                missing_fraction=float(missing.mean()) if missing.any() else None,
            )
            continue
        if robust:
            low, high = np.quantile(column, ROBUST_RANGE)
            column = column[(column >= low) & (column <= high)]
        edges = np.unique(np.quantile(column, np.linspace(0, 1, 11)))
        if set(np.unique(column).tolist()) == {0.0, 1.0}:
            # A boolean (or any 0/1 feature): one bin per value, or its deciles collapse into a single
            # bin [0, 1] whose share is always 1 and whose PSI can never move.
            edges = np.array([0.0, 0.5, 1.0])
        if len(edges) < 2:
            edges = np.array([edges[0], edges[0]])
        counts, _ = np.histogram(column, bins=edges)
        summaries[name] = FeatureReference(
            count=int(column.size),
            mean=float(column.mean()),
            std=float(column.std()),
            min=float(column.min()),
            max=float(column.max()),
            quantiles={k: float(np.quantile(column, q)) for k, q in QUANTILES.items()},
            bin_edges=[float(e) for e in edges],
            bin_fractions=[float(c) / column.size for c in counts],
            missing_fraction=float(missing.mean()) if missing.any() else None,
        )
    return summaries


SUMMARY_ROWS = 200_000
"""Score quantiles, rates and quantile thresholds are read from at most this many training rows: as
precise as the whole split for a summary, at a cost that does not grow with the data."""
PARITY_HOLDOUT_ROWS = 50_000


def at_most(rows: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """``rows``, or a seeded subset of ``limit`` of them in their order."""
    if len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


def quantiles(values: np.ndarray) -> dict[str, float]:
    return {k: float(np.quantile(values, q)) for k, q in QUANTILES.items()}


MISSING_SHARE = 0.2
"""In the parity probe, this share of a column's cells is missing when the model takes them as they are."""


def parity_probe(features: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """Random rows over (and beyond) the training range, to check the compiled graph off-distribution.

    A column with missing values in ``features`` (the model's input: only where the model routes them
    itself, filled ones are numbers by now) has MISSING_SHARE of its probe cells missing too."""
    rng = np.random.default_rng(seed)
    present = np.ma.masked_invalid(features)
    missing = np.ma.getmaskarray(present).any(axis=0)
    low, high = present.min(axis=0).filled(0.0), present.max(axis=0).filled(1.0)
    span = np.maximum(high - low, 1.0)
    probe = rng.uniform(low - span, high + span, size=(rows, features.shape[1]))
    for column in np.flatnonzero(missing).tolist():
        probe[rng.random(rows) < MISSING_SHARE, column] = np.nan
    return probe


GRAPH_SLICE_ROWS = 4096
"""Rows per run of a graph under check: a nearest-neighbour graph holds a (rows x training rows) distance
matrix, which for the 100,000-row parity probe would not fit in memory in one run."""


def run_graph(graph: bytes, outputs: tuple[str, ...], rows: np.ndarray) -> list[np.ndarray]:
    """The graph's named outputs on ``rows``, as the service computes them (float32 input)."""
    from lambda_app.models.base import INPUT_NAME, INPUT_TYPES, OnnxModel

    session = OnnxModel.session(graph, threads=1)
    dtype = INPUT_TYPES[session.get_inputs()[0].type]
    parts: list[list[np.ndarray]] = [
        session.run(list(outputs), {INPUT_NAME: rows[start : start + GRAPH_SLICE_ROWS].astype(dtype)})
        for start in range(0, max(len(rows), 1), GRAPH_SLICE_ROWS)
    ]
    return [np.concatenate([part[index] for part in parts]) for index in range(len(outputs))]


def better(
    metric: str, lower_is_better: frozenset[str], candidate: float, current: float, margin: float
) -> bool:
    """True when ``candidate`` is no worse than ``current`` by more than ``margin``, either direction."""
    if metric in lower_is_better:
        return candidate <= current + margin
    return candidate >= current - margin


def sklearn_frame(estimator: Any, rows: np.ndarray) -> Any:
    """``rows`` as the estimator was fitted: a DataFrame with its column names when it knows them."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return rows
    return pd.DataFrame(rows, columns=list(names))


def unlabelled_outcome(
    name: str, splits: Splits, reference: Reference, classes: list[ClassLabel] | None = None
) -> Outcome:
    """The outcome of a model whose sample has no labels (an import): a reference, no metrics."""
    from training.evaluation.report import feature_histograms, page

    x = splits.served
    report = page(
        f"Evaluation report: {name}",
        [
            "<p>The sample has no labels: no metrics; the sample's features against the reference.</p>",
            feature_histograms(
                reference, splits.feature_names, x[splits.test], "Feature distributions", "sample"
            ),
        ],
    )
    return Outcome(
        metrics=None,
        baseline_metrics=None,
        baseline_name="none (no labels)",
        reference=reference,
        report_html=report,
        classes=classes,
    )


def compile_with_parity(
    kind: TaskKind,
    estimator: Any,
    outcome: Outcome,
    checks: dict[str, np.ndarray],
    precision: str = "float",
) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    """The serving graph, how it was made, and its parity on each named set of rows.

    A skl2onnx graph that fails parity in float32 is converted again in float64 (nearest-neighbour
    models pick other neighbours when distances round); the float32 refusal is recorded. Any graph
    that still disagrees raises CompileError: it is never published. ``precision`` "double" starts
    in float64, for a model whose float32 graph is known to be inexact.
    """
    from training.estimators.convert import CompileError, compile_model, converter_reason

    width = next(iter(checks.values())).shape[1]
    graph, converter = compile_model(estimator, kind.name, width, precision)
    parity: dict[str, Any]
    try:
        parity = {name: kind.parity(estimator, graph, rows, outcome) for name, rows in checks.items()}
    except CompileError as float32_error:
        if converter["name"] != "skl2onnx" or precision == "double":
            raise
        log.warning("the float32 graph failed parity (%s); converting in float64", float32_error)
        graph, converter = compile_model(estimator, kind.name, width, "double")
        try:
            parity = {name: kind.parity(estimator, graph, rows, outcome) for name, rows in checks.items()}
        except CompileError:
            raise
        except Exception as exc:  # ONNX Runtime lacks a float64 kernel for some operators (SVMs)
            raise CompileError(
                f"{float32_error}; and no float64 graph runs: {converter_reason(exc)}"
            ) from exc
        parity["float32_refused"] = str(float32_error)
    return graph, converter, parity
