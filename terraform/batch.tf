# Batch scoring (off unless var.batch_enabled): AWS Step Functions Distributed Map fans the objects
# under the input prefix out to a batch function, built from the serving image with its second entry
# point (lambda_app.batch.handler). Rows never travel through the state machine: ItemReader lists
# the objects (s3:listObjectsV2), ItemBatcher hands each invocation a few of them (Key and Size
# only), the function scores each object to the same relative key under the output prefix, and
# ResultWriter records the Map Run's results under <output prefix>/_runs/.
#
# Start a run: scripts/batch_score.py --input s3://BUCKET/<input prefix>/... --output s3://BUCKET/<output prefix>/...
# (execution input {"input_prefix": "...", "output_prefix": "..."}, both under the configured prefixes).
locals {
  batch        = var.batch_enabled ? 1 : 0
  batch_name   = "${var.name}-batch"
  batch_input  = "${var.batch_input_prefix}/"
  batch_output = "${var.batch_output_prefix}/"
  batch_runs   = "${var.batch_output_prefix}/_runs"
  # Built rather than referenced: the role's policy must exist before the state machine, and it
  # names the machine itself (Distributed Map starts child executions of it).
  batch_state_machine_arn = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.batch_name}"
  batch_execution_arns = [
    "arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.batch_name}:*",
    "arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.batch_name}/*",
  ]
  # Each invocation scores at most this much: its input, output and rejects must fit /tmp together.
  batch_max_object_bytes = floor(var.batch_ephemeral_storage_mb * 1024 * 1024 / 3)
  # The retries that help: throttling (the function is at its reserved concurrency) and Lambda's own
  # transient faults, with exponential backoff and jitter. Data errors (TableSchemaError,
  # ObjectTooLargeError, BatchItemError) are not retried: they would fail again.
  batch_retry = [
    {
      ErrorEquals     = ["Lambda.TooManyRequestsException"]
      IntervalSeconds = 2
      BackoffRate     = 2
      MaxAttempts     = 8
      MaxDelaySeconds = 120
      JitterStrategy  = "FULL"
    },
    {
      ErrorEquals     = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.ClientExecutionTimeoutException"]
      IntervalSeconds = 2
      BackoffRate     = 2
      MaxAttempts     = 4
      JitterStrategy  = "FULL"
    },
  ]
}

