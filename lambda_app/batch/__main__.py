"""Score table files with the registry's model: ``python -m lambda_app.batch --input IN --output OUT``.

IN is a .csv, .csv.gz or .parquet file, or a directory or S3 prefix holding them; OUT is a file of the
same format (or a directory/prefix for many). Every input column is kept and the model's answer is
added (anomaly: prediction, score; classification: prediction, probability_<class>; regression:
prediction) with the model_version. Rows the model cannot take go to a rejects file beside the output
(OUT's name with .rejects before the format) with their row number and the reason.

Exit codes: 0 every row scored; 3 some rows rejected (the rest scored and written); 1 some file failed
(it has no output: nothing half-written is left behind; the other files are still scored) or nothing
could start; 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_REJECTED = 0, 1, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lambda_app.batch",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "example: python -m lambda_app.batch --input data/sample.csv --output scored/sample.csv\n"
            "model options default to the service's environment: MODEL_URI, MODEL_ALIAS, MODEL_VERSION"
        ),
    )
    parser.add_argument(
        "--input", required=True, metavar="PATH_OR_S3", help="a table file, directory or s3:// prefix"
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="PATH_OR_S3",
        help="a file (for one input file) or a directory/prefix",
    )
    parser.add_argument("--model-uri", help="the registry (default: $MODEL_URI, else model-registry)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--alias", help="the alias to score with (default: $MODEL_ALIAS, else production)")
    which.add_argument("--version", help="one model version (default: $MODEL_VERSION)")
    parser.add_argument(
        "--chunk-rows",
        type=int,
        help="rows per chunk; bounds memory (default: $BATCH_CHUNK_ROWS, else 100000)",
    )
    parser.add_argument(
        "--explain",
        type=int,
        metavar="K",
        help="add each row's explanation: its base value, value, and K largest feature contributions"
        " (default: $BATCH_EXPLAIN, else 0: none); costs far more than scoring for large forests",
    )
    parser.add_argument(
        "--separator",
        metavar="SEP",
        type=_separator,
        help="a CSV's field separator: ',' ';' 'tab' or '|' (default: $BATCH_SEPARATOR, else a comma, or"
        " semicolons or tabs when a file's header has no comma but those); outputs use the same",
    )
    parser.add_argument(
        "--decimal",
        choices=(".", ","),
        help="the decimal separator of a CSV's numbers (default: $BATCH_DECIMAL, else '.'); with ','"
        " 12,5 is 12.5",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _separator(value: str) -> str:
    """``--separator``: one of the separators a CSV may declare, a tab written as ``tab`` or ``\\t``."""
    from lambda_app.batch.formats import SEPARATORS

    separator = "\t" if value.lower() in ("tab", "\\t") else value
    if separator not in SEPARATORS:
        raise argparse.ArgumentTypeError(f"{value!r}: use ',' ';' 'tab' or '|'")
    return separator


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lambda_app.observability import logger

    # The service's JSON logs are for Lambda; this command reports in plain lines. Restored after, as
    # the logger is the process's (tests run the command in-process).
    level = logger.log_level
    logger.setLevel("WARNING")
    try:
        return _score(args)
    finally:
        logger.setLevel(level)


def _score(args: argparse.Namespace) -> int:
    # Imported here so --help answers at once.
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    from tqdm import tqdm

    from lambda_app.batch.formats import UnsupportedFormatError
    from lambda_app.batch.job import explainer_of
    from lambda_app.batch.locations import LocationError, is_s3, plan
    from lambda_app.batch.run import run_job
    from lambda_app.config import Settings
    from lambda_app.errors import ExplanationUnavailableError, ModelUnavailableError
    from lambda_app.model_store import ModelStore

    overrides: dict[str, Any] = {
        "preload_model": False,
        "model_refresh_seconds": 0,
        "model_load_timeout_seconds": 60,
    }
    if args.model_uri:
        overrides["model_uri"] = args.model_uri
    if args.alias:
        overrides.update(model_alias=args.alias, model_version=None)
    if args.version:
        overrides["model_version"] = args.version
    if args.chunk_rows:
        overrides["batch_chunk_rows"] = args.chunk_rows
    if args.explain is not None:
        overrides["batch_explain"] = args.explain
    if args.separator is not None:
        overrides["batch_separator"] = args.separator
    if args.decimal is not None:
        overrides["batch_decimal"] = args.decimal
    try:
        settings = Settings(**overrides)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    s3 = (
        boto3.client("s3", endpoint_url=settings.aws_endpoint_url)
        if is_s3(args.input) or is_s3(args.output)
        else None
    )
    try:
        planned = plan(args.input, args.output, s3)
        model = ModelStore(settings).get()
        explainer = explainer_of(model) if settings.batch_explain else None
    except (
        LocationError,
        UnsupportedFormatError,
        ModelUnavailableError,
        ExplanationUnavailableError,
        ClientError,
        BotoCoreError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR

    jobs = planned.jobs
    print(
        f"scoring {len(jobs)} file(s) with {model.manifest.name} {model.manifest.version}"
        f" ({model.manifest.task})",
        file=sys.stderr,
    )
    if explainer is not None:
        print(
            f"explaining each row's {explainer.answer_space} with its {settings.batch_explain} largest"
            " feature contributions (explain_* columns)",
            file=sys.stderr,
        )
    for path, reason in planned.skipped:
        print(f"skipped: {path}: {reason}", file=sys.stderr)
    started = time.perf_counter()
    rows = rejected = failed = 0
    tally: Counter[str] = Counter()
    for job in jobs:
        with tqdm(
            desc=job.name, unit=" rows", unit_scale=True, disable=True if args.quiet else None, leave=False
        ) as bar:
            try:
                result = run_job(
                    job,
                    model,
                    s3,
                    settings.batch_chunk_rows,
                    on_chunk=bar.update,
                    refuse_unseen=settings.unseen_categories == "refuse",
                    explain=settings.batch_explain,
                    separator=settings.batch_separator,
                    decimal=settings.batch_decimal,
                )
            except Exception as exc:  # any problem of one file is that file's failure, never the run's
                failed += 1
                print(f"error: {job.source}: {file_error(exc)} (no output written)", file=sys.stderr)
                continue
        rows += result.rows
        rejected += result.rejected
        tally.update(result.tally)
        rejects = f"; {result.rejected:,} rejected -> {job.rejects}" if result.rejected else ""
        if result.separator != "," and settings.batch_separator is None:
            tab = result.separator == "\t"
            shown, option = ("tabs", "tab") if tab else ("semicolons", repr(result.separator))
            print(
                f"{job.source}: its header has no comma but {shown}: read and written {shown[:-1]}-separated"
                f" (--separator {option} to say so)",
                file=sys.stderr,
            )
        print(
            f"{job.source} -> {job.output}: {result.scored:,} rows scored in {result.seconds:.1f} s{rejects}",
            file=sys.stderr,
        )
    seconds = time.perf_counter() - started
    print(
        summary(len(jobs) - failed, rows, rejected, tally, seconds, failed, len(planned.skipped)),
        file=sys.stderr,
    )
    if failed:
        print(f"error: {failed} of {len(jobs)} file(s) failed", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_REJECTED if rejected else EXIT_OK


KNOWN_FILE_ERRORS = ("TableSchemaError", "UnsupportedFormatError", "ModelOutputError", "LocationError")


def file_error(exc: BaseException) -> str:
    """One line saying why a file failed: the message alone where it is ours, else with its kind."""
    message = " ".join(str(exc).split()) or "no details"
    if type(exc).__name__ in KNOWN_FILE_ERRORS:
        return message
    hint = {
        "EOFError": "the compressed file is truncated",
        "BadGzipFile": "not a gzip file",
        "ArrowInvalid": "the file cannot be read as a table",
    }.get(type(exc).__name__)
    return f"{hint}: {message}" if hint else f"{type(exc).__name__}: {message}"


def summary(
    files: int,
    rows: int,
    rejected: int,
    tally: Counter[str],
    seconds: float,
    failed: int = 0,
    skipped: int = 0,
) -> str:
    """One line: files, rows, the task's counts (anomalies, rows per class, mean prediction), rejects,
    failed and skipped files, time."""
    scored = rows - rejected
    figures = []
    for name, value in sorted(tally.items()):
        if name.endswith(" sum"):
            mean = value / scored if scored else 0.0
            figures.append(f"{name.removesuffix(' sum')} mean {mean:.6g}")
        else:
            share = f" ({100 * value / scored:.2f}%)" if scored else ""
            figures.append(f"{name} {int(value):,}{share}")
    rate = f", {rows / seconds:,.0f} rows/s" if seconds > 0 else ""
    counts = f": {', '.join(figures)}" if figures else ""
    others = "".join(
        f"; {count} file(s) {what}" for count, what in ((failed, "failed"), (skipped, "skipped")) if count
    )
    return (
        f"done: {files} file(s), {rows:,} rows, {scored:,} scored{counts}; {rejected:,} rejected{others};"
        f" {seconds:.1f} s{rate}"
    )


if __name__ == "__main__":
    sys.exit(main())
