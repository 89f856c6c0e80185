"""The protocol's bodies as this server answers them, for the OpenAPI schema (/docs).

Written from the Open Inference Protocol's REST description; what this server does differently is
listed in docs/api.md (Open Inference Protocol).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ProtocolError(BaseModel):
    """Every error of the protocol's routes: one message naming the problem (row and input for a value)."""

    error: str = Field(examples=["row 0, input 'two': must be a finite number"])


class LiveResponse(BaseModel):
    live: bool


class ReadyResponse(BaseModel):
    ready: bool


class ModelReadyResponse(BaseModel):
    name: str
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    name: str
    datatype: str = Field(examples=["FP64"])
    shape: list[int] = Field(description="-1: any number of rows", examples=[[-1]])


class ModelMetadata(BaseModel):
    name: str = Field(description="the model's name, from its manifest")
    versions: list[str] = Field(description="the loaded version (one version is served at a time)")
    platform: str = Field(examples=["onnxruntime_onnx"])
    inputs: list[MetadataTensor] = Field(description="one per feature, in the manifest's order")
    outputs: list[MetadataTensor]
    parameters: dict[str, str] = Field(
        description="task; classifiers: classes, the column order of probabilities (a JSON array as text)"
    )


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any] = Field(description="row-major")
    parameters: dict[str, str] | None = Field(
        default=None, description="probabilities: classes, the column order (a JSON array as text)"
    )


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = Field(default=None, description="the request's id, when it had one")
    parameters: dict[str, str] | None = Field(
        default=None,
        description="unseen: the rows holding a category value the model never saw (JSON as text)",
    )
    outputs: list[ResponseOutput]


TENSOR_DATA: dict[str, Any] = {
    "type": "array",
    "description": "row-major values, flat or nested; null where the model fills a missing value",
    "items": {},
}

INFER_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["inputs"],
                "properties": {
                    "id": {"type": "string"},
                    "parameters": {"type": "object"},
                    "inputs": {
                        "type": "array",
                        "minItems": 1,
                        "description": "one tensor per feature ([N] or [N, 1]; BYTES for categories),"
                        " or one [N, F] tensor for a model whose features are all numbers",
                        "items": {
                            "type": "object",
                            "required": ["name", "shape", "datatype", "data"],
                            "properties": {
                                "name": {"type": "string"},
                                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                                "datatype": {"type": "string"},
                                "parameters": {"type": "object"},
                                "data": TENSOR_DATA,
                            },
                        },
                    },
                    "outputs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                        },
                    },
                },
            },
            "example": {
                "id": "42",
                "inputs": [
                    {"name": "one", "shape": [1], "datatype": "FP64", "data": [20]},
                    {"name": "two", "shape": [1], "datatype": "FP64", "data": [12.67]},
                    {"name": "three", "shape": [1], "datatype": "FP64", "data": [15.9]},
                ],
            },
        }
    },
}
