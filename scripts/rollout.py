"""Move the function's ``live`` alias to a new version: canary, linear or all at once, rolled back on alarm.

API Gateway invokes the ``live`` alias, never ``$LATEST``. Terraform publishes a version on every
image or configuration change but leaves the alias alone; this script shifts traffic::

    scripts/tf.sh -chdir=terraform output -json rollout > rollout.json
    python scripts/rollout.py --config rollout.json          # shift per the deployment preference
    python scripts/rollout.py --config rollout.json --abort  # undo a cut-off rollout

The preference uses CodeDeploy's names: ``AllAtOnce``, ``Canary<P>Percent<M>Minutes`` (P % for M
minutes, then everything) and ``Linear<P>PercentEvery<M>Minutes`` (P % more every M minutes). While
a share of traffic is on the new version, two signals are polled: the rollback alarms (whole
function), and the new version's own errors since the rollout began (Lambda ``Errors`` by
``ExecutedVersion``, the service's ``ServerErrors`` by ``function_version``), which see a failing
canary as soon as CloudWatch has its first datapoint, before any alarm could. An alarm in ALARM,
new-version errors over ``--max-canary-errors`` (default 0), an interrupt (Ctrl-C, SIGTERM from a
cancelled CI job) or an API error puts the alias back on the previous version with no routing.

Why weighted alias routing and not CodeDeploy: the logic is short, runs where the deploy
runs, and is tested against the same Lambda and CloudWatch APIs Terraform provisions (moto has
no CodeDeploy deployment engine, so a CodeDeploy rollout could not be exercised at all here).
The price: the rollout lives as long as this process; a runner that dies without a signal leaves
the split in place until ``--abort`` or the next rollout (which refuses to start over a split).

Exit codes: 0 live (or already live), 1 rolled back on alarm, 2 refused to start (or a rollback
alarm vanished mid-way: rolled back), 3 interrupted and rolled back.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
from botocore.exceptions import ClientError

PREFERENCE = re.compile(
    r"^(?:(?P<all>AllAtOnce)"
    r"|Canary(?P<canary_pct>\d+)Percent(?P<canary_min>\d+)Minutes?"
    r"|Linear(?P<linear_pct>\d+)PercentEvery(?P<linear_min>\d+)Minutes?)$"
)


class RolloutError(Exception):
    """The rollout cannot start; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Step:
    """Route ``weight`` of the traffic to the new version, then watch the alarms for ``hold_seconds``."""

    weight: float
    hold_seconds: float


