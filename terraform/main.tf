locals {
  account_id     = data.aws_caller_identity.current.account_id
  partition      = data.aws_partition.current.partition
  region         = data.aws_region.current.name
  function_name  = var.name
  log_group_name = "/aws/lambda/${var.name}"
  api_log_group  = "/aws/apigateway/${var.name}"
  model_uri      = "s3://${aws_s3_bucket.this.bucket}/${var.model_prefix}"

  # Routes the service answers; the same authorization applies to all of them.
  routes = ["GET /", "GET /health", "GET /model", "POST /predict", "GET /docs", "GET /openapi.json"]
}
