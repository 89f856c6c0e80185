"""The benchmark suite: ``python -m benchmarks [--quick] [--out FILE]`` (``make bench``).

Every figure of the serving path sits next to the naive path (benchmarks/naive_app.py: a
straightforward FastAPI + pydantic + pandas + scikit-learn route) and the floor (the raw model on a
numpy array, no HTTP layer), all measured in this one run, with their ratios and a verdict
per target. Timings are wall clock on whatever machine runs it: read the ratios, not the
absolute numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "bench"
EVENT_TEMPLATE = ROOT / "events" / "apigw_v2_predict_single.json"
NAIVE_REQUIREMENTS = ROOT / "benchmarks" / "requirements-naive.txt"
COLD_RUNS = 7
TARGETS = {
    "warm_1_row_vs_naive": 0.05,
    "warm_1_row_ms": 0.2,
    "warm_10k_vs_floor": 1.3,
    "warm_max_body_vs_floor": 1.3,
    "cold_start_vs_naive": 0.35,
    "install_size_vs_naive": 0.4,
    "classifier_1_row_vs_naive": 0.1,
    "classifier_10k_vs_floor": 1.5,
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- fixtures


def prepare_registry() -> tuple[Path, dict[str, Any]]:
    """Train the example model once: model.onnx for us, model.joblib for the naive path."""
    from lambda_app.registry import LocalStorage, read_manifest, resolve_version
    from training.tasks.checks import load_config
    from training.train import run_training

    registry = WORK / "registry"
    if not (registry / "aliases" / "production.json").exists():
        shutil.rmtree(registry, ignore_errors=True)
        run_training(str(ROOT / "data" / "sample.csv"), str(registry), load_config(), alias="production")
    storage = LocalStorage(registry)
    manifest = read_manifest(storage, resolve_version(storage, "production"))
    return registry, manifest.model_dump(mode="json")


def records(n: int, seed: int = 11) -> list[dict[str, Any]]:
    from training.data.synthetic import generate

    frame = generate(n, seed=seed)
    return [
        {"one": int(o), "two": float(t), "three": float(h)}
        for o, t, h in zip(frame["one"], frame["two"], frame["three"], strict=True)
    ]


def body_for(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows if len(rows) > 1 else rows[0], separators=(",", ":"))


def rows_under(limit: int) -> list[dict[str, Any]]:
    """The most records whose body stays under ``limit`` bytes (the largest accepted body)."""
    sample = records(2000, seed=5)
    per_row = len(body_for(sample)) / len(sample)
    n = int(limit / per_row * 0.98)
    rows = records(n, seed=5)
    while len(body_for(rows)) > limit:
        rows = rows[: int(len(rows) * 0.99)]
    return rows


def v2_event(body: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(EVENT_TEMPLATE.read_text())
    event["body"] = body
    event["headers"]["content-length"] = str(len(body.encode()))
    return event


class Silenced(io.TextIOBase):
    """Swallows the EMF lines and logs the handlers print, as CloudWatch would take them."""

    def write(self, text: str) -> int:
        return len(text)


# --------------------------------------------------------------------------- measurements


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed_interleaved(paths: dict[str, Callable[[], Any]], iterations: int) -> dict[str, list[float]]:
    """Run the paths in alternating blocks, so machine noise hits all of them alike.

    Blocks rather than single calls: scikit-learn's OpenMP threads spin for a while after each
    call and would steal the CPU from whatever runs right after; the first call of each block
    is discarded for the same reason.
    """
    samples: dict[str, list[float]] = {name: [] for name in paths}
    rounds = 10 if iterations >= 20 else max(1, iterations // 2)
    block = max(2, iterations // rounds + 1)
    for _ in range(rounds):
        for name, fn in paths.items():
            for index in range(block):
                start = time.perf_counter()
                fn()
                if index:
                    samples[name].append((time.perf_counter() - start) * 1000)
    return samples


def measure_case(
    label: str,
    rows: list[dict[str, Any]],
    iterations: int,
    ours: Callable[..., Any],
    naive: Callable[..., Any],
    floor: Any,
    compare: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """One case through our handler, the naive handler and the floor, interleaved; p50/p99 and ratios.

    ``compare(ours_body, naive_body)`` returns the case's agreement figures (score or probability diffs).
    """
    from lambda_app.invoke import LocalLambdaContext

    context = LocalLambdaContext()
    event = v2_event(body_for(rows))
    matrix = np.array([[r["one"], r["two"], r["three"]] for r in rows], dtype=np.float64)

    def run(handler: Callable[..., Any]) -> Callable[[], Any]:
        def call() -> Any:
            response = handler(event, context)
            assert response["statusCode"] == 200, response["body"][:300]
            return response

        return call

    run_ours, run_naive = run(ours), run(naive)
    with contextlib.redirect_stdout(Silenced()):
        agreement = compare(json.loads(run_ours()["body"]), json.loads(run_naive()["body"]))
        samples = timed_interleaved(
            {"ours": run_ours, "naive": run_naive, "floor": lambda: floor.predict(matrix)}, iterations
        )
    row: dict[str, Any] = {"case": label, "rows": len(rows), "body_bytes": len(event["body"]), **agreement}
    for name, values in samples.items():
        row[f"{name}_p50_ms"] = percentile(values, 50)
        row[f"{name}_p99_ms"] = percentile(values, 99)
    row["ours_rows_per_s"] = len(rows) / (row["ours_p50_ms"] / 1000)
    row["vs_naive"] = row["ours_p50_ms"] / row["naive_p50_ms"]
    row["vs_floor"] = row["ours_p50_ms"] / row["floor_p50_ms"]
    log(
        f"  {label}: ours {row['ours_p50_ms']:.3f} ms, naive {row['naive_p50_ms']:.3f} ms,"
        f" floor {row['floor_p50_ms']:.3f} ms"
    )
    return row


def warm_latency(registry: Path, manifest: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    os.environ.update(_serving_env(registry, manifest))
    from benchmarks import naive_app
    from lambda_app import handler as ours
    from lambda_app.models import build_predictor
    from lambda_app.registry import parse_manifest

    version = manifest["version"]
    onnx_bytes = (registry / version / "model.onnx").read_bytes()
    parsed = parse_manifest((registry / version / "manifest.json").read_bytes(), version)
    floor = build_predictor(parsed, onnx_bytes, threads=1)
    from lambda_app.config import Settings

    limit = Settings().max_body_bytes
    sizes: list[tuple[str, list[dict[str, Any]], int]] = [
        ("1 row", records(1), 300 if quick else 2000),
        ("100 rows", records(100), 100 if quick else 500),
        ("10k rows", records(10_000), 10 if quick else 40),
        (f"max body ({limit / 1e6:.1f} MB)", rows_under(limit), 3 if quick else 10),
    ]

    def scores_agree(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
        return {
            "max_score_diff": float(np.max(np.abs(np.asarray(mine["scores"]) - np.asarray(theirs["scores"]))))
        }

    return [
        measure_case(label, rows, iterations, ours.handler, naive_app.handler, floor, scores_agree)
        for label, rows, iterations in sizes
    ]


def infer_event(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The protocol's infer for ``rows``: one FP64 tensor per feature, as tritonclient sends them."""
    event = v2_event(
        json.dumps(
            {
                "inputs": [
                    {"name": f, "shape": [len(rows)], "datatype": "FP64", "data": [r[f] for r in rows]}
                    for f in ("one", "two", "three")
                ]
            },
            separators=(",", ":"),
        )
    )
    path = f"/v2/models/{name}/infer"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /v2/models/{name}/infer"
    return event


