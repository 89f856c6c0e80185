"""Promotion with a quality gate, and rollback: the two ways an alias moves after publishing.

A candidate is promoted only if, on the same labelled holdout, it is not worse than the model
the target alias serves now by more than a margin on a stated metric of its task (by default
PR-AUC for anomaly detectors, macro F1 for classifiers, RMSE for regressors; RMSE, MAE and log
loss are better lower, and the gate knows it). ``--force`` overrides the gate and says so in the
alias history. Both models are scored through their verified ONNX graphs by the service's own
predictors (lambda_app/models/), exactly as the service scores them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from lambda_app.models import Predictor, build_predictor
from lambda_app.registry import (
    AliasRecord,
    Manifest,
    RegistryStorage,
    move_alias,
    read_alias,
    read_manifest,
    read_verified,
)
from training.data.stream import load_dataset
from training.exceptions import TrainingError
from training.tasks import better, split_indices, task_kind
from training.tasks.checks import validate_config

log = logging.getLogger("training")


class PromotionRefusedError(TrainingError):
    """The candidate is worse than the serving model by more than the margin."""


@dataclass(frozen=True)
class Comparison:
    task: str
    metric: str
    candidate: dict[str, Any]
    current: dict[str, Any] | None
    margin: float
    holdout_rows: int
    holdout_uri: str

    @property
    def passes(self) -> bool:
        if self.current is None:
            return True
        ours, theirs = self.candidate[self.metric], self.current[self.metric]
        if ours is None or theirs is None:
            return theirs is None
        return better(self.metric, task_kind(self.task).lower_is_better, ours, theirs, self.margin)


def _predictor(storage: RegistryStorage, manifest: Manifest) -> Predictor:
    return build_predictor(manifest, read_verified(storage, manifest, manifest.artifact("serving")))


def holdout(
    candidate: Manifest, data_uri: str | None, s3_client: Any = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """The labelled rows both models are judged on.

    With ``data_uri``, all of it (an independent holdout). Without, the candidate's own test split,
    re-derived from its recorded data and split settings.
    """
    features = candidate.feature_names
    label = candidate.label or "label"
    uri = data_uri or candidate.provenance.data_uri
    kind = task_kind(candidate.task)
    recorded = candidate.provenance.config
    # The candidate's own split is re-derived from the same sample of its file (same size, same seed).
    sample = candidate.provenance.sample or {}
    sample_rows = sample.get("rows") or recorded.get("data", {}).get("sample_rows")
    dataset = load_dataset(
        uri,
        features,
        label,
        s3_client=s3_client,
        labels_of=kind.labels,
        specs=candidate.features,
        sample_rows=None if data_uri else sample_rows,
        seed=0 if data_uri else sample.get("seed", 0),
    )
    if dataset.labels is None or len({str(v) for v in dataset.labels}) < 2:
        raise TrainingError(
            f"{uri} has no usable '{label}' column: the quality gate needs labels (or --force)"
        )
    if data_uri or recorded.get("source") == "import":  # an imported model was judged on its whole sample
        return dataset.features, dataset.labels, uri
    config = validate_config(recorded)  # a v1 config names no task: the default, anomaly
    _, _, test = split_indices(dataset, config)
    return dataset.features[test], dataset.labels[test], uri


def as_served_by(table: np.ndarray, source: Manifest, target: Manifest) -> np.ndarray:
    """A served table of ``source``'s features as ``target`` serves the same rows: category indices
    mapped to target's categories (unseen: -1). Missing values must be ones target fills."""
    table = table.copy()
    for column, (mine, theirs) in enumerate(zip(source.features, target.features, strict=True)):
        values = table[:, column]
        if not theirs.takes_missing and np.isnan(values).any():
            raise TrainingError(
                f"the holdout has missing values of '{theirs.name}', which {target.version} does not take:"
                " compare them by hand"
            )
        if mine.categories != theirs.categories and mine.categories and theirs.categories:
            index = {value: i for i, value in enumerate(theirs.categories)}
            mapping = np.array([index.get(value, -1) for value in mine.categories], dtype=np.float64)
            present = ~np.isnan(values) & (values >= 0)
            values[present] = mapping[values[present].astype(np.int64)]
    return table


