"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from lambda_app.api.deps import ModelDep
from lambda_app.schemas import ErrorBody, HealthResponse, RootResponse

router = APIRouter(tags=["health"])


@router.get("/", response_model=RootResponse)
def root() -> RootResponse:
    """Greeting, with where the API docs are."""
    return RootResponse(
        service="anomaly-detector",
        message="POST records to /predict to score them with the loaded model (GET /model describes it)",
        docs="/docs",
    )


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": ErrorBody, "description": "no model is loaded"}},
)
def health(model: ModelDep) -> HealthResponse:
    """200 with the loaded model's version, 503 when no model is loaded."""
    return HealthResponse(status="ok", version=model.manifest.version)
