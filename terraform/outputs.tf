output "api_url" {
  description = "HTTPS base URL of the API (the $default stage has no path prefix)."
  value       = aws_apigatewayv2_stage.this.invoke_url
}

output "api_id" {
  description = "ID of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.this.arn
}

output "live_alias_arn" {
  description = "The alias API Gateway invokes."
  value       = aws_lambda_alias.live.arn
}

output "rollout" {
  description = "Input of scripts/rollout.py: move the live alias to the version this apply published."
  value = {
    function_name     = aws_lambda_function.this.function_name
    alias             = aws_lambda_alias.live.name
    target_version    = aws_lambda_function.this.version
    preference        = var.deployment_preference
    alarm_names       = local.rollback_alarm_names
    region            = local.region
    metrics_namespace = var.metrics_namespace
    service           = var.name
  }

  precondition {
    condition     = length(setsubtract(var.rollback_alarms, local.alarm_suffixes)) == 0
    error_message = "rollback_alarms names an alarm this stack does not create: ${join(", ", setsubtract(var.rollback_alarms, local.alarm_suffixes))}."
  }
}

output "model_bucket_name" {
  description = "The model registry bucket."
  value       = aws_s3_bucket.this.bucket
}

output "model_uri" {
  description = "MODEL_URI of the function: where training publishes (python -m training --model-uri ...)."
  value       = local.model_uri
}

output "ecr_repository_url" {
  description = "ECR repository to push the function's image to."
  value       = aws_ecr_repository.this.repository_url
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "kms_key_arn" {
  description = "The customer-managed key encrypting the bucket, images, logs, environment and topic."
  value       = aws_kms_key.this.arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the service's health."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "training_ecr_repository_url" {
  description = "ECR repository for the training image (Dockerfile.train); null unless retraining_enabled."
  value       = one(aws_ecr_repository.training[*].repository_url)
}

output "retraining_task_definition_arn" {
  description = "The retraining task (run it by hand: aws ecs run-task ...); null unless retraining_enabled."
  value       = one(aws_ecs_task_definition.training[*].arn)
}

output "batch" {
  description = "Batch scoring (null unless batch_enabled): the state machine, the function and where runs read and write."
  value = var.batch_enabled ? {
    state_machine_arn = aws_sfn_state_machine.batch[0].arn
    function_name     = aws_lambda_function.batch[0].function_name
    input             = "s3://${aws_s3_bucket.this.bucket}/${local.batch_input}"
    output            = "s3://${aws_s3_bucket.this.bucket}/${local.batch_output}"
  } : null
}