def compare(
    storage: RegistryStorage,
    candidate_version: str,
    alias: str,
    *,
    metric: str | None = None,
    margin: float = 0.01,
    data_uri: str | None = None,
    s3_client: Any = None,
) -> Comparison:
    """Score the candidate and the alias's current model on the same holdout.

    ``metric`` defaults to the candidate's task's (pr_auc, f1_macro, rmse).
    """
    candidate = read_manifest(storage, candidate_version)
    kind = task_kind(candidate.task)
    metric = metric or kind.default_metric
    if metric not in kind.metrics:
        raise TrainingError(
            f"metric {metric!r} does not fit a {candidate.task} model: use one of {', '.join(kind.metrics)}"
        )
    record = read_alias(storage, alias)
    features, labels, uri = holdout(candidate, data_uri, s3_client)
    prediction = _predictor(storage, candidate).predict(features)
    candidate_metrics = kind.served_metrics(prediction, labels, candidate)
    current_metrics = None
    if record is not None and record.version != candidate_version:
        current = read_manifest(storage, record.version)
        kinds = [(f.name, _kind(f.dtype)) for f in current.features] != [
            (f.name, _kind(f.dtype)) for f in candidate.features
        ]
        if kinds or current.task != candidate.task:
            raise TrainingError(
                f"{record.version} and {candidate_version} differ in task or features (or their types):"
                " compare them by hand"
            )
        current_prediction = _predictor(storage, current).predict(as_served_by(features, candidate, current))
        current_metrics = {
            "version": record.version,
            **kind.served_metrics(current_prediction, labels, current),
        }
    return Comparison(
        task=candidate.task,
        metric=metric,
        candidate={"version": candidate_version, **candidate_metrics},
        current=current_metrics,
        margin=margin,
        holdout_rows=len(labels),
        holdout_uri=uri,
    )


def promote(
    storage: RegistryStorage,
    candidate_version: str,
    alias: str,
    *,
    metric: str | None = None,
    margin: float = 0.01,
    data_uri: str | None = None,
    force: bool = False,
    s3_client: Any = None,
) -> tuple[Comparison | None, AliasRecord]:
    """Move ``alias`` to the candidate if it passes the gate (or ``force``).

    Raises:
        PromotionRefusedError: the candidate is worse by more than ``margin``.
    """
    previous = read_alias(storage, alias)
    comparison: Comparison | None = None
    try:
        comparison = compare(
            storage,
            candidate_version,
            alias,
            metric=metric,
            margin=margin,
            data_uri=data_uri,
            s3_client=s3_client,
        )
    except TrainingError:
        if not force:
            raise
    if comparison is not None and not comparison.passes and not force:
        assert comparison.current is not None
        gate = comparison.metric
        direction = "lower" if gate in task_kind(comparison.task).lower_is_better else "higher"
        raise PromotionRefusedError(
            f"{candidate_version} is worse than {comparison.current['version']} on {gate} ({direction} is"
            f" better): {comparison.candidate[gate]:.4f} against {comparison.current[gate]:.4f},"
            f" margin {margin}"
            f" ({comparison.holdout_rows} holdout rows)"
        )
    if force and (comparison is None or not comparison.passes):
        shown = comparison.metric if comparison is not None else metric or "the task's metric"
        reason = f"forced promotion past the quality gate ({shown}, margin {margin})"
    elif comparison is not None and comparison.current is not None:
        gate = comparison.metric
        reason = (
            f"promoted: {gate} {comparison.candidate[gate]:.4f} vs {comparison.current[gate]:.4f}"
            f" of {comparison.current['version']} on {comparison.holdout_rows} holdout rows"
        )
    elif previous is not None and previous.version == candidate_version:
        reason = f"promoted again: {candidate_version} is already what {alias} serves"
    else:
        reason = "promoted: first model for this alias"
    if force and not reason.startswith("forced"):
        reason += " (--force given; the gate did not need it)"
    record = move_alias(storage, alias, candidate_version, reason=reason)
    log.info("alias %s -> %s (%s)", alias, candidate_version, reason)
    return comparison, record


ROLLBACK_REASON = re.compile(r"^rollback from (\S+)")


def rollback(storage: RegistryStorage, alias: str) -> AliasRecord:
    """Point ``alias`` back at the version it served before the current one.

    Rollbacks walk back through the history: a version the alias was rolled back from is never a
    target again, so two rollbacks in a row go two versions back rather than flipping between two.
    (Promote a version explicitly to serve it again.)
    """
    record = read_alias(storage, alias)
    if record is None:
        raise TrainingError(f"no alias {alias!r} in {storage.uri}")
    abandoned = {record.version}
    for reason in [*(h.reason for h in record.history), record.reason]:
        found = ROLLBACK_REASON.match(reason)
        if found:
            abandoned.add(found.group(1))
    target = next((h.version for h in reversed(record.history) if h.version not in abandoned), None)
    if target is None:
        left = sorted(abandoned - {record.version})
        if not left:
            raise TrainingError(
                f"alias {alias!r} has no earlier version to roll back to: it has only served {record.version}"
            )
        earlier = next(h.version for h in reversed(record.history) if h.version != record.version)
        raise TrainingError(
            f"alias {alias!r} serves {record.version} and has no earlier version left to roll back to"
            f" (a rollback never returns to a version rolled back from: {', '.join(left)}); to serve one"
            f" again, promote it: python -m training promote --model-uri {storage.uri} --version {earlier}"
            f" --to {alias}"
        )
    return move_alias(storage, alias, target, reason=f"rollback from {record.version} to {target}")


def _kind(dtype: str) -> str:
    """Integer and number features are both served as numbers: a model trained before numbers stopped
    being inferred as integers is compared with its retrained successor, not refused."""
    return "number" if dtype == "integer" else dtype
