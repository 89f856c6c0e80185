"""Start a batch-scoring run on AWS and watch it: ``python scripts/batch_score.py --input s3://... --output s3://...``.

Starts one execution of the batch state machine (terraform/batch.tf, output ``batch``) over every
table under the input prefix, prints the Map Run's progress (objects done, failed, pending) until it
ends, and exits 0 when every object was scored, 3 when the run succeeded with failed objects it
tolerated (batch_tolerated_failure_percentage), 1 when the run failed, timed out or was aborted.
Each object's rows and rejects are in the batch function's logs and beside its output object
(``<name>.rejects.<format>``); the run's results are under ``<output prefix>/_runs/``.

The prefixes must lie under the stack's batch_input_prefix and batch_output_prefix (the roles allow
nothing else); AWS_ENDPOINT_URL points it at a local AWS (moto) as everywhere in this project.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_SOME_FAILED = 0, 1, 3
ENDED = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def prefix_of(uri: str, what: str) -> tuple[str, str]:
    """(bucket, prefix ending in '/') of an ``s3://bucket/prefix`` URI."""
    if not uri.startswith("s3://"):
        raise ValueError(f"--{what} must be an s3:// prefix, got {uri!r}")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket or not prefix.strip("/"):
        raise ValueError(f"--{what} must name a bucket and a prefix (s3://bucket/prefix/), got {uri!r}")
    return bucket, prefix.strip("/") + "/"


def execution_input(source: str, output: str) -> dict[str, str]:
    """The state machine's input for these two prefixes (both in the stack's bucket, not nested)."""
    in_bucket, in_prefix = prefix_of(source, "input")
    out_bucket, out_prefix = prefix_of(output, "output")
    if in_bucket != out_bucket:
        raise ValueError(
            f"input and output must be in the same bucket (the stack's), got {in_bucket} and {out_bucket}"
        )
    if out_prefix.startswith(in_prefix) or in_prefix.startswith(out_prefix):
        raise ValueError("the output prefix must lie outside the input prefix (and the reverse)")
    return {"input_prefix": in_prefix, "output_prefix": out_prefix}


def item_counts(sfn: Any, execution_arn: str) -> dict[str, int] | None:
    """The Map Run's item counts (succeeded, failed, pending, running, total), once it exists."""
    runs = sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
    if not runs:
        return None
    counts: dict[str, int] = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]
    return counts


def progress_line(status: str, counts: dict[str, int] | None, started: float) -> str:
    elapsed = f"{time.monotonic() - started:,.0f} s"
    if counts is None:
        return f"{status}: listing objects ({elapsed})"
    return (
        f"{status}: {counts.get('succeeded', 0)}/{counts.get('total', 0)} objects scored,"
        f" {counts.get('failed', 0)} failed, {counts.get('running', 0)} running,"
        f" {counts.get('pending', 0)} pending ({elapsed})"
    )


def run(
    sfn: Any, state_machine_arn: str, payload: dict[str, str], poll_seconds: float, timeout: float
) -> int:
    name = f"batch-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    execution_arn = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
    )["executionArn"]
    print(f"started {execution_arn}", file=sys.stderr)
    started = time.monotonic()
    last = ""
    while True:
        execution = sfn.describe_execution(executionArn=execution_arn)
        status = execution["status"]
        counts = item_counts(sfn, execution_arn)
        line = progress_line(status, counts, started)
        if line.split(" (")[0] != last.split(" (")[0]:
            print(line, file=sys.stderr)
            last = line
        if status in ENDED:
            break
        if time.monotonic() - started > timeout:
            print(
                f"error: still {status} after {timeout:,.0f} s; it goes on: {execution_arn}", file=sys.stderr
            )
            return EXIT_FAILED
        time.sleep(poll_seconds)
    if status != "SUCCEEDED":
        cause = (
            execution.get("cause")
            or execution.get("error")
            or "see the execution in the Step Functions console"
        )
        print(f"error: the run {status}: {cause}", file=sys.stderr)
        return EXIT_FAILED
    failed = (counts or {}).get("failed", 0) + (counts or {}).get("timedOut", 0)
    if failed:
        print(
            f"warning: {failed} object(s) failed (tolerated); their errors are in the run results",
            file=sys.stderr,
        )
        return EXIT_SOME_FAILED
    print(f"done: every object under s3://.../{payload['input_prefix']} scored", file=sys.stderr)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/batch_score.py",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", required=True, help="s3://BUCKET/<batch_input_prefix>/... to score")
    parser.add_argument("--output", required=True, help="s3://BUCKET/<batch_output_prefix>/... to write")
    parser.add_argument(
        "--state-machine",
        default=os.environ.get("BATCH_STATE_MACHINE_ARN"),
        help="the batch state machine's ARN (terraform output -json batch); default $BATCH_STATE_MACHINE_ARN",
    )
    parser.add_argument(
        "--poll-seconds", type=float, default=10.0, help="how often to check progress (default 10)"
    )
    parser.add_argument(
        "--timeout-seconds", type=float, default=24 * 3600, help="stop watching after this long"
    )
    args = parser.parse_args(argv)
    if not args.state_machine:
        parser.error("--state-machine (or BATCH_STATE_MACHINE_ARN) is required")
    try:
        payload = execution_input(args.input, args.output)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sfn = boto3.client("stepfunctions")
        return run(sfn, args.state_machine, payload, args.poll_seconds, args.timeout_seconds)
    except (BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
