"""Training at scale: ``python -m benchmarks.train [--rows 1000000 5000000 20000000] [--code DIR]``
(``make bench-train``).

For each size, generated flows (``training.data.synthetic``, the same generator as ``python -m training
generate``, written in 1M-row slices) are trained on by the real command, ``python -m training --data
FILE``, in a child process with the default config: wall time, each stage's time (from the job's own
stage lines), the child's peak RSS (VmHWM) and the published holdout PR-AUC. Beside it, measured in this
same run, the **floor**: scikit-learn's fit of the published estimator on as many rows as the job fitted
on, plus one pass of the published graph over every row of the file (already a float matrix in memory).
``--code DIR`` runs the job from another checkout (a ``git worktree`` of an older commit) for a before /
after table. Then a verdict per target (wall time within 3x the floor, peak RSS, the sample's PR-AUC
unchanged). Wall clock on whatever machine runs it: read ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "bench-train"
SLICE_ROWS = 1_000_000
TARGETS = {"wall_vs_floor": 3.0, "rss_5m_mb": 600.0, "rss_20m_mb": 1024.0, "pr_auc_drift": 0.01}

# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec from the forking parent.
CHILD = """
import runpy, sys
sys.argv = ["python -m training", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("training", run_name="__main__")
except SystemExit as exit:
    code = exit.code
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("PEAK_RSS_KB", peak, "EXIT", code, file=sys.stderr)
"""
SAMPLE_PR_AUC_BEFORE = 0.734
"""The published model's holdout PR-AUC on data/sample.csv at commit f953550 (docs/training.md)."""
STAGE = re.compile(r"\[\d+/\d+\] (?P<text>.*?) done in (?P<seconds>[0-9.]+)s")


@dataclass
class Run:
    rows: int
    wall: float
    peak_mb: float
    stages: dict[str, float] = field(default_factory=dict)
    pr_auc: float | None = None
    registry: Path | None = None


def write_flows(path: Path, rows: int) -> None:
    """``rows`` generated flows, written in slices so the parent never holds them all as text."""
    from training.data.synthetic import generate

    if path.exists():
        return
    partial = path.with_suffix(".partial")
    for index, start in enumerate(range(0, rows, SLICE_ROWS)):
        frame = generate(min(SLICE_ROWS, rows - start), seed=7 + index)
        frame.to_csv(partial, mode="a", header=index == 0, index=False)
    partial.rename(path)


def train_in_child(data: Path, registry: Path, code: Path) -> Run:
    env = {**os.environ, "PYTHONPATH": str(code), "TQDM_DISABLE": "1"}
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            "--data",
            str(data),
            "--model-uri",
            str(registry),
            "--alias",
            "production",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=code,
        timeout=7200,
        check=False,
    )
    wall = time.perf_counter() - started
    line = next((x for x in result.stderr.splitlines() if x.startswith("PEAK_RSS_KB")), None)
    if line is None or not line.endswith("EXIT 0"):
        raise RuntimeError(f"training failed:\n{result.stderr[-3000:]}")
    stages: dict[str, float] = {}
    for match in STAGE.finditer(result.stderr):
        text = match.group("text").split(" ")[0].rstrip(":")
        stages[text] = stages.get(text, 0.0) + float(match.group("seconds"))
    found = re.search(r"holdout: pr_auc=([0-9.]+)", result.stdout)
    return Run(
        rows=0,
        wall=wall,
        peak_mb=int(line.split()[1]) / 1024,
        stages=stages,
        pr_auc=float(found.group(1)) if found else None,
        registry=registry,
    )


