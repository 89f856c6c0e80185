# Who may assume each of the stack's roles: one AWS service, on behalf of this account only.
data "aws_iam_policy_document" "assume" {
  for_each = toset(["lambda", "ecs-tasks", "events", "states", "scheduler"])
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["${each.key}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The function's role: read the model prefix, write its own log group, send traces. Nothing else.
# No s3:ListBucket: the service never lists; a missing key then answers 403, which the service
# reports as "missing or not readable".
resource "aws_iam_role" "this" {
  name               = "${var.name}-function"
  assume_role_policy = data.aws_iam_policy_document.assume["lambda"].json
}

data "aws_iam_policy_document" "function" {
  statement {
    sid       = "ReadModels"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/${var.model_prefix}/*"]
  }

  statement {
    sid       = "DecryptModelsAndEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }

  statement {
    sid       = "Tracing" # X-Ray has no resource-level permissions for these actions
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "${var.name}-function"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.function.json
}
