"""What every task's predictor shares: the ONNX Runtime session and the graph's I/O contract.

Every serving graph takes one input named ``features`` of shape (rows, input width), in the
manifest's feature order (one column per feature, or per category of a one-hot encoded one):
float32, or float64 for models whose float32 graph cannot match
scikit-learn (training decides and records it); each task names its own outputs (see the task
modules). Training produces graphs that follow this contract and checks them before publishing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from lambda_app.preprocess import Encoder
from lambda_app.registry import Manifest, ManifestError, Task

INPUT_NAME = "features"
INPUT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


@dataclass(frozen=True)
class MetricValue:
    """One figure for monitoring, free of any metrics library (training imports this package)."""

    name: str
    unit: str  # a CloudWatch unit name: Count, Percent, None
    value: float


class Prediction(Protocol):
    """A scored batch: the task's response fields and the figures monitoring reports."""

    @property
    def rows(self) -> int: ...

    def finite(self) -> bool:
        """False when the model produced a NaN or infinity: such a batch is never answered."""
        ...

    def fields(self) -> dict[str, Any]:
        """The response fields: ``predictions`` and the task's own (``scores``, ``probabilities``)."""
        ...

    def metrics(self) -> list[MetricValue]:
        """Per-batch figures for the task (anomalies found, predicted classes, prediction mean)."""
        ...

    def columns(self) -> dict[str, Any]:
        """The answer as table columns (batch scoring): ``prediction`` and the task's own, one value
        per row (numpy arrays or lists), named so they can sit beside the input's columns."""
        ...

    def tally(self) -> dict[str, float]:
        """Additive counts for a batch summary (summed over chunks): anomalies, rows per class..."""
        ...


class Predictor(Protocol):
    """Turns a validated float matrix into a Prediction for one task."""

    task: ClassVar[Task]
    manifest: Manifest

    def predict(self, features: np.ndarray) -> Prediction: ...

    def encode(self, features: np.ndarray) -> np.ndarray:
        """The graph's input for a served table (what explanations attribute to)."""
        ...

    def max_row_bytes(self) -> int:
        """An upper bound on one row's share of the JSON response, quotes escaped as Lambda does."""
        ...


class OnnxModel:
    """An ONNX Runtime session built once per container, with the contract's input checked."""

    outputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, session: Any, manifest: Manifest) -> None:
        self._session = session
        self.manifest = manifest
        self._encode = Encoder(manifest.features)
        self._check_io()

    @staticmethod
    def session(model: bytes, threads: int = 1) -> Any:
        """``threads`` should match the function's vCPUs."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def _check_io(self) -> None:
        """Refuse a graph that does not take the manifest's features or lacks the task's outputs."""
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            names = ", ".join(i.name for i in inputs)
            raise ManifestError(f"the serving graph takes {names}; expected one input named {INPUT_NAME!r}")
        if inputs[0].type not in INPUT_TYPES:
            raise ManifestError(f"the serving graph's input is {inputs[0].type}; expected float or double")
        self._dtype = INPUT_TYPES[inputs[0].type]
        declared = list(inputs[0].shape)
        width = self.manifest.input_width
        if declared[-1] != width:
            raise ManifestError(
                f"the model expects {declared[-1]} input columns; the manifest's features make {width}"
            )
        found = {o.name for o in self._session.get_outputs()}
        missing = [name for name in self.outputs if name not in found]
        if missing:
            raise ManifestError(
                f"the serving graph of a {self.manifest.task} model lacks output(s) {', '.join(missing)}"
            )

    def encode(self, features: np.ndarray) -> np.ndarray:
        """The graph's input for a served table (lambda_app/preprocess.py), as float64."""
        return self._encode(features)

    def run(self, features: np.ndarray) -> Sequence[np.ndarray]:
        """The graph's outputs for a served table (one column per feature; lambda_app/preprocess.py)."""
        encoded = self._encode(features)
        result: Sequence[np.ndarray] = self._session.run(
            list(self.outputs), {INPUT_NAME: encoded.astype(self._dtype, copy=False)}
        )
        return result


FLOAT_JSON_BYTES = 24
"""The longest a float64 gets in JSON (``-1.2345678901234567e-308``)."""
