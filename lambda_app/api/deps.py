"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lambda_app.config import Settings
from lambda_app.model_store import LoadedModel, ModelStore


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> ModelStore:
    store: ModelStore = request.app.state.model_store
    return store


def get_model(store: Annotated[ModelStore, Depends(get_store)]) -> LoadedModel:
    """The loaded model; a 503 (ModelUnavailableError) when there is none."""
    return store.get()


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ModelStore, Depends(get_store)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
