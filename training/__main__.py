"""The training CLI.

    python -m training --data PATH_OR_S3 --model-uri DIR_OR_S3 [--alias production] [--config FILE]
                       [--label COL] [--task anomaly|classification|regression]
    python -m training generate --rows 5000 --out data/sample.csv [--seed 7] [--anomaly-rate 0.03] [--mixed]
    python -m training promote --model-uri URI [--to production] [--version V | --from-alias candidate]
                               [--data LABELLED_HOLDOUT] [--metric pr_auc] [--margin 0.01] [--force]
    python -m training rollback --model-uri URI [--alias production]
    python -m training retrain --data FILE_OR_PREFIX/ --model-uri URI [--to production]
                               [--metric pr_auc] [--margin 0.01]
    python -m training drift --data WINDOW --model-uri URI [--alias production | --version V]
                             [--threshold 0.25] [--out reports/drift]
    python -m training list --model-uri URI [--json]
    python -m training import --model FILE --data SAMPLE --model-uri URI [--alias production]
                              [--task T] [--label COL] [--classes A,B,C] [--name N]
                              [--trust TYPE ...] [--allow-pickle]

Exits 0 on success; on failure prints one line ``error: <reason>`` and exits 1. ``retrain`` (what the
scheduled task runs) exits 3 when the quality gate keeps the serving model: the new version stays
published under the ``candidate`` alias.
AWS access uses boto3's usual variables (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from lambda_app.registry import RegistryError
from training.exceptions import TrainingError

COMMANDS = {
    "train": "train and publish a model (the default command)",
    "generate": "write seeded synthetic flow data for a task",
    "import": "publish a scikit-learn model fitted elsewhere (bring your own model)",
    "promote": "move an alias to a candidate that passes the quality gate",
    "rollback": "point an alias back at an earlier version",
    "retrain": "train on the newest data, publish a candidate, promote it through the gate",
    "drift": "compare a data window with a model's training reference",
    "list": "the registry's versions and where its aliases point",
}
EPILOG = "commands (python -m training COMMAND --help):\n" + "\n".join(
    f"  {name:<9} {text}" for name, text in COMMANDS.items()
)


GATE_REFUSED_EXIT = 3


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (when it has a meaningful one) and keeps the command list's layout."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, False, [], argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    """Every command's parser: defaults shown in --help, and the list of all commands below."""
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=EPILOG, formatter_class=_HelpFormatter
    )


def _train_parser() -> argparse.ArgumentParser:
    from training.config import DEFAULT_CONFIG_PATH

    parser = _parser("python -m training [train]", "Train and publish a model.")
    parser.add_argument("--data", required=True, help="CSV or Parquet file: a local path or s3://bucket/key")
    parser.add_argument(
        "--model-uri", required=True, help="registry root: a local directory or s3://bucket/prefix"
    )
    parser.add_argument(
        "--alias", default="production", help="alias to move to the new version ('' for none)"
    )
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="training config (TOML)")
    parser.add_argument(
        "--label",
        help="the label column, overriding the config's; it must be in the data (else an error)",
    )
    parser.add_argument(
        "--task",
        choices=["anomaly", "classification", "regression"],
        help="what to train; default: the config's [model] task, else from the --label column's values"
        " (text or a few whole numbers: classification; other numbers: regression; 0/1: say which)",
    )
    parser.add_argument(
        "--allow-worse-than-baseline",
        action="store_true",
        help="publish even if the baseline beats the model",
    )
    return parser


