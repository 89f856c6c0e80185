# Fast plan-level checks with a mocked provider: defaults, wiring and variable validation.
# Run: scripts/tf.sh -chdir=terraform test   (the real apply against moto is in tests/terraform/).
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_subnet" {
    defaults = { vpc_id = "vpc-0123456789abcdef0" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

variables {
  image_uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/anomaly-detector:v1"
}

run "defaults_are_secure_and_bounded" {
  command = plan

  assert {
    condition     = alltrue([for route in aws_apigatewayv2_route.this : route.authorization_type == "AWS_IAM"])
    error_message = "routes must require IAM auth by default"
  }
  assert {
    condition = alltrue([for key in [
      "GET /v2", "GET /v2/health/live", "GET /v2/health/ready", "GET /v2/models/{name}",
      "GET /v2/models/{name}/ready", "POST /v2/models/{name}/infer", "GET /v2/models/{name}/versions/{version}",
      "GET /v2/models/{name}/versions/{version}/ready", "POST /v2/models/{name}/versions/{version}/infer",
    ] : contains(keys(aws_apigatewayv2_route.this), key)])
    error_message = "the Open Inference Protocol's routes are served beside /predict"
  }
  assert {
    condition     = aws_lambda_function.this.reserved_concurrent_executions == 50
    error_message = "reserved concurrency must be set"
  }
  assert {
    condition     = aws_lambda_function.this.tracing_config[0].mode == "Active"
    error_message = "X-Ray tracing must be active"
  }
  assert {
    condition     = aws_lambda_function.this.environment[0].variables["MODEL_ALIAS"] == "production"
    error_message = "the function serves the production alias by default"
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.this.environment[0].variables), "MODEL_VERSION")
    error_message = "MODEL_VERSION is only set when a version is pinned"
  }
  assert {
    condition     = length(aws_apigatewayv2_authorizer.jwt) == 0
    error_message = "no JWT authorizer unless asked for"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.threshold["lambda-duration-p99"].threshold == 12000
    error_message = "p99 alarm at 80% of the 15 s timeout"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.threshold["unseen-categories"].metric_name == "UnseenCategoryShare" && aws_cloudwatch_metric_alarm.threshold["unseen-categories"].threshold == 5
    error_message = "an alarm on the share of unseen category values, at 5% by default"
  }
}

run "pinned_version_and_public_api_are_explicit_choices" {
  command = plan
  variables {
    model_version      = "20261126T091740Z-29553404"
    authorization_type = "NONE"
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables["MODEL_VERSION"] == "20261126T091740Z-29553404"
    error_message = "a pinned version reaches the function"
  }
  assert {
    condition     = alltrue([for route in aws_apigatewayv2_route.this : route.authorization_type == "NONE"])
    error_message = "NONE opens every route"
  }
}

run "jwt_authorizer_is_wired_to_every_route" {
  command = plan
  variables {
    authorization_type = "JWT"
    jwt_issuer         = "https://issuer.example.com/"
    jwt_audience       = ["anomaly-api"]
  }

  assert {
    condition     = length(aws_apigatewayv2_authorizer.jwt) == 1
    error_message = "JWT creates one authorizer"
  }
  assert {
    condition     = alltrue([for route in aws_apigatewayv2_route.this : route.authorization_type == "JWT"])
    error_message = "every route uses the JWT authorizer"
  }
}

run "jwt_without_issuer_is_refused" {
  command = plan
  variables {
    authorization_type = "JWT"
  }
  expect_failures = [aws_apigatewayv2_authorizer.jwt]
}

run "timeout_must_stay_under_api_gateway_limit" {
  command = plan
  variables {
    lambda_timeout_seconds = 30
  }
  expect_failures = [var.lambda_timeout_seconds]
}

run "image_must_come_from_ecr" {
  command = plan
  variables {
    image_uri = "docker.io/library/python:3.12"
  }
  expect_failures = [var.image_uri]
}

run "architecture_is_checked" {
  command = plan
  variables {
    lambda_architecture = "riscv"
  }
  expect_failures = [var.lambda_architecture]
}