def protocol_latency(registry: Path, manifest: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    """/predict and the protocol's infer through the same handler, the same rows, interleaved: the
    protocol's extra cost as a ratio (p50 infer / p50 /predict)."""
    import importlib

    os.environ.update(_serving_env(registry, manifest))
    from lambda_app import handler as ours
    from lambda_app.invoke import LocalLambdaContext

    with contextlib.redirect_stdout(Silenced()):
        ours = importlib.reload(ours)  # a new container with this environment (the classifier's came before)
    context = LocalLambdaContext()
    results = []
    for label, rows, iterations in (
        ("1 row", records(1), 300 if quick else 3000),
        ("1,000 rows", records(1000), 50 if quick else 300),
    ):
        events = {"predict": v2_event(body_for(rows)), "infer": infer_event(rows, manifest["name"])}

        def run(event: dict[str, Any]) -> Callable[[], Any]:
            def call() -> Any:
                response = ours.handler(event, context)
                assert response["statusCode"] == 200, response["body"][:300]
                return response

            return call

        with contextlib.redirect_stdout(Silenced()):
            predicted = json.loads(run(events["predict"])()["body"])
            inferred = json.loads(run(events["infer"])()["body"])
            assert inferred["outputs"][1]["data"] == predicted["scores"], (
                "infer must answer what /predict does"
            )
            samples = timed_interleaved({name: run(event) for name, event in events.items()}, iterations)
        row: dict[str, Any] = {"case": label, "rows": len(rows)}
        for name, values in samples.items():
            row[f"{name}_p50_ms"] = percentile(values, 50)
            row[f"{name}_p99_ms"] = percentile(values, 99)
        row["infer_vs_predict"] = row["infer_p50_ms"] / row["predict_p50_ms"]
        log(
            f"  {label}: /predict {row['predict_p50_ms']:.3f} ms, infer {row['infer_p50_ms']:.3f} ms"
            f" ({row['infer_vs_predict']:.2f}x)"
        )
        results.append(row)
    return results


def print_protocol(rows: list[dict[str, Any]]) -> None:
    print("\nOpen Inference Protocol vs /predict (same handler, same rows, anomaly model)")
    print(
        md_row(
            "case", "/predict p50 ms", "infer p50 ms", "/predict p99 ms", "infer p99 ms", "infer / predict"
        )
    )
    print(md_row("---", "---:", "---:", "---:", "---:", "---:"))
    for r in rows:
        print(
            md_row(
                r["case"],
                f"{r['predict_p50_ms']:.3f}",
                f"{r['infer_p50_ms']:.3f}",
                f"{r['predict_p99_ms']:.3f}",
                f"{r['infer_p99_ms']:.3f}",
                f"{r['infer_vs_predict']:.2f}x",
            )
        )


def prepare_classifier() -> tuple[Path, Any]:
    """The classifier case: RandomForestClassifier (100 trees) on the example flows' four kinds."""
    from lambda_app.registry import LocalStorage, read_manifest, resolve_version
    from training.config import TrainingConfig
    from training.data.synthetic import generate
    from training.train import run_training

    registry = WORK / "registry-classifier"
    if not (registry / "aliases" / "production.json").exists():
        shutil.rmtree(registry, ignore_errors=True)
        data = WORK / "flows-classification.csv"
        generate(5000, seed=7, task="classification", anomaly_rate=0.25).to_csv(data, index=False)
        config = TrainingConfig.model_validate(
            {
                "data": {"features": ["one", "two", "three"], "label": "kind"},
                "model": {
                    "task": "classification",
                    "estimator": "sklearn.ensemble.RandomForestClassifier",
                    "params": {"n_estimators": 100, "random_state": 0, "n_jobs": 1},
                },
            }
        )
        run_training(str(data), str(registry), config, alias="production")
    storage = LocalStorage(registry)
    return registry, read_manifest(storage, resolve_version(storage, "production"))


def classifier_latency(quick: bool) -> list[dict[str, Any]]:
    """The classifier through the real handler, against its naive path and its floor, in this run."""
    import importlib

    registry, manifest = prepare_classifier()
    os.environ["MODEL_URI"] = str(registry)
    os.environ["NAIVE_CLASSIFIER_PATH"] = str(registry / manifest.version / "model.joblib")
    from benchmarks import naive_classifier_app
    from lambda_app import handler as ours
    from lambda_app.models import build_predictor

    with contextlib.redirect_stdout(Silenced()):
        ours = importlib.reload(ours)  # a new container, serving the classifier
    floor = build_predictor(manifest, (registry / manifest.version / "model.onnx").read_bytes(), threads=1)
    keys = [str(c) for c in manifest.classes or []]

    def probabilities_agree(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
        def table(body: dict[str, Any]) -> np.ndarray:
            return np.array([[p[k] for k in keys] for p in body["probabilities"]])

        return {
            "max_probability_diff": float(np.max(np.abs(table(mine) - table(theirs)))),
            "same_classes": mine["predictions"] == theirs["predictions"],
        }

    return [
        measure_case(
            label, rows, iterations, ours.handler, naive_classifier_app.handler, floor, probabilities_agree
        )
        for label, rows, iterations in (
            ("classifier, 1 row", records(1), 300 if quick else 2000),
            ("classifier, 100 rows", records(100), 100 if quick else 500),
            ("classifier, 10k rows", records(10_000), 10 if quick else 40),
        )
    ]


def _serving_env(registry: Path, manifest: dict[str, Any]) -> dict[str, str]:
    return {
        "MODEL_URI": str(registry),
        "NAIVE_MODEL_PATH": str(registry / manifest["version"] / "model.joblib"),
        "NAIVE_THRESHOLD": str(manifest["threshold"]),
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        "INFERENCE_THREADS": "1",
    }


COLD_SCRIPT = """
import json, resource, sys, time
from {module} import handler
from lambda_app.invoke import LocalLambdaContext
for path in sys.argv[1:]:
    with open(path) as f:
        response = handler(json.load(f), LocalLambdaContext())
    assert response["statusCode"] == 200, response
print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def run_fresh(module: str, env: dict[str, str], events: list[Path]) -> tuple[float, int]:
    """Wall time of a fresh interpreter that imports the handler and answers the events; peak RSS (KB)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT.format(module=module), *map(str, events)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{result.stderr[-2000:]}")
    rss = int(result.stderr.rsplit("MAXRSS", 1)[1].split()[0])
    return elapsed, rss


def cold_start(registry: Path, manifest: dict[str, Any], quick: bool) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        **_serving_env(registry, manifest),
    }
    WORK.mkdir(parents=True, exist_ok=True)
    first = WORK / "cold_event.json"
    first.write_text(json.dumps(v2_event(body_for(records(1)))))
    from lambda_app.config import Settings

    big = WORK / "max_body_event.json"
    big.write_text(json.dumps(v2_event(body_for(rows_under(Settings().max_body_bytes)))))
    samples: dict[str, list[float]] = {"ours": [], "naive": [], "interpreter": []}
    runs = 3 if quick else COLD_RUNS
    for _ in range(runs):  # interleaved
        samples["ours"].append(run_fresh("lambda_app.handler", env, [first])[0])
        samples["naive"].append(run_fresh("benchmarks.naive_app", env, [first])[0])
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, timeout=60)
        samples["interpreter"].append(time.perf_counter() - start)
    memory = {
        name: run_fresh(module, env, [first, big])[1] / 1024
        for name, module in (("ours", "lambda_app.handler"), ("naive", "benchmarks.naive_app"))
    }
    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    log(f"  cold start: ours {medians['ours']:.0f} ms, naive {medians['naive']:.0f} ms")
    return {
        "runs": runs,
        "ours_ms": medians["ours"],
        "naive_ms": medians["naive"],
        "interpreter_ms": medians["interpreter"],
        "vs_naive": medians["ours"] / medians["naive"],
        "peak_rss_mb": memory,
    }


