"""Offline drift: compare a window of data with a published model's training reference.

``python -m training drift --data WINDOW --model-uri URI`` writes drift.json and drift.html and
exits 1 when any feature's PSI passes the threshold (or its missing share rises by more than
``[drift] missing_share_increase``), so a scheduler or CI step can act on it.
The PSI is the service's own (lambda_app/drift.py): online metrics and offline reports agree.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lambda_app.explain.artifact import EXPLANATION_FILE
from lambda_app.explain.artifact import load as load_explanation
from lambda_app.explain.explainer import Explainer
from lambda_app.models import AnomalyPrediction, build_predictor
from lambda_app.registry import Manifest, RegistryStorage, read_manifest, read_verified, resolve_version
from lambda_app.registry.reference import FeatureBins, bin_counts, feature_bins, psi
from training.data.stream import load_dataset
from training.evaluation.importance import global_importance, importance_changes, importance_drift_section
from training.evaluation.report import feature_histograms, page, table

log = logging.getLogger("training")


@dataclass(frozen=True)
class DriftReport:
    version: str
    data_uri: str
    rows: int
    threshold: float
    features: dict[str, dict[str, Any]]
    anomaly_rate: float | None  # anomaly models only
    reference_anomaly_rate: float | None
    missing_increase: float = 0.1  # [drift] missing_share_increase
    explanation_space: str | None = None  # set when the features' contributions were compared

    @property
    def drifted(self) -> list[str]:
        """Features whose PSI passes the threshold, or whose missing share rose by more than allowed."""
        return [
            name
            for name, values in self.features.items()
            if values["psi"] > self.threshold
            or values["missing_share"] - values["reference_missing_share"] > self.missing_increase
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.version,
            "data_uri": self.data_uri,
            "rows": self.rows,
            "psi_threshold": self.threshold,
            "missing_share_increase": self.missing_increase,
            "features": self.features,
            "anomaly_rate": self.anomaly_rate,
            "reference_anomaly_rate": self.reference_anomaly_rate,
            "drifted_features": self.drifted,
            "explanation_space": self.explanation_space,
            "created_at": datetime.now(UTC).isoformat(),
        }


def check_drift(
    storage: RegistryStorage,
    data_uri: str,
    *,
    alias: str = "production",
    version: str | None = None,
    threshold: float = 0.25,
    missing_increase: float = 0.1,
    out_dir: Path,
    s3_client: Any = None,
) -> DriftReport:
    """Score the window's drift against the model's reference; write drift.json and drift.html."""
    version = version or resolve_version(storage, alias)
    manifest = read_manifest(storage, version)
    dataset = load_dataset(
        data_uri, manifest.feature_names, None, s3_client=s3_client, specs=manifest.features
    )
    features: dict[str, dict[str, Any]] = {}
    for column, bins in enumerate(feature_bins(manifest.reference, manifest.feature_names)):
        features[bins.name] = _feature_drift(dataset.features[:, column], bins, manifest)
    serving = read_verified(storage, manifest, manifest.artifact("serving"))
    predictor = build_predictor(manifest, serving)
    predicted = predictor.predict(dataset.features)
    anomaly_rate = float(predicted.labels.mean()) if isinstance(predicted, AnomalyPrediction) else None
    space = None
    compared = _importance(storage, manifest, predictor.encode(dataset.features))
    if compared is not None:
        space, changes = compared
        for name, figures in changes.items():
            features[name].update(figures)
    report = DriftReport(
        version=version,
        data_uri=data_uri,
        rows=dataset.rows,
        threshold=threshold,
        missing_increase=missing_increase,
        features=features,
        anomaly_rate=anomaly_rate,
        reference_anomaly_rate=manifest.reference.anomaly_rate,
        explanation_space=space,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "drift.json").write_text(json.dumps(report.as_dict(), indent=2))
    (out_dir / "drift.html").write_text(_html(report, manifest, dataset.features))
    log.info("drift report written to %s", out_dir)
    return report


def _importance(
    storage: RegistryStorage, manifest: Manifest, encoded: np.ndarray
) -> tuple[str, dict[str, dict[str, float | None]]] | None:
    """Each feature's mean |contribution| in the window beside training's (evaluation.json), when the
    version was published with explanations and their importance; else None."""
    explanation = next((a for a in manifest.artifacts if a.path == EXPLANATION_FILE), None)
    if explanation is None:
        return None
    evaluation = json.loads(read_verified(storage, manifest, manifest.artifact("evaluation")))
    reference = (evaluation.get("explanation") or {}).get("importance")
    if not reference:
        return None
    artifact = load_explanation(read_verified(storage, manifest, explanation))
    explainer = Explainer.for_manifest(artifact, manifest)
    return explainer.answer_space, importance_changes(global_importance(explainer, encoded), reference)


def _feature_drift(values: np.ndarray, bins: FeatureBins, manifest: Any) -> dict[str, Any]:
    """PSI and out-of-range share of one feature; its missing share; a category's shares, unseen included."""
    summary = manifest.reference.features[bins.name]
    counts = bin_counts(values, bins)
    present = max(counts.sum(), 1.0)
    figures: dict[str, Any] = {
        "psi": psi(counts, bins.expected),
        "out_of_range_share": float((counts[0] + counts[-1]) / present),
        "missing_share": float(np.isnan(values).mean()) if len(values) else 0.0,
        "reference_missing_share": summary.missing_fraction or 0.0,
    }
    if summary.categories:
        figures["unseen_share"] = float(counts[0] / present)
        figures["shares"] = {
            c: float(n / present) for c, n in zip(summary.categories, counts[1:-1], strict=True)
        }
        figures["reference_shares"] = dict(zip(summary.categories, summary.bin_fractions, strict=True))
    else:
        figures["mean"] = float(np.nanmean(values)) if (~np.isnan(values)).any() else None
        figures["reference_mean"] = summary.mean
    return figures