run "registry_writes_can_be_restricted_to_named_principals" {
  command = plan
  variables {
    registry_writer_arns = ["arn:aws:iam::123456789012:role/anomaly-detector-training"]
  }

  assert {
    condition     = data.aws_iam_policy_document.bucket.statement[0].sid == "OnlyRegistryWritersWrite"
    error_message = "the bucket policy must deny writes by anyone but the listed writers"
  }
  assert {
    condition     = toset(tolist(data.aws_iam_policy_document.bucket.statement[0].condition)[0].values) == toset(["arn:aws:iam::123456789012:role/anomaly-detector-training"])
    error_message = "the writers are the listed ARNs"
  }
}

run "registry_writers_must_be_iam_arns" {
  command = plan
  variables {
    registry_writer_arns = ["training-role"]
  }
  expect_failures = [var.registry_writer_arns]
}

run "api_invokes_the_live_alias_through_a_canary_by_default" {
  command = plan

  assert {
    condition     = aws_lambda_function.this.publish
    error_message = "every change must publish a version the alias can shift to"
  }
  assert {
    condition     = aws_lambda_alias.live.name == "live"
    error_message = "API Gateway invokes the live alias"
  }
  assert {
    condition     = aws_lambda_permission.api.qualifier == "live"
    error_message = "API Gateway may invoke the live alias only"
  }
  assert {
    condition     = output.rollout.preference == "Canary10Percent15Minutes"
    error_message = "new versions go live through a 10% canary by default"
  }
  assert {
    condition     = alltrue([for a in ["lambda-errors", "server-errors", "api-5xx-rate"] : contains(output.rollout.alarm_names, "anomaly-detector-${a}")])
    error_message = "errors and the 5xx rate roll a canary back"
  }
  assert {
    condition     = length(aws_lambda_provisioned_concurrency_config.live) == 0
    error_message = "no provisioned concurrency (billed hourly) unless asked for"
  }
}

run "provisioned_concurrency_is_an_option_on_the_alias" {
  command = plan
  variables {
    provisioned_concurrency = 5
    deployment_preference   = "Linear10PercentEvery1Minute"
  }

  assert {
    condition     = aws_lambda_provisioned_concurrency_config.live[0].qualifier == "live" && aws_lambda_provisioned_concurrency_config.live[0].provisioned_concurrent_executions == 5
    error_message = "provisioned concurrency sits on the live alias"
  }
  assert {
    condition     = output.rollout.preference == "Linear10PercentEvery1Minute"
    error_message = "the preference reaches the rollout"
  }
}

run "provisioned_concurrency_cannot_exceed_the_reserved_cap" {
  command = plan
  variables {
    provisioned_concurrency = 60
  }
  expect_failures = [aws_lambda_provisioned_concurrency_config.live]
}

run "deployment_preference_is_checked" {
  command = plan
  variables {
    deployment_preference = "Canary100Percent5Minutes"
  }
  expect_failures = [var.deployment_preference]
}

run "rollback_alarms_must_exist" {
  command = plan
  variables {
    rollback_alarms = ["lambda-errors", "no-such-alarm"]
  }
  expect_failures = [output.rollout]
}

run "retraining_is_off_by_default" {
  command = plan

  assert {
    condition     = length(aws_ecs_task_definition.training) == 0 && length(aws_cloudwatch_event_rule.retraining) == 0 && length(aws_iam_role.training_task) == 0
    error_message = "no retraining resources unless retraining_enabled"
  }
}

run "retraining_runs_on_schedule_and_on_drift" {
  command = plan
  variables {
    retraining_enabled    = true
    retraining_image_uri  = "123456789012.dkr.ecr.us-east-1.amazonaws.com/anomaly-detector-training:v1"
    retraining_subnet_ids = ["subnet-0123456789abcdef0"]
  }

  assert {
    condition     = aws_cloudwatch_event_rule.retraining["schedule"].schedule_expression == "cron(0 3 ? * MON *)"
    error_message = "weekly schedule by default"
  }
  assert {
    condition     = aws_cloudwatch_event_rule.retraining["drift"].description == "Retrain when a feature drift alarm enters ALARM" && length(aws_cloudwatch_event_target.retraining) == 2
    error_message = "a drift alarm entering ALARM also triggers retraining"
  }
  assert {
    condition     = aws_ecs_task_definition.training[0].requires_compatibilities == toset(["FARGATE"]) && aws_ecs_task_definition.training[0].cpu == "1024"
    error_message = "the task runs on Fargate, 1 vCPU by default"
  }
  assert {
    condition     = length(aws_security_group.training) == 1 && one(aws_security_group.training[0].egress).from_port == 443
    error_message = "without given security groups, one allowing outbound HTTPS only"
  }
}

