"""The loaded model's manifest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lambda_app.api.deps import ModelDep
from lambda_app.schemas import ErrorBody

router = APIRouter(tags=["model"])


@router.get("/model", responses={503: {"model": ErrorBody, "description": "no model is loaded"}})
def model_manifest(model: ModelDep) -> dict[str, Any]:
    """The loaded model's manifest: name, version, features, threshold, metrics, provenance."""
    return model.manifest.model_dump(mode="json")
