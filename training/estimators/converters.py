"""ONNX converters this project registers with skl2onnx, for estimators it has none for.

EllipticEnvelope: skl2onnx 1.20 has no converter. Its decision function is a Mahalanobis
distance, ``-offset_ - (x - location_) @ precision_ @ (x - location_)``, which takes five ONNX
operators; written here (through skl2onnx's own extension point) rather than refused.
RobustZScore (training/estimators/robust_z.py): the product's own detector, ``cutoff - max |z|``.
Outputs follow skl2onnx's outlier detectors: ``label`` (1 inlier, -1 outlier) and ``scores``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skl2onnx import update_registered_converter
from skl2onnx.algebra.onnx_ops import (
    OnnxAbs,
    OnnxCast,
    OnnxDiv,
    OnnxGreaterOrEqual,
    OnnxMatMul,
    OnnxMul,
    OnnxReduceMaxApi18,
    OnnxReduceSumApi11,
    OnnxSub,
    OnnxWhere,
)
from skl2onnx.common.data_types import Int64TensorType, guess_numpy_type
from sklearn.covariance import EllipticEnvelope

from training.estimators.robust_z import RobustZScore


def _elliptic_envelope_shapes(operator: Any) -> None:
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = Int64TensorType([rows, 1])
    operator.outputs[1].type = operator.inputs[0].type.__class__([rows, 1])


def _elliptic_envelope_converter(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    opset = container.target_opset
    features = operator.inputs[0]
    dtype = guess_numpy_type(features.type)
    centered = OnnxSub(features, model.location_.astype(dtype), op_version=opset)
    projected = OnnxMatMul(centered, model.precision_.astype(dtype), op_version=opset)
    distance = OnnxReduceSumApi11(
        OnnxMul(projected, centered, op_version=opset), axes=[1], keepdims=1, op_version=opset
    )
    scores = OnnxSub(
        np.array([-model.offset_], dtype=dtype),
        distance,
        op_version=opset,
        output_names=[operator.outputs[1].full_name],
    )
    inlier = OnnxGreaterOrEqual(scores, np.array([0], dtype=dtype), op_version=opset)
    label = OnnxCast(
        OnnxWhere(inlier, np.array([1], dtype=np.int64), np.array([-1], dtype=np.int64), op_version=opset),
        to=7,  # INT64
        op_version=opset,
        output_names=[operator.outputs[0].full_name],
    )
    scores.add_to(scope, container)
    label.add_to(scope, container)


update_registered_converter(
    EllipticEnvelope,
    "ServingEllipticEnvelope",
    _elliptic_envelope_shapes,
    _elliptic_envelope_converter,
    parser=None,
)


def _robust_z_converter(scope: Any, operator: Any, container: Any) -> None:
    """``cutoff - max_j |x_j - median_j| / scale_j``, and the label it implies (-1 below 0)."""
    model = operator.raw_operator
    opset = container.target_opset
    features = operator.inputs[0]
    dtype = guess_numpy_type(features.type)
    distance = OnnxDiv(
        OnnxAbs(OnnxSub(features, model.median_.astype(dtype), op_version=opset), op_version=opset),
        model.scale_.astype(dtype),
        op_version=opset,
    )
    largest = OnnxReduceMaxApi18(distance, axes=[1], keepdims=1, op_version=opset)
    scores = OnnxSub(
        np.array([model.cutoff], dtype=dtype),
        largest,
        op_version=opset,
        output_names=[operator.outputs[1].full_name],
    )
    inlier = OnnxGreaterOrEqual(scores, np.array([0], dtype=dtype), op_version=opset)
    label = OnnxCast(
        OnnxWhere(inlier, np.array([1], dtype=np.int64), np.array([-1], dtype=np.int64), op_version=opset),
        to=7,  # INT64
        op_version=opset,
        output_names=[operator.outputs[0].full_name],
    )
    scores.add_to(scope, container)
    label.add_to(scope, container)


update_registered_converter(
    RobustZScore,
    "ServingRobustZScore",
    _elliptic_envelope_shapes,  # the same outputs: a label and a score per row
    _robust_z_converter,
    parser=None,
)
