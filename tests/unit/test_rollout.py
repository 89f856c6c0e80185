"""scripts/rollout.py against moto's Lambda alias and CloudWatch alarm APIs (in-process).

Time is simulated: ``sleep`` advances a fake clock and may run a hook (force an alarm state,
record the alias's routing at that moment, raise an interrupt), so a 10-minute linear rollout
runs in milliseconds while every alias change goes through the real UpdateAlias/GetAlias calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from scripts.rollout import Outcome, Rollout, RolloutError, Step, main, plan_steps

FUNCTION = "anomaly-detector"
ALARMS = ["anomaly-detector-lambda-errors", "anomaly-detector-api-5xx-rate"]


@pytest.mark.parametrize(
    ("preference", "steps"),
    [
        ("AllAtOnce", []),
        ("Canary10Percent5Minutes", [Step(0.10, 300)]),
        ("Canary25Percent1Minute", [Step(0.25, 60)]),
        ("Linear25PercentEvery2Minutes", [Step(0.25, 120), Step(0.5, 120), Step(0.75, 120)]),
        ("Linear30PercentEvery1Minute", [Step(0.3, 60), Step(0.6, 60), Step(0.9, 60)]),
    ],
)
def test_preferences_become_traffic_steps(preference: str, steps: list[Step]) -> None:
    assert plan_steps(preference) == steps


def test_linear_ten_percent_is_nine_steps() -> None:
    assert [round(step.weight, 2) for step in plan_steps("Linear10PercentEvery1Minute")] == [
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
        0.8,
        0.9,
    ]


@pytest.mark.parametrize(
    "preference",
    ["Canary", "Canary0Percent5Minutes", "Canary100Percent5Minutes", "Linear10PercentEvery0Minutes"],
)
def test_bad_preferences_are_refused(preference: str) -> None:
    with pytest.raises(RolloutError):
        plan_steps(preference)


@dataclass
class FakeTime:
    """A clock that only moves when the rollout sleeps; hooks run at chosen simulated times."""

    now: float = 0.0
    hooks: list[tuple[float, Callable[[], None]]] = field(default_factory=list)
    on_sleep: Callable[[], None] | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.on_sleep:
            self.on_sleep()
        due = [hook for at, hook in self.hooks if at <= self.now]
        self.hooks = [(at, hook) for at, hook in self.hooks if at > self.now]
        for hook in due:
            hook()


@dataclass
class Stack:
    lam: Any
    cloudwatch: Any
    time: FakeTime
    logs: list[str]

    def rollout(self, alarms: list[str] = ALARMS, max_canary_errors: float = 0) -> Rollout:
        return Rollout(
            self.lam,
            self.cloudwatch,
            FUNCTION,
            "live",
            alarms,
            poll_seconds=15,
            metrics_namespace="AnomalyDetector",
            service=FUNCTION,
            max_canary_errors=max_canary_errors,
            sleep=self.time.sleep,
            clock=self.time.clock,
            log=self.logs.append,
        )

    def alias(self) -> tuple[str, dict[str, float]]:
        alias = self.lam.get_alias(FunctionName=FUNCTION, Name="live")
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return alias["FunctionVersion"], weights

    def set_alarm(self, name: str, state: str) -> None:
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")

    def put_errors(self, namespace: str, metric: str, dimensions: dict[str, str], count: float) -> None:
        self.cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    "Value": count,
                    "Unit": "Count",
                }
            ],
        )

    def record_routing(self) -> list[tuple[str, dict[str, float]]]:
        seen: list[tuple[str, dict[str, float]]] = []
        self.time.on_sleep = lambda: seen.append(self.alias())
        return seen


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A function with versions 1 and 2 published, ``live`` on 1, and two rollback alarms (OK)."""
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(
            RoleName="fn",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        lam = boto3.client("lambda", region_name="us-east-1")
        image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/anomaly-detector"
        lam.create_function(
            FunctionName=FUNCTION,
            Role=role,
            PackageType="Image",
            Code={"ImageUri": f"{image}:1"},
            Publish=True,
        )
        lam.update_function_code(FunctionName=FUNCTION, ImageUri=f"{image}:2", Publish=True)
        lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for name in ALARMS:
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                Namespace="AWS/Lambda",
                MetricName="Errors",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=0,
                ComparisonOperator="GreaterThanThreshold",
            )
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="test")
        yield Stack(lam, cloudwatch, FakeTime(), [])