def floor_seconds(data: Path, registry: Path) -> tuple[float, float, int]:
    """(fit seconds, graph seconds, rows fitted on): the published estimator's fit on as many generated
    rows as the job fitted on, and the published graph over every row of the file."""
    import joblib
    import pyarrow.csv as pa_csv
    from sklearn.base import clone

    from lambda_app.models import build_predictor
    from lambda_app.registry import LocalStorage, read_manifest, read_verified, resolve_version
    from training.data.synthetic import generate

    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    evaluation = json.loads((registry / manifest.version / "evaluation.json").read_text())
    fitted_rows = int(evaluation["split"]["train"])
    estimator = clone(joblib.load(registry / manifest.version / "model.joblib"))
    names = manifest.feature_names
    sample = generate(fitted_rows, seed=3)[names].to_numpy(dtype=np.float64)
    started = time.perf_counter()
    estimator.fit(sample)
    fit = time.perf_counter() - started
    predictor = build_predictor(manifest, read_verified(storage, manifest, manifest.artifact("serving")))
    table = pa_csv.read_csv(str(data), convert_options=pa_csv.ConvertOptions(include_columns=names))
    matrix = np.column_stack([table.column(n).to_numpy().astype(np.float64) for n in names])
    del table
    started = time.perf_counter()
    for start in range(0, len(matrix), 100_000):
        predictor.predict(matrix[start : start + 100_000])
    return fit, time.perf_counter() - started, fitted_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train", description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose training job is measured")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"training job from {args.code}; {os.cpu_count()} cores")
    print(
        "| rows | CSV MB | job wall s | peak RSS MB | stages (s) | holdout PR-AUC"
        " | floor: fit s (rows) + graph s | wall / floor |"
    )
    print("| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    verdicts: list[str] = []
    for rows in args.rows:
        data = WORK / f"flows-{rows}.csv"
        print(f"... {rows:,} rows: writing the CSV", file=sys.stderr, flush=True)
        write_flows(data, rows)
        with tempfile.TemporaryDirectory(dir=WORK) as tmp:
            print(f"... {rows:,} rows: python -m training, in a child process", file=sys.stderr, flush=True)
            run = train_in_child(data, Path(tmp) / "registry", args.code)
            print(f"... {rows:,} rows: the floor (fit + graph)", file=sys.stderr, flush=True)
            fit, graph, fitted = floor_seconds(data, Path(tmp) / "registry")
        floor = fit + graph
        stages = ", ".join(f"{k} {v:.1f}" for k, v in run.stages.items())
        print(
            f"| {rows:,} | {data.stat().st_size / 1e6:.0f} | {run.wall:.1f} | {run.peak_mb:.0f} | {stages}"
            f" | {run.pr_auc} | {fit:.2f} ({fitted:,}) + {graph:.2f} | {run.wall / floor:.1f}x |",
            flush=True,
        )
        if rows in (1_000_000, 5_000_000):
            ok = run.wall / floor <= TARGETS["wall_vs_floor"]
            verdicts.append(
                f"{rows:,} rows: wall {run.wall / floor:.1f}x the floor (target <= 3x): {_word(ok)}"
            )
        if rows == 5_000_000:
            ok = run.peak_mb <= TARGETS["rss_5m_mb"]
            verdicts.append(f"5M rows: peak RSS {run.peak_mb:.0f} MB (target <= 600 MB): {_word(ok)}")
        if rows == 20_000_000:
            ok = run.peak_mb <= TARGETS["rss_20m_mb"]
            verdicts.append(f"20M rows: peak RSS {run.peak_mb:.0f} MB (target <= 1 GB): {_word(ok)}")
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        sample = train_in_child(ROOT / "data" / "sample.csv", Path(tmp) / "registry", args.code)
    ok = sample.pr_auc is not None and abs(sample.pr_auc - SAMPLE_PR_AUC_BEFORE) <= TARGETS["pr_auc_drift"]
    verdicts.append(
        f"data/sample.csv: holdout PR-AUC {sample.pr_auc} (before training sampled large files:"
        f" {SAMPLE_PR_AUC_BEFORE}; target within 0.01): {_word(ok)}"
    )
    print("\n".join(verdicts))
    return 0


def _word(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


if __name__ == "__main__":
    sys.exit(main())
