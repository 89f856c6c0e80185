"""Does the compiled model fit its function? Measured before publishing, never guessed.

A RandomForestRegressor on 54k rows compiles to a 151 MB graph that needs about 1.9 GB once loaded:
published as it was, it would fail every cold start of a 1,024 MB function. So the job loads the graph
in a fresh process with ONNX Runtime, scores ``SCORED_ROWS`` rows, and reads that process's peak
memory (VmHWM) and the load time; it adds what the serving runtime itself takes (its imports: FastAPI,
pydantic, Powertools, ONNX Runtime, numpy, measured once per training process in another fresh
process) and refuses to publish when the sum passes ``HEADROOM`` of ``[serving] memory_mb``.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from training.exceptions import TrainingError

ROOT = Path(__file__).resolve().parent.parent
SCORED_ROWS = 1000
HEADROOM = 0.9
"""The share of the function's memory a model may need: the rest is for requests and Python's own."""

_PEAK = "int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('{}:')))"
RUNTIME_CHILD = f"""
import fastapi, mangum, orjson, pydantic, numpy, onnxruntime
import aws_lambda_powertools.logging, aws_lambda_powertools.metrics
import lambda_app.models
print({_PEAK.format("VmHWM")})
"""
MODEL_CHILD = f"""
import json, sys, time
import numpy as np
import onnxruntime
before = {_PEAK.format("VmHWM")}
graph = open(sys.argv[1], "rb").read()
started = time.perf_counter()
session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
load = time.perf_counter() - started
del graph
entry = session.get_inputs()[0]
kind = np.float64 if "double" in entry.type else np.float32
rows = np.random.default_rng(0).normal(size=(int(sys.argv[2]), int(sys.argv[3]))).astype(kind)
session.run(None, {{entry.name: rows}})
print(json.dumps({{"before_kb": before, "peak_kb": {_PEAK.format("VmHWM")}, "load_s": load}}))
"""


@dataclass(frozen=True)
class Footprint:
    """What serving the model costs: its file, its memory once loaded and scoring, its load time."""

    onnx_mb: float
    model_mb: float  # memory the loaded graph adds while scoring SCORED_ROWS rows
    runtime_mb: float  # the serving runtime's own memory before any model
    peak_mb: float  # the two together: what the function needs
    load_seconds: float
    memory_mb: int  # the function's memory it was checked against

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in asdict(self).items()}

    def as_converter_entries(self) -> dict[str, str]:
        """For the manifest's ``converter`` (text values: a service of any release reads them)."""
        return {
            "onnx_mb": f"{self.onnx_mb:.3f}",
            "serving_peak_mb": f"{self.peak_mb:.0f}",
            "load_seconds": f"{self.load_seconds:.3f}",
            "checked_memory_mb": str(self.memory_mb),
        }


@functools.cache
def runtime_mb() -> float:
    """The serving runtime's peak memory after its imports, in a fresh process (measured once)."""
    return _run([sys.executable, "-c", RUNTIME_CHILD]) / 1024


def measure(graph: bytes, width: int, memory_mb: int) -> Footprint:
    """Load ``graph`` in a fresh process, score SCORED_ROWS rows of ``width`` features, measure."""
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(graph)
        out = subprocess.run(
            [sys.executable, "-c", MODEL_CHILD, str(path), str(SCORED_ROWS), str(width)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=_child_env(),
        )
    if out.returncode != 0:
        raise TrainingError(f"measuring the compiled model's memory failed: {out.stderr.strip()[-300:]}")
    figures = json.loads(out.stdout)
    model = max(0.0, (figures["peak_kb"] - figures["before_kb"]) / 1024)
    runtime = runtime_mb()
    return Footprint(
        onnx_mb=len(graph) / 1e6,
        model_mb=model,
        runtime_mb=runtime,
        peak_mb=runtime + model,
        load_seconds=float(figures["load_s"]),
        memory_mb=memory_mb,
    )


def refuse_if_too_big(footprint: Footprint) -> None:
    """TrainingError naming what to shrink when the model would not fit the function's memory."""
    allowed = HEADROOM * footprint.memory_mb
    if footprint.peak_mb <= allowed:
        return
    raise TrainingError(
        f"the compiled model would not fit the function: serving it needs about {footprint.peak_mb:,.0f} MB"
        f" ({footprint.runtime_mb:,.0f} MB runtime + {footprint.model_mb:,.0f} MB for the model, a"
        f" {footprint.onnx_mb:,.1f} MB ONNX file loading in {footprint.load_seconds:.1f} s), over"
        f" {HEADROOM:.0%} of [serving] memory_mb = {footprint.memory_mb:,}. Shrink the model (fewer or"
        " shallower trees: n_estimators, max_depth, min_samples_leaf), or give the function more memory"
        " (Terraform's lambda_memory_mb, and [serving] memory_mb to match)"
    )


def _child_env() -> dict[str, str]:
    """The child imports this project's lambda_app wherever the job was started from."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def _run(command: list[str]) -> int:
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=_child_env())
    if out.returncode != 0:
        raise TrainingError(f"measuring the serving runtime's memory failed: {out.stderr.strip()[-300:]}")
    return int(out.stdout.strip())