def install_size() -> dict[str, Any]:
    """Installed size of requirements.txt (the image's Python payload) vs the naive path's."""
    sizes = {}
    for name, requirements in (("ours", ROOT / "requirements.txt"), ("naive", NAIVE_REQUIREMENTS)):
        wheels = WORK / f"wheels-{name}"
        target = WORK / f"site-{name}"
        shutil.rmtree(target, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run(
            [*pip, "download", "--only-binary=:all:", "-r", str(requirements), "-d", str(wheels)],
            check=True,
            timeout=900,
            capture_output=True,
        )
        subprocess.run(
            [
                *pip,
                "install",
                "--no-index",
                "--find-links",
                str(wheels),
                "--target",
                str(target),
                "-r",
                str(requirements),
            ],
            check=True,
            timeout=900,
            capture_output=True,
        )
        sizes[name] = sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) / 1e6
    log(f"  install size: ours {sizes['ours']:.0f} MB, naive {sizes['naive']:.0f} MB")
    return {"ours_mb": sizes["ours"], "naive_mb": sizes["naive"], "vs_naive": sizes["ours"] / sizes["naive"]}


def training_time() -> list[dict[str, Any]]:
    """The whole training job vs the floor: IsolationForest.fit alone on the same array."""
    from sklearn.ensemble import IsolationForest

    from training.data.synthetic import generate
    from training.tasks.checks import load_config
    from training.train import run_training

    config = load_config()
    results = []
    for rows in (100_000, 1_000_000):
        data = WORK / f"train_{rows}.csv"
        frame = generate(rows, seed=rows)
        frame.to_csv(data, index=False)
        registry = WORK / f"train_registry_{rows}"
        shutil.rmtree(registry, ignore_errors=True)
        start = time.perf_counter()
        logger = __import__("logging").getLogger("training")
        level = logger.level
        logger.setLevel("WARNING")
        try:
            published = run_training(str(data), str(registry), config, alias=None)
        finally:
            logger.setLevel(level)
        job = time.perf_counter() - start
        matrix = frame[published.manifest.feature_names].to_numpy(dtype=float)
        start = time.perf_counter()
        IsolationForest(**config.model.params).fit(matrix[: int(rows * 0.6)])
        fit = time.perf_counter() - start
        results.append({"rows": rows, "job_s": job, "fit_only_s": fit, "vs_fit": job / fit})
        log(f"  training {rows} rows: job {job:.1f} s, fit alone {fit:.2f} s")
    return results


