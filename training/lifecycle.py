"""Promotion with a quality gate, and rollback: the two ways an alias moves after publishing.

A candidate is promoted only if, on the same labelled holdout, it is not worse than the model
the target alias serves now by more than a margin on a stated metric (PR-AUC by default:
anomalies are rare, so precision-recall is the informative curve). ``--force`` overrides the
gate and says so in the alias history. Both models are scored through their verified ONNX
graphs, exactly as the service scores them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from lambda_app.predictor import Predictor
from lambda_app.registry import (
    AliasRecord,
    Manifest,
    RegistryStorage,
    move_alias,
    read_alias,
    read_manifest,
    read_verified,
)
from training.config import TrainingConfig
from training.data import load_dataset
from training.evaluate import classification_metrics
from training.exceptions import TrainingError

log = logging.getLogger("training")

GATE_METRICS = ("pr_auc", "roc_auc", "f1", "precision", "recall")


class PromotionRefusedError(TrainingError):
    """The candidate is worse than the serving model by more than the margin."""


@dataclass(frozen=True)
class Comparison:
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
        return bool(self.candidate[self.metric] >= self.current[self.metric] - self.margin)


def _predictor(storage: RegistryStorage, manifest: Manifest) -> Predictor:
    return Predictor.from_onnx(
        read_verified(storage, manifest, manifest.artifact("serving")), manifest.threshold, 1
    )


def holdout(
    candidate: Manifest, data_uri: str | None, s3_client: Any = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """The labelled rows both models are judged on.

    With ``data_uri``, all of it (an independent holdout). Without, the candidate's own test split,
    re-derived from its recorded data and split settings.
    """
    from training.train import split_indices

    features = candidate.feature_names
    label = candidate.label or "label"
    uri = data_uri or candidate.provenance.data_uri
    dataset = load_dataset(uri, features, label, s3_client=s3_client)
    if dataset.labels is None or len(np.unique(dataset.labels)) < 2:
        raise TrainingError(
            f"{uri} has no usable '{label}' column: the quality gate needs labels (or --force)"
        )
    if data_uri:
        return dataset.features, dataset.labels, uri
    config = TrainingConfig.model_validate(candidate.provenance.config)
    _, _, test = split_indices(dataset, config)
    return dataset.features[test], dataset.labels[test], uri


def compare(
    storage: RegistryStorage,
    candidate_version: str,
    alias: str,
    *,
    metric: str = "pr_auc",
    margin: float = 0.01,
    data_uri: str | None = None,
    s3_client: Any = None,
) -> Comparison:
    """Score the candidate and the alias's current model on the same holdout."""
    if metric not in GATE_METRICS:
        raise TrainingError(f"unknown metric {metric!r}: use one of {', '.join(GATE_METRICS)}")
    candidate = read_manifest(storage, candidate_version)
    record = read_alias(storage, alias)
    features, labels, uri = holdout(candidate, data_uri, s3_client)
    scores = _predictor(storage, candidate).predict(features).scores
    candidate_metrics = classification_metrics(scores, labels, candidate.threshold)
    current_metrics = None
    if record is not None and record.version != candidate_version:
        current = read_manifest(storage, record.version)
        if current.feature_names != candidate.feature_names:
            raise TrainingError(
                f"{record.version} and {candidate_version} take different features: compare them by hand"
            )
        current_scores = _predictor(storage, current).predict(features).scores
        current_metrics = {
            "version": record.version,
            **classification_metrics(current_scores, labels, current.threshold),
        }
    return Comparison(
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
    metric: str = "pr_auc",
    margin: float = 0.01,
    data_uri: str | None = None,
    force: bool = False,
    s3_client: Any = None,
) -> tuple[Comparison | None, AliasRecord]:
    """Move ``alias`` to the candidate if it passes the gate (or ``force``).

    Raises:
        PromotionRefusedError: the candidate is worse by more than ``margin``.
    """
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
        raise PromotionRefusedError(
            f"{candidate_version} is worse than {comparison.current['version']} on {metric}:"
            f" {comparison.candidate[metric]:.4f} < {comparison.current[metric]:.4f} - margin {margin}"
            f" ({comparison.holdout_rows} holdout rows); use --force to override"
        )
    if force and (comparison is None or not comparison.passes):
        reason = f"forced promotion past the quality gate ({metric}, margin {margin})"
    elif comparison is not None and comparison.current is not None:
        reason = (
            f"promoted: {metric} {comparison.candidate[metric]:.4f} vs {comparison.current[metric]:.4f}"
            f" of {comparison.current['version']} on {comparison.holdout_rows} holdout rows"
        )
    else:
        reason = "promoted: first model for this alias"
    record = move_alias(storage, alias, candidate_version, reason=reason)
    log.info("alias %s -> %s (%s)", alias, candidate_version, reason)
    return comparison, record


def rollback(storage: RegistryStorage, alias: str) -> AliasRecord:
    """Point ``alias`` back at the version it served before the current one."""
    record = read_alias(storage, alias)
    if record is None:
        raise TrainingError(f"no alias {alias!r} in {storage.uri}")
    previous = next((h.version for h in reversed(record.history) if h.version != record.version), None)
    if previous is None:
        raise TrainingError(f"alias {alias!r} has no earlier version to roll back to")
    return move_alias(storage, alias, previous, reason=f"rollback from {record.version}")
