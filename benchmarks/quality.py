"""Model quality beside plain scikit-learn: ``python -m benchmarks.quality [--code DIR]``
(``make bench-quality``).

For each supervised example (the example classification and regression configs on generated flows,
and tables that ship with scikit-learn: breast cancer, wine, diabetes), the training job publishes a
model with its config, and a plain scikit-learn estimator of the same class and parameters (no tuning)
is fitted on train + validation of the **same split** (the job's seed and stratification) and scored
on the same holdout. Printed: both holdout scores and their ratio. ``--code DIR`` runs the job from
another checkout (a ``git worktree`` of an older commit) for a before / after column. Tables are
small: minutes, not hours.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Table:
    name: str
    task: str
    label: str
    config: dict[str, Any]  # the training config (TOML as a dict)


def tables(work: Path) -> list[tuple[Table, Path]]:
    """Each benchmark table written as CSV under ``work``, with the product's default config for it:
    the label and the task, nothing else (``estimator = "auto"``)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    from training.data.synthetic import generate

    out: list[tuple[Table, Path]] = []
    for name, loader in (("breast cancer", load_breast_cancer), ("wine", load_wine)):
        frame = loader(as_frame=True).frame.rename(columns={"target": "class_id"})
        frame["class_id"] = "c" + frame["class_id"].astype(str)
        path = work / f"{name.replace(' ', '_')}.csv"
        frame.to_csv(path, index=False)
        config = {"data": {"label": "class_id"}, "model": {"task": "classification"}}
        out.append((Table(name, "classification", "class_id", config), path))
    diabetes = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    path = work / "diabetes.csv"
    diabetes.to_csv(path, index=False)
    config = {"data": {"label": "progression"}, "model": {"task": "regression"}}
    out.append((Table("diabetes", "regression", "progression", config), path))
    for task, label in (("classification", "kind"), ("regression", "latency_ms")):
        for mixed in (False, True):
            path = work / f"flows-{task}{'-mixed' if mixed else ''}.csv"
            rate = 0.25 if task == "classification" else 0.03
            generate(5000, seed=7, task=task, anomaly_rate=rate, mixed=mixed).to_csv(path, index=False)
            config = {"data": {"label": label}, "model": {"task": task}}
            title = f"flows {task}" + (" (a category, a boolean, missing values)" if mixed else "")
            out.append((Table(title, task, label, config), path))
    return out


def to_toml(config: dict[str, Any], prefix: str = "") -> str:
    """A config of nested tables, scalars and lists as TOML (what these configs hold, nothing more)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(item) for item in v) + "]"
        return json.dumps(v)

    lines = [f"{key} = {value(v)}" for key, v in config.items() if not isinstance(v, dict)]
    text = "\n".join(lines) + "\n" if lines else ""
    for key, v in config.items():
        if isinstance(v, dict):
            name = f"{prefix}{key}"
            text += f"[{name}]\n" + to_toml(v, name + ".")
    return text


def product_metrics(code: Path, table: Table, data: Path, work: Path) -> dict[str, Any]:
    """Train with the job of the checkout ``code`` in a child process; its holdout metrics."""
    config = work / f"{data.stem}.toml"
    config.write_text(to_toml(table.config))
    registry = Path(tempfile.mkdtemp(dir=work))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "--data",
            str(data),
            "--model-uri",
            str(registry),
            "--config",
            str(config),
            "--alias",
            "",
            "--allow-worse-than-baseline",
        ],
        cwd=code,
        check=True,
        capture_output=True,
        text=True,
    )
    manifest = json.loads(next(registry.glob("*/manifest.json")).read_text())
    metrics: dict[str, Any] = {**manifest["metrics"], "estimator": manifest["estimator"].rsplit(".", 1)[-1]}
    return metrics


def plain_pipeline(family: str, task: str, frame: pd.DataFrame, seed: int) -> Any:
    """What a practitioner writes by hand: missing values filled (median / most frequent), categories
    ordinal-encoded, then scikit-learn's HistGradientBoosting or a 200-tree random forest, untuned."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    text = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype) in ("str", "string")]
    numbers = [c for c in frame.columns if c not in text]
    encode = make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
    )
    prepare = ColumnTransformer(
        [("text", encode, text), ("numbers", SimpleImputer(strategy="median"), numbers)]
    )
    models = {
        ("hgb", "classification"): HistGradientBoostingClassifier(random_state=seed),
        ("hgb", "regression"): HistGradientBoostingRegressor(random_state=seed),
        ("forest", "classification"): RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=-1),
        ("forest", "regression"): RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=-1),
    }
    return make_pipeline(prepare, models[family, task])


def plain_metrics(table: Table, data: Path, family: str) -> dict[str, Any]:
    """A plain pipeline (``plain_pipeline``) fitted on train + validation of the job's split, scored on
    the job's holdout."""
    from sklearn.model_selection import train_test_split

    from training.data.labels import class_codes
    from training.tasks.classification import classification_metrics
    from training.tasks.regression import regression_metrics

    frame = pd.read_csv(data)
    features = table.config["data"].get("features") or [c for c in frame.columns if c != table.label]
    x = frame[features]
    x = x.astype({c: np.float64 for c in features if x[c].dtype == bool})
    y = frame[table.label].to_numpy()
    split = table.config.get("split", {})
    seed, test_fraction = split.get("seed", 42), split.get("test_fraction", 0.2)
    validation_fraction = split.get("validation_fraction", 0.2)
    stratify = class_codes(y) if table.task == "classification" else None
    rows = np.arange(len(y))
    rest, test = train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=stratify)
    fraction = validation_fraction / (1 - test_fraction)
    train, validation = train_test_split(
        rest, test_size=fraction, random_state=seed, stratify=None if stratify is None else stratify[rest]
    )
    fit = np.sort(np.concatenate([train, validation]))
    estimator = plain_pipeline(family, table.task, x, seed).fit(x.iloc[fit], y[fit])
    if table.task == "classification":
        classes = list(estimator.classes_)
        return classification_metrics(
            y[test], estimator.predict(x.iloc[test]), estimator.predict_proba(x.iloc[test]), classes
        )
    return regression_metrics(y[test].astype(np.float64), estimator.predict(x.iloc[test]))