# ---- the batch function: the same image, its own command, memory, storage and timeout -----------
resource "aws_cloudwatch_log_group" "batch_function" {
  count             = local.batch
  name              = "/aws/lambda/${local.batch_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_iam_role" "batch_function" {
  count              = local.batch
  name               = "${local.batch_name}-function"
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
}

# Read the input prefix and the registry, write (and replace stale rejects) under the output prefix.
data "aws_iam_policy_document" "batch_function" {
  count = local.batch
  statement {
    sid       = "ReadInputAndModels"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/${local.batch_input}*", "${aws_s3_bucket.this.arn}/${var.model_prefix}/*"]
  }
  statement {
    sid       = "WriteOutput"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.this.arn}/${local.batch_output}*"]
  }
  statement {
    sid       = "BucketKey" # SSE-KMS objects: decrypt what it reads, a data key for what it writes
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.batch_function[0].arn}:*"]
  }
  statement {
    sid       = "Tracing" # X-Ray has no resource-level permissions for these actions
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "batch_function" {
  count  = local.batch
  name   = "${local.batch_name}-function"
  role   = aws_iam_role.batch_function[0].id
  policy = data.aws_iam_policy_document.batch_function[0].json
}

resource "aws_lambda_function" "batch" {
  #checkov:skip=CKV_AWS_117:The function reaches only S3, CloudWatch and X-Ray through public AWS endpoints; a VPC would add NAT cost for no isolation gain.
  #checkov:skip=CKV_AWS_116:Invoked synchronously by Step Functions, which retries and records failed items; a dead-letter queue applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_272:Lambda code signing applies to .zip packages, not container images (ECR scanning and immutable tags cover the image).
  count                          = local.batch
  function_name                  = local.batch_name
  description                    = "Batch scoring (lambda_app.batch.handler) for the ${local.batch_name} state machine"
  role                           = aws_iam_role.batch_function[0].arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  architectures                  = [var.lambda_architecture]
  memory_size                    = var.batch_memory_mb
  timeout                        = var.batch_timeout_seconds
  reserved_concurrent_executions = var.batch_concurrency
  kms_key_arn                    = aws_kms_key.this.arn

  image_config {
    command = ["lambda_app.batch.handler.handler"]
  }

  ephemeral_storage {
    size = var.batch_ephemeral_storage_mb
  }

  environment {
    variables = merge(
      {
        MODEL_URI                    = local.model_uri
        MODEL_ALIAS                  = var.model_alias
        BATCH_MAX_OBJECT_BYTES       = tostring(local.batch_max_object_bytes)
        BATCH_CHUNK_ROWS             = tostring(var.batch_chunk_rows)
        BATCH_EXPLAIN                = tostring(var.batch_explain)
        BATCH_DECIMAL                = var.batch_decimal
        MODEL_REFRESH_SECONDS        = tostring(var.model_refresh_seconds) # warm containers follow the alias, as the API's do
        POWERTOOLS_SERVICE_NAME      = local.batch_name
        POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
        POWERTOOLS_LOG_LEVEL         = var.log_level
      },
      var.model_version == "" ? {} : { MODEL_VERSION = var.model_version },
      var.batch_separator == "" ? {} : { BATCH_SEPARATOR = var.batch_separator },
    )
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_iam_role_policy.batch_function, aws_cloudwatch_log_group.batch_function]
}

# ---- the state machine ------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "batch" {
  count             = local.batch
  name              = "/aws/vendedlogs/states/${local.batch_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_iam_role" "batch" {
  count              = local.batch
  name               = local.batch_name
  assume_role_policy = data.aws_iam_policy_document.assume["states"].json
}

# Invoke only the batch function; list and read only the input prefix; write only the run results.
data "aws_iam_policy_document" "batch" {
  count = local.batch
  statement {
    sid       = "InvokeTheBatchFunction"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.batch[0].arn, "${aws_lambda_function.batch[0].arn}:*"]
  }
  statement {
    sid       = "ListInputPrefix" # ItemReader
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.batch_input}*"]
    }
  }
  statement {
    sid       = "ReadInputPrefix"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/${local.batch_input}*"]
  }
  statement {
    sid       = "WriteRunResults" # ResultWriter
    actions   = ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.this.arn}/${local.batch_runs}/*"]
  }
  statement {
    sid       = "BucketKeyViaS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "ExecutionDataKey" # encryption_configuration below
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [local.batch_state_machine_arn]
    }
  }
  statement {
    sid       = "LogDeliveryDataKey"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:SourceArn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"]
    }
  }
  statement {
    sid       = "StartMapRunChildren" # Distributed Map runs its items as child executions
    actions   = ["states:StartExecution"]
    resources = [local.batch_state_machine_arn]
  }
  statement {
    sid       = "SuperviseMapRunChildren"
    actions   = ["states:DescribeExecution", "states:StopExecution"]
    resources = local.batch_execution_arns
  }
  statement {
    sid = "LogDelivery" # CloudWatch Logs vended delivery has no resource-level permissions
    actions = [
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "Tracing" # X-Ray has no resource-level permissions for these actions
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "batch" {
  count  = local.batch
  name   = local.batch_name
  role   = aws_iam_role.batch[0].id
  policy = data.aws_iam_policy_document.batch[0].json
}

resource "aws_sfn_state_machine" "batch" {
  count    = local.batch
  name     = local.batch_name
  type     = "STANDARD" # a Distributed Map runs in a Standard workflow
  role_arn = aws_iam_role.batch[0].arn

  definition = jsonencode({
    Comment = "Score every table under s3://${aws_s3_bucket.this.bucket}/<input_prefix> into <output_prefix> (lambda_app.batch.handler)"
    StartAt = "ScoreObjects"
    States = {
      ScoreObjects = {
        Type  = "Map"
        Label = "score"
        ItemReader = {
          Resource   = "arn:${local.partition}:states:::s3:listObjectsV2"
          Parameters = { Bucket = aws_s3_bucket.this.bucket, "Prefix.$" = "$.input_prefix" }
        }
        # Each listed object is {Key, Size, Etag, LastModified, StorageClass}: keep what the function needs.
        ItemSelector = { "Key.$" = "$$.Map.Item.Value.Key", "Size.$" = "$$.Map.Item.Value.Size" }
        ItemBatcher = {
          MaxItemsPerBatch = var.batch_objects_per_invocation
          BatchInput = {
            bucket            = aws_s3_bucket.this.bucket
            "input_prefix.$"  = "$.input_prefix"
            "output_prefix.$" = "$.output_prefix"
          }
        }
        # Never more children than the function may run at once: the rest would only be throttled.
        MaxConcurrency             = var.batch_concurrency
        ToleratedFailurePercentage = var.batch_tolerated_failure_percentage
        ItemProcessor = {
          ProcessorConfig = { Mode = "DISTRIBUTED", ExecutionType = "STANDARD" }
          StartAt         = "ScoreBatch"
          States = {
            ScoreBatch = {
              Type       = "Task"
              Resource   = "arn:${local.partition}:states:::lambda:invoke"
              Parameters = { FunctionName = aws_lambda_function.batch[0].arn, "Payload.$" = "$" }
              OutputPath = "$.Payload"
              Retry      = local.batch_retry
              End        = true
            }
          }
        }
        ResultWriter = {
          Resource   = "arn:${local.partition}:states:::s3:putObject"
          Parameters = { Bucket = aws_s3_bucket.this.bucket, Prefix = local.batch_runs }
        }
        End = true
      }
    }
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.batch[0].arn}:*"
    include_execution_data = true
    level                  = "ERROR"
  }

  tracing_configuration {
    enabled = true
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = aws_kms_key.this.arn
    kms_data_key_reuse_period_seconds = 300
  }

  depends_on = [aws_iam_role_policy.batch]

  lifecycle {
    precondition {
      condition     = var.batch_input_prefix != var.batch_output_prefix && !startswith("${var.batch_output_prefix}/", local.batch_input)
      error_message = "batch_output_prefix must lie outside batch_input_prefix."
    }
  }
}

# ---- an optional schedule (EventBridge Scheduler) ----------------------------------------------------
resource "aws_iam_role" "batch_scheduler" {
  count              = var.batch_enabled && var.batch_schedule != "" ? 1 : 0
  name               = "${local.batch_name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.assume["scheduler"].json
}

data "aws_iam_policy_document" "batch_scheduler" {
  count = length(aws_iam_role.batch_scheduler)
  statement {
    sid       = "StartTheBatchJob"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.batch[0].arn]
  }
  statement {
    sid       = "DecryptTheSchedule" # the schedule is encrypted with the stack key
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "batch_scheduler" {
  count  = length(aws_iam_role.batch_scheduler)
  name   = "${local.batch_name}-scheduler"
  role   = aws_iam_role.batch_scheduler[0].id
  policy = data.aws_iam_policy_document.batch_scheduler[0].json
}

resource "aws_scheduler_schedule" "batch" {
  count                        = length(aws_iam_role.batch_scheduler)
  name                         = local.batch_name
  description                  = "Score everything under ${local.batch_input} into ${local.batch_output} (${var.batch_schedule})"
  schedule_expression          = var.batch_schedule
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = aws_kms_key.this.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.batch[0].arn
    role_arn = aws_iam_role.batch_scheduler[0].arn
    input    = jsonencode({ input_prefix = local.batch_input, output_prefix = local.batch_output })

    retry_policy {
      maximum_retry_attempts = 3
    }
  }
}

# ---- alarms -------------------------------------------------------------------------------------------
# A Map Run with more failed items than tolerated fails its execution, so ExecutionsFailed covers it.
resource "aws_cloudwatch_metric_alarm" "batch" {
  for_each = var.batch_enabled ? {
    failed    = { metric = "ExecutionsFailed", what = "failed (an item failed past its retries beyond the tolerated share, or the listing failed)" }
    timed-out = { metric = "ExecutionsTimedOut", what = "timed out" }
    aborted   = { metric = "ExecutionsAborted", what = "was aborted" }
  } : {}
  alarm_name          = "${local.batch_name}-${each.key}"
  alarm_description   = "A batch-scoring execution ${each.value.what}; see the execution in the Step Functions console."
  namespace           = "AWS/States"
  metric_name         = each.value.metric
  dimensions          = { StateMachineArn = aws_sfn_state_machine.batch[0].arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
