"""The whole stack applied by the real hashicorp/aws provider to a local moto server.

One apply per module; then assertions through boto3, a no-change plan, the end-to-end path
(train into the bucket Terraform made, serve events with the function's own configuration),
and a destroy that leaves nothing behind. The tests run in file order and share the stack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from scripts.rollout import Outcome, Result, Rollout
from tests.conftest import SAMPLE_DATA, load_event, response_json
from tests.terraform.conftest import IMAGE_URI, Terraform

pytestmark = pytest.mark.terraform

NAME = "anomaly-detector"
TRAINING_IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/anomaly-detector-training:test-1"
ROUTES = {
    "GET /",
    "GET /health",
    "GET /model",
    "POST /predict",
    "GET /docs",
    "GET /openapi.json",
    "GET /v2",
    "GET /v2/health/live",
    "GET /v2/health/ready",
    "GET /v2/models/{name}",
    "GET /v2/models/{name}/ready",
    "POST /v2/models/{name}/infer",
    "GET /v2/models/{name}/versions/{version}",
    "GET /v2/models/{name}/versions/{version}/ready",
    "POST /v2/models/{name}/versions/{version}/infer",
}


def test_fmt_and_validate(terraform: Terraform) -> None:
    terraform.run("fmt", "-check", "-recursive", "-diff", "-no-color")
    terraform.run("validate", "-no-color")


def test_terraform_test_files_pass(terraform: Terraform) -> None:
    """terraform/tests/*.tftest.hcl: plan-level checks against a mocked provider."""
    result = terraform.run("test", "-no-color")
    assert "0 failed" in result.stdout


def test_variable_validation_rejects_a_non_ecr_image(terraform: Terraform) -> None:
    result = terraform.run(
        "plan", "-no-color", "-var", "image_uri=docker.io/library/python:3.12", check=False
    )
    assert result.returncode != 0
    assert "image_uri must be an ECR image URI" in result.stderr


@pytest.fixture(scope="module")
def stack(terraform: Terraform) -> dict[str, Any]:
    """The stack with the (off by default) retraining job enabled, in a subnet made on the moto server."""
    ec2 = terraform.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    terraform.variables.update(
        {
            "retraining_enabled": "true",
            "retraining_image_uri": TRAINING_IMAGE_URI,
            "retraining_subnet_ids": json.dumps([subnet]),
            "batch_enabled": "true",
            "batch_schedule": "cron(0 2 * * ? *)",
        }
    )
    terraform.run("apply", "-auto-approve", "-no-color", *terraform.var_args())
    return {**terraform.outputs(), "vpc_id": vpc, "subnet_id": subnet}


def test_outputs(stack: dict[str, Any]) -> None:
    assert set(stack) >= {
        "api_url",
        "function_name",
        "function_arn",
        "live_alias_arn",
        "rollout",
        "model_bucket_name",
        "ecr_repository_url",
        "alarm_topic_arn",
    }
    assert stack["model_uri"] == f"s3://{stack['model_bucket_name']}/registry"


def test_function_image_environment_and_limits(terraform: Terraform, stack: dict[str, Any]) -> None:
    lam = terraform.client("lambda")
    function = lam.get_function(FunctionName=stack["function_name"])
    config = function["Configuration"]
    assert function["Code"]["ImageUri"] == IMAGE_URI
    assert config["PackageType"] == "Image"
    assert config["MemorySize"] == 1024
    assert config["Timeout"] == 15
    assert config["Architectures"] == ["x86_64"]
    assert config["TracingConfig"]["Mode"] == "Active"
    assert config["KMSKeyArn"] == stack["kms_key_arn"]
    assert config["Environment"]["Variables"] == {
        "MODEL_URI": stack["model_uri"],
        "MODEL_ALIAS": "production",
        "MAX_ROWS": "100000",
        "MAX_BODY_BYTES": "4500000",
        "EXPLAIN_MAX_ROWS": "100",
        "MODEL_RETRY_SECONDS": "2",
        "MODEL_REFRESH_SECONDS": "60",
        "POWERTOOLS_SERVICE_NAME": NAME,
        "POWERTOOLS_METRICS_NAMESPACE": "AnomalyDetector",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    assert (
        lam.get_function_concurrency(FunctionName=stack["function_name"])["ReservedConcurrentExecutions"]
        == 50
    )
    # API Gateway may invoke the live alias, which Terraform created on the first published version.
    alias = lam.get_alias(FunctionName=stack["function_name"], Name="live")
    assert alias["AliasArn"] == stack["live_alias_arn"]
    assert alias["FunctionVersion"] == stack["rollout"]["target_version"] == "1"
    policy = json.loads(lam.get_policy(FunctionName=stack["function_name"], Qualifier="live")["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    source_arn = statement["Condition"]["ArnLike"]["AWS:SourceArn"]
    api_id = stack["api_id"]
    assert f":{api_id}/" in source_arn


def test_bucket_is_versioned_encrypted_private_and_tls_only(
    terraform: Terraform, stack: dict[str, Any]
) -> None:
    s3 = terraform.client("s3")
    bucket = stack["model_bucket_name"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": stack["kms_key_arn"],
    }
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    (deny,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90


def test_ecr_repository_scans_and_keeps_tags_immutable(terraform: Terraform, stack: dict[str, Any]) -> None:
    ecr = terraform.client("ecr")
    (repo,) = ecr.describe_repositories(repositoryNames=[NAME])["repositories"]
    assert repo["repositoryUri"] == stack["ecr_repository_url"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    (rule,) = json.loads(ecr.get_lifecycle_policy(repositoryName=NAME)["lifecyclePolicyText"])["rules"]
    assert rule["selection"]["countNumber"] == 30


def test_function_role_is_least_privilege(terraform: Terraform, stack: dict[str, Any]) -> None:
    iam = terraform.client("iam")
    role = f"{NAME}-function"
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    statements = {s["Sid"]: s for s in document["Statement"]}
    bucket_arn = f"arn:aws:s3:::{stack['model_bucket_name']}"
    assert statements["ReadModels"]["Action"] == "s3:GetObject"
    assert statements["ReadModels"]["Resource"] == f"{bucket_arn}/registry/*"
    assert set(statements) == {"ReadModels", "DecryptModelsAndEnvironment", "OwnLogGroup", "Tracing"}
    assert statements["DecryptModelsAndEnvironment"]["Resource"] == stack["kms_key_arn"]
    assert statements["OwnLogGroup"]["Resource"].endswith(f":log-group:/aws/lambda/{NAME}:*")
    actions = {
        a
        for s in document["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert not any(a.endswith("*") or a.startswith(("s3:Put", "s3:Delete")) for a in actions)
    wildcard = [s["Sid"] for s in document["Statement"] if s["Resource"] == "*"]
    assert wildcard == ["Tracing"]  # X-Ray offers no resource-level permissions


def role_statements(terraform: Terraform, role: str) -> dict[str, dict[str, Any]]:
    """The one inline policy of a role, by statement Sid; no managed policies attached."""
    iam = terraform.client("iam")
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    return {s["Sid"]: s for s in document["Statement"]}


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_retraining_task_runs_the_training_image_on_fargate(
    terraform: Terraform, stack: dict[str, Any]
) -> None:
    ecs = terraform.client("ecs")
    (cluster,) = ecs.describe_clusters(clusters=[f"{NAME}-training"])["clusters"]
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]
    task = ecs.describe_task_definition(taskDefinition=f"{NAME}-retrain")["taskDefinition"]
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert task["networkMode"] == "awsvpc"
    assert (task["cpu"], task["memory"]) == ("1024", "4096")
    assert task["taskRoleArn"].endswith(f":role/{NAME}-training-task")
    assert task["executionRoleArn"].endswith(f":role/{NAME}-training-execution")
    (container,) = task["containerDefinitions"]
    assert container["image"] == TRAINING_IMAGE_URI
    assert container["readonlyRootFilesystem"] is True
    assert container["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    assert container["command"] == [
        "retrain",
        "--data",
        f"s3://{stack['model_bucket_name']}/incoming/",
        "--model-uri",
        stack["model_uri"],
        "--to",
        "production",
    ]
    assert container["logConfiguration"]["options"]["awslogs-group"] == f"/ecs/{NAME}-training"


def test_retraining_runs_on_schedule_and_when_a_drift_alarm_fires(
    terraform: Terraform, stack: dict[str, Any]
) -> None:
    events = terraform.client("events")
    schedule = events.describe_rule(Name=f"{NAME}-retrain-schedule")
    assert schedule["ScheduleExpression"] == "cron(0 3 ? * MON *)"
    drift = events.describe_rule(Name=f"{NAME}-retrain-drift")
    pattern = json.loads(drift["EventPattern"])
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
    drift_alarms = terraform.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{NAME}-drift-")[
        "MetricAlarms"
    ]
    assert sorted(pattern["resources"]) == sorted(a["AlarmArn"] for a in drift_alarms) != []
    task_arn = terraform.client("ecs").describe_task_definition(taskDefinition=f"{NAME}-retrain")[
        "taskDefinition"
    ]["taskDefinitionArn"]
    for rule in (f"{NAME}-retrain-schedule", f"{NAME}-retrain-drift"):
        (target,) = events.list_targets_by_rule(Rule=rule)["Targets"]
        assert target["Arn"].endswith(f":cluster/{NAME}-training")
        assert target["RoleArn"].endswith(f":role/{NAME}-retraining-events")
        ecs_target = target["EcsParameters"]
        assert ecs_target["TaskDefinitionArn"] == task_arn
        assert ecs_target["LaunchType"] == "FARGATE"
        network = ecs_target["NetworkConfiguration"]["awsvpcConfiguration"]
        assert network["Subnets"] == [stack["subnet_id"]]
        assert network["AssignPublicIp"] == "DISABLED"
    stopped = events.describe_rule(Name=f"{NAME}-retrain-not-promoted")
    detail = json.loads(stopped["EventPattern"])["detail"]
    assert detail["lastStatus"] == ["STOPPED"]
    assert {"containers": {"exitCode": [{"anything-but": 0}]}} in detail["$or"]
    (notify,) = events.list_targets_by_rule(Rule=f"{NAME}-retrain-not-promoted")["Targets"]
    assert notify["Arn"] == stack["alarm_topic_arn"]
    topic_policy = json.loads(
        terraform.client("sns").get_topic_attributes(TopicArn=stack["alarm_topic_arn"])["Attributes"][
            "Policy"
        ]
    )
    publishers = {s["Sid"]: s for s in topic_policy["Statement"]}
    assert publishers["RetrainingOutcomeEvents"]["Condition"]["ArnEquals"]["aws:SourceArn"] == stopped["Arn"]
    assert publishers["AccountPublishes"]["Condition"]["StringEquals"]["AWS:SourceOwner"] == "123456789012"
    (group,) = terraform.client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"{NAME}-training"]}]
    )["SecurityGroups"]
    assert group["VpcId"] == stack["vpc_id"]
    assert group["IpPermissions"] == []  # nothing inbound
    assert [(rule["FromPort"], rule["ToPort"]) for rule in group["IpPermissionsEgress"]] == [(443, 443)]


def test_only_the_training_task_can_write_and_only_under_the_registry_prefix(
    terraform: Terraform, stack: dict[str, Any]
) -> None:
    bucket_arn = f"arn:aws:s3:::{stack['model_bucket_name']}"
    task = role_statements(terraform, f"{NAME}-training-task")
    assert set(task) == {"ReadData", "ListTheBucket", "ReadAndWriteRegistry", "UseTheKey"}
    writes = [
        (statement["Sid"], resource)
        for statement in task.values()
        for action in as_list(statement["Action"])
        if action.startswith(("s3:Put", "s3:Delete"))
        for resource in as_list(statement["Resource"])
    ]
    assert writes == [("ReadAndWriteRegistry", f"{bucket_arn}/registry/*")]
    assert task["ReadData"]["Resource"] == f"{bucket_arn}/incoming/*"
    assert not any(a.endswith("*") for s in task.values() for a in as_list(s["Action"]))
    function = role_statements(terraform, f"{NAME}-function")
    assert not any(
        a.startswith(("s3:Put", "s3:Delete", "s3:Copy"))
        for s in function.values()
        for a in as_list(s["Action"])
    )
    events = role_statements(terraform, f"{NAME}-retraining-events")
    assert as_list(events["RunTheTrainingTask"]["Action"]) == ["ecs:RunTask"]
    assert as_list(events["PassTheTaskRoles"]["Action"]) == ["iam:PassRole"]
    assert sorted(as_list(events["PassTheTaskRoles"]["Resource"])) == sorted(
        f"arn:aws:iam::123456789012:role/{NAME}-training-{kind}" for kind in ("execution", "task")
    )
    execution = role_statements(terraform, f"{NAME}-training-execution")
    assert execution["PullTrainingImage"]["Resource"].endswith(f":repository/{NAME}-training")


def test_alarms_and_their_thresholds_notify_the_encrypted_topic(
    terraform: Terraform, stack: dict[str, Any]
) -> None:
    alarms = {
        a["AlarmName"]: a
        for a in terraform.client("cloudwatch").describe_alarms(AlarmNamePrefix=NAME)["MetricAlarms"]
    }
    assert set(alarms) == {
        f"{NAME}-{suffix}"
        for suffix in (
            "lambda-errors",
            "server-errors",
            "lambda-throttles",
            "lambda-duration-p99",
            "api-5xx-rate",
            "api-4xx-spike",
            "anomaly-rate-high",
            "model-unavailable",
            "drift-one",
            "drift-two",
            "drift-three",
            "inputs-out-of-range",
            "unseen-categories",
            "anomaly-rate-low",
            "non-finite-scores",
            "model-reload-failed",
            "model-stale",
            "batch-failed",
            "batch-timed-out",
            "batch-aborted",
        )
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [stack["alarm_topic_arn"]]
    assert alarms[f"{NAME}-lambda-duration-p99"]["Threshold"] == 12000  # 80% of a 15 s timeout
    assert alarms[f"{NAME}-lambda-duration-p99"]["ExtendedStatistic"] == "p99"
    assert alarms[f"{NAME}-lambda-errors"]["Threshold"] == 0
    server_errors = alarms[f"{NAME}-server-errors"]
    assert (server_errors["MetricName"], server_errors["Period"], server_errors["Threshold"]) == (
        "ServerErrors",
        60,
        0,
    )
    assert server_errors["Dimensions"] == [{"Name": "service", "Value": NAME}]
    assert alarms[f"{NAME}-api-4xx-spike"]["Threshold"] == 500
    assert alarms[f"{NAME}-api-5xx-rate"]["Threshold"] == 1
    rate = {q["Id"]: q for q in alarms[f"{NAME}-api-5xx-rate"]["Metrics"]}
    assert rate["errors"]["MetricStat"]["Metric"]["MetricName"] == "5xx"
    assert alarms[f"{NAME}-anomaly-rate-high"]["Threshold"] == 0.2
    assert alarms[f"{NAME}-drift-two"]["MetricName"] == "FeaturePSI_two"
    assert alarms[f"{NAME}-drift-two"]["Threshold"] == 0.25
    assert alarms[f"{NAME}-anomaly-rate-low"]["ComparisonOperator"] == "LessThanThreshold"
    attributes = terraform.client("sns").get_topic_attributes(TopicArn=stack["alarm_topic_arn"])["Attributes"]
    assert attributes["KmsMasterKeyId"] == stack["kms_key_arn"]


def test_api_routes_integration_and_stage(terraform: Terraform, stack: dict[str, Any]) -> None:
    api = terraform.client("apigatewayv2")
    api_id = stack["api_id"]
    routes = api.get_routes(ApiId=api_id)["Items"]
    assert {r["RouteKey"] for r in routes} == ROUTES
    assert {r["AuthorizationType"] for r in routes} == {"AWS_IAM"}
    (integration,) = api.get_integrations(ApiId=api_id)["Items"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    assert f"{stack['live_alias_arn']}/invocations" in integration["IntegrationUri"]
    assert {r["Target"] for r in routes} == {f"integrations/{integration['IntegrationId']}"}
    (stage,) = api.get_stages(ApiId=api_id)["Items"]
    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 100
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 200
    assert stage["AccessLogSettings"]["DestinationArn"].endswith(f":log-group:/aws/apigateway/{NAME}")
    assert json.loads(stage["AccessLogSettings"]["Format"])["requestId"] == "$context.requestId"


def test_log_groups_have_retention_and_encryption(terraform: Terraform, stack: dict[str, Any]) -> None:
    groups = terraform.client("logs").describe_log_groups(logGroupNamePrefix="/aws/")["logGroups"]
    ours = {g["logGroupName"]: g for g in groups if g["logGroupName"].endswith(NAME)}
    assert set(ours) == {f"/aws/lambda/{NAME}", f"/aws/apigateway/{NAME}"}
    for group in ours.values():
        assert group["retentionInDays"] == 365
        assert group["kmsKeyId"] == stack["kms_key_arn"]


def test_dashboard_exists(terraform: Terraform, stack: dict[str, Any]) -> None:
    body = json.loads(terraform.client("cloudwatch").get_dashboard(DashboardName=NAME)["DashboardBody"])
    titles = {w["properties"]["title"] for w in body["widgets"]}
    assert "Records scored and anomalies" in titles


def test_a_new_image_goes_live_only_through_the_rollout(terraform: Terraform, stack: dict[str, Any]) -> None:
    """A second apply publishes version 2 but leaves ``live`` on 1; scripts/rollout.py then moves it.

    The canary runs against the alias and alarms Terraform made on the moto server, on a simulated
    clock: a rollback alarm forced to ALARM one minute in puts version 1 back; with the alarms
    quiet the same rollout makes version 2 live. The no-change plan below runs after this, so
    Terraform leaves the moved alias alone.
    """
    terraform.variables["image_uri"] = IMAGE_URI.replace(":test-1", ":test-2")
    terraform.run("apply", "-auto-approve", "-no-color", *terraform.var_args())
    rollout = terraform.outputs()["rollout"]
    assert rollout["target_version"] == "2"
    assert rollout["preference"] == "Canary10Percent15Minutes"
    lam, cloudwatch = terraform.client("lambda"), terraform.client("cloudwatch")
    assert lam.get_alias(FunctionName=NAME, Name="live")["FunctionVersion"] == "1"
    assert lam.get_function(FunctionName=NAME, Qualifier="2")["Code"]["ImageUri"].endswith(":test-2")
    alarm = f"{NAME}-lambda-errors"
    assert alarm in rollout["alarm_names"]

    now = [0.0]
    seen: list[Any] = []

    def sleep(seconds: float) -> None:
        seen.append(lam.get_alias(FunctionName=NAME, Name="live")["RoutingConfig"])
        now[0] += seconds
        if now[0] >= 60 and fire[0]:
            cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="canary errors")

    def run() -> Result:
        return Rollout(
            lam,
            cloudwatch,
            rollout["function_name"],
            rollout["alias"],
            rollout["alarm_names"],
            metrics_namespace=rollout["metrics_namespace"],
            service=rollout["service"],
            sleep=sleep,
            clock=lambda: now[0],
            log=lambda line: None,
        ).run(rollout["target_version"], rollout["preference"])

    fire = [True]
    result = run()
    assert result.outcome is Outcome.ROLLED_BACK
    assert alarm in result.reason
    assert seen[0] == {"AdditionalVersionWeights": {"2": 0.1}}
    live = lam.get_alias(FunctionName=NAME, Name="live")
    assert live["FunctionVersion"] == "1"
    assert not (live.get("RoutingConfig") or {}).get("AdditionalVersionWeights")

    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="fixed")
    fire[0], now[0] = False, 0.0
    assert run().outcome is Outcome.LIVE
    assert now[0] >= 900
    assert lam.get_alias(FunctionName=NAME, Name="live")["FunctionVersion"] == "2"


# moto returns an empty ImageConfig for image functions that set none; the provider reads it as
# image_config = [{command = [], entry_point = [], working_directory = ""}] and plans to clear it.
# That one attribute of that one resource is tolerated, with what follows from it alone: since
# the function publishes, an update would publish a new version, so version and the qualified ARNs
# become unknown. Any other change fails the test.
MOTO_DRIFT = {("aws_lambda_function.this", "image_config")}
PUBLISH_CONSEQUENCES = {
    ("aws_lambda_function.this", key) for key in ("version", "qualified_arn", "qualified_invoke_arn")
}


def test_batch_function_is_the_same_image_with_its_own_command_and_limits(
    terraform: Terraform, stack: dict[str, Any]
) -> None:
    lam = terraform.client("lambda")
    batch = stack["batch"]
    function = lam.get_function(FunctionName=batch["function_name"])
    config = function["Configuration"]
    serving = lam.get_function(FunctionName=stack["function_name"])["Code"]["ImageUri"]
    assert function["Code"]["ImageUri"] == serving  # the serving image (whatever the last apply deployed)
    assert config["ImageConfigResponse"]["ImageConfig"]["Command"] == ["lambda_app.batch.handler.handler"]
    assert (config["MemorySize"], config["Timeout"], config["EphemeralStorage"]["Size"]) == (3538, 900, 4096)
    assert config["Environment"]["Variables"]["BATCH_MAX_OBJECT_BYTES"] == str(4096 * 1024 * 1024 // 3)
    assert config["Environment"]["Variables"]["MODEL_URI"] == stack["model_uri"]
    reserved = lam.get_function_concurrency(FunctionName=batch["function_name"])[
        "ReservedConcurrentExecutions"
    ]
    definition = json.loads(
        terraform.client("stepfunctions").describe_state_machine(stateMachineArn=batch["state_machine_arn"])[
            "definition"
        ]
    )
    score = definition["States"]["ScoreObjects"]
    assert score["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert score["ItemBatcher"]["MaxItemsPerBatch"] == 4
    assert score["MaxConcurrency"] <= reserved == 20
    assert (
        "Lambda.TooManyRequestsException"
        in score["ItemProcessor"]["States"]["ScoreBatch"]["Retry"][0]["ErrorEquals"]
    )
    assert (
        score["ItemProcessor"]["States"]["ScoreBatch"]["Parameters"]["FunctionName"] == config["FunctionArn"]
    )
    assert score["ItemReader"]["Parameters"]["Bucket"] == stack["model_bucket_name"]


def test_batch_roles_are_least_privilege(terraform: Terraform, stack: dict[str, Any]) -> None:
    bucket_arn = f"arn:aws:s3:::{stack['model_bucket_name']}"
    machine = role_statements(terraform, f"{NAME}-batch")
    function_arn = terraform.client("lambda").get_function(FunctionName=stack["batch"]["function_name"])[
        "Configuration"
    ]["FunctionArn"]
    assert sorted(as_list(machine["InvokeTheBatchFunction"]["Resource"])) == [
        function_arn,
        f"{function_arn}:*",
    ]
    assert machine["ListInputPrefix"]["Condition"] == {"StringLike": {"s3:prefix": "batch/input/*"}}
    assert machine["ReadInputPrefix"]["Resource"] == f"{bucket_arn}/batch/input/*"
    assert machine["WriteRunResults"]["Resource"] == f"{bucket_arn}/batch/output/_runs/*"
    lambda_actions = {a for s in machine.values() for a in as_list(s["Action"]) if a.startswith("lambda:")}
    assert lambda_actions == {"lambda:InvokeFunction"}
    function = role_statements(terraform, f"{NAME}-batch-function")
    assert sorted(as_list(function["ReadInputAndModels"]["Resource"])) == [
        f"{bucket_arn}/batch/input/*",
        f"{bucket_arn}/registry/*",
    ]
    assert function["WriteOutput"]["Resource"] == f"{bucket_arn}/batch/output/*"
    writes = {
        r
        for s in function.values()
        if any(a.startswith(("s3:Put", "s3:Delete")) for a in as_list(s["Action"]))
        for r in as_list(s["Resource"])
    }
    assert writes == {f"{bucket_arn}/batch/output/*"}
    schedule = terraform.client("scheduler").get_schedule(Name=f"{NAME}-batch")
    assert schedule["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert schedule["Target"]["Arn"] == stack["batch"]["state_machine_arn"]
    assert json.loads(schedule["Target"]["Input"]) == {
        "input_prefix": "batch/input/",
        "output_prefix": "batch/output/",
    }


def test_second_plan_shows_no_changes(terraform: Terraform, stack: dict[str, Any]) -> None:
    terraform.run("plan", "-no-color", "-out=second.tfplan", *terraform.var_args())
    plan = json.loads(terraform.run("show", "-json", "second.tfplan").stdout)
    unexpected = []
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        if actions == ["no-op"] or actions == ["read"]:
            continue
        address = change["address"]
        before, after = change["change"]["before"] or {}, change["change"]["after"] or {}
        unknown = change["change"].get("after_unknown") or {}
        changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
        drift = {key for key in changed if (address, key) in MOTO_DRIFT and _empty(before.get(key))}
        changed -= drift
        if drift:
            changed -= {key for key in changed if (address, key) in PUBLISH_CONSEQUENCES and unknown.get(key)}
        if actions != ["update"] or changed:
            unexpected.append((address, actions, sorted(changed)))
    assert unexpected == []


def _empty(value: Any) -> bool:
    """moto's empty image_config: every field empty."""
    return isinstance(value, list) and all(not any(item.values()) for item in value)


def test_end_to_end_train_into_the_stack_and_serve_with_its_configuration(
    terraform: Terraform,
    stack: dict[str, Any],
    handler_module: Callable[..., ModuleType],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from training.__main__ import main as training_main

    # moto evaluates a bucket policy's Deny without request context, so the TLS-only Deny (asserted
    # above) denies every object request, TLS or not. Real S3 allows these HTTPS calls; here the
    # policy is removed before training. This is the one moto limitation the end-to-end works around.
    terraform.client("s3").delete_bucket_policy(Bucket=stack["model_bucket_name"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", terraform.endpoint)
    assert training_main(["--data", str(SAMPLE_DATA), "--model-uri", stack["model_uri"]]) == 0
    alias = json.loads(
        terraform.client("s3")
        .get_object(Bucket=stack["model_bucket_name"], Key="registry/aliases/production.json")["Body"]
        .read()
    )

    variables = terraform.client("lambda").get_function_configuration(FunctionName=stack["function_name"])[
        "Environment"
    ]["Variables"]
    module = handler_module(**variables, AWS_ENDPOINT_URL=terraform.endpoint)
    for name in ("apigw_v2_health.json", "apigw_v2_predict_single.json", "apigw_v2_predict_batch.json"):
        response = module.handler(load_event(name), lambda_context)
        assert response["statusCode"] == 200, response
        assert response_json(response)["version"] == alias["version"]
    bad = module.handler(load_event("apigw_v2_predict_nan.json"), lambda_context)
    assert bad["statusCode"] == 422


def test_the_retraining_task_command_retrains_from_the_newest_data(
    terraform: Terraform, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run exactly the command of the task definition (what the container's entrypoint receives)."""
    from training.__main__ import main as training_main

    s3 = terraform.client("s3")
    bucket = stack["model_bucket_name"]
    s3.delete_bucket_policy(Bucket=bucket)  # moto's context-free Deny, as in the end-to-end test above
    s3.upload_file(str(SAMPLE_DATA), bucket, "incoming/2026-11-26/flows.csv")
    task = terraform.client("ecs").describe_task_definition(taskDefinition=f"{NAME}-retrain")[
        "taskDefinition"
    ]
    (container,) = task["containerDefinitions"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", terraform.endpoint)
    assert training_main(container["command"]) == 0
    read = lambda key: json.loads(s3.get_object(Bucket=bucket, Key=f"registry/{key}")["Body"].read())  # noqa: E731
    production, candidate = read("aliases/production.json"), read("aliases/candidate.json")
    assert production["version"] == candidate["version"]
    manifest = read(f"{candidate['version']}/manifest.json")
    assert manifest["provenance"]["data_uri"] == f"s3://{bucket}/incoming/2026-11-26/flows.csv"


def moto_variant(definition: dict[str, Any]) -> dict[str, Any]:
    """The production definition as moto 5.2.5 can execute it. What differs, and only this:
    - no ItemBatcher (moto refuses it): each invocation gets one object, and the BatchInput fields
      (bucket, prefixes) go into the ItemSelector beside Key and Size: the handler's single-item shape;
    - no ToleratedFailurePercentage (moto parses only a float and ignores it; its Map Runs never fail
      on failed items, so a failed object shows in the item counts of a SUCCEEDED run).
    ItemReader, ItemSelector, MaxConcurrency, the Task, its Retry and ResultWriter are unchanged
    (moto's ResultWriter writes the run's manifest.json, not the result files)."""
    variant = json.loads(json.dumps(definition))
    score = variant["States"]["ScoreObjects"]
    batcher = score.pop("ItemBatcher")
    score["ItemSelector"] = {**score["ItemSelector"], **batcher["BatchInput"]}
    score.pop("ToleratedFailurePercentage")
    return variant


def test_a_batch_run_executed_by_moto_scores_every_object_under_the_prefix(
    terraform: Terraform,
    stack: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The applied state machine's definition (moto variant) executed by moto's engine over objects in
    moto's S3, each invocation running the real batch handler with the batch function's configuration,
    started and watched by scripts/batch_score.py."""
    import importlib
    from unittest import mock

    import pandas as pd
    import requests

    from lambda_app.invoke import LocalLambdaContext
    from scripts.batch_score import EXIT_SOME_FAILED
    from scripts.batch_score import main as batch_score

    s3, sfn = terraform.client("s3"), terraform.client("stepfunctions")
    bucket, batch = stack["model_bucket_name"], stack["batch"]
    s3.delete_bucket_policy(Bucket=bucket)  # moto's context-free Deny, as in the end-to-end test above
    assert s3.list_objects_v2(Bucket=bucket, Prefix="registry/aliases/production.json")["KeyCount"] == 1
    flows = pd.read_csv(SAMPLE_DATA).head(200)
    bad = flows.astype({"two": "object"})
    bad.loc[3, "two"] = "oops"
    day = "batch/input/2026-11-28/"
    tables = {
        f"{day}a.csv": flows.to_csv(index=False).encode(),
        f"{day}b.csv.gz": _gzip_csv(bad),
        f"{day}part/c.parquet": _parquet(flows),
        f"{day}typo.csv": flows.rename(columns={"two": "tow"}).to_csv(index=False).encode(),
    }
    for key, body in tables.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    config = terraform.client("lambda").get_function_configuration(FunctionName=batch["function_name"])
    for name, value in {**config["Environment"]["Variables"], "AWS_ENDPOINT_URL": terraform.endpoint}.items():
        monkeypatch.setenv(name, value)
    import lambda_app.batch.handler

    handler = importlib.reload(lambda_app.batch.handler)  # a batch container with the function's settings
    invoked: list[str] = []

    def invoke(
        _backend: Any, function_name: str, _qualifier: Any, body: str, _headers: Any, response_headers: Any
    ) -> bytes:
        invoked.append(function_name)
        try:
            return json.dumps(handler.handler(json.loads(body), LocalLambdaContext())).encode()
        except Exception as exc:  # what the Lambda runtime answers for an unhandled error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()

    described = sfn.describe_state_machine(stateMachineArn=batch["state_machine_arn"])
    port = terraform.endpoint.rsplit(":", 1)[1]
    monkeypatch.setenv("MOTO_PORT", port)  # moto's engine calls Lambda back on localhost:$MOTO_PORT
    configure = f"{terraform.endpoint}/moto-api/config"
    requests.post(
        configure,
        json={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
        timeout=10,
    )
    # The engine's backend holds its own state machines: create the variant once execution is on.
    variant_arn = sfn.create_state_machine(
        name=f"{NAME}-batch-moto",
        definition=json.dumps(moto_variant(json.loads(described["definition"]))),
        roleArn=described["roleArn"],
    )["stateMachineArn"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", terraform.endpoint)
    argv = [
        "--input",
        f"s3://{bucket}/{day}",
        "--output",
        f"s3://{bucket}/batch/output/2026-11-28/",
        "--state-machine",
        variant_arn,
        "--poll-seconds",
        "0.2",
        "--timeout-seconds",
        "120",
    ]
    try:
        with mock.patch("moto.awslambda_simple.models.LambdaSimpleBackend.invoke", invoke):
            first = batch_score(argv)
            outputs = sorted(
                o["Key"]
                for o in s3.list_objects_v2(Bucket=bucket, Prefix="batch/output/2026-11-28/")["Contents"]
            )
            second = batch_score(argv)  # a re-run rewrites the same objects
    finally:
        requests.post(configure, json={"stepfunctions": {"execute_state_machine": False}}, timeout=10)
        sfn.delete_state_machine(stateMachineArn=variant_arn)
    assert first == second == EXIT_SOME_FAILED  # typo.csv lacks a feature column: its item failed
    err = capsys.readouterr().err
    assert "3/4 objects scored, 1 failed" in err
    assert set(invoked) == {config["FunctionArn"]}  # only the batch function
    scored = [key for key in outputs if "/_runs/" not in key]
    assert scored == [
        "batch/output/2026-11-28/a.csv",
        "batch/output/2026-11-28/b.csv.gz",
        "batch/output/2026-11-28/b.rejects.csv.gz",
        "batch/output/2026-11-28/part/c.parquet",
    ]
    runs = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="batch/output/_runs/")["Contents"]]
    assert len(runs) == 2
    assert all(key.endswith("/manifest.json") for key in runs)
    after = sorted(
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="batch/output/2026-11-28/")["Contents"]
    )
    assert after == outputs
    body = s3.get_object(Bucket=bucket, Key="batch/output/2026-11-28/a.csv")["Body"].read().decode()
    header, first_row = body.splitlines()[:2]
    assert header == "one,two,three,label,prediction,score,model_version"
    production = json.loads(
        s3.get_object(Bucket=bucket, Key="registry/aliases/production.json")["Body"].read()
    )
    assert first_row.endswith(production["version"])


def _gzip_csv(frame: Any) -> bytes:
    import gzip

    return gzip.compress(frame.to_csv(index=False).encode())


def _parquet(frame: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_destroy_leaves_nothing_behind(terraform: Terraform, stack: dict[str, Any]) -> None:
    terraform.run("destroy", "-auto-approve", "-no-color", *terraform.var_args())
    assert terraform.run("state", "list", check=False).stdout.strip() == ""
    assert terraform.client("s3").list_buckets()["Buckets"] == []
    assert terraform.client("lambda").list_functions()["Functions"] == []
    assert terraform.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert terraform.client("apigatewayv2").get_apis()["Items"] == []
    assert terraform.client("ecr").describe_repositories()["repositories"] == []
    ecs = terraform.client("ecs")
    clusters = ecs.list_clusters()[
        "clusterArns"
    ]  # ECS, like moto, lists a deleted cluster as INACTIVE for a while
    assert {c["status"] for c in ecs.describe_clusters(clusters=clusters)["clusters"]} <= {"INACTIVE"}
    assert terraform.client("events").list_rules()["Rules"] == []
    groups = terraform.client("ec2").describe_security_groups()["SecurityGroups"]
    assert [g["GroupName"] for g in groups if NAME in g["GroupName"]] == []
    assert terraform.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert terraform.client("cloudwatch").list_dashboards()["DashboardEntries"] == []
    assert terraform.client("sns").list_topics()["Topics"] == []
    assert [
        r["RoleName"] for r in terraform.client("iam").list_roles()["Roles"] if NAME in r["RoleName"]
    ] == []
    groups = terraform.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups if NAME in g["logGroupName"]] == []
    key = terraform.client("kms").describe_key(KeyId=stack["kms_key_arn"])["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"  # KMS never deletes a key at once
