resource "aws_cloudwatch_log_group" "function" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The function reaches only S3, CloudWatch and X-Ray through public AWS endpoints; a VPC would add NAT cost and cold-start latency for no isolation gain.
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway only; a dead-letter queue applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_272:Lambda code signing applies to .zip packages, not container images (ECR scanning and immutable tags cover the image).
  function_name                  = local.function_name
  description                    = "Model inference, task ${var.model_task} (FastAPI + Mangum); model from ${local.model_uri}"
  role                           = aws_iam_role.this.arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  architectures                  = [var.lambda_architecture]
  memory_size                    = var.lambda_memory_mb
  timeout                        = var.lambda_timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn
  # Every image or configuration change becomes a numbered version; traffic reaches it only
  # through the live alias below, moved by scripts/rollout.py.
  publish = true

  environment {
    variables = merge(
      {
        MODEL_URI                    = local.model_uri
        MODEL_ALIAS                  = var.model_alias
        MAX_ROWS                     = tostring(var.max_rows)
        MAX_BODY_BYTES               = tostring(var.max_body_bytes)
        EXPLAIN_MAX_ROWS             = tostring(var.explain_max_rows)
        MODEL_RETRY_SECONDS          = tostring(var.model_retry_seconds)
        MODEL_REFRESH_SECONDS        = tostring(var.model_refresh_seconds)
        POWERTOOLS_SERVICE_NAME      = var.name
        POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
        POWERTOOLS_LOG_LEVEL         = var.log_level
      },
      var.model_version == "" ? {} : { MODEL_VERSION = var.model_version },
    )
  }

  tracing_config {
    mode = "Active"
  }

  # The log group above has the function's default name, so Lambda writes there.
  depends_on = [aws_iam_role_policy.function, aws_cloudwatch_log_group.function]
}

# API Gateway invokes this alias, never $LATEST. Terraform points it at the first published
# version only: later versions go live through scripts/rollout.py (canary, linear or all at once
# per var.deployment_preference, rolled back when a rollback alarm fires), so Terraform must not
# move it back on the next apply.
resource "aws_lambda_alias" "live" {
  name             = "live"
  description      = "Serving traffic; moved by scripts/rollout.py (${var.deployment_preference})"
  function_name    = aws_lambda_function.this.function_name
  function_version = aws_lambda_function.this.version

  lifecycle {
    ignore_changes = [function_version, routing_config]
  }
}

# Pre-initialised environments on the alias for latency-critical users: no cold starts up to
# this many concurrent requests, billed every hour they exist (see docs/operations.md).
resource "aws_lambda_provisioned_concurrency_config" "live" {
  count                             = var.provisioned_concurrency > 0 ? 1 : 0
  function_name                     = aws_lambda_alias.live.function_name
  qualifier                         = aws_lambda_alias.live.name
  provisioned_concurrent_executions = var.provisioned_concurrency

  lifecycle {
    precondition {
      condition     = var.provisioned_concurrency <= var.reserved_concurrency
      error_message = "provisioned_concurrency cannot exceed reserved_concurrency."
    }
  }
}