# --------------------------------------------------------------------------- report


def verdicts(report: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    warm = {row["rows"]: row for row in report["warm"]}
    one = warm[1]
    big = report["warm"][-1]
    checks = [
        (
            "warm 1-row p50 vs naive",
            one["vs_naive"],
            f"<= {TARGETS['warm_1_row_vs_naive']}x",
            one["vs_naive"] <= TARGETS["warm_1_row_vs_naive"],
        ),
        (
            "warm 1-row p50 (ms)",
            one["ours_p50_ms"],
            f"<= {TARGETS['warm_1_row_ms']} ms",
            one["ours_p50_ms"] <= TARGETS["warm_1_row_ms"],
        ),
        (
            "10k rows p50 vs floor",
            warm[10_000]["vs_floor"],
            f"<= {TARGETS['warm_10k_vs_floor']}x",
            warm[10_000]["vs_floor"] <= TARGETS["warm_10k_vs_floor"],
        ),
        (
            "max body p50 vs floor",
            big["vs_floor"],
            f"<= {TARGETS['warm_max_body_vs_floor']}x",
            big["vs_floor"] <= TARGETS["warm_max_body_vs_floor"],
        ),
        (
            "cold start vs naive",
            report["cold_start"]["vs_naive"],
            f"<= {TARGETS['cold_start_vs_naive']}x",
            report["cold_start"]["vs_naive"] <= TARGETS["cold_start_vs_naive"],
        ),
    ]
    if "install_size" in report:
        size = report["install_size"]["vs_naive"]
        checks.append(
            (
                "install size vs naive",
                size,
                f"<= {TARGETS['install_size_vs_naive']}x",
                size <= TARGETS["install_size_vs_naive"],
            )
        )
    if "classifier" in report:
        by_rows = {row["rows"]: row for row in report["classifier"]}
        checks += [
            (
                "classifier 1-row p50 vs naive",
                by_rows[1]["vs_naive"],
                f"<= {TARGETS['classifier_1_row_vs_naive']}x",
                by_rows[1]["vs_naive"] <= TARGETS["classifier_1_row_vs_naive"],
            ),
            (
                "classifier 10k rows p50 vs floor",
                by_rows[10_000]["vs_floor"],
                f"<= {TARGETS['classifier_10k_vs_floor']}x",
                by_rows[10_000]["vs_floor"] <= TARGETS["classifier_10k_vs_floor"],
            ),
            (
                "classifier probabilities vs scikit-learn (max diff)",
                max(r["max_probability_diff"] for r in report["classifier"]),
                "<= 1e-05, same classes",
                all(r["max_probability_diff"] <= 1e-5 and r["same_classes"] for r in report["classifier"]),
            ),
        ]
    checks.append(
        (
            "scores vs scikit-learn (max diff)",
            max(r["max_score_diff"] for r in report["warm"]),
            "<= 1e-05",
            max(r["max_score_diff"] for r in report["warm"]) <= 1e-5,
        )
    )
    return checks


def md_row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def print_table(report: dict[str, Any]) -> None:
    print("\nWarm invocations through the Lambda handler (API Gateway v2 events), ms")
    print(
        md_row(
            "case",
            "rows",
            "ours p50",
            "ours p99",
            "naive p50",
            "naive p99",
            "floor p50",
            "ours/naive",
            "ours/floor",
            "rows/s",
        )
    )
    print(md_row("---", *["---:"] * 9))
    for r in report["warm"]:
        print(
            md_row(
                r["case"],
                r["rows"],
                f"{r['ours_p50_ms']:.3f}",
                f"{r['ours_p99_ms']:.3f}",
                f"{r['naive_p50_ms']:.3f}",
                f"{r['naive_p99_ms']:.3f}",
                f"{r['floor_p50_ms']:.3f}",
                f"{r['vs_naive']:.3f}x",
                f"{r['vs_floor']:.2f}x",
                f"{r['ours_rows_per_s']:,.0f}",
            )
        )
    if "classifier" in report:
        print("\nClassifier (RandomForestClassifier, 100 trees, 4 classes) through the handler, ms")
        print(
            md_row(
                "case", "ours p50", "ours p99", "naive p50", "floor p50", "ours/naive", "ours/floor", "rows/s"
            )
        )
        print(md_row("---", *["---:"] * 7))
        for r in report["classifier"]:
            print(
                md_row(
                    r["case"],
                    f"{r['ours_p50_ms']:.3f}",
                    f"{r['ours_p99_ms']:.3f}",
                    f"{r['naive_p50_ms']:.3f}",
                    f"{r['floor_p50_ms']:.3f}",
                    f"{r['vs_naive']:.3f}x",
                    f"{r['vs_floor']:.2f}x",
                    f"{r['ours_rows_per_s']:,.0f}",
                )
            )
    cold = report["cold_start"]
    print(f"\nCold start: fresh interpreter, import, model load, first event (median of {cold['runs']})")
    print(md_row("", "ours", "naive", "ratio", "bare interpreter"))
    print(md_row("---", "---:", "---:", "---:", "---:"))
    print(
        md_row(
            "wall ms",
            f"{cold['ours_ms']:.0f}",
            f"{cold['naive_ms']:.0f}",
            f"{cold['vs_naive']:.2f}x",
            f"{cold['interpreter_ms']:.0f}",
        )
    )
    rss = cold["peak_rss_mb"]
    print(
        md_row(
            "peak RSS MB (1 row + max body)",
            f"{rss['ours']:.0f}",
            f"{rss['naive']:.0f}",
            f"{rss['ours'] / rss['naive']:.2f}x",
            "",
        )
    )
    if "install_size" in report:
        size = report["install_size"]
        print(
            md_row(
                "installed requirements MB",
                f"{size['ours_mb']:.0f}",
                f"{size['naive_mb']:.0f}",
                f"{size['vs_naive']:.2f}x",
                "",
            )
        )
    if report.get("training"):
        print(
            "\nTraining: the whole job (read, validate, fit, threshold, evaluate, compile, parity, publish)"
        )
        print(md_row("rows", "job s", "IsolationForest.fit alone s", "ratio"))
        print(md_row("---:", "---:", "---:", "---:"))
        for t in report["training"]:
            cells = (f"{t['rows']:,}", f"{t['job_s']:.1f}", f"{t['fit_only_s']:.2f}", f"{t['vs_fit']:.1f}x")
            print(md_row(*cells))
    print("\nVerdict")
    for name, value, target, ok in report["verdicts"]:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {value:.4g} (target {target})")
    passed = sum(ok for *_, ok in report["verdicts"])
    print(f"VERDICT: {passed}/{len(report['verdicts'])} targets met")
    if report.get("protocol"):
        print_protocol(report["protocol"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="about 2 minutes: fewer iterations; the install size and the training job are not measured",
    )
    parser.add_argument("--skip-install-size", action="store_true", help="do not download the naive wheels")
    parser.add_argument("--out", default=str(WORK / "results.json"))
    parser.add_argument(
        "--protocol-only",
        action="store_true",
        help="only the Open Inference Protocol's infer beside /predict (1 and 1,000 rows)",
    )
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    log("preparing the model ...")
    registry, manifest = prepare_registry()
    if args.protocol_only:
        log("protocol ...")
        protocol = protocol_latency(registry, manifest, args.quick)
        Path(args.out).write_text(json.dumps({"protocol": protocol}, indent=2))
        print_protocol(protocol)
        print(f"\n(JSON: {args.out})")
        return 0
    report: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    log("cold start ...")
    report["cold_start"] = cold_start(registry, manifest, args.quick)
    log("warm latency ...")
    gc.collect()
    report["warm"] = warm_latency(registry, manifest, args.quick)
    log("classifier ...")
    report["classifier"] = classifier_latency(args.quick)
    log("protocol ...")
    report["protocol"] = protocol_latency(registry, manifest, args.quick)
    if args.quick:
        log("--quick: the install size and the training job are not measured (run without --quick)")
    else:
        if not args.skip_install_size:
            log("install size ...")
            report["install_size"] = install_size()
        log("training time ...")
        report["training"] = training_time()
    report["peak_rss_bench_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["verdicts"] = verdicts(report)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"\n(JSON: {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
