# Scheduled retraining (off unless var.retraining_enabled): an EventBridge rule runs the training
# image (Dockerfile.train) as an ECS Fargate task. The task trains on the newest file under the
# data prefix, publishes it as the `candidate` alias and promotes it to var.model_alias through
# the quality gate (python -m training retrain). Optionally a drift alarm entering ALARM runs it
# too. The task role may write only under the registry prefix; the function role writes nothing.
locals {
  retraining          = var.retraining_enabled ? 1 : 0
  retraining_data_uri = "s3://${aws_s3_bucket.this.bucket}/${var.retraining_data_prefix}/"
  retraining_command = [
    "retrain", "--data", local.retraining_data_uri, "--model-uri", local.model_uri, "--to", var.model_alias,
  ]
  retraining_security_groups = length(var.retraining_security_group_ids) > 0 ? var.retraining_security_group_ids : aws_security_group.training[*].id
  drift_alarm_arns           = [for feature in var.drift_features : aws_cloudwatch_metric_alarm.threshold["drift-${feature}"].arn]
}

resource "aws_ecr_repository" "training" {
  count                = local.retraining
  name                 = "${var.name}-training"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_destroy

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.this.arn
  }
}

resource "aws_ecr_lifecycle_policy" "training" {
  count      = local.retraining
  repository = aws_ecr_repository.training[0].name
  policy     = aws_ecr_lifecycle_policy.this.policy
}