def test_versions_exist(stack: Stack) -> None:
    versions = {v["Version"] for v in stack.lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]}
    assert {"1", "2"} <= versions


def test_a_healthy_canary_holds_then_goes_live(stack: Stack) -> None:
    seen = stack.record_routing()
    result = stack.rollout().run("2", "Canary10Percent5Minutes")
    assert result.outcome is Outcome.LIVE
    assert stack.alias() == ("2", {})
    assert seen  # the split was in place while the alarms were watched
    assert set(map(str, seen)) == {str(("1", {"2": 0.1}))}
    assert stack.time.now == pytest.approx(300)


def test_an_alarm_during_the_canary_rolls_back(stack: Stack) -> None:
    stack.time.hooks.append((60, lambda: stack.set_alarm(ALARMS[1], "ALARM")))
    result = stack.rollout().run("2", "Canary10Percent5Minutes")
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.live_version == "1"
    assert ALARMS[1] in result.reason
    assert stack.alias() == ("1", {})
    assert stack.time.now < 300  # rolled back at the first poll after the alarm, not at the end


def test_linear_rollout_steps_up_and_rolls_back_midway(stack: Stack) -> None:
    seen = stack.record_routing()
    stack.time.hooks.append((150, lambda: stack.set_alarm(ALARMS[0], "ALARM")))
    result = stack.rollout().run("2", "Linear10PercentEvery1Minute")
    assert result.outcome is Outcome.ROLLED_BACK
    weights = sorted({round(w["2"], 2) for version, w in seen if w})
    assert weights == [0.1, 0.2, 0.3]  # the alarm fired in the third minute
    assert stack.alias() == ("1", {})


def test_linear_rollout_reaches_everything(stack: Stack) -> None:
    seen = stack.record_routing()
    assert stack.rollout().run("2", "Linear25PercentEvery2Minutes").outcome is Outcome.LIVE
    assert sorted({w["2"] for _, w in seen if w}) == [0.25, 0.5, 0.75]
    assert stack.alias() == ("2", {})


def test_all_at_once_switches_without_a_split(stack: Stack) -> None:
    assert stack.rollout().run("2", "AllAtOnce").outcome is Outcome.LIVE
    assert stack.alias() == ("2", {})
    assert stack.time.now == 0


def test_an_alarm_already_firing_refuses_to_start(stack: Stack) -> None:
    stack.set_alarm(ALARMS[0], "ALARM")
    with pytest.raises(RolloutError, match="already in ALARM"):
        stack.rollout().run("2", "Canary10Percent5Minutes")
    assert stack.alias() == ("1", {})


def test_a_missing_rollback_alarm_refuses_to_start(stack: Stack) -> None:
    with pytest.raises(RolloutError, match="not found: typo-alarm"):
        stack.rollout([*ALARMS, "typo-alarm"]).run("2", "Canary10Percent5Minutes")
    assert stack.alias() == ("1", {})


def test_an_unknown_version_refuses_to_start(stack: Stack) -> None:
    with pytest.raises(RolloutError, match="version 9"):
        stack.rollout().run("9", "AllAtOnce")
    with pytest.raises(RolloutError, match="published version number"):
        stack.rollout().run("$LATEST", "AllAtOnce")


def test_an_interrupt_rolls_back(stack: Stack) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    stack.time.hooks.append((30, interrupt))
    result = stack.rollout().run("2", "Canary10Percent5Minutes")
    assert result.outcome is Outcome.INTERRUPTED
    assert stack.alias() == ("1", {})


def test_an_api_error_midway_rolls_back_and_raises(stack: Stack) -> None:
    def delete_alarm() -> None:
        stack.cloudwatch.delete_alarms(AlarmNames=[ALARMS[0]])

    stack.time.hooks.append((30, delete_alarm))
    with pytest.raises(RolloutError, match="not found"):
        stack.rollout().run("2", "Canary10Percent5Minutes")
    assert stack.alias() == ("1", {})


def test_a_cut_off_split_blocks_the_next_rollout_until_aborted(stack: Stack) -> None:
    stack.lam.update_alias(
        FunctionName=FUNCTION, Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}}
    )
    with pytest.raises(RolloutError, match="--abort"):
        stack.rollout().run("2", "AllAtOnce")
    assert stack.rollout().abort().live_version == "1"
    assert stack.alias() == ("1", {})
    assert stack.rollout().run("2", "AllAtOnce").outcome is Outcome.LIVE