def _generate_parser() -> argparse.ArgumentParser:
    parser = _parser("python -m training generate", "Write synthetic flow data for a task.")
    parser.add_argument("--rows", type=int, default=5000, help="rows to write")
    parser.add_argument("--out", required=True, help="output path (.csv or .parquet)")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--anomaly-rate",
        type=float,
        help="share of unusual flows (default 0.03; 0.25 for classification, so every class has rows)",
    )
    parser.add_argument(
        "--task",
        choices=["anomaly", "classification", "regression"],
        default="anomaly",
        help="label column: label (anomaly, 0/1), kind (classification), latency_ms (regression)",
    )
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="add a category (protocol), a boolean (encrypted) and a column with missing values (bytes)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "train"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        if command == "generate":
            return _generate(_generate_parser().parse_args(argv))
        if command == "promote":
            return _promote(_promote_parser().parse_args(argv))
        if command == "rollback":
            return _rollback(_rollback_parser().parse_args(argv))
        if command == "drift":
            return _drift(_drift_parser().parse_args(argv))
        if command == "retrain":
            return _retrain(_retrain_parser().parse_args(argv))
        if command == "import":
            return _import(_import_parser().parse_args(argv))
        if command == "list":
            return _list(_list_parser().parse_args(argv))
        return _train(_train_parser().parse_args(argv))
    except (TrainingError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _promote_parser() -> argparse.ArgumentParser:
    from training.config import DEFAULT_CONFIG_PATH

    parser = _parser(
        "python -m training promote", "Move an alias to a candidate version if it passes the quality gate."
    )
    parser.add_argument(
        "--model-uri", required=True, help="registry root: a local directory or s3://bucket/prefix"
    )
    parser.add_argument("--to", default="production", help="the alias to move")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", help="the candidate version")
    which.add_argument(
        "--from-alias", default="candidate", help="take the candidate from this alias (the default way)"
    )
    parser.add_argument("--data", help="a labelled holdout file; default: the candidate's own test split")
    parser.add_argument(
        "--metric", help="gate metric (default: the config's, else the task's: pr_auc, f1_macro, rmse)"
    )
    parser.add_argument("--margin", type=float, help="allowed shortfall (default from the config: 0.01)")
    parser.add_argument("--force", action="store_true", help="promote even if the gate refuses (recorded)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="training config (TOML)")
    return parser


def _retrain_parser() -> argparse.ArgumentParser:
    from training.config import DEFAULT_CONFIG_PATH

    parser = _parser(
        "python -m training retrain",
        "Train on the newest data, publish a candidate, promote it through the quality gate.",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="a data file, or a prefix/directory ending in / (its newest file is used)",
    )
    parser.add_argument(
        "--model-uri", required=True, help="registry root: a local directory or s3://bucket/prefix"
    )
    parser.add_argument("--to", default="production", help="the alias to promote to")
    parser.add_argument(
        "--metric", help="gate metric (default: the config's, else the task's: pr_auc, f1_macro, rmse)"
    )
    parser.add_argument("--margin", type=float, help="allowed shortfall (default from the config: 0.01)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="training config (TOML)")
    return parser


def _retrain(args: argparse.Namespace) -> int:
    from lambda_app.registry import open_storage
    from training.data.read import latest_data_uri
    from training.lifecycle import PromotionRefusedError, promote
    from training.tasks.checks import load_config
    from training.train import run_training

    config = load_config(args.config)
    data_uri = latest_data_uri(args.data)
    print(f"retraining on {data_uri}")
    published = run_training(data_uri, args.model_uri, config, alias="candidate")
    version = published.manifest.version
    print(f"published candidate {version} to {args.model_uri}")
    metric = args.metric or config.promotion.metric
    margin = config.promotion.margin if args.margin is None else args.margin
    try:
        comparison, record = promote(
            open_storage(args.model_uri), version, args.to, metric=metric, margin=margin
        )
    except PromotionRefusedError as exc:
        print(
            f"not promoted: {exc}; {args.to} unchanged, {version} stays the candidate. To serve it anyway:"
            f" python -m training promote --model-uri {args.model_uri} --version {version} --to {args.to}"
            " --force",
            file=sys.stderr,
        )
        return GATE_REFUSED_EXIT
    if comparison is not None and comparison.current is not None:
        gate = comparison.metric
        print(
            f"gate {gate}: candidate {comparison.candidate[gate]:.4f},"
            f" serving {comparison.current[gate]:.4f} (margin {margin})"
        )
    print(f"{args.to} -> {record.version} ({record.reason})")
    return 0


def _rollback_parser() -> argparse.ArgumentParser:
    parser = _parser("python -m training rollback", "Point an alias back at its previous version.")
    parser.add_argument(
        "--model-uri", required=True, help="registry root: a local directory or s3://bucket/prefix"
    )
    parser.add_argument("--alias", default="production", help="the alias to move back")
    return parser


def _promote(args: argparse.Namespace) -> int:
    from lambda_app.registry import open_storage, read_manifest, resolve_version
    from training.lifecycle import PromotionRefusedError, promote
    from training.tasks import task_kind
    from training.tasks.checks import load_config

    config = load_config(args.config)
    storage = open_storage(args.model_uri)
    version = args.version or resolve_version(storage, args.from_alias)
    task = read_manifest(storage, version).task
    # The config's metric applies to models of its task; others are judged on their task's default.
    metric = args.metric or (config.promotion.metric if config.model.task == task else None)
    margin = config.promotion.margin if args.margin is None else args.margin
    try:
        comparison, record = promote(
            storage, version, args.to, metric=metric, margin=margin, data_uri=args.data, force=args.force
        )
    except PromotionRefusedError as exc:
        print(f"refused: {exc}; --force promotes it anyway (recorded as forced)", file=sys.stderr)
        return 1
    if comparison is not None:
        keys = task_kind(comparison.task).metrics
        print(f"| model | version | {' | '.join(keys)} |")
        print("| --- | --- |" + " ---: |" * len(keys))
        for name, row in (("candidate", comparison.candidate), ("serving", comparison.current)):
            if row is not None:
                values = " | ".join(f"{row[k]:.4f}" if row.get(k) is not None else "-" for k in keys)
                print(f"| {name} | {row['version']} | {values} |")
        print(
            f"holdout: {comparison.holdout_rows} rows of {comparison.holdout_uri};"
            f" gate: {comparison.metric}, margin {margin}"
        )
    print(f"{args.to} -> {record.version} ({record.reason})")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from lambda_app.registry import open_storage
    from training.lifecycle import rollback

    record = rollback(open_storage(args.model_uri), args.alias)
    print(f"{args.alias} -> {record.version} ({record.reason})")
    return 0


def _list_parser() -> argparse.ArgumentParser:
    parser = _parser(
        "python -m training list",
        "The registry's versions (created, task, estimator, key holdout metric, size) and its aliases,"
        " each with where it pointed before.",
    )
    parser.add_argument(
        "--model-uri", required=True, help="registry root: a local directory or s3://bucket/prefix"
    )
    parser.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    return parser


def _list(args: argparse.Namespace) -> int:
    from lambda_app.registry import open_storage
    from training.listing import list_registry, render

    listing = list_registry(open_storage(args.model_uri))
    print(json.dumps(listing.as_dict(), indent=2) if args.json else render(listing))
    return 0


def _drift_parser() -> argparse.ArgumentParser:
    from training.config import DEFAULT_CONFIG_PATH

    parser = _parser(
        "python -m training drift",
        "Compare a data window with a model's training reference; exit 1 on drift.",
    )
    parser.add_argument("--data", required=True, help="the window: CSV or Parquet, local or s3://")
    parser.add_argument(
        "--model-uri", required=True, help="registry root: a local directory or s3://bucket/prefix"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--alias", default="production", help="the model the alias points at")
    which.add_argument("--version", help="a version instead of an alias")
    parser.add_argument(
        "--threshold", type=float, help="PSI above which a feature has drifted (config: 0.25)"
    )
    parser.add_argument("--out", default="reports/drift", help="directory for drift.json and drift.html")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="training config (TOML)")
    return parser


def _drift(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lambda_app.registry import open_storage
    from training.evaluation.drift import check_drift
    from training.tasks.checks import load_config

    drift = load_config(args.config).drift
    threshold = drift.psi_threshold if args.threshold is None else args.threshold
    report = check_drift(
        open_storage(args.model_uri),
        args.data,
        alias=args.alias,
        version=args.version,
        threshold=threshold,
        missing_increase=drift.missing_share_increase,
        out_dir=Path(args.out),
    )
    for name, values in report.features.items():
        print(
            f"{name}: PSI {values['psi']:.4f}, out of range {values['out_of_range_share']:.2%},"
            f" missing {values['missing_share']:.2%} (training {values['reference_missing_share']:.2%})"
        )
    if report.anomaly_rate is not None and report.reference_anomaly_rate is not None:
        print(f"anomaly rate {report.anomaly_rate:.4f} (training {report.reference_anomaly_rate:.4f})")
    print(f"report: {args.out}")
    if report.drifted:
        print(
            f"drift: {', '.join(report.drifted)} (PSI above {threshold}, or missing share up by more than"
            f" {drift.missing_share_increase:.0%})",
            file=sys.stderr,
        )
        return 1
    return 0


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.data.synthetic import generate

    rate = (
        args.anomaly_rate
        if args.anomaly_rate is not None
        else (0.25 if args.task == "classification" else 0.03)
    )
    frame = generate(args.rows, anomaly_rate=rate, seed=args.seed, task=args.task, mixed=args.mixed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    if args.task == "anomaly":
        print(f"wrote {len(frame)} rows ({int(frame['label'].sum())} anomalies) to {out}")
    else:
        print(f"wrote {len(frame)} rows for {args.task} (label column {frame.columns[-1]!r}) to {out}")
    return 0


def _import_parser() -> argparse.ArgumentParser:
    parser = _parser(
        "python -m training import",
        "Publish a model fitted elsewhere: convert, check parity, evaluate, publish.",
    )
    parser.add_argument(
        "--model", required=True, help="the fitted model: .skops, or .joblib/.pkl with --allow-pickle"
    )
    parser.add_argument(
        "--data",
        required=True,
        help="sample rows (CSV or Parquet, local or s3://): schema, parity, evaluation",
    )
    parser.add_argument(
        "--model-uri", required=True, help="registry root: a local directory or s3://bucket/prefix"
    )
    parser.add_argument(
        "--alias", default="production", help="alias to move to the new version ('' for none)"
    )
    parser.add_argument(
        "--task", choices=["anomaly", "classification", "regression"], help="default: from the estimator"
    )
    parser.add_argument("--label", help="the sample's label column, to evaluate the model (optional)")
    parser.add_argument(
        "--classes",
        type=class_names,
        metavar="A,B,C",
        help="an XGBoost or LightGBM classifier file's classes 0..n-1 by name, in that order (whole"
        " numbers stay numbers); the model then answers them",
    )
    parser.add_argument("--name", help="model name (default: after the task)")
    parser.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="TYPE",
        help="a type a .skops file needs beyond skops' defaults (the refusal lists them); repeat per type",
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load a .joblib/.pkl file (a pickle runs code when loaded: only files you made yourself)",
    )
    parser.add_argument(
        "--allow-worse-than-baseline",
        action="store_true",
        help="publish even if the task's baseline beats the model on the sample",
    )
    return parser


def class_names(text: str) -> list[int | str]:
    """``--classes a,b,c``: the names, whitespace around each dropped; all whole numbers: numbers."""
    names = [part.strip() for part in text.split(",")]
    if len(names) < 2 or not all(names):
        raise argparse.ArgumentTypeError(f"expected two or more comma-separated class names, got {text!r}")
    if all(name.lstrip("-").isdigit() for name in names):
        return [int(name) for name in names]
    return list(names)


def _import(args: argparse.Namespace) -> int:
    from training.importer import import_model

    published = import_model(
        args.model,
        args.data,
        args.model_uri,
        alias=args.alias or None,
        task=args.task,
        label=args.label,
        name=args.name,
        trust=args.trust,
        allow_pickle=args.allow_pickle,
        allow_worse_than_baseline=args.allow_worse_than_baseline,
        classes=args.classes,
    )
    _print_published(
        published.manifest,
        args.model_uri,
        published.alias.alias if published.alias else None,
        unlabelled="no --label given: pass the sample's label column to evaluate the model on it",
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from training.task_choice import choose_config
    from training.train import run_training

    config = choose_config(args.config, args.task, args.label, args.data)
    published = run_training(
        args.data,
        args.model_uri,
        config,
        alias=args.alias or None,
        allow_worse_than_baseline=args.allow_worse_than_baseline,
    )
    _print_published(published.manifest, args.model_uri, published.alias.alias if published.alias else None)
    return 0


def _print_published(
    manifest: Any,
    model_uri: str,
    alias: str | None,
    unlabelled: str = "the data had no label column; see the warning above",
) -> None:
    """What was published, and its holdout metrics beside the baseline's, as a Markdown table."""
    from lambda_app.registry import artifact_key, open_storage
    from training.tasks import task_kind

    shown = f" as {alias}" if alias else ""
    print(f"published {manifest.name} version {manifest.version} ({manifest.task}) to {model_uri}{shown}")
    if manifest.metrics:
        keys = [k for k in task_kind(manifest.task).metrics if k in manifest.metrics]
        summary = ", ".join(f"{k}={manifest.metrics[k]:.3f}" for k in keys if manifest.metrics[k] is not None)
        threshold = f" at threshold {manifest.threshold:.4f}" if manifest.threshold is not None else ""
        print(f"holdout: {summary}{threshold}")
        evaluation = json.loads(
            open_storage(model_uri).read(artifact_key(manifest.version, "evaluation.json"))
        )
        baseline = evaluation.get("baseline") or {}
        if baseline.get("metrics"):
            print("| holdout | " + " | ".join(keys) + " |")
            print("| --- |" + " ---: |" * len(keys))
            for label, values in (("model", manifest.metrics), (baseline["name"], baseline["metrics"])):
                cells = " | ".join("-" if values.get(k) is None else f"{values[k]:.3f}" for k in keys)
                print(f"| {label} | {cells} |")
    else:
        print(f"unlabelled: no holdout metrics ({unlabelled})")
    print(f"report: {model_uri}/{manifest.version}/evaluation.html")


if __name__ == "__main__":
    raise SystemExit(main())
