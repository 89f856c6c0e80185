"""A StandardScaler in front of a tree model, compiled the way scikit-learn computes it.

scikit-learn scales in float64, and its trees then read their input as float32 and compare it with
thresholds that sit halfway between two float32 values. A float32 graph scales in float32 (a value
may land one step off, on the other side of a threshold: answers 0.1 to 0.2 apart on real tables),
and skl2onnx's float64 graph compares the float64 value without rounding it first (also off). So the
scaler is replaced, for conversion, by ``Float32Scaled``: (x - mean) / scale in the graph's input
precision, then rounded to float32, exactly what the trees see in scikit-learn. With a float64 graph
that is exact, so such a model is compiled in float64 from the start (``needs_float64``).

Measured on the wine table (a 10-tree forest behind a StandardScaler, the table plus 20,000 random
rows): probabilities off by up to 0.1 in float32 and in skl2onnx's float64 graph, 1.2e-7 with this one
in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skl2onnx import update_registered_converter
from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxDiv, OnnxSub
from skl2onnx.common.data_types import FloatTensorType, guess_numpy_type
from sklearn.base import BaseEstimator, TransformerMixin

TREE_MODULES = ("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm")
"""Models that read their input as float32 (scikit-learn's trees and forests, the boosted libraries)."""


class Float32Scaled(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """(x - mean_) / scale_ in float64, rounded to float32: what a tree model behind a fitted
    StandardScaler compares with its thresholds."""

    def __init__(self) -> None:
        pass

    @classmethod
    def of(cls, mean: np.ndarray, scale: np.ndarray) -> Float32Scaled:
        """From a fitted scaler's mean and scale (0 and 1 for a column it leaves alone)."""
        scaler = cls()
        scaler.mean_ = np.asarray(mean, dtype=np.float64)
        scaler.scale_ = np.asarray(scale, dtype=np.float64)
        scaler.n_features_in_ = len(scaler.mean_)
        return scaler

    def fit(self, x: Any, y: Any = None) -> Float32Scaled:
        return self

    def transform(self, x: Any) -> np.ndarray:
        scaled: np.ndarray = ((np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_).astype(np.float32)
        return scaled


def reads_float32(estimator: Any) -> bool:
    """True for a model that rounds its input to float32 before comparing it with thresholds."""
    cls = type(estimator)  # HistGradientBoosting bins its float64 input instead
    return cls.__module__.startswith(TREE_MODULES) and not cls.__name__.startswith("HistGradientBoosting")


def needs_float64(estimator: Any) -> bool:
    """True when the estimator holds a ``Float32Scaled``: its float32 graph scales in float32, so only
    a float64 graph answers exactly as scikit-learn on every row (not only on the rows checked)."""
    return any(isinstance(step, Float32Scaled) for _, step in getattr(estimator, "steps", []))


def scaled_trees(pipeline: Any) -> Any:
    """``pipeline`` with a StandardScaler directly in front of its final tree model replaced by
    ``Float32Scaled`` (same answers, an exact graph); any other estimator as it is."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [
        (name, step) for name, step in getattr(pipeline, "steps", []) if step not in (None, "passthrough")
    ]
    if len(steps) != 2 or not reads_float32(steps[1][1]) or type(steps[0][1]) is not StandardScaler:
        return pipeline
    scaler = steps[0][1]
    width = int(scaler.n_features_in_)
    mean = scaler.mean_ if scaler.with_mean else np.zeros(width)
    scale = scaler.scale_ if scaler.with_std else np.ones(width)
    return Pipeline([(steps[0][0], Float32Scaled.of(mean, scale)), steps[1]])


def _shapes(operator: Any) -> None:
    features = operator.inputs[0]
    operator.outputs[0].type = FloatTensorType(
        [features.get_first_dimension(), features.get_second_dimension()]
    )


def _converter(scope: Any, operator: Any, container: Any) -> None:
    """Sub, Div in the input's precision, then Cast to float32: the trees after it get exactly the
    float32 values scikit-learn's trees compare (and are converted as float32 trees, whose graphs
    skl2onnx gets right for every task)."""
    model = operator.raw_operator
    opset = container.target_opset
    features = operator.inputs[0]
    dtype = guess_numpy_type(features.type)
    centered = OnnxSub(features, model.mean_.astype(dtype), op_version=opset)
    scaled = OnnxDiv(centered, model.scale_.astype(dtype), op_version=opset)
    rounded = OnnxCast(scaled, to=1, op_version=opset, output_names=[operator.outputs[0].full_name])  # FLOAT
    rounded.add_to(scope, container)


update_registered_converter(Float32Scaled, "ServingFloat32Scaled", _shapes, _converter, parser=None)
