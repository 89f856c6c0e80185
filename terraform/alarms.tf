# Alarms, all to one encrypted SNS topic.
resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.this.arn
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  # Alarms on what only one task's predictions publish (lambda_app/models/): each exists for its task.
  band = var.alarm_prediction_mean_band
  task_alarms = {
    "confidence-low" = {
      enabled     = var.model_task == "classification"
      description = "The mean probability of the predicted class fell below ${var.alarm_confidence_min} over an hour: inputs the model has not learnt."
      namespace   = var.metrics_namespace, metric = "TopProbabilityMean", dimensions = local.service_dims
      statistic   = "Average", period = 3600, evaluation_periods = 1, datapoints = 1, threshold = var.alarm_confidence_min
      comparison  = "LessThanThreshold"
    }
    "prediction-mean-high" = {
      enabled     = var.model_task == "regression" && local.band != null
      description = "The hourly mean prediction rose above ${try(local.band.max, 0)}."
      namespace   = var.metrics_namespace, metric = "PredictionMean", dimensions = local.service_dims
      statistic   = "Average", period = 3600, evaluation_periods = 1, datapoints = 1, threshold = try(local.band.max, 0)
      comparison  = "GreaterThanThreshold"
    }
    "prediction-mean-low" = {
      enabled     = var.model_task == "regression" && local.band != null
      description = "The hourly mean prediction fell below ${try(local.band.min, 0)}."
      namespace   = var.metrics_namespace, metric = "PredictionMean", dimensions = local.service_dims
      statistic   = "Average", period = 3600, evaluation_periods = 1, datapoints = 1, threshold = try(local.band.min, 0)
      comparison  = "LessThanThreshold"
    }
  }
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
  lambda_dims   = { FunctionName = aws_lambda_function.this.function_name }
  api_dims      = { ApiId = aws_apigatewayv2_api.this.id, Stage = aws_apigatewayv2_stage.this.name }
  service_dims  = { service = var.name }
  p99_threshold = var.lambda_timeout_seconds * 1000 * 0.8

  # Every alarm on one metric against a threshold, by name suffix. The ones built on metric math
  # (rates) follow as their own resources.
  threshold_alarms = merge(
    {
      "lambda-errors" = {
        description = "The function raised errors (unhandled exceptions, timeouts, out of memory)."
        namespace   = "AWS/Lambda", metric = "Errors", dimensions = local.lambda_dims
        statistic   = "Sum", period = 60, evaluation_periods = 5, datapoints = 2, threshold = 0
      }
      "lambda-throttles" = {
        description = "Invocations were throttled: reserved concurrency is exhausted."
        namespace   = "AWS/Lambda", metric = "Throttles", dimensions = local.lambda_dims
        statistic   = "Sum", period = 60, evaluation_periods = 5, datapoints = 2, threshold = 0
      }
      "lambda-duration-p99" = {
        description = "p99 duration is above 80% of the function timeout."
        namespace   = "AWS/Lambda", metric = "Duration", dimensions = local.lambda_dims
        statistic   = "p99", period = 300, evaluation_periods = 3, datapoints = 2, threshold = local.p99_threshold
      }
      "api-4xx-spike" = {
        description = "More than ${var.alarm_4xx_count} 4xx answers in 5 minutes: a broken client or abuse."
        namespace   = "AWS/ApiGateway", metric = "4xx", dimensions = local.api_dims
        statistic   = "Sum", period = 300, evaluation_periods = 1, datapoints = 1, threshold = var.alarm_4xx_count
      }
      "server-errors" = {
        description = "The service answered 5xx (handled errors, which Lambda does not count as Errors); stops a canary."
        namespace   = var.metrics_namespace, metric = "ServerErrors", dimensions = local.service_dims
        statistic   = "Sum", period = 60, evaluation_periods = 3, datapoints = 2, threshold = 0
      }
      "model-unavailable" = {
        description = "Requests were answered 503 because no model could be loaded."
        namespace   = var.metrics_namespace, metric = "ModelUnavailable", dimensions = local.service_dims
        statistic   = "Sum", period = 60, evaluation_periods = 3, datapoints = 2, threshold = 0
      }
      "inputs-out-of-range" = {
        description = "More than ${var.alarm_out_of_range_percent}% of input values fall outside the training range."
        namespace   = var.metrics_namespace, metric = "OutOfRangeShare", dimensions = local.service_dims
        statistic   = "Average", period = 900, evaluation_periods = 2, datapoints = 2, threshold = var.alarm_out_of_range_percent
      }
      "unseen-categories" = {
        description = "More than ${var.alarm_unseen_category_percent}% of category values were never seen in training (models with categories; others never emit it)."
        namespace   = var.metrics_namespace, metric = "UnseenCategoryShare", dimensions = local.service_dims
        statistic   = "Average", period = 900, evaluation_periods = 2, datapoints = 2, threshold = var.alarm_unseen_category_percent
      }
      "non-finite-scores" = {
        description = "The model produced NaN or infinite scores (those requests were refused with a 500)."
        namespace   = var.metrics_namespace, metric = "NonFiniteScores", dimensions = local.service_dims
        statistic   = "Sum", period = 60, evaluation_periods = 1, datapoints = 1, threshold = 0
      }
      "model-reload-failed" = {
        description = "A container could not load the version its alias moved to; it keeps serving the previous one."
        namespace   = var.metrics_namespace, metric = "ModelReloadFailed", dimensions = local.service_dims
        statistic   = "Sum", period = 300, evaluation_periods = 1, datapoints = 1, threshold = 0
      }
      "model-stale" = {
        description = "The served model was trained more than ${var.alarm_model_age_hours} hours ago: retrain and promote."
        namespace   = var.metrics_namespace, metric = "ModelAgeHours", dimensions = local.service_dims
        statistic   = "Maximum", period = 3600, evaluation_periods = 1, datapoints = 1, threshold = var.alarm_model_age_hours
      }
    },
    { for name, alarm in local.task_alarms : name => alarm if alarm.enabled },
    {
      for feature in var.drift_features : "drift-${feature}" => {
        description = "Population stability index of ${feature} against the training reference is above ${var.alarm_psi_threshold} (major shift)."
        namespace   = var.metrics_namespace, metric = "FeaturePSI_${feature}", dimensions = local.service_dims
        statistic   = "Average", period = 900, evaluation_periods = 2, datapoints = 2, threshold = var.alarm_psi_threshold
      }
    },
  )
}