def plan_steps(preference: str) -> list[Step]:
    """The traffic steps before the final switch, from a CodeDeploy-style preference name."""
    match = PREFERENCE.match(preference)
    if match is None:
        raise RolloutError(
            f"unknown deployment preference {preference!r}: use AllAtOnce, "
            "Canary<P>Percent<M>Minutes or Linear<P>PercentEvery<M>Minutes"
        )
    if match["all"]:
        return []
    percent = int(match["canary_pct"] or match["linear_pct"])
    minutes = int(match["canary_min"] or match["linear_min"])
    if not 0 < percent < 100 or minutes < 1:
        raise RolloutError(f"{preference}: the percentage must be 1-99 and the interval at least 1 minute")
    if match["canary_pct"]:
        return [Step(percent / 100, minutes * 60)]
    return [Step(k * percent / 100, minutes * 60) for k in range(1, (99 // percent) + 1)]


class Outcome(Enum):
    LIVE = "live"
    ALREADY_LIVE = "already live"
    ROLLED_BACK = "rolled back"
    INTERRUPTED = "interrupted and rolled back"


EXIT_CODES = {Outcome.LIVE: 0, Outcome.ALREADY_LIVE: 0, Outcome.ROLLED_BACK: 1, Outcome.INTERRUPTED: 3}


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    live_version: str
    reason: str = ""


class Rollout:
    """Shift one alias from its current version to a target one, watching alarms between steps."""

    def __init__(
        self,
        lambda_client: Any,
        cloudwatch_client: Any,
        function_name: str,
        alias: str,
        alarm_names: Sequence[str],
        *,
        poll_seconds: float = 15.0,
        metrics_namespace: str | None = None,
        service: str | None = None,
        max_canary_errors: float = 0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        log: Callable[[str], None] = print,
    ) -> None:
        self.lam = lambda_client
        self.cloudwatch = cloudwatch_client
        self.function_name = function_name
        self.alias = alias
        self.alarm_names = list(alarm_names)
        self.poll_seconds = poll_seconds
        self.metrics_namespace = metrics_namespace
        self.service = service
        self.max_canary_errors = max_canary_errors
        self.sleep = sleep
        self.now = now
        self.clock = clock
        self.log = log

    def run(self, target_version: str, preference: str) -> Result:
        steps = plan_steps(preference)
        previous = self._check_can_start(target_version)
        if previous == target_version:
            self.log(f"{self.function_name}:{self.alias} already serves version {target_version}")
            return Result(Outcome.ALREADY_LIVE, target_version)
        started = self.now() - timedelta(minutes=1)  # CloudWatch datapoints start on the minute
        try:
            for step in steps:
                self._route(previous, {target_version: step.weight})
                self.log(f"{step.weight:.0%} of traffic on version {target_version}, watching alarms")
                reason = self._watch(step.hold_seconds, target_version, started)
                if reason:
                    self._route(previous, {})
                    self.log(f"ROLLED BACK to version {previous}: {reason}")
                    return Result(Outcome.ROLLED_BACK, previous, reason)
            self._route(target_version, {})
        except KeyboardInterrupt:
            self._route(previous, {})
            self.log(f"INTERRUPTED: rolled back to version {previous}")
            return Result(Outcome.INTERRUPTED, previous, "interrupted")
        except Exception:
            self._route(previous, {})
            self.log(f"ERROR during the rollout: rolled back to version {previous}")
            raise
        self.log(f"version {target_version} is live on {self.function_name}:{self.alias}")
        return Result(Outcome.LIVE, target_version)

    def abort(self) -> Result:
        """Put the alias back on its primary version with no traffic split (undo a cut-off rollout)."""
        primary = self._alias()["FunctionVersion"]
        self._route(primary, {})
        self.log(f"{self.function_name}:{self.alias} serves version {primary} only")
        return Result(Outcome.ROLLED_BACK, primary, "aborted")

    def live_version(self) -> str:
        """The alias's primary version (what serves all traffic outside a rollout)."""
        return str(self._alias()["FunctionVersion"])

    def firing_alarms(self) -> list[str]:
        """Rollback (metric) alarms in ALARM now; a missing one is an error (a typo must not disarm it)."""
        if not self.alarm_names:
            return []
        found = self.cloudwatch.describe_alarms(AlarmNames=self.alarm_names)
        states = {alarm["AlarmName"]: alarm["StateValue"] for alarm in found["MetricAlarms"]}
        missing = sorted(set(self.alarm_names) - set(states))
        if missing:
            raise RolloutError(f"rollback alarm(s) not found: {', '.join(missing)}")
        return sorted(name for name, state in states.items() if state == "ALARM")

    def _check_can_start(self, target_version: str) -> str:
        if not target_version.isdigit():
            raise RolloutError(f"target version must be a published version number, not {target_version!r}")
        try:
            self.lam.get_function(FunctionName=self.function_name, Qualifier=target_version)
            alias = self._alias()
        except ClientError as error:
            raise RolloutError(
                f"{self.function_name} version {target_version} or alias {self.alias}: {error}"
            ) from error
        split = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        if split:
            raise RolloutError(
                f"{self.function_name}:{self.alias} already splits traffic {split}: a rollout is running or "
                "was cut off; run with --abort first"
            )
        firing = self.firing_alarms()
        if firing and alias["FunctionVersion"] != target_version:
            raise RolloutError(f"alarm(s) already in ALARM before the rollout: {', '.join(firing)}")
        return str(alias["FunctionVersion"])

    def canary_errors(self, version: str, since: datetime) -> dict[str, float]:
        """Errors the given version itself produced since ``since``: Lambda's and the service's 5xx."""
        probes = [
            (
                "AWS/Lambda",
                "Errors",
                {"FunctionName": self.function_name, "Resource": f"{self.function_name}:{self.alias}"}
                | {"ExecutedVersion": version},
            )
        ]
        if self.metrics_namespace and self.service:
            probes.append(
                (
                    self.metrics_namespace,
                    "ServerErrors",
                    {"service": self.service, "function_version": version},
                )
            )
        totals = {}
        for namespace, metric, dimensions in probes:
            found = self.cloudwatch.get_metric_statistics(
                Namespace=namespace,
                MetricName=metric,
                Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
                StartTime=since,
                EndTime=self.now() + timedelta(minutes=1),
                Period=60,
                Statistics=["Sum"],
            )
            totals[f"{namespace}/{metric}"] = float(sum(point["Sum"] for point in found["Datapoints"]))
        return totals

    def _watch(self, seconds: float, version: str, since: datetime) -> str:
        """Why to roll back ('' when the step held): a firing alarm or the canary's own errors."""
        deadline = self.clock() + seconds
        while True:
            firing = self.firing_alarms()
            if firing:
                return f"alarm {', '.join(firing)} in ALARM"
            errors = {name: n for name, n in self.canary_errors(version, since).items() if n > 0}
            if sum(errors.values()) > self.max_canary_errors:
                counts = ", ".join(f"{n:g} {name}" for name, n in errors.items())
                return f"version {version} itself produced {counts}"
            remaining = deadline - self.clock()
            if remaining <= 0:
                return ""
            self.sleep(min(self.poll_seconds, remaining))

    def _alias(self) -> dict[str, Any]:
        alias: dict[str, Any] = self.lam.get_alias(FunctionName=self.function_name, Name=self.alias)
        return alias

    def _route(self, version: str, weights: dict[str, float]) -> None:
        self.lam.update_alias(
            FunctionName=self.function_name,
            Name=self.alias,
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": weights},
        )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, help="`terraform output -json rollout` saved to a file")
    parser.add_argument("--function", help="function name (overrides the config)")
    parser.add_argument("--alias", help="alias name (default live)")
    parser.add_argument("--version", help="the version to make live (default: the one Terraform published)")
    parser.add_argument(
        "--preference", help="AllAtOnce | Canary10Percent15Minutes | Linear10PercentEvery1Minute ..."
    )
    parser.add_argument("--alarm", action="append", default=None, help="a rollback alarm (repeatable)")
    parser.add_argument("--poll-seconds", type=float, default=15.0)
    parser.add_argument("--metrics-namespace", help="the service's EMF namespace (default from the config)")
    parser.add_argument("--service", help="the service dimension (default from the config)")
    parser.add_argument(
        "--max-canary-errors", type=float, default=0, help="errors the new version may produce (default 0)"
    )
    parser.add_argument("--region")
    parser.add_argument("--abort", action="store_true", help="put the alias back on its primary version")
    parser.add_argument("--print-live", action="store_true", help="print the alias's version and exit")
    parser.add_argument(
        "--ignore-alarms",
        action="store_true",
        help="no alarm checks (an emergency switch back to a known version)",
    )
    args = parser.parse_args(argv)

    config: dict[str, Any] = json.loads(args.config.read_text()) if args.config else {}
    function = args.function or config.get("function_name")
    alias = args.alias or config.get("alias") or "live"
    if args.version is not None and not args.version.strip():
        parser.error("--version is empty")
    version = args.version or config.get("target_version")
    preference = args.preference or config.get("preference") or "AllAtOnce"
    alarms = args.alarm if args.alarm is not None else config.get("alarm_names", [])
    if args.ignore_alarms:
        alarms = []
    region = args.region or config.get("region")
    if not function or (not (args.abort or args.print_live) and not version):
        parser.error("give --config or --function and --version")

    rollout = Rollout(
        boto3.client("lambda", region_name=region),
        boto3.client("cloudwatch", region_name=region),
        function,
        alias,
        alarms,
        poll_seconds=args.poll_seconds,
        metrics_namespace=args.metrics_namespace or config.get("metrics_namespace"),
        service=args.service or config.get("service"),
        max_canary_errors=args.max_canary_errors,
    )
    if args.print_live:
        print(rollout.live_version())
        return 0
    previous_handler = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        result = rollout.abort() if args.abort else rollout.run(str(version), preference)
    except RolloutError as error:
        print(f"rollout stopped: {error}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    return EXIT_CODES[result.outcome] if not args.abort else 0


if __name__ == "__main__":
    sys.exit(main())
