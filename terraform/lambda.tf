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
  description                    = "Anomaly detection inference (FastAPI + Mangum); model from ${local.model_uri}"
  role                           = aws_iam_role.this.arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  architectures                  = [var.lambda_architecture]
  memory_size                    = var.lambda_memory_mb
  timeout                        = var.lambda_timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn

  environment {
    variables = merge(
      {
        MODEL_URI                    = local.model_uri
        MODEL_ALIAS                  = var.model_alias
        MAX_ROWS                     = tostring(var.max_rows)
        MAX_BODY_BYTES               = tostring(var.max_body_bytes)
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
