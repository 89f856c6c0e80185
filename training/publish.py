"""Publish an immutable version to the registry, and only then move the alias; the provenance every
published version records (library versions, code revision)."""

from __future__ import annotations

import io
import json
import logging
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import joblib
import numpy as np

from lambda_app.explain.artifact import EXPLANATION_FILE
from lambda_app.registry import (
    MANIFEST_FILE,
    AliasRecord,
    FeatureSpec,
    Manifest,
    PendingArtifact,
    Provenance,
    RegistryStorage,
    Task,
    dump_json,
    move_alias,
    new_version,
)
from training.tasks.base import Outcome

log = logging.getLogger("training")

MODEL_FILE = "model.joblib"
SERVING_FILE = "model.onnx"
EVALUATION_FILE = "evaluation.json"
REPORT_FILE = "evaluation.html"


@dataclass(frozen=True)
class Published:
    manifest: Manifest
    alias: AliasRecord | None


def publish(
    storage: RegistryStorage,
    *,
    name: str,
    task: Task,
    estimator: Any,
    serving_model: bytes,
    converter: dict[str, str],
    estimator_name: str,
    features: list[FeatureSpec],
    label: str | None,
    outcome: Outcome,
    evaluation: dict[str, Any],
    tuning: dict[str, Any] | None = None,
    provenance: Provenance,
    alias: str | None,
    model_file: tuple[str, bytes] | None = None,
    explanation: bytes | None = None,
) -> Published:
    """Write the model, its compiled serving graph, its evaluation and manifest; then move ``alias``.

    ``outcome`` is what the task decided and measured (threshold or classes, metrics, reference, report);
    ``model_file`` (name, bytes) keeps an imported model's own file instead of a joblib dump;
    ``explanation`` is the explanation artifact (lambda_app/explain/artifact.py), when the model has one:
    listed with the role "other", so a service that does not explain loads the version all the same.
    """
    now = datetime.now(UTC)
    version = new_version(now)
    if model_file is None:
        buffer = io.BytesIO()
        joblib.dump(estimator, buffer, compress=3)
        model_file = (MODEL_FILE, buffer.getvalue())
    artifacts = [
        PendingArtifact(model_file[0], "model", model_file[1]),
        PendingArtifact(SERVING_FILE, "serving", serving_model),
        PendingArtifact(
            EVALUATION_FILE, "evaluation", json.dumps(evaluation, indent=2, sort_keys=True).encode()
        ),
    ]
    artifacts.append(PendingArtifact(REPORT_FILE, "report", outcome.report_html.encode()))
    if explanation is not None:
        artifacts.append(PendingArtifact(EXPLANATION_FILE, "other", explanation))
    manifest = Manifest(
        name=name,
        version=version,
        created_at=now,
        task=task,
        estimator=estimator_name,
        artifacts=[a.describe() for a in artifacts],
        features=features,
        label=label,
        classes=outcome.classes,
        threshold=outcome.threshold,
        score=outcome.score_description,
        converter=converter,
        metrics=outcome.metrics,
        reference=outcome.reference,
        provenance=provenance,
        tuning=tuning,
    )
    files = {a.path: a.data for a in artifacts}
    files[MANIFEST_FILE] = dump_json(manifest)
    storage.publish_version(version, files)
    log.info("published version %s to %s", version, storage.uri)
    record = None
    if alias:
        record = move_alias(storage, alias, version, reason="published by training job", now=now)
        log.info("alias %s -> %s", alias, version)
    return Published(manifest=manifest, alias=record)


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
    import skl2onnx
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "skl2onnx": skl2onnx.__version__,
    }