locals {
  # Alarms that stop a rollout (scripts/rollout.py) and put the previous function version back.
  anomaly_alarms       = var.model_task == "anomaly" ? ["anomaly-rate-high", "anomaly-rate-low"] : []
  alarm_suffixes       = concat(keys(local.threshold_alarms), ["api-5xx-rate"], local.anomaly_alarms)
  rollback_alarm_names = [for suffix in var.rollback_alarms : "${var.name}-${suffix}"]
}

resource "aws_cloudwatch_metric_alarm" "threshold" {
  for_each            = local.threshold_alarms
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = startswith(each.value.statistic, "p") ? null : each.value.statistic
  extended_statistic  = startswith(each.value.statistic, "p") ? each.value.statistic : null
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.datapoints
  threshold           = each.value.threshold
  comparison_operator = try(each.value.comparison, "GreaterThanThreshold")
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${var.name}-api-5xx-rate"
  alarm_description   = "More than ${var.alarm_5xx_rate_percent}% of API requests answered 5xx."
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  threshold           = var.alarm_5xx_rate_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    label       = "5xx rate (%)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5xx"
      dimensions  = local.api_dims
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = local.api_dims
      period      = 300
      stat        = "Sum"
    }
  }
}

# The anomaly-rate band exists for anomaly models only: other tasks publish no Anomalies metric.
resource "aws_cloudwatch_metric_alarm" "anomaly_rate" {
  count               = var.model_task == "anomaly" ? 1 : 0
  alarm_name          = "${var.name}-anomaly-rate-high"
  alarm_description   = "More than ${var.alarm_anomaly_rate_max * 100}% of scored records were anomalies over 15 minutes."
  evaluation_periods  = 1
  threshold           = var.alarm_anomaly_rate_max
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(predictions > 0, anomalies / predictions, 0)"
    label       = "anomaly rate"
    return_data = true
  }

  metric_query {
    id = "anomalies"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "Anomalies"
      dimensions  = local.service_dims
      period      = 900
      stat        = "Sum"
    }
  }

  metric_query {
    id = "predictions"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "Predictions"
      dimensions  = local.service_dims
      period      = 900
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "anomaly_rate_low" {
  count               = var.model_task == "anomaly" ? 1 : 0
  alarm_name          = "${var.name}-anomaly-rate-low"
  alarm_description   = "Fewer than ${var.alarm_anomaly_rate_min * 100}% of scored records were anomalies over an hour: the model may have gone blind."
  evaluation_periods  = 1
  threshold           = var.alarm_anomaly_rate_min
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(predictions > ${var.alarm_anomaly_rate_min_volume}, anomalies / predictions, ${var.alarm_anomaly_rate_min})"
    label       = "anomaly rate (only with enough volume)"
    return_data = true
  }

  metric_query {
    id = "anomalies"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "Anomalies"
      dimensions  = local.service_dims
      period      = 3600
      stat        = "Sum"
    }
  }

  metric_query {
    id = "predictions"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "Predictions"
      dimensions  = local.service_dims
      period      = 3600
      stat        = "Sum"
    }
  }
}

moved {
  from = aws_cloudwatch_metric_alarm.anomaly_rate
  to   = aws_cloudwatch_metric_alarm.anomaly_rate[0]
}

moved {
  from = aws_cloudwatch_metric_alarm.anomaly_rate_low
  to   = aws_cloudwatch_metric_alarm.anomaly_rate_low[0]
}
