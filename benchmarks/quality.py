"""Model quality beside plain scikit-learn: ``python -m benchmarks.quality [--code DIR]``
(``make bench-quality``).

For each supervised example (the example classification and regression configs on generated flows,
and tables that ship with scikit-learn: breast cancer, wine, diabetes), the training job publishes a
model with its config, and two plain scikit-learn pipelines (HistGradientBoosting, a random forest;
untuned) are fitted on train + validation of the **same split** (the job's seed and stratification)
and scored on the same holdout. Printed: the holdout scores, the product's ratio to the better plain
pipeline and whether it meets the target. A table under 2,000 rows has a holdout of at most 400 rows
(wine: 36), where one row moves a score by hundredths: it is split five times (seeds 42, 0, 1, 2, 3, as
the job's [split] seed, the plain pipelines on the same split each time) and each score is its mean over
the splits ± its sample standard deviation, the ratio and the target taken on the means. Larger tables:
one split (seed 42). A progress line per training run (table, seed, seconds) goes to stderr. ``--code
DIR`` runs the job from another checkout (a ``git worktree`` of an older commit) for a before column, on
the same splits. Then labelled anomaly tables (the example flows, breast cancer with 20 malignant rows as
the anomalies, a table whose anomalies are one feature far out): the product's holdout PR-AUC beside
scikit-learn's IsolationForest (defaults) and the robust z-score, on the job's training split. Then
tables with missing values: HistGradientBoosting with them filled (``[data] missing = "impute"``) or
left to its trees (``"native"``), on the same splits. ``--only SECTION`` runs one part. Tables are
small: minutes, not hours.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SMALL_TABLE_ROWS = 2000
SEEDS = (42, 0, 1, 2, 3)
"""A table under SMALL_TABLE_ROWS rows is split with each of SEEDS; a larger one with the first (the
job's default seed)."""


@dataclass(frozen=True)
class Table:
    name: str
    task: str
    label: str
    config: dict[str, Any]  # the training config (TOML as a dict)
    rows: int


def split_seeds(rows: int) -> tuple[int, ...]:
    """The [split] seeds a table of ``rows`` rows is benchmarked with."""
    return SEEDS if rows < SMALL_TABLE_ROWS else SEEDS[:1]


def seeded(table: Table, seed: int) -> Table:
    """``table`` with ``[split] seed = seed`` in its config (the job and the plain pipelines read it)."""
    split = {**table.config.get("split", {}), "seed": seed}
    return replace(table, config={**table.config, "split": split})


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
        out.append((Table(name, "classification", "class_id", config, len(frame)), path))
    diabetes = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    path = work / "diabetes.csv"
    diabetes.to_csv(path, index=False)
    config = {"data": {"label": "progression"}, "model": {"task": "regression"}}
    out.append((Table("diabetes", "regression", "progression", config, len(diabetes)), path))
    for task, label in (("classification", "kind"), ("regression", "latency_ms")):
        for mixed in (False, True):
            path = work / f"flows-{task}{'-mixed' if mixed else ''}.csv"
            rate = 0.25 if task == "classification" else 0.03
            flows = generate(5000, seed=7, task=task, anomaly_rate=rate, mixed=mixed)
            flows.to_csv(path, index=False)
            config = {"data": {"label": label}, "model": {"task": task}}
            title = f"flows {task}" + (" (a category, a boolean, missing values)" if mixed else "")
            out.append((Table(title, task, label, config, len(flows)), path))
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
    path = next(registry.glob("*/manifest.json"))
    manifest = json.loads(path.read_text())
    baseline = json.loads((path.parent / "evaluation.json").read_text())["baseline"]["metrics"] or {}
    metrics: dict[str, Any] = {
        **manifest["metrics"],
        "estimator": manifest["estimator"].rsplit(".", 1)[-1],
        "baseline": baseline,
    }
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


PLAIN = ("hgb", "forest")
SECTIONS = ("supervised", "anomaly", "missing", "serving")
RUN_NAMES = {"product": "product", "before": "before (--code)", "hgb": "plain HGB", "forest": "plain forest"}


def table_runs(code: Path | None, table: Table, data: Path, work: Path) -> dict[str, list[dict[str, Any]]]:
    """Each run's holdout metrics, one per split seed (``split_seeds``): the product, the ``--code``
    checkout's job (when given) and both plain pipelines, all on the same split for a seed. A progress
    line per run on stderr."""
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in RUN_NAMES if key != "before" or code}
    for seed in split_seeds(table.rows):
        job = seeded(table, seed)
        steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("product", partial(product_metrics, ROOT, job, data, work))
        ]
        if code:
            steps.append(("before", partial(product_metrics, code, job, data, work)))
        steps += [(family, partial(plain_metrics, job, data, family)) for family in PLAIN]
        for key, step in steps:
            start = time.perf_counter()
            metrics = step()
            runs[key].append(metrics)
            what = RUN_NAMES[key] + (f" ({metrics['estimator']})" if "estimator" in metrics else "")
            elapsed = time.perf_counter() - start
            print(f"{table.name}, seed {seed}: {what} {elapsed:.1f} s", file=sys.stderr, flush=True)
    return runs


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (0 for one value)."""
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), spread


def score_cell(values: Sequence[float]) -> str:
    """One value as is; several as their mean ± their sample standard deviation."""
    mean, spread = mean_spread(values)
    return f"{mean:.4f}" if len(values) == 1 else f"{mean:.4f} ± {spread:.4f}"


def chosen(estimators: Sequence[str]) -> str:
    """The product's choice: one name, or each name with the number of seeds it was chosen for."""
    counts = Counter(estimators).most_common()
    if len(counts) == 1:
        return counts[0][0]
    return ", ".join(f"{name} {count}/{len(estimators)}" for name, count in counts)


