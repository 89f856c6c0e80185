"""Compile a fitted model into the ONNX graph the service runs (lambda_app/models/ states the contract).

Every graph takes one float32 input ``features`` (rows, n_features) and names its outputs for its
task: ``score`` (anomaly), ``label`` + ``probabilities`` (classification), ``prediction``
(regression). An IsolationForest gets the compact graph below; everything else goes through
skl2onnx (pinned in requirements-train.txt only) and is renamed to the contract's outputs.

The compact IsolationForest graph:
Why by hand: skl2onnx's IsolationForest graph is slow to load and to run; the forest is
really one sum of per-leaf path lengths, which ONNX's TreeEnsembleRegressor computes in C++.
The graph: TreeEnsembleRegressor (each leaf holds depth + c(n_samples_at_leaf), summed over
trees) -> Mul by -1 / (n_trees * c(max_samples)) -> Pow(2, .) = the anomaly score in (0, 1],
identical (to ~1e-7) to ``-IsolationForest.score_samples``. skl2onnx's own IsolationForest graph
loads in ~264 ms and runs one row in ~1.9 ms against ~6 ms and ~10 us for this one.
The serving side needs neither scikit-learn nor scipy. The scikit-learn artifact stays the source
of truth and the task's parity check (training/tasks/) refuses a graph that disagrees with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lambda_app.models import INPUT_NAME, OUTPUT_NAMES
from training.estimators.families import estimator_name
from training.exceptions import TrainingError

OUTPUT_NAME = OUTPUT_NAMES["anomaly"][0]
OPSET = 18
ML_OPSET = 3
PARITY_TOLERANCE = 1e-5
COMPACT_CONVERTER = {"name": "compact-isolation-forest", "opset": str(OPSET), "ml_opset": str(ML_OPSET)}


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


def is_compact(estimator: Any) -> bool:
    """An IsolationForest (on its own) gets the compact graph."""
    return type(estimator).__name__ == "IsolationForest"


def ensure_compilable(estimator: Any, task: str, features: np.ndarray, labels: np.ndarray | None) -> None:
    """Refuse, before the real fit, an estimator the service could not run.

    A copy is fitted on a small sample of the training rows and converted: the converter's own
    reason is the refusal (an unregistered estimator, or one the converter fails on).
    """
    from sklearn.base import clone

    if is_compact(estimator):
        return
    rows = np.random.default_rng(0).permutation(len(features))[: min(len(features), 200)]
    trial = clone(estimator)
    try:
        if labels is None:
            trial.fit(features[rows])
        else:
            trial.fit(features[rows], labels[rows])
    except (
        Exception
    ):  # a tiny sample may not fit (too few classes, neighbours...): convert after the real fit
        return
    compile_model(trial, task, features.shape[1])


def compile_model(
    estimator: Any, task: str, n_features: int, precision: str = "float"
) -> tuple[bytes, dict[str, str]]:
    """The serving graph of a fitted estimator, and how it was made (for the manifest).

    ``precision`` "double" makes a float64 graph (skl2onnx only): for models whose float32 graph
    cannot match scikit-learn (nearest neighbours pick other neighbours when distances round).
    """
    if task == "anomaly" and is_compact(estimator):
        return compile_isolation_forest(estimator), COMPACT_CONVERTER
    return convert_with_skl2onnx(estimator, task, n_features, precision)


GRAPH_NAME = "serving"
"""The serving graph's name: fixed, so the same fitted model always compiles to the same bytes."""


