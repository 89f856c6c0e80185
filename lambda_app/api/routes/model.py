"""The loaded model's manifest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lambda_app.api.deps import ModelDep
from lambda_app.schemas import ErrorBody

router = APIRouter(tags=["model"])


@router.get("/model", responses={503: {"model": ErrorBody, "description": "no model is loaded"}})
def model_manifest(model: ModelDep) -> dict[str, Any]:
    """The loaded model: name, version, task, trained_at, features, classes, threshold and holdout metrics."""
    manifest = model.manifest
    # The public view of the manifest: no data locations, bucket names or training config.
    return {
        "name": manifest.name,
        "version": manifest.version,
        "trained_at": manifest.created_at.isoformat(),
        "schema_version": manifest.schema_version,
        "task": manifest.task,
        "estimator": manifest.estimator,
        "features": [f.model_dump() for f in manifest.features],
        "label": manifest.label,
        "classes": manifest.classes,
        "threshold": manifest.threshold,
        "score": manifest.score,
        "converter": manifest.converter,
        "metrics": manifest.metrics,
        "training_rows": manifest.provenance.rows,
        "code_revision": manifest.provenance.code_revision,
        "loaded_at": model.loaded_at.isoformat(),
    }