def score_row(name: str, score: str, runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """A table's row for one score over its seeds: the seeds, each run's score, the product's mean over
    the better plain pipeline's mean, and the target on those means."""
    values = {key: [float(metrics[score]) for metrics in seeds] for key, seeds in runs.items()}
    means = {key: mean_spread(v)[0] for key, v in values.items()}
    pick = min if score in LOWER_IS_BETTER else max
    best = pick(means[family] for family in PLAIN)
    cells = [name, score, str(len(values["product"]))]
    if "before" in runs:
        cells.append(score_cell(values["before"]))
    cells += [
        f"{score_cell(values['product'])} ({chosen([m['estimator'] for m in runs['product']])})",
        score_cell(values["hgb"]),
        score_cell(values["forest"]),
        f"{means['product'] / best:.3f}",
        "yes" if meets(score, means["product"], best) else "NO",
    ]
    return cells


def quality_rows(code: Path | None, work: Path) -> list[list[str]]:
    rows = []
    for table, data in tables(work):
        runs = table_runs(code, table, data, work)
        rows += [score_row(table.name, score, runs) for score in SCORES[table.task]]
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


def anomaly_tables(work: Path) -> list[tuple[Table, Path]]:
    """Labelled anomaly tables with the product's default config (the label, nothing else: ``auto``):
    the example flows, breast cancer with a few malignant rows as the anomalies, and a table whose
    anomalies are one feature far out."""
    from sklearn.datasets import load_breast_cancer

    from training.data.synthetic import generate

    cancer = load_breast_cancer(as_frame=True).frame
    malignant = cancer[cancer["target"] == 0].sample(n=20, random_state=0)
    cancer = pd.concat([cancer[cancer["target"] == 1], malignant]).rename(columns={"target": "label"})
    cancer["label"] = (cancer["label"] == 0).astype(int)
    rng = np.random.default_rng(0)
    scale = np.array([1.0, 3.0, 10.0, 0.5, 2.0, 100.0])
    values = rng.normal(size=(5000, 6)) * scale
    far = rng.choice(5000, size=150, replace=False)
    column = rng.integers(0, 6, size=150)
    values[far, column] += rng.uniform(5, 8, size=150) * rng.choice([-1, 1], size=150) * scale[column]
    one_out = pd.DataFrame(values, columns=[f"f{i}" for i in range(6)]).assign(label=0)
    one_out.loc[far, "label"] = 1
    frames = {
        "flows (data/sample.csv)": generate(5000, seed=7),
        "breast cancer, 20 malignant as anomalies": cancer,
        "one feature far out": one_out,
    }
    out: list[tuple[Table, Path]] = []
    for name, frame in frames.items():
        path = work / f"anomaly-{len(out)}.csv"
        frame.to_csv(path, index=False)
        out.append((Table(name, "anomaly", "label", {"data": {"label": "label"}}, len(frame)), path))
    return out


def plain_isolation_forest(table: Table, data: Path) -> float:
    """Holdout PR-AUC of scikit-learn's IsolationForest (its defaults) fitted on the job's training
    split (a detector is fitted on train only; the job's split is stratified on the label)."""
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(data)
    x = frame.drop(columns=table.label).to_numpy(dtype=np.float64)
    y = frame[table.label].to_numpy()
    seed = table.config.get("split", {}).get("seed", 42)
    rows = np.arange(len(y))
    rest, test = train_test_split(rows, test_size=0.2, random_state=seed, stratify=y)
    train, _ = train_test_split(rest, test_size=0.25, random_state=seed, stratify=y[rest])
    forest = IsolationForest(random_state=seed).fit(x[train])
    return float(average_precision_score(y[test], -forest.score_samples(x[test])))


def anomaly_rows(work: Path) -> list[list[str]]:
    """Per labelled table: the product's holdout PR-AUC (its chosen detector), a plain IsolationForest's
    and the robust z-score baseline's, on the same split (means over seeds for small tables)."""
    rows = []
    for table, data in anomaly_tables(work):
        product, plain, baseline, names = [], [], [], []
        for seed in split_seeds(table.rows):
            job = seeded(table, seed)
            start = time.perf_counter()
            metrics = product_metrics(ROOT, job, data, work)
            product.append(float(metrics["pr_auc"]))
            baseline.append(float(metrics["baseline"]["pr_auc"]))
            names.append(metrics["estimator"])
            plain.append(plain_isolation_forest(job, data))
            elapsed = time.perf_counter() - start
            print(f"{table.name}, seed {seed}: {metrics['estimator']} {elapsed:.1f} s", file=sys.stderr)
        best = max(mean_spread(plain)[0], mean_spread(baseline)[0])
        ratio = mean_spread(product)[0] / best
        rows.append(
            [
                table.name,
                str(len(product)),
                f"{score_cell(product)} ({chosen(names)})",
                score_cell(plain),
                score_cell(baseline),
                f"{ratio:.3f}",
                "yes" if meets("pr_auc", mean_spread(product)[0], best) else "NO",
            ]
        )
    return rows


def missing_tables(work: Path) -> list[tuple[Table, Path]]:
    """Regression tables with missing values, for HistGradientBoosting with them filled or left to its
    trees: diabetes where bmi and s5 go missing more often when they are high (the missingness says
    something), diabetes with a fifth of three columns' cells missing at random (it says nothing), and
    the example flows with a category, a boolean and missing byte counts."""
    from sklearn.datasets import load_diabetes

    from training.data.synthetic import generate

    rng = np.random.default_rng(0)
    informative = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    at_random = informative.copy()
    for column in ("bmi", "s5"):
        high = informative[column] > informative[column].quantile(0.6)
        informative.loc[high & (rng.random(len(informative)) < 0.7), column] = np.nan
    for column in ("bmi", "s5", "bp"):
        at_random.loc[rng.random(len(at_random)) < 0.2, column] = np.nan
    flows = generate(5000, seed=7, task="regression", anomaly_rate=0.03, mixed=True)
    frames = {
        "diabetes, high bmi and s5 often missing": (informative, "progression"),
        "diabetes, a fifth of bmi, s5, bp missing at random": (at_random, "progression"),
        "flows regression (missing byte counts)": (flows, "latency_ms"),
    }
    out: list[tuple[Table, Path]] = []
    for name, (frame, label) in frames.items():
        path = work / f"missing-{len(out)}.csv"
        frame.to_csv(path, index=False)
        estimator = "sklearn.ensemble.HistGradientBoostingRegressor"
        config = {"data": {"label": label}, "model": {"task": "regression", "estimator": estimator}}
        out.append((Table(name, "regression", label, config, len(frame)), path))
    return out


def missing_rows(work: Path) -> list[list[str]]:
    """Per table: the holdout RMSE of the job's HistGradientBoosting with ``[data] missing = "impute"``
    and with ``"native"``, on the same splits (means over seeds for small tables), and their ratio."""
    rows = []
    for table, data in missing_tables(work):
        scores: dict[str, list[float]] = {"impute": [], "native": []}
        for seed in split_seeds(table.rows):
            for missing in scores:
                job = seeded(table, seed)
                job = replace(job, config={**job.config, "data": {**job.config["data"], "missing": missing}})
                start = time.perf_counter()
                scores[missing].append(float(product_metrics(ROOT, job, data, work)["rmse"]))
                elapsed = time.perf_counter() - start
                print(f"{table.name}, seed {seed}: missing = {missing} {elapsed:.1f} s", file=sys.stderr)
        ratio = mean_spread(scores["native"])[0] / mean_spread(scores["impute"])[0]
        cells = [table.name, str(len(scores["impute"]))]
        rows.append([*cells, score_cell(scores["impute"]), score_cell(scores["native"]), f"{ratio:.3f}"])
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
    parser.add_argument("--skip-serving", action="store_true", help="leave out the serving cost")
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="run only this section (repeatable): supervised, anomaly, missing, serving",
    )
    args = parser.parse_args(argv)
    sections = set(args.only or SECTIONS) - ({"serving"} if args.skip_serving else set())
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        work = Path(tmp)
        quality = quality_rows(args.code, work) if "supervised" in sections else []
        anomalies = anomaly_rows(work) if "anomaly" in sections else []
        missing = missing_rows(work) if "missing" in sections else []
        serving = serving_rows(work, args.iterations) if "serving" in sections else []
    if quality:
        head = ["table", "holdout score", "seeds"] + (["before"] if args.code else [])
        head += ["product (chosen)", "plain HGB", "plain forest", "ratio to the better", "target met"]
        print_table(head, quality)
        print(
            "f1_macro and r2: higher is better (target: within 0.005 of the better plain pipeline);"
            " log_loss and rmse: lower is better (target: within 1%)."
        )
        print(
            f"Tables under {SMALL_TABLE_ROWS:,} rows: split with seeds {', '.join(map(str, SEEDS))} (the"
            " product and both plain pipelines on the same split for each); mean ± sample standard deviation"
            f" over the splits, ratio and target on the means. Larger tables: one split (seed {SEEDS[0]})."
        )
    if anomalies:
        print("\nAnomaly detection on labelled tables: holdout PR-AUC (higher is better)")
        head = ["table", "seeds", "product (chosen)", "plain IsolationForest", "robust z-score baseline"]
        print_table([*head, "ratio to the better", "target met"], anomalies)
    if missing:
        print('\nMissing values, HistGradientBoosting: filled ([data] missing = "impute") or left to its')
        print('trees ("native"), holdout RMSE (lower is better)')
        print_table(["table", "seeds", "impute", "native", "native / impute"], missing)
    if serving:
        print("\nServing cost through the Lambda handler (breast cancer, 100 trees or iterations), p50 ms")
        print_table(["estimator", "1 row", "1,000 rows", "ONNX MB"], serving)
    return 0


if __name__ == "__main__":
    sys.exit(main())