def test_already_live_is_a_no_op(stack: Stack) -> None:
    stack.rollout().run("2", "AllAtOnce")
    assert stack.rollout().run("2", "Canary10Percent5Minutes").outcome is Outcome.ALREADY_LIVE


def test_cli_reads_the_terraform_output(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "rollout.json"
    config.write_text(
        json.dumps(
            {
                "function_name": FUNCTION,
                "alias": "live",
                "target_version": "2",
                "preference": "AllAtOnce",
                "alarm_names": ALARMS,
                "region": "us-east-1",
            }
        )
    )
    stack.set_alarm(ALARMS[0], "ALARM")
    assert main(["--config", str(config)]) == 2
    assert "already in ALARM" in capsys.readouterr().err
    stack.set_alarm(ALARMS[0], "OK")
    assert main(["--config", str(config)]) == 0
    assert stack.alias() == ("2", {})
    assert main(["--config", str(config), "--version", "1"]) == 0
    assert stack.alias() == ("1", {})


def test_cli_prints_the_live_version_and_switches_back_despite_alarms(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The deploy workflow's smoke-test failure path: remember the live version, later force it back."""
    common = ["--function", FUNCTION, "--region", "us-east-1", "--alarm", ALARMS[0]]
    assert main([*common, "--print-live"]) == 0
    assert capsys.readouterr().out.strip() == "1"
    assert main([*common, "--version", "2", "--preference", "AllAtOnce"]) == 0
    stack.set_alarm(ALARMS[0], "ALARM")
    assert (
        main([*common, "--version", "1", "--preference", "AllAtOnce"]) == 2
    )  # alarms block a normal rollout
    assert main([*common, "--version", "1", "--preference", "AllAtOnce", "--ignore-alarms"]) == 0
    assert stack.alias() == ("1", {})


SERVICE_5XX = ("AnomalyDetector", "ServerErrors")
LAMBDA_ERRORS = ("AWS/Lambda", "Errors")


def version_dims(kind: tuple[str, str], version: str) -> dict[str, str]:
    if kind == LAMBDA_ERRORS:
        return {"FunctionName": FUNCTION, "Resource": f"{FUNCTION}:live", "ExecutedVersion": version}
    return {"service": FUNCTION, "function_version": version}


@pytest.mark.parametrize("kind", [SERVICE_5XX, LAMBDA_ERRORS], ids=["service-5xx", "lambda-errors"])
def test_the_canarys_own_errors_roll_back_before_any_alarm(stack: Stack, kind: tuple[str, str]) -> None:
    stack.time.hooks.append((30, lambda: stack.put_errors(*kind, version_dims(kind, "2"), 3)))
    result = stack.rollout().run("2", "Canary10Percent5Minutes")
    assert result.outcome is Outcome.ROLLED_BACK
    assert f"version 2 itself produced 3 {kind[0]}/{kind[1]}" in result.reason
    assert stack.alias() == ("1", {})
    assert stack.time.now < 60  # at the first poll that sees the datapoint
    assert stack.cloudwatch.describe_alarms(AlarmNames=ALARMS)["MetricAlarms"][0]["StateValue"] == "OK"


def test_errors_of_the_previous_version_do_not_count_against_the_canary(stack: Stack) -> None:
    stack.time.hooks.append((30, lambda: stack.put_errors(*SERVICE_5XX, version_dims(SERVICE_5XX, "1"), 5)))
    stack.time.hooks.append(
        (45, lambda: stack.put_errors(*LAMBDA_ERRORS, version_dims(LAMBDA_ERRORS, "1"), 5))
    )
    assert stack.rollout().run("2", "Canary10Percent5Minutes").outcome is Outcome.LIVE


def test_an_error_budget_tolerates_a_few(stack: Stack) -> None:
    stack.time.hooks.append((30, lambda: stack.put_errors(*SERVICE_5XX, version_dims(SERVICE_5XX, "2"), 2)))
    assert stack.rollout(max_canary_errors=2).run("2", "Canary10Percent5Minutes").outcome is Outcome.LIVE


def test_cli_refuses_an_empty_version_rather_than_rolling_forward(stack: Stack) -> None:
    """An empty --version (say, a previous version that failed to be recorded) must not mean the new one."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--function", FUNCTION, "--region", "us-east-1", "--version", "", "--ignore-alarms"])
    assert exit_info.value.code == 2
    assert stack.alias() == ("1", {})
