"""Inference requests -> the served table, and predictions -> output tensors.

Inputs: one tensor per feature, named after it, shaped ``[N]`` or ``[N, 1]`` (numbers: FP16/FP32/FP64 or
an integer type; booleans: BOOL; categories: BYTES, or whole numbers read as their text as in
training); or, for a model whose features are all numbers, one ``[N, F]`` tensor of any name holding
the features in the manifest's order. ``null`` is taken where the model takes missing values. Values
then go through /predict's own checks (lambda_app/validation.py, lambda_app/row_rules.py), so a value
refused there is refused here for the same reason, its row and input named.

Only JSON tensor data is read: the binary tensor extension is refused with a 400 saying so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lambda_app.errors import ErrorDetail, InvalidInputError, TooManyRecordsError
from lambda_app.models import AnomalyPrediction, ClassPrediction, Prediction, RegressionPrediction
from lambda_app.registry import FeatureSpec, Manifest
from lambda_app.row_rules import more_problems
from lambda_app.validation import MAX_REPORTED_ERRORS, columns_to_matrix

INTEGER_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
ACCEPTED: dict[str, frozenset[str]] = {
    "number": FLOAT_TYPES | INTEGER_TYPES,
    "integer": FLOAT_TYPES | INTEGER_TYPES,
    "boolean": frozenset({"BOOL"}),
    "category": frozenset({"BYTES"}) | INTEGER_TYPES,
}
"""The tensor datatypes each feature type takes."""

DECLARED = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "category": "BYTES"}
"""The datatype the metadata states for each feature type (the first choice of ACCEPTED)."""

MAX_REQUESTED_OUTPUTS = 16
BINARY_REFUSED = (
    "binary tensor data is not supported by this server:"
    " send JSON tensor data (tritonclient: binary_data=False)"
)


@dataclass(frozen=True)
class InferRequest:
    """A decoded inference request: the served table, the request id and the outputs asked for."""

    table: np.ndarray
    id: str | None
    outputs: list[str] | None  # None: every output


def decode(payload: Any, manifest: Manifest, max_rows: int, output_names: Sequence[str]) -> InferRequest:
    """Check an inference request and turn its inputs into the served table.

    Raises:
        InvalidInputError: anything the protocol or the model's features do not allow, naming the input
            (and the row, for a value).
        TooManyRecordsError: more rows than the limit.
    """
    if not isinstance(payload, dict):
        raise InvalidInputError("the body must be a JSON object with an 'inputs' array")
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInputError("'id' must be a string")
    _refuse_binary(payload.get("parameters"), "the request")
    outputs = _requested_outputs(payload.get("outputs"), output_names)
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError("'inputs' must be a non-empty array of tensors")
    tensors = [_tensor(item, index) for index, item in enumerate(inputs)]
    features = manifest.features
    names = [spec.name for spec in features]
    if len(tensors) == 1 and tensors[0].name not in names and len(tensors[0].shape) == 2:
        table = _table_tensor(tensors[0], features, max_rows)
    else:
        table = _feature_tensors(tensors, features, max_rows)
    return InferRequest(table=table, id=request_id, outputs=outputs)


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


def _tensor(item: Any, index: int) -> _Tensor:
    if not isinstance(item, dict):
        raise InvalidInputError(f"inputs[{index}] must be an object with name, shape, datatype and data")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"inputs[{index}] needs a 'name' (a string)")
    shown = name[:100]
    shape = item.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise InvalidInputError(f"input '{shown}': 'shape' must be a non-empty array of sizes")
    datatype = item.get("datatype")
    if not isinstance(datatype, str):
        raise InvalidInputError(f"input '{shown}': 'datatype' must be a string such as FP64 or BYTES")
    _refuse_binary(item.get("parameters"), f"input '{shown}'")
    if "data" not in item:
        raise InvalidInputError(f"input '{shown}': 'data' is required (JSON tensor data)")
    return _Tensor(shown, shape, datatype, _flatten(item["data"], shown))


def _flatten(data: Any, name: str) -> list[Any]:
    """Tensor data in row-major order: a flat array, or nested arrays of the tensor's shape."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(value, list) for value in data):
        return data
    flat: list[Any] = []
    pending: list[Any] = [data]
    while pending:  # a stack, not recursion: nesting depth is bounded by the body parser anyway
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(reversed(item))
        else:
            flat.append(item)
    return flat


