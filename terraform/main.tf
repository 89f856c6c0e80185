locals {
  account_id     = data.aws_caller_identity.current.account_id
  partition      = data.aws_partition.current.partition
  region         = data.aws_region.current.name
  function_name  = var.name
  log_group_name = "/aws/lambda/${var.name}"
  api_log_group  = "/aws/apigateway/${var.name}"
  model_uri      = "s3://${aws_s3_bucket.this.bucket}/${var.model_prefix}"

  # Routes the service answers; the same authorization applies to all of them.
  routes = concat(
    ["GET /", "GET /health", "GET /model", "POST /predict", "GET /docs", "GET /openapi.json"],
    # The Open Inference Protocol (REST), served by the same function with the same authorization.
    [
      "GET /v2",
      "GET /v2/health/live",
      "GET /v2/health/ready",
      "GET /v2/models/{name}",
      "GET /v2/models/{name}/ready",
      "POST /v2/models/{name}/infer",
      "GET /v2/models/{name}/versions/{version}",
      "GET /v2/models/{name}/versions/{version}/ready",
      "POST /v2/models/{name}/versions/{version}/infer",
    ],
  )
}
