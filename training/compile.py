"""Compile a fitted IsolationForest into a compact ONNX graph for serving.

Why by hand: skl2onnx's IsolationForest graph is slow to load and to run; the forest is
really one sum of per-leaf path lengths, which ONNX's TreeEnsembleRegressor computes in C++.
The graph: TreeEnsembleRegressor (each leaf holds depth + c(n_samples_at_leaf), summed over
trees) -> Mul by -1 / (n_trees * c(max_samples)) -> Pow(2, .) = the anomaly score in (0, 1],
identical (to ~1e-7) to ``-IsolationForest.score_samples``. The serving side then needs
neither scikit-learn nor scipy. The scikit-learn artifact stays the source of truth and
``check_parity`` refuses a compiled graph that disagrees with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training.exceptions import TrainingError

INPUT_NAME = "features"
OUTPUT_NAME = "score"
OPSET = 18
ML_OPSET = 3
PARITY_TOLERANCE = 1e-5


class CompileError(TrainingError):
    """The estimator cannot be compiled, or the compiled graph disagrees with it."""


def average_path_length(n_samples: np.ndarray) -> np.ndarray:
    """c(n): the mean path length of an unsuccessful BST search among n points (Liu et al.)."""
    n = np.asarray(n_samples, dtype=np.float64)
    result = np.zeros_like(n)
    result[n == 2] = 1.0
    big = n > 2
    result[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return result


def _float32_at_or_below(values: np.ndarray) -> np.ndarray:
    """Largest float32 <= each float64: ``x32 <= t64`` exactly when ``x32 <= this``."""
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def _leaf_depths(children_left: np.ndarray, children_right: np.ndarray) -> np.ndarray:
    depth = np.zeros(len(children_left), dtype=np.float64)
    stack = [0]
    while stack:
        node = stack.pop()
        for child in (children_left[node], children_right[node]):
            if child != -1:
                depth[child] = depth[node] + 1
                stack.append(child)
    return depth


def ensure_compilable(estimator: Any) -> None:
    """Refuse, before fitting, an estimator the service could not run."""
    if type(estimator).__name__ != "IsolationForest":
        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        raise CompileError(
            f"{type(final).__name__} cannot be compiled for serving: only isolation_forest can be"
            " published (the Lambda image carries ONNX Runtime, not scikit-learn)"
        )


def compile_isolation_forest(forest: Any) -> bytes:
    """The serialised ONNX model of a fitted ``sklearn.ensemble.IsolationForest``."""
    from onnx import TensorProto, helper

    ensure_compilable(forest)
    n_features = int(forest.n_features_in_)
    attrs: dict[str, Any] = {
        key: []
        for key in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_values",
            "nodes_modes",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "target_treeids",
            "target_nodeids",
            "target_ids",
            "target_weights",
        )
    }
    for tree_id, (estimator, features) in enumerate(
        zip(forest.estimators_, forest.estimators_features_, strict=True)
    ):
        tree = estimator.tree_
        left, right = tree.children_left, tree.children_right
        is_leaf = left == -1
        thresholds = _float32_at_or_below(tree.threshold)
        leaf_values = _leaf_depths(left, right) + average_path_length(tree.n_node_samples)
        for node in range(tree.node_count):
            attrs["nodes_treeids"].append(tree_id)
            attrs["nodes_nodeids"].append(node)
            if is_leaf[node]:
                attrs["nodes_featureids"].append(0)
                attrs["nodes_values"].append(0.0)
                attrs["nodes_modes"].append("LEAF")
                attrs["nodes_truenodeids"].append(0)
                attrs["nodes_falsenodeids"].append(0)
                attrs["target_treeids"].append(tree_id)
                attrs["target_nodeids"].append(node)
                attrs["target_ids"].append(0)
                attrs["target_weights"].append(float(leaf_values[node]))
            else:
                attrs["nodes_featureids"].append(int(features[tree.feature[node]]))
                attrs["nodes_values"].append(float(thresholds[node]))
                attrs["nodes_modes"].append("BRANCH_LEQ")
                attrs["nodes_truenodeids"].append(int(left[node]))
                attrs["nodes_falsenodeids"].append(int(right[node]))

    scale = -1.0 / (len(forest.estimators_) * float(average_path_length(np.array([forest.max_samples_]))[0]))
    nodes = [
        helper.make_node(
            "TreeEnsembleRegressor",
            [INPUT_NAME],
            ["path_length_sum"],
            domain="ai.onnx.ml",
            n_targets=1,
            aggregate_function="SUM",
            post_transform="NONE",
            **attrs,
        ),
        helper.make_node("Mul", ["path_length_sum", "scale"], ["exponent"]),
        helper.make_node("Pow", ["two", "exponent"], ["score_column"]),
        helper.make_node("Reshape", ["score_column", "flat"], [OUTPUT_NAME]),
    ]
    graph = helper.make_graph(
        nodes,
        "isolation_forest",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [None])],
        initializer=[
            helper.make_tensor("scale", TensorProto.FLOAT, [], [scale]),
            helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
            helper.make_tensor("flat", TensorProto.INT64, [1], [-1]),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="anomaly-detector-training",
    )
    model.ir_version = 9
    return bytes(model.SerializeToString())


@dataclass(frozen=True)
class ParityReport:
    rows: int
    max_abs_score_diff: float
    prediction_mismatches: int


def check_parity(forest: Any, onnx_model: bytes, features: np.ndarray, threshold: float) -> ParityReport:
    """Score ``features`` with both; raise CompileError unless they agree within 1e-5."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    compiled = session.run([OUTPUT_NAME], {INPUT_NAME: features.astype(np.float32)})[0].astype(np.float64)
    reference = -forest.score_samples(features)
    diff = float(np.max(np.abs(compiled - reference))) if len(features) else 0.0
    mismatches = int(np.sum((compiled >= threshold) != (reference >= threshold)))
    report = ParityReport(rows=len(features), max_abs_score_diff=diff, prediction_mismatches=mismatches)
    if diff > PARITY_TOLERANCE or mismatches:
        raise CompileError(
            f"compiled model disagrees with scikit-learn on {len(features)} rows:"
            f" max score difference {diff:.2e}, {mismatches} prediction mismatches"
        )
    return report