def _refuse_binary(parameters: Any, where: str) -> None:
    if isinstance(parameters, dict) and (
        parameters.get("binary_data_size") is not None or parameters.get("binary_data") is True
    ):
        raise InvalidInputError(f"{where} asks for binary tensor data; {BINARY_REFUSED}")


def _requested_outputs(outputs: Any, output_names: Sequence[str]) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or len(outputs) > MAX_REQUESTED_OUTPUTS:
        raise InvalidInputError("'outputs' must be an array of {\"name\": ...} objects")
    names = []
    for item in outputs:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise InvalidInputError("each of 'outputs' must be an object with a 'name'")
        if name not in output_names:
            raise InvalidInputError(
                f"output '{name[:100]}' does not exist; this model answers {', '.join(output_names)}"
            )
        _refuse_binary(item.get("parameters"), f"output '{name}'")
        names.append(name)
    return names


def _rows(shape: list[int], name: str, max_rows: int) -> int:
    rows = shape[0]
    if rows == 0:
        raise InvalidInputError(f"input '{name}' has no rows: send at least one")
    if rows > max_rows:
        raise TooManyRecordsError(f"{rows} rows exceed the limit of {max_rows} records per request")
    return rows


def _feature_tensors(tensors: list[_Tensor], features: Sequence[FeatureSpec], max_rows: int) -> np.ndarray:
    """One tensor per feature, each [N] or [N, 1], all with the same N."""
    by_name = {spec.name: spec for spec in features}
    seen: dict[str, _Tensor] = {}
    for tensor in tensors:
        if tensor.name not in by_name:
            raise InvalidInputError(
                f"input '{tensor.name}' is not a feature of this model; it takes one tensor per feature:"
                f" {', '.join(by_name)}"
            )
        if tensor.name in seen:
            raise InvalidInputError(f"input '{tensor.name}' is given twice")
        seen[tensor.name] = tensor
    missing = [name for name in by_name if name not in seen]
    if missing:
        raise InvalidInputError(
            f"input(s) {', '.join(repr(m) for m in missing)} missing: send one per feature"
        )
    rows: int | None = None
    columns: list[list[Any]] = []
    for spec in features:
        tensor = seen[spec.name]
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise InvalidInputError(f"input '{tensor.name}' has shape {tensor.shape}; send [N] or [N, 1]")
        count = _rows(tensor.shape, tensor.name, max_rows)
        if rows is None:
            rows = count
        elif count != rows:
            raise InvalidInputError(
                f"input '{tensor.name}' has {count} rows, input '{features[0].name}' {rows}: every input"
                " needs the same number of rows"
            )
        if tensor.datatype not in ACCEPTED[spec.dtype]:
            raise InvalidInputError(
                f"input '{tensor.name}' is {tensor.datatype[:20]}; feature '{spec.name}' ({spec.dtype}) takes"
                f" {_listed(spec)}"
            )
        if len(tensor.data) != count:
            raise InvalidInputError(
                f"input '{tensor.name}' holds {len(tensor.data)} values for shape {tensor.shape}"
            )
        columns.append(_column(tensor, spec))
    try:
        return columns_to_matrix(columns, features)
    except InvalidInputError as exc:
        raise _named_by_input(exc.details) from None


def _column(tensor: _Tensor, spec: FeatureSpec) -> list[Any]:
    """A tensor's values as /predict would receive them: a category's whole numbers as their text."""
    if spec.dtype == "category" and tensor.datatype in INTEGER_TYPES:
        return [
            str(value) if isinstance(value, int) and not isinstance(value, bool) else value
            for value in tensor.data
        ]
    return tensor.data


def _listed(spec: FeatureSpec) -> str:
    return {
        "number": "FP32, FP64 or an integer type",
        "integer": "INT64 (or another integer type, or whole FP32/FP64 values)",
        "boolean": "BOOL",
        "category": "BYTES (strings), or whole numbers read as their text",
    }[spec.dtype]


