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
    """Each benchmark table written as CSV under ``work``, with its config."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    from training.data.synthetic import generate

    out: list[tuple[Table, Path]] = []
    forest = {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 200}}
    for name, loader in (("breast cancer", load_breast_cancer), ("wine", load_wine)):
        frame = loader(as_frame=True).frame.rename(columns={"target": "class_id"})
        frame["class_id"] = "c" + frame["class_id"].astype(str)
        path = work / f"{name.replace(' ', '_')}.csv"
        frame.to_csv(path, index=False)
        config = {"data": {"label": "class_id"}, "model": {"task": "classification", **forest}}
        out.append((Table(name, "classification", "class_id", config), path))
    diabetes = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    path = work / "diabetes.csv"
    diabetes.to_csv(path, index=False)
    boosting = {"estimator": "sklearn.ensemble.GradientBoostingRegressor", "params": {"n_estimators": 100}}
    config = {"data": {"label": "progression"}, "model": {"task": "regression", **boosting}}
    out.append((Table("diabetes", "regression", "progression", config), path))
    import tomllib

    for task, label in (("classification", "kind"), ("regression", "latency_ms")):
        path = work / f"flows-{task}.csv"
        generate(5000, seed=7, task=task, anomaly_rate=0.25 if task == "classification" else 0.03).to_csv(
            path, index=False
        )
        with open(ROOT / "training" / "configs" / f"{task}.toml", "rb") as handle:
            config = tomllib.load(handle)
        out.append((Table(f"example {task} flows", task, label, config), path))
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
    metrics: dict[str, Any] = manifest["metrics"]
    return metrics


def plain_metrics(table: Table, data: Path) -> dict[str, Any]:
    """The same estimator class and parameters, untuned, fitted on train + validation of the job's split."""
    from sklearn.model_selection import train_test_split

    from training.data.labels import class_codes
    from training.tasks.classification import classification_metrics
    from training.tasks.regression import regression_metrics

    frame = pd.read_csv(data)
    features = table.config["data"].get("features") or [c for c in frame.columns if c != table.label]
    x = frame[features].to_numpy(dtype=np.float64)
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
    module, _, name = table.config["model"]["estimator"].rpartition(".")
    params = {"random_state": seed, **table.config["model"].get("params", {})}
    estimator = getattr(importlib.import_module(module), name)(**params).fit(x[fit], y[fit])
    if table.task == "classification":
        classes = list(estimator.classes_)
        return classification_metrics(
            y[test], estimator.predict(x[test]), estimator.predict_proba(x[test]), classes
        )
    return regression_metrics(y[test].astype(np.float64), estimator.predict(x[test]))


SCORES = {"classification": ("f1_macro", "log_loss"), "regression": ("rmse", "r2")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__)
    parser.add_argument("--code", type=Path, help="another checkout to train with, for a before column")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        work = Path(tmp)
        rows = []
        for table, data in tables(work):
            print(f"{table.name}: training ...", file=sys.stderr, flush=True)
            ours = product_metrics(ROOT, table, data, work)
            before = product_metrics(args.code, table, data, work) if args.code else None
            plain = plain_metrics(table, data)
            for score in SCORES[table.task]:
                cells = [table.name, score]
                if before is not None:
                    cells.append(f"{before[score]:.4f}")
                cells += [f"{ours[score]:.4f}", f"{plain[score]:.4f}", f"{ours[score] / plain[score]:.3f}"]
                rows.append(cells)
    head = (
        ["table", "holdout score"] + (["before"] if args.code else []) + ["product", "plain sklearn", "ratio"]
    )
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    print("f1_macro: higher is better; log_loss and rmse: lower is better; r2: higher is better.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
