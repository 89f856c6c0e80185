"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from lambda_app.model_store import LoadedModel, ModelStore


# Async on purpose: FastAPI runs a sync dependency in a worker thread, a hop that costs
# more than everything else on the 1-row path. These only read app state.
async def get_store(request: Request) -> ModelStore:
    store: ModelStore = request.app.state.model_store
    return store


async def get_model(store: Annotated[ModelStore, Depends(get_store)]) -> LoadedModel:
    """The loaded model; a 503 (ModelUnavailableError) when there is none.

    Only a first load (S3, deserialising) leaves the event loop.
    """
    model = store.loaded()
    if model is None:
        model = await run_in_threadpool(store.get)
    return model


ModelDep = Annotated[LoadedModel, Depends(get_model)]