resource "aws_ecs_cluster" "training" {
  count = local.retraining
  name  = "${var.name}-training"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "training" {
  count             = local.retraining
  name              = "/ecs/${var.name}-training"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

# What ECS needs to start the task: pull the training image, write the task's log group.
resource "aws_iam_role" "training_execution" {
  count              = local.retraining
  name               = "${var.name}-training-execution"
  assume_role_policy = data.aws_iam_policy_document.assume["ecs-tasks"].json
}

data "aws_iam_policy_document" "training_execution" {
  count = local.retraining
  statement {
    sid       = "EcrLogin" # GetAuthorizationToken has no resource-level permissions
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullTrainingImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [aws_ecr_repository.training[0].arn]
  }
  statement {
    sid       = "TaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.training[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "training_execution" {
  count  = local.retraining
  name   = "${var.name}-training-execution"
  role   = aws_iam_role.training_execution[0].id
  policy = data.aws_iam_policy_document.training_execution[0].json
}

# What the training code may do: read the data prefix, read and write the registry prefix (no
# deletes), list the bucket (so a missing key is a 404, not a 403), use the key. Nothing else.
resource "aws_iam_role" "training_task" {
  count              = local.retraining
  name               = "${var.name}-training-task"
  assume_role_policy = data.aws_iam_policy_document.assume["ecs-tasks"].json
}

data "aws_iam_policy_document" "training_task" {
  count = local.retraining
  statement {
    sid       = "ReadData"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/${var.retraining_data_prefix}/*"]
  }
  # Unconditional: S3 answers a missing key with 404 (not 403) only to a caller allowed to list the
  # bucket, and publishing checks that a new version's keys do not exist yet. The bucket holds only
  # this service's data and models.
  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
  }
  statement {
    sid       = "ReadAndWriteRegistry"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/${var.model_prefix}/*"]
  }
  statement {
    sid       = "UseTheKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "training_task" {
  count  = local.retraining
  name   = "${var.name}-training-task"
  role   = aws_iam_role.training_task[0].id
  policy = data.aws_iam_policy_document.training_task[0].json
}

resource "aws_ecs_task_definition" "training" {
  count                    = local.retraining
  family                   = "${var.name}-retrain"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.retraining_cpu
  memory                   = var.retraining_memory_mb
  execution_role_arn       = aws_iam_role.training_execution[0].arn
  task_role_arn            = aws_iam_role.training_task[0].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Read-only root filesystem; the job's downloads and temporary files go to a task volume at /tmp.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "retrain"
    image                  = var.retraining_image_uri
    essential              = true
    command                = local.retraining_command
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    environment            = [{ name = "AWS_REGION", value = local.region }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.training[0].name
        awslogs-region        = local.region
        awslogs-stream-prefix = "retrain"
      }
    }
  }])

  lifecycle {
    precondition {
      condition     = var.retraining_image_uri != "" && length(var.retraining_subnet_ids) > 0
      error_message = "retraining_enabled needs retraining_image_uri (the Dockerfile.train image in ECR) and retraining_subnet_ids."
    }
    precondition {
      # Fargate's valid memory for each CPU size (MiB).
      condition     = var.retraining_memory_mb >= lookup({ 256 = 512, 512 = 1024, 1024 = 2048, 2048 = 4096, 4096 = 8192, 8192 = 16384, 16384 = 32768 }, var.retraining_cpu, 0) && var.retraining_memory_mb <= lookup({ 256 = 2048, 512 = 4096, 1024 = 8192, 2048 = 16384, 4096 = 30720, 8192 = 61440, 16384 = 122880 }, var.retraining_cpu, 0)
      error_message = "retraining_memory_mb is not a valid Fargate memory size for retraining_cpu (1024 CPU: 2048-8192 MiB; see the Fargate task size table)."
    }
  }
}

# Without security groups given, one that only lets the task reach HTTPS endpoints (S3, ECR, logs).
data "aws_subnet" "training" {
  count = var.retraining_enabled && length(var.retraining_security_group_ids) == 0 && length(var.retraining_subnet_ids) > 0 ? 1 : 0
  id    = var.retraining_subnet_ids[0]
}

resource "aws_security_group" "training" {
  count       = length(data.aws_subnet.training)
  name        = "${var.name}-training"
  description = "Retraining task: outbound HTTPS only"
  vpc_id      = data.aws_subnet.training[0].vpc_id

  egress {
    description = "HTTPS to S3, ECR and CloudWatch Logs"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# EventBridge may run this task definition on this cluster, passing exactly the two task roles.
resource "aws_iam_role" "retraining_events" {
  count              = local.retraining
  name               = "${var.name}-retraining-events"
  assume_role_policy = data.aws_iam_policy_document.assume["events"].json
}

data "aws_iam_policy_document" "retraining_events" {
  count = local.retraining
  statement {
    sid       = "RunTheTrainingTask"
    actions   = ["ecs:RunTask"]
    resources = ["${aws_ecs_task_definition.training[0].arn_without_revision}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.training[0].arn]
    }
  }
  statement {
    sid       = "PassTheTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.training_execution[0].arn, aws_iam_role.training_task[0].arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "retraining_events" {
  count  = local.retraining
  name   = "${var.name}-retraining-events"
  role   = aws_iam_role.retraining_events[0].id
  policy = data.aws_iam_policy_document.retraining_events[0].json
}

resource "aws_cloudwatch_event_rule" "retraining" {
  for_each = var.retraining_enabled ? merge(
    { schedule = { description = "Retrain on schedule (${var.retraining_schedule})", schedule = var.retraining_schedule, pattern = null } },
    var.retraining_on_drift && length(local.drift_alarm_arns) > 0 ? {
      drift = {
        description = "Retrain when a feature drift alarm enters ALARM"
        schedule    = null
        pattern = jsonencode({
          source        = ["aws.cloudwatch"]
          "detail-type" = ["CloudWatch Alarm State Change"]
          resources     = local.drift_alarm_arns
          detail        = { state = { value = ["ALARM"] } }
        })
      }
    } : {},
  ) : {}
  name                = "${var.name}-retrain-${each.key}"
  description         = each.value.description
  schedule_expression = each.value.schedule
  event_pattern       = each.value.pattern
}

resource "aws_cloudwatch_event_target" "retraining" {
  for_each = aws_cloudwatch_event_rule.retraining
  rule     = each.value.name
  arn      = aws_ecs_cluster.training[0].arn
  role_arn = aws_iam_role.retraining_events[0].arn

  ecs_target {
    task_definition_arn = aws_ecs_task_definition.training[0].arn
    task_count          = 1
    launch_type         = "FARGATE"
    platform_version    = "LATEST"

    network_configuration {
      subnets          = var.retraining_subnet_ids
      security_groups  = local.retraining_security_groups
      assign_public_ip = var.retraining_assign_public_ip
    }
  }
}

# A retraining task that stops with a non-zero exit (1: error; 3: the gate kept the serving model) or
# never starts (image pull, networking) notifies the alarm topic, so a broken job is not silent until
# the model-stale alarm.
resource "aws_cloudwatch_event_rule" "retraining_stopped" {
  count       = local.retraining
  name        = "${var.name}-retrain-not-promoted"
  description = "The retraining task failed, could not start, or did not promote (exit 3)"
  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn = [aws_ecs_cluster.training[0].arn]
      lastStatus = ["STOPPED"]
      "$or" = [
        { stopCode = ["TaskFailedToStart"] },
        { containers = { exitCode = [{ "anything-but" = 0 }] } },
      ]
    }
  })
}

resource "aws_cloudwatch_event_target" "retraining_stopped" {
  count = local.retraining
  rule  = aws_cloudwatch_event_rule.retraining_stopped[0].name
  arn   = aws_sns_topic.alarms.arn
}

data "aws_iam_policy_document" "alarm_topic" {
  count = local.retraining
  statement {
    sid       = "AccountPublishes" # what the default topic policy allows: this account's alarms
    actions   = ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceOwner"
      values   = [local.account_id]
    }
  }
  statement {
    sid       = "RetrainingOutcomeEvents"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.retraining_stopped[0].arn]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  count  = local.retraining
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarm_topic[0].json
}
