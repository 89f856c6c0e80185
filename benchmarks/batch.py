"""Batch scoring benchmark: ``python -m benchmarks.batch [--rows 1000000 5000000]`` (``make bench-batch``).

For each size, a CSV of generated flows is scored by ``python -m lambda_app.batch`` in a child
process (wall time, rows/s, the child's peak RSS), next to the floor measured in this same run: the
model's ONNX graph over the same rows as a numpy matrix already in memory (no parsing, validation or
writing), in the same chunks. Read the ratios; absolute figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

ROOT = Path(__file__).resolve().parent.parent
CHUNK_ROWS = 100_000
BOUNDED_RSS_GROWTH = 1.25
"""Verdict: peak RSS at the largest size at most this multiple of the smallest's (memory bounded)."""

# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec from the parent that forked
# the child (this benchmark, holding the floor's matrix), which would overstate the child's peak.
CHILD = """
import runpy, sys
sys.argv = ["python -m lambda_app.batch", *sys.argv[1:]]
try:
    runpy.run_module("lambda_app.batch", run_name="__main__")
except SystemExit as exit:
    code = exit.code
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("PEAK_RSS_KB", peak, "EXIT", code, file=sys.stderr)
"""


def write_flows(path: Path, rows: int, seed: int = 7) -> None:
    """Flows shaped like data/sample.csv (integer 'one', two floats, a label), written in slices."""
    rng = np.random.default_rng(seed)
    with pa_csv.CSVWriter(
        str(path),
        pa.schema(
            [("one", pa.int64()), ("two", pa.float64()), ("three", pa.float64()), ("label", pa.int64())]
        ),
    ) as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            batch = pa.record_batch(
                [
                    pa.array(rng.choice([22, 25, 80, 443, 8080], size=n)),
                    pa.array(rng.normal(14.5, 1.0, n)),
                    pa.array(rng.normal(15.0, 1.0, n)),
                    pa.array((rng.random(n) < 0.03).astype(np.int64)),
                ],
                names=["one", "two", "three", "label"],
            )
            writer.write_batch(batch)


def floor_seconds(path: Path, model_uri: str) -> float:
    """The ONNX graph alone over the file's rows, already a float matrix in memory, chunk by chunk."""
    from lambda_app.config import Settings
    from lambda_app.model_store import ModelStore

    model = ModelStore(Settings(model_uri=model_uri, preload_model=False, model_refresh_seconds=0)).get()
    names = [f.name for f in model.manifest.features]
    table = pa_csv.read_csv(str(path), convert_options=pa_csv.ConvertOptions(include_columns=names))
    matrix = np.column_stack([table.column(n).to_numpy().astype(np.float64) for n in names])
    del table
    started = time.perf_counter()
    for start in range(0, len(matrix), CHUNK_ROWS):
        model.predictor.predict(matrix[start : start + CHUNK_ROWS])
    return time.perf_counter() - started


def score_in_child(source: Path, output: Path, model_uri: str) -> tuple[float, int, int]:
    """(seconds, peak RSS in KB, exit code) of ``python -m lambda_app.batch`` on the file."""
    env = {**os.environ, "MODEL_URI": model_uri, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            "--input",
            str(source),
            "--output",
            str(output),
            "--quiet",
            "--chunk-rows",
            str(CHUNK_ROWS),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
        check=False,
    )
    seconds = time.perf_counter() - started
    line = next((x for x in result.stderr.splitlines() if x.startswith("PEAK_RSS_KB")), None)
    if line is None:
        raise RuntimeError(f"batch scoring failed:\n{result.stderr[-3000:]}")
    _, rss, _, code = line.split()
    return seconds, int(rss), int(code)


def ensure_model(model_uri: str | None, work: Path) -> str:
    """The registry to score with: the given one, else the example model trained into ``work``."""
    if model_uri:
        return model_uri
    registry = work / "registry"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "--data",
            str(ROOT / "data" / "sample.csv"),
            "--model-uri",
            str(registry),
            "--alias",
            "production",
        ],
        check=True,
        capture_output=True,
        timeout=900,
        cwd=ROOT,
    )
    return str(registry)


def progress(text: str) -> None:
    """One line on stderr per step, so a run of minutes shows where it is (the table goes to stdout)."""
    print(f"... {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch", description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--model-uri", help="registry to score with (default: train the example model)")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"chunk_rows": CHUNK_ROWS, "cases": []}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        if not args.model_uri:
            progress("training the example model on data/sample.csv")
        model_uri = ensure_model(args.model_uri, work)
        for rows in args.rows:
            source = work / f"flows-{rows}.csv"
            progress(f"{rows:,} rows: writing the CSV")
            write_flows(source, rows)
            progress(f"{rows:,} rows: the floor (the graph alone over every row)")
            floor = floor_seconds(source, model_uri)
            progress(f"{rows:,} rows: python -m lambda_app.batch, in a child process")
            seconds, rss_kb, code = score_in_child(source, work / f"scored-{rows}.csv", model_uri)
            if code != 0:
                raise RuntimeError(f"batch scoring exited {code} on {source}")
            case = {
                "rows": rows,
                "csv_mb": round(source.stat().st_size / 1e6, 1),
                "seconds": round(seconds, 2),
                "rows_per_second": round(rows / seconds),
                "peak_rss_mb": round(rss_kb / 1024, 1),
                "floor_seconds": round(floor, 2),
                "vs_floor": round(seconds / floor, 2),
            }
            report["cases"].append(case)
            source.unlink()
            (work / f"scored-{rows}.csv").unlink()
    print("| rows | CSV MB | wall s | rows/s | peak RSS MB | floor s (graph only) | wall / floor |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for c in report["cases"]:
        print(
            f"| {c['rows']:,} | {c['csv_mb']} | {c['seconds']} | {c['rows_per_second']:,}"
            f" | {c['peak_rss_mb']} | {c['floor_seconds']} | {c['vs_floor']}x |"
        )
    smallest, largest = report["cases"][0], report["cases"][-1]
    growth = largest["peak_rss_mb"] / smallest["peak_rss_mb"]
    bounded = growth <= BOUNDED_RSS_GROWTH
    report["rss_growth"] = round(growth, 2)
    print(
        f"memory bounded by the chunk, not the file: peak RSS x{growth:.2f} from {smallest['rows']:,} to"
        f" {largest['rows']:,} rows (target <= x{BOUNDED_RSS_GROWTH}): {'PASS' if bounded else 'FAIL'}"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0 if bounded else 1


if __name__ == "__main__":
    sys.exit(main())
