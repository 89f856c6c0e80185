# Plan-level checks of batch scoring (batch.tf) with a mocked provider: the production definition
# (what moto cannot run: ItemBatcher, failure tolerance, ResultWriter files) and its wiring.
mock_provider "aws" {
  override_during = plan # the definition embeds the bucket name and the function ARN

  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:anomaly-detector-batch" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { bucket = "models-123", arn = "arn:aws:s3:::models-123" }
  }
}

variables {
  image_uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/anomaly-detector:v1"
}

run "batch_is_off_by_default" {
  command = plan

  assert {
    condition     = length(aws_sfn_state_machine.batch) == 0 && length(aws_lambda_function.batch) == 0 && length(aws_cloudwatch_metric_alarm.batch) == 0
    error_message = "nothing of batch scoring exists unless batch_enabled"
  }
}

run "the_distributed_map_batches_objects_within_the_function_concurrency" {
  command = plan

  variables {
    batch_enabled     = true
    batch_concurrency = 7
    batch_schedule    = "cron(0 3 * * ? *)"
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.batch[0].definition).States.ScoreObjects.ItemBatcher.MaxItemsPerBatch == 4
    error_message = "the Map hands objects to the function in batches (ItemBatcher)"
  }
  assert {
    condition     = jsondecode(aws_sfn_state_machine.batch[0].definition).States.ScoreObjects.MaxConcurrency <= aws_lambda_function.batch[0].reserved_concurrent_executions
    error_message = "MaxConcurrency must not exceed the batch function's reserved concurrency"
  }
  assert {
    condition     = jsondecode(aws_sfn_state_machine.batch[0].definition).States.ScoreObjects.ItemProcessor.ProcessorConfig.Mode == "DISTRIBUTED"
    error_message = "a Distributed Map"
  }
  assert {
    condition     = contains(jsondecode(aws_sfn_state_machine.batch[0].definition).States.ScoreObjects.ItemProcessor.States.ScoreBatch.Retry[0].ErrorEquals, "Lambda.TooManyRequestsException")
    error_message = "throttled invocations are retried"
  }
  assert {
    condition     = jsondecode(aws_sfn_state_machine.batch[0].definition).States.ScoreObjects.ItemProcessor.States.ScoreBatch.Retry[0].BackoffRate == 2
    error_message = "with exponential backoff"
  }
  assert {
    condition     = jsondecode(aws_sfn_state_machine.batch[0].definition).States.ScoreObjects.ToleratedFailurePercentage == 0
    error_message = "no failed item is tolerated by default"
  }
  assert {
    condition     = jsondecode(aws_sfn_state_machine.batch[0].definition).States.ScoreObjects.ResultWriter.Parameters.Prefix == "batch/output/_runs"
    error_message = "run results go under the output prefix"
  }
  assert {
    condition     = aws_lambda_function.batch[0].image_config[0].command == tolist(["lambda_app.batch.handler.handler"])
    error_message = "the batch function runs the image's batch entry point"
  }
  assert {
    condition     = aws_lambda_function.batch[0].image_uri == aws_lambda_function.this.image_uri
    error_message = "batch and /predict run the same image"
  }
  assert {
    condition     = aws_lambda_function.batch[0].environment[0].variables["BATCH_MAX_OBJECT_BYTES"] == tostring(floor(4096 * 1024 * 1024 / 3))
    error_message = "objects up to a third of /tmp"
  }
  assert {
    condition     = aws_sfn_state_machine.batch[0].tracing_configuration[0].enabled && aws_sfn_state_machine.batch[0].logging_configuration[0].include_execution_data
    error_message = "traced and logged"
  }
  assert {
    condition     = jsondecode(aws_scheduler_schedule.batch[0].target[0].input) == { input_prefix = "batch/input/", output_prefix = "batch/output/" }
    error_message = "the schedule scores the whole input prefix"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.batch) == 3
    error_message = "alarms on failed, timed-out and aborted executions"
  }
}

run "an_output_prefix_inside_the_input_prefix_is_refused" {
  command = plan

  variables {
    batch_enabled       = true
    batch_input_prefix  = "batch"
    batch_output_prefix = "batch/scored"
  }

  expect_failures = [aws_sfn_state_machine.batch]
}