def _html(report: DriftReport, manifest: Any, current: np.ndarray) -> str:
    verdict = (
        f"<p class='bad'>Drift in {', '.join(report.drifted)} (PSI above {report.threshold}, or a missing"
        f" share up by more than {report.missing_increase:.0%}).</p>"
        if report.drifted
        else f"<p class='good'>No feature's PSI is above {report.threshold}.</p>"
    )
    rows = [
        [
            name,
            v["psi"],
            v["out_of_range_share"],
            f"{v['missing_share']:.4f} ({v['reference_missing_share']:.4f})",
            v.get("mean", "(category)"),
            v.get("reference_mean", "(category)"),
        ]
        for name, v in report.features.items()
    ]
    return page(
        f"Drift report: {report.data_uri} against model {report.version}",
        [
            verdict,
            f"<p>{report.rows} rows.{_anomaly_rate_text(report)}</p>",
            table(
                ["feature", "PSI", "out-of-range share", "missing share (training)", "mean", "training mean"],
                rows,
            ),
            "<p>PSI: &lt; 0.1 stable, 0.1-0.25 moderate, &gt; 0.25 major shift. A category's PSI is over"
            " the shares of its values (unseen values count as one more, out of range); missing values are"
            " left out of PSI and shown apart.</p>",
            *(
                [importance_drift_section(report.features, report.explanation_space)]
                if report.explanation_space
                else []
            ),
            feature_histograms(
                manifest.reference, manifest.feature_names, current, "Training reference vs window", "window"
            ),
        ],
    )


def _anomaly_rate_text(report: DriftReport) -> str:
    if report.anomaly_rate is None or report.reference_anomaly_rate is None:
        return ""
    return (
        f" Predicted anomaly rate {report.anomaly_rate:.4f}"
        f" (training reference {report.reference_anomaly_rate:.4f})."
    )
