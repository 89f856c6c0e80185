"""Where categories and missing values are preprocessed: in the service (numpy) or in the ONNX graph.

``python -m benchmarks.preprocessing`` (``make bench-preprocessing``) trains the mixed flows model of
docs/training.md (a category, a boolean, a feature with missing values), then times, in this one run,
the same requests three ways:

- validating JSON records into the served table (lambda_app/validation.py): needed either way;
- encoding it in numpy (lambda_app/preprocess.py), what the service does;
- encoding in ONNX instead: per-column arrays (strings stay strings), then scikit-learn's fitted
  ColumnTransformer (from the published pipeline) converted by skl2onnx and run by ONNX Runtime;
- the compact forest graph on the encoded rows;
and, as the baseline, a plain model's whole path (the three numbers only: validate + graph).
Medians per request. Wall clock on this machine: read the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPEATS = {1: 3000, 100: 500, 1000: 100}


def _median_ms(call: Callable[[], Any], repeats: int) -> float:
    for _ in range(min(50, repeats)):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m benchmarks.preprocessing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="takes about a minute; prints a markdown table of medians per request",
    ).parse_args(argv)
    import joblib
    import onnxruntime
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from lambda_app.models import AnomalyPrediction, OnnxModel, build_predictor
    from lambda_app.preprocess import Encoder
    from lambda_app.registry import LocalStorage, read_manifest, read_verified, resolve_version
    from lambda_app.validation import records_to_matrix
    from training.config import TrainingConfig
    from training.data.synthetic import generate
    from training.train import run_training

    config = TrainingConfig.model_validate({"tuning": {"enabled": False}})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frame = generate(5000, seed=7, mixed=True)
        frame.to_csv(root / "mixed.csv", index=False)
        frame[["one", "two", "three", "label"]].to_csv(root / "plain.csv", index=False)
        predictors = {}
        graphs = {}
        for name in ("mixed", "plain"):
            run_training(str(root / f"{name}.csv"), str(root / name), config)
            storage = LocalStorage(root / name)
            manifest = read_manifest(storage, resolve_version(storage, "production"))
            graphs[name] = read_verified(storage, manifest, manifest.artifact("serving"))
            predictors[name] = build_predictor(manifest, graphs[name])
        mixed = predictors["mixed"]
        specs = mixed.manifest.features
        pipeline = joblib.load(root / "mixed" / mixed.manifest.version / "model.joblib")
        transformer = pipeline.named_steps["preprocess"]  # scikit-learn's, as fitted by training
        graph = convert_sklearn(
            transformer,
            initial_types=[
                (s.name, StringTensorType([None, 1]) if s.dtype == "category" else FloatTensorType([None, 1]))
                for s in specs
            ],
            target_opset=17,
        )
        session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        forest = OnnxModel.session(graphs["mixed"])  # the same compact forest graph, fed the encoded columns

        records = []
        for row in frame[mixed.manifest.feature_names].head(1000).to_dict(orient="records"):
            records.append({k: None if isinstance(v, float) and np.isnan(v) else v for k, v in row.items()})
        plain_records = [{k: r[k] for k in ("one", "two", "three")} for r in records]

        encoder = Encoder(specs)

        def feeds(batch: list[dict[str, Any]]) -> dict[str, np.ndarray]:
            """Per-column arrays for the preprocessing graph: strings stay strings, null is NaN."""
            out: dict[str, np.ndarray] = {}
            for spec in specs:
                cells = [row[spec.name] for row in batch]
                kind = object if spec.dtype == "category" else np.float32
                out[spec.name] = np.array(cells, dtype=kind).reshape(-1, 1)
            return out

        check = records[:1000]
        prediction = mixed.predict(records_to_matrix(check, specs, 10_000))
        assert isinstance(prediction, AnomalyPrediction)
        served = prediction.scores
        (encoded,) = session.run(None, feeds(check))
        (graphed,) = forest.run(None, {"features": encoded.astype(np.float32)})
        difference = np.max(np.abs(served - graphed.ravel()))
        print(f"same scores both ways on 1000 rows: max difference {difference:.2e}")
        print(
            "| rows | plain model: validate + graph ms | mixed: validate ms | encode in numpy ms"
            " | encode in ONNX (feeds + run) ms | forest graph ms | mixed, numpy encoding, x plain |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        plain_specs = predictors["plain"].manifest.features
        for rows, repeats in REPEATS.items():
            batch, plain_batch = records[:rows], plain_records[:rows]
            table = records_to_matrix(batch, specs, 10_000)
            encoded = encoder(table).astype(np.float32)
            plain = _median_ms(
                lambda: predictors["plain"].predict(records_to_matrix(plain_batch, plain_specs, 10_000)),  # noqa: B023
                repeats,
            )
            validate = _median_ms(lambda: records_to_matrix(batch, specs, 10_000), repeats)  # noqa: B023
            numpy_encode = _median_ms(lambda: encoder(table), repeats)  # noqa: B023
            onnx_encode = _median_ms(lambda: session.run(None, feeds(batch)), repeats)  # noqa: B023
            graph = _median_ms(lambda: forest.run(None, {"features": encoded}), repeats)  # noqa: B023
            total = validate + numpy_encode + graph
            print(
                f"| {rows} | {plain:.3f} | {validate:.3f} | {numpy_encode:.3f} | {onnx_encode:.3f}"
                f" | {graph:.3f} | {total / plain:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
