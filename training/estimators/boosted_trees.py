"""ONNX conversion for gradient-boosted trees: HistGradientBoosting, XGBoost and LightGBM.

Registered with skl2onnx (so each also converts at the end of a scikit-learn Pipeline):

- HistGradientBoosting*: skl2onnx's own converter, given a container that writes its missing-value
  directions as integers (skl2onnx 1.20 passes Python booleans into an integer attribute, which
  protobuf 7.34 and later refuses). ``float64_thresholds`` makes the float64 graph: scikit-learn
  compares float64 features with float64 thresholds, so a float32 input a hair from a threshold can
  fall on the other side; ONNX's tree operator keeps float64 thresholds in ``nodes_values_as_tensor``.
- XGBoost and LightGBM: onnxmltools' converters (training side only). XGBoost compares in float32, as
  the float32 graph does; LightGBM compares float64 features with float64 thresholds, so it gets the
  same float64 graph as HistGradientBoosting when its float32 graph fails the parity gate (a value a
  hair above a threshold: probabilities 0.56 apart on the wine table).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.estimators.families import HIST_GRADIENT_BOOSTING

BOOSTED_MODULES = ("xgboost", "lightgbm")


class _IntegerAttributes:
    """A conversion container whose nodes get integers where a converter hands it booleans."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, *args: Any, **attributes: Any) -> Any:
        for key, value in attributes.items():
            if isinstance(value, list) and any(isinstance(v, bool | np.bool_) for v in value):
                attributes[key] = [int(v) for v in value]
        return self._container.add_node(*args, **attributes)


def _register_hist_gradient_boosting() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import get_converter, get_shape_calculator
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    for cls in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        alias = sklearn_operator_name_map[cls]
        update_registered_converter(
            cls,
            alias,
            get_shape_calculator(alias),
            _with_integer_attributes(get_converter(alias)),
            options={"zipmap": [True, False, "columns"], "nocl": [True, False], "raw_scores": [True, False]}
            if cls is HistGradientBoostingClassifier
            else None,
            overwrite=True,
        )


def _with_integer_attributes(original: Any) -> Any:
    """``original`` converting through a container that writes booleans as integers."""

    def convert(scope: Any, operator: Any, container: Any) -> None:
        original(scope, operator, _IntegerAttributes(container))

    return convert


def _register_xgboost_and_lightgbm() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor
    except ImportError:  # not installed: the estimator cannot be built either
        pass
    else:
        from training.estimators.xgboost_labels import XGBClassifier as LabelledXGBClassifier

        for cls, alias in (
            (XGBClassifier, "ServingXGBClassifier"),
            (LabelledXGBClassifier, "ServingXGBLabels"),
        ):
            update_registered_converter(
                cls,
                alias,
                calculate_linear_classifier_output_shapes,
                convert_xgboost,
                options=classifier_options,
            )
        update_registered_converter(
            XGBRegressor, "ServingXGBRegressor", calculate_linear_regressor_output_shapes, convert_xgboost
        )
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:
        pass
    else:
        update_registered_converter(
            LGBMClassifier,
            "ServingLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=classifier_options,
        )
        update_registered_converter(
            LGBMRegressor, "ServingLGBMRegressor", calculate_linear_regressor_output_shapes, convert_lightgbm
        )


_registered: list[bool] = []


def register() -> None:
    """Register the converters with skl2onnx, once per process."""
    if not _registered:
        _register_hist_gradient_boosting()
        _register_xgboost_and_lightgbm()
        _registered.append(True)


def final_hist_gradient_boosting(estimator: Any) -> Any:
    """The HistGradientBoosting model itself (inside a log target), or None when it is anything else
    (on its own or behind a scaler: a float64 graph is made for the bare model only)."""
    if type(estimator).__name__ == "TransformedTargetRegressor":
        estimator = getattr(estimator, "regressor_", estimator.regressor)
    return estimator if type(estimator).__name__ in HIST_GRADIENT_BOOSTING else None


def lightgbm_booster(estimator: Any) -> Any:
    """The LightGBM Booster of a model (inside a log target; a model file's too), or None."""
    if type(estimator).__name__ == "TransformedTargetRegressor":
        estimator = getattr(estimator, "regressor_", estimator.regressor)
    booster = getattr(estimator, "booster_", None)
    return booster if type(booster).__module__.startswith("lightgbm") else None


def has_float64_thresholds(estimator: Any) -> bool:
    """True for the models whose float64 graph keeps their own float64 thresholds (``float64_thresholds``)."""
    return final_hist_gradient_boosting(estimator) is not None or lightgbm_booster(estimator) is not None


def float64_thresholds(model: Any, estimator: Any) -> Any:
    """The float32 graph of a HistGradientBoosting or LightGBM model made to take float64 features and
    compare them with the model's own float64 thresholds (ai.onnx.ml opset 3 ``nodes_values_as_tensor``).

    Raises ValueError when the graph's trees are not the estimator's, node for node.
    """
    from onnx import TensorProto, helper, numpy_helper

    ensembles = [node for node in model.graph.node if node.op_type.startswith("TreeEnsemble")]
    if len(ensembles) != 1:
        raise ValueError(f"expected one tree ensemble node, found {len(ensembles)}")
    node = ensembles[0]
    attributes = {attribute.name: attribute for attribute in node.attribute}
    trees = list(attributes["nodes_treeids"].ints)
    nodes = list(attributes["nodes_nodeids"].ints)
    leaf = np.array([mode == b"LEAF" for mode in attributes["nodes_modes"].strings])
    written = np.array(attributes["nodes_values"].floats, dtype=np.float32)
    hist = final_hist_gradient_boosting(estimator)
    if hist is not None:
        predictors = [predictor for iteration in hist._predictors for predictor in iteration]
        found = [
            predictors[tree].nodes[index]["num_threshold"] for tree, index in zip(trees, nodes, strict=True)
        ]
    else:
        by_node = _lightgbm_thresholds(lightgbm_booster(estimator))
        found = [by_node.get((tree, index), 0.0) for tree, index in zip(trees, nodes, strict=True)]
    thresholds = np.array(found, dtype=np.float64)
    thresholds[leaf] = 0.0
    if not np.array_equal(thresholds.astype(np.float32)[~leaf], written[~leaf]):
        raise ValueError("the graph's thresholds are not the estimator's")
    node.attribute.remove(attributes["nodes_values"])
    node.attribute.append(
        helper.make_attribute("nodes_values_as_tensor", numpy_helper.from_array(thresholds))
    )
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    for opset in model.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = max(opset.version, 3)
    return model


def _lightgbm_thresholds(booster: Any) -> dict[tuple[int, int], float]:
    """(tree, node) -> the split's float64 threshold, numbered as onnxmltools numbers the graph's nodes
    (its own tree walk, run here on the same dump; ``float64_thresholds`` checks the result against the
    graph node for node, so a change of numbering is a refusal, never a wrong graph)."""
    from collections import defaultdict

    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import _parse_tree_structure

    attrs: dict[str, list[Any]] = defaultdict(list)
    for tree_id, tree in enumerate(booster.dump_model()["tree_info"]):
        _parse_tree_structure(tree_id, 0, 1.0, tree["tree_structure"], attrs)
    return {
        (tree, node): float(value)
        for tree, node, value, mode in zip(
            attrs["nodes_treeids"],
            attrs["nodes_nodeids"],
            attrs["nodes_values"],
            attrs["nodes_modes"],
            strict=True,
        )
        if mode != "LEAF"
    }