SCORES = {"classification": ("f1_macro", "log_loss"), "regression": ("rmse", "r2")}
LOWER_IS_BETTER = {"log_loss", "rmse"}
TOLERANCE = {"higher": 0.005, "lower": 0.01}
"""The target: the product at least the better plain pipeline, a higher-is-better score within 0.005, an
error within 1%."""


def meets(score: str, product: float, best: float) -> bool:
    if score in LOWER_IS_BETTER:
        return product <= best * (1 + TOLERANCE["lower"])
    return product >= best - TOLERANCE["higher"]


def quality_rows(code: Path | None, work: Path) -> list[list[str]]:
    rows = []
    for table, data in tables(work):
        print(f"{table.name}: training ...", file=sys.stderr, flush=True)
        ours = product_metrics(ROOT, table, data, work)
        before = product_metrics(code, table, data, work) if code else None
        plain = {family: plain_metrics(table, data, family) for family in ("hgb", "forest")}
        for score in SCORES[table.task]:
            pick = min if score in LOWER_IS_BETTER else max
            best = pick(plain["hgb"][score], plain["forest"][score])
            cells = [table.name, score]
            if before is not None:
                cells.append(f"{before[score]:.4f}")
            cells += [
                f"{ours[score]:.4f} ({ours['estimator']})",
                f"{plain['hgb'][score]:.4f}",
                f"{plain['forest'][score]:.4f}",
                f"{ours[score] / best:.3f}",
                "yes" if meets(score, ours[score], best) else "NO",
            ]
            rows.append(cells)
    return rows


def serving_rows(work: Path, iterations: int) -> list[list[str]]:
    """Each gradient-boosted family (and the random forest, for reference) trained by the job on the
    breast cancer table (100 trees or iterations, no tuning), then answered through the real Lambda
    handler: p50 for 1 row and for 1,000 rows, and the ONNX file's size."""
    import contextlib
    import io
    import os
    import time

    from sklearn.datasets import load_breast_cancer

    from benchmarks.__main__ import v2_event
    from lambda_app.invoke import LocalLambdaContext
    from training.tasks.checks import validate_config
    from training.train import run_training

    frame = load_breast_cancer(as_frame=True).frame
    data = work / "serving.csv"
    frame.to_csv(data, index=False)
    features = frame.drop(columns="target")
    bodies = {n: json.dumps(features.head(n).to_dict(orient="records")) for n in (1, 1000)}
    families = {
        "sklearn.ensemble.HistGradientBoostingClassifier": {"max_iter": 100},
        "xgboost.XGBClassifier": {"n_estimators": 100},
        "lightgbm.LGBMClassifier": {"n_estimators": 100},
        "sklearn.ensemble.RandomForestClassifier": {"n_estimators": 100},
    }
    rows = []
    for estimator, params in families.items():
        print(f"serving cost: {estimator} ...", file=sys.stderr, flush=True)
        registry = work / f"serving-{estimator.rsplit('.', 1)[-1]}"
        config = validate_config(
            {
                "data": {"label": "target"},
                "model": {"task": "classification", "estimator": estimator, "params": params},
                "tuning": {"enabled": False},
            }
        )
        with contextlib.redirect_stderr(io.StringIO()):
            published = run_training(str(data), str(registry), config)
        onnx_mb = sum(f.stat().st_size for f in (registry / published.manifest.version).glob("*.onnx")) / 1e6
        os.environ["MODEL_URI"] = str(registry)
        import lambda_app.handler

        handler = importlib.reload(lambda_app.handler).handler
        timings = {}
        context = LocalLambdaContext()
        for n, body in bodies.items():
            event = v2_event(body)
            samples = []
            with contextlib.redirect_stdout(io.StringIO()):
                for index in range(iterations if n == 1 else max(5, iterations // 10)):
                    start = time.perf_counter()
                    response = handler(event, context)
                    if index:
                        samples.append((time.perf_counter() - start) * 1000)
            assert response["statusCode"] == 200, response["body"]
            timings[n] = float(np.median(samples))
        rows.append([estimator, f"{timings[1]:.2f}", f"{timings[1000]:.1f}", f"{onnx_mb:.2f}"])
    return rows


def print_table(head: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__)
    parser.add_argument("--code", type=Path, help="another checkout to train with, for a before column")
    parser.add_argument(
        "--iterations", type=int, default=200, help="1-row requests per family (serving cost)"
    )
    parser.add_argument("--skip-serving", action="store_true", help="only the quality table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        work = Path(tmp)
        quality = quality_rows(args.code, work)
        serving = [] if args.skip_serving else serving_rows(work, args.iterations)
    head = ["table", "holdout score"] + (["before"] if args.code else [])
    head += ["product (chosen)", "plain HGB", "plain forest", "ratio to the better", "target met"]
    print_table(head, quality)
    print(
        "f1_macro and r2: higher is better (target: within 0.005 of the better plain pipeline);"
        " log_loss and rmse: lower is better (target: within 1%)."
    )
    if serving:
        print("\nServing cost through the Lambda handler (breast cancer, 100 trees or iterations), p50 ms")
        print_table(["estimator", "1 row", "1,000 rows", "ONNX MB"], serving)
    return 0


if __name__ == "__main__":
    sys.exit(main())