def _table_tensor(tensor: _Tensor, features: Sequence[FeatureSpec], max_rows: int) -> np.ndarray:
    """One [N, F] tensor of numbers, the features in the manifest's order (an all-number model only)."""
    if any(spec.dtype not in ("number", "integer") for spec in features):
        raise InvalidInputError(
            f"input '{tensor.name}' is not a feature of this model, whose features are not all numbers:"
            f" send one tensor per feature ({', '.join(spec.name for spec in features)})"
        )
    width = len(features)
    if tensor.shape[1] != width:
        raise InvalidInputError(
            f"input '{tensor.name}' has shape {tensor.shape}; one tensor for every feature is [N, {width}]"
            f" ({', '.join(spec.name for spec in features)}), or send one tensor per feature"
        )
    if tensor.datatype not in FLOAT_TYPES | INTEGER_TYPES:
        raise InvalidInputError(
            f"input '{tensor.name}' is {tensor.datatype[:20]}; the features take FP32 or FP64"
        )
    rows = _rows(tensor.shape, tensor.name, max_rows)
    if len(tensor.data) != rows * width:
        raise InvalidInputError(
            f"input '{tensor.name}' holds {len(tensor.data)} values for shape {tensor.shape}"
        )
    columns = [tensor.data[index::width] for index in range(width)]
    try:
        return columns_to_matrix(columns, features)
    except InvalidInputError as exc:
        position = {spec.name: index for index, spec in enumerate(features)}
        details = [
            ErrorDetail(
                d.message,
                row=d.row,
                field=f"{tensor.name}[:, {position.get(d.field or '')}] ({d.field})",
                code=d.code,
            )
            for d in exc.details
        ]
        raise _named_by_input(details) from None


def _named_by_input(details: list[ErrorDetail]) -> InvalidInputError:
    """The row rules' refusal, worded for tensors: row and input named."""
    first = details[0]
    more = more_problems(len(details) - 1)
    return InvalidInputError(
        f"row {first.row}, input '{first.field}': {first.message}{more}", details[:MAX_REPORTED_ERRORS]
    )


# --------------------------------------------------------------------------- outputs


def output_names(manifest: Manifest) -> list[str]:
    """The outputs a model of this task answers, in order."""
    return {
        "anomaly": ["predictions", "scores"],
        "classification": ["predictions", "probabilities"],
        "regression": ["predictions"],
    }[manifest.task]


def class_order(manifest: Manifest) -> str:
    """The classes in the order of the probabilities' columns, as a JSON string (protocol parameters
    are scalars: booleans, numbers or strings)."""
    return json.dumps(manifest.classes)


def prediction_datatype(manifest: Manifest) -> str:
    if manifest.task == "classification":
        assert manifest.classes is not None
        return "INT64" if all(isinstance(c, int) for c in manifest.classes) else "BYTES"
    return "INT64" if manifest.task == "anomaly" else "FP64"


def output_metadata(manifest: Manifest) -> list[dict[str, Any]]:
    """Each output's name, datatype and shape (-1: the request's rows)."""
    shapes = {"predictions": [-1], "scores": [-1], "probabilities": [-1, len(manifest.classes or ())]}
    return [
        {
            "name": name,
            "datatype": prediction_datatype(manifest) if name == "predictions" else "FP64",
            "shape": shapes[name],
        }
        for name in output_names(manifest)
    ]


def input_metadata(manifest: Manifest) -> list[dict[str, Any]]:
    """One input per feature: its name, datatype and shape."""
    return [
        {"name": spec.name, "datatype": DECLARED[spec.dtype], "shape": [-1]} for spec in manifest.features
    ]


def encode(prediction: Prediction, manifest: Manifest, wanted: list[str] | None) -> list[dict[str, Any]]:
    """The prediction as output tensors: every output of the task, or those ``wanted``, in that order."""
    rows = prediction.rows
    tensors: dict[str, dict[str, Any]] = {}
    if isinstance(prediction, AnomalyPrediction):
        tensors["predictions"] = _out("predictions", "INT64", [rows], prediction.labels.tolist())
        tensors["scores"] = _out("scores", "FP64", [rows], prediction.scores.tolist())
    elif isinstance(prediction, ClassPrediction):
        labels = prediction.labels
        tensors["predictions"] = _out("predictions", prediction_datatype(manifest), [rows], labels)
        probabilities = prediction.probabilities
        tensors["probabilities"] = _out(
            "probabilities", "FP64", list(probabilities.shape), probabilities.reshape(-1).tolist()
        )
        tensors["probabilities"]["parameters"] = {"classes": class_order(manifest)}
    else:
        assert isinstance(prediction, RegressionPrediction)
        tensors["predictions"] = _out("predictions", "FP64", [rows], prediction.values.tolist())
    return [tensors[name] for name in (wanted or list(tensors))]


def _out(name: str, datatype: str, shape: list[int], data: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}