run "retraining_without_drift_trigger_has_only_the_schedule" {
  command = plan
  variables {
    retraining_enabled            = true
    retraining_on_drift           = false
    retraining_image_uri          = "123456789012.dkr.ecr.us-east-1.amazonaws.com/anomaly-detector-training:v1"
    retraining_subnet_ids         = ["subnet-0123456789abcdef0"]
    retraining_security_group_ids = ["sg-0123456789abcdef0"]
  }

  assert {
    condition     = keys(aws_cloudwatch_event_rule.retraining) == ["schedule"] && length(aws_security_group.training) == 0
    error_message = "only the schedule, and the given security group"
  }
}

run "retraining_needs_an_image_and_subnets" {
  command = plan
  variables {
    retraining_enabled = true
  }
  expect_failures = [aws_ecs_task_definition.training]
}

run "retraining_schedule_is_checked" {
  command = plan
  variables {
    retraining_schedule = "every monday"
  }
  expect_failures = [var.retraining_schedule]
}

run "a_rollout_must_fit_the_deploy_job" {
  command = plan
  variables {
    deployment_preference = "Linear10PercentEvery5Minutes"
  }
  expect_failures = [var.deployment_preference]
}

run "retraining_memory_must_fit_the_cpu" {
  command = plan
  variables {
    retraining_enabled    = true
    retraining_image_uri  = "123456789012.dkr.ecr.us-east-1.amazonaws.com/anomaly-detector-training:v1"
    retraining_subnet_ids = ["subnet-0123456789abcdef0"]
    retraining_cpu        = 4096
    retraining_memory_mb  = 4096
  }
  expect_failures = [aws_ecs_task_definition.training]
}

run "anomaly_models_get_the_anomaly_rate_band_and_no_other_tasks_alarms" {
  command = plan

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.anomaly_rate) == 1 && length(aws_cloudwatch_metric_alarm.anomaly_rate_low) == 1
    error_message = "the anomaly-rate band exists for an anomaly model"
  }
  assert {
    condition     = !contains(keys(aws_cloudwatch_metric_alarm.threshold), "confidence-low")
    error_message = "no classification alarm on an anomaly model"
  }
}

run "a_classifier_gets_a_confidence_alarm_and_no_anomaly_rate_band" {
  command = plan
  variables {
    model_task      = "classification"
    rollback_alarms = ["lambda-errors", "server-errors"]
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.anomaly_rate) == 0 && length(aws_cloudwatch_metric_alarm.anomaly_rate_low) == 0
    error_message = "a classifier publishes no Anomalies metric: no anomaly-rate alarms"
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.threshold["confidence-low"].metric_name == "TopProbabilityMean" &&
      aws_cloudwatch_metric_alarm.threshold["confidence-low"].comparison_operator == "LessThanThreshold" &&
      aws_cloudwatch_metric_alarm.threshold["confidence-low"].threshold == 0.6
    )
    error_message = "a classifier alarms on low mean confidence"
  }
}

run "a_regressor_alarms_on_its_prediction_band_only_when_given_one" {
  command = plan
  variables {
    model_task                 = "regression"
    alarm_prediction_mean_band = { min = 5, max = 20 }
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.threshold["prediction-mean-high"].threshold == 20 &&
      aws_cloudwatch_metric_alarm.threshold["prediction-mean-low"].threshold == 5 &&
      aws_cloudwatch_metric_alarm.threshold["prediction-mean-low"].comparison_operator == "LessThanThreshold" &&
      length(aws_cloudwatch_metric_alarm.anomaly_rate) == 0
    )
    error_message = "a regressor alarms when its mean prediction leaves the band"
  }
}

run "an_unknown_task_is_refused" {
  command = plan
  variables {
    model_task = "ranking"
  }
  expect_failures = [var.model_task]
}

run "the_region_comes_from_the_environment_unless_set" {
  command = plan

  assert {
    condition     = output.rollout.region == "eu-west-1"
    error_message = "with region unset, the provider's (the environment's) region is used"
  }
}

run "a_malformed_region_is_refused" {
  command = plan
  variables {
    region = "Europe"
  }
  expect_failures = [var.region]
}
