# One page of the service's health: traffic, errors, latency, model behaviour.
locals {
  dashboard_widgets = [
    {
      title   = "API requests and errors"
      metrics = [["AWS/ApiGateway", "Count", "ApiId", aws_apigatewayv2_api.this.id, "Stage", "$default"], [".", "4xx", ".", ".", ".", "."], [".", "5xx", ".", ".", ".", "."]]
      stat    = "Sum"
    },
    {
      title   = "API latency (p50, p99)"
      metrics = [["AWS/ApiGateway", "Latency", "ApiId", aws_apigatewayv2_api.this.id, "Stage", "$default", { stat = "p50" }], ["...", { stat = "p99" }]]
      stat    = "p50"
    },
    {
      title   = "Lambda invocations, errors, throttles"
      metrics = [["AWS/Lambda", "Invocations", "FunctionName", aws_lambda_function.this.function_name], [".", "Errors", ".", "."], [".", "Throttles", ".", "."], [".", "ConcurrentExecutions", ".", ".", { stat = "Maximum" }]]
      stat    = "Sum"
    },
    {
      title   = "Lambda duration (p50, p99)"
      metrics = [["AWS/Lambda", "Duration", "FunctionName", aws_lambda_function.this.function_name, { stat = "p50" }], ["...", { stat = "p99" }]]
      stat    = "p50"
    },
    {
      title   = "Records scored and anomalies"
      metrics = [[var.metrics_namespace, "Predictions", "service", var.name], [".", "Anomalies", ".", "."], [".", "ModelUnavailable", ".", "."]]
      stat    = "Sum"
    },
    {
      title   = "Drift: PSI per feature against the training reference"
      metrics = [for feature in var.drift_features : [var.metrics_namespace, "FeaturePSI_${feature}", "service", var.name]]
      stat    = "Average"
    },
    {
      title   = "Inputs outside the training range (%), scoring latency (ms)"
      metrics = [[var.metrics_namespace, "OutOfRangeShare", "service", var.name], [".", "ScoringLatency", ".", ".", { stat = "p99" }]]
      stat    = "Average"
    },
    {
      title   = "Cold starts"
      metrics = [[var.metrics_namespace, "ColdStart", "function_name", aws_lambda_function.this.function_name, "service", var.name]]
      stat    = "Sum"
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      for index, widget in local.dashboard_widgets : {
        type   = "metric"
        x      = (index % 2) * 12
        y      = floor(index / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = widget.title
          metrics = widget.metrics
          stat    = widget.stat
          period  = 300
          region  = local.region
          view    = "timeSeries"
        }
      }
    ]
  })
}