def convert_with_skl2onnx(
    estimator: Any, task: str, n_features: int, precision: str = "float"
) -> tuple[bytes, dict[str, str]]:
    """skl2onnx's graph, its outputs renamed to the contract's; CompileError with the converter's reason."""
    import onnx
    import skl2onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    import training.estimators.converters  # noqa: F401 - registers this project's converters with skl2onnx
    from training.estimators import boosted_trees

    boosted_trees.register()
    log_target = type(estimator).__name__ == "TransformedTargetRegressor"
    if log_target:  # the regressor's graph, then exp(y) - 1 appended (skl2onnx has no converter for it)
        estimator = estimator.regressor_
    # A float64 tree ensemble does not run in ONNX Runtime as skl2onnx writes it; HistGradientBoosting's
    # and LightGBM's float32 graphs are given float64 thresholds instead (boosted_trees.float64_thresholds).
    thresholds64 = precision == "double" and boosted_trees.has_float64_thresholds(estimator)
    tensor_type = DoubleTensorType if precision == "double" and not thresholds64 else FloatTensorType
    options: dict[int, dict[str, Any]] = {}
    if task == "classification":
        options[id(estimator)] = {"zipmap": False}  # probabilities as a (rows, classes) tensor
    try:
        model = convert_sklearn(
            estimator,
            initial_types=[(INPUT_NAME, tensor_type([None, n_features]))],
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
            options=options or None,
            name=GRAPH_NAME,  # skl2onnx names a graph with a random uuid otherwise: bytes would differ
        )
    except Exception as exc:  # skl2onnx raises many types: missing converters, shape and type errors
        reason = converter_reason(exc)
        raise CompileError(
            f"{estimator_name(estimator)} cannot be converted to ONNX for serving: {reason}"
        ) from exc
    if thresholds64:
        try:
            model = boosted_trees.float64_thresholds(model, estimator)
        except ValueError as exc:
            raise CompileError(f"{estimator_name(estimator)} has no float64 graph: {exc}") from exc
    elif precision == "double":
        model = _cast_tree_regressor_outputs(model)
    exposed = _expose_contract_outputs(model, task, expm1=log_target)
    converter = {
        "name": "skl2onnx",
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "opset": str(OPSET),
        "ml_opset": str(ML_OPSET),
        "input": "float64" if precision == "double" else "float32",
    }
    return bytes(exposed.SerializeToString()), converter


def _cast_tree_regressor_outputs(model: Any) -> Any:
    """A float64 graph of a forest or tree regressor that runs: ``TreeEnsembleRegressor`` always
    answers float32 (ai.onnx.ml opset 3), while skl2onnx declares its output float64 in a float64 graph,
    which ONNX Runtime refuses to load. Each such output is cast to float64 where it is made."""
    from onnx import TensorProto, helper

    graph = model.graph
    for index in reversed(range(len(graph.node))):
        node = graph.node[index]
        if node.op_type != "TreeEnsembleRegressor":
            continue
        made = f"{node.output[0]}_float32"
        cast = helper.make_node("Cast", [made], [node.output[0]], to=TensorProto.DOUBLE)
        node.output[0] = made
        graph.node.insert(index + 1, cast)
    return model


def converter_reason(exc: BaseException) -> str:
    """The innermost cause's first line, shortened: skl2onnx wraps the real reason in long dumps."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= 300 else first[:297] + "..."


def _expose_contract_outputs(model: Any, task: str, expm1: bool = False) -> Any:
    """Rename skl2onnx's outputs to the task's contract (anomaly: score = -decision_function;
    ``expm1``: a regressor fitted on log(1 + y) answers exp(prediction) - 1)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    found = [output.name for output in graph.output]
    if task == "anomaly":  # (label, scores): scores is the decision function, higher = more normal
        source, ops = found[-1], ["Neg"]
    elif task == "classification":  # (label, probabilities) already
        if found != list(OUTPUT_NAMES["classification"]):
            raise CompileError(f"unexpected classifier graph outputs {found}")
        return model
    else:  # (variable) of shape (rows, 1)
        source, ops = found[0], []
    target = OUTPUT_NAMES[task][0]
    elem_type = next(o.type.tensor_type.elem_type for o in graph.output if o.name == source)
    current = source
    for op in ops:
        graph.node.append(helper.make_node(op, [current], [f"{current}_{op.lower()}"]))
        current = f"{current}_{op.lower()}"
    if expm1:
        dtype = np.float64 if elem_type == 11 else np.float32  # 11 = DOUBLE
        graph.initializer.append(numpy_helper.from_array(np.array(1, dtype=dtype), "contract_one"))
        graph.node.append(helper.make_node("Exp", [current], [f"{current}_exp"]))
        graph.node.append(helper.make_node("Sub", [f"{current}_exp", "contract_one"], [f"{current}_expm1"]))
        current = f"{current}_expm1"
    graph.initializer.append(helper.make_tensor("contract_flat_shape", 7, [1], [-1]))  # 7 = INT64
    graph.node.append(helper.make_node("Reshape", [current, "contract_flat_shape"], [target]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(target, elem_type, [None]))
    return model


def compile_isolation_forest(forest: Any) -> bytes:
    """The serialised ONNX model of a fitted ``sklearn.ensemble.IsolationForest``."""
    from onnx import TensorProto, helper

    if not is_compact(forest):
        raise CompileError(f"{estimator_name(forest)} is not an IsolationForest")
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
