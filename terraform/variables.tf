variable "name" {
  description = "Name of the service; prefixes every resource."
  type        = string
  default     = "anomaly-detector"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.name))
    error_message = "name must be 3-40 characters of lowercase letters, digits and '-', starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy into; null (the default) takes the environment's, as the AWS CLI does (AWS_REGION, AWS_DEFAULT_REGION, the profile)."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like us-east-1."
  }
}

variable "image_uri" {
  description = "The function's container image in ECR, by immutable tag or digest: <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$", var.image_uri))
    error_message = "image_uri must be an ECR image URI with a tag or digest (Lambda runs images from ECR only)."
  }
}

variable "model_bucket_name" {
  description = "Name of the model registry bucket; null lets Terraform generate a unique name from var.name."
  type        = string
  default     = null

  validation {
    condition     = var.model_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.model_bucket_name))
    error_message = "model_bucket_name must be a valid S3 bucket name."
  }
}

variable "model_prefix" {
  description = "Key prefix of the model registry inside the bucket (MODEL_URI = s3://<bucket>/<prefix>)."
  type        = string
  default     = "registry"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9]$", var.model_prefix)) && !strcontains(var.model_prefix, "//")
    error_message = "model_prefix must be a non-empty key prefix without leading or trailing '/'."
  }
}

variable "registry_writer_arns" {
  description = "IAM principal ARNs (wildcards allowed) that may write or delete models under the prefix; every other principal is denied by the bucket policy. Empty: no such restriction (set it in production)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.registry_writer_arns : can(regex("^arn:aws[a-z-]*:(iam|sts)::[0-9*]{12}:", arn))])
    error_message = "registry_writer_arns must be IAM role/user ARNs."
  }
}

variable "model_alias" {
  description = "Registry alias the function serves (MODEL_ALIAS)."
  type        = string
  default     = "production"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{0,63}$", var.model_alias))
    error_message = "model_alias must be lowercase letters, digits, '-' or '_'."
  }
}

variable "model_version" {
  description = "Pin one model version (MODEL_VERSION), overriding the alias; empty to follow the alias."
  type        = string
  default     = ""

  validation {
    condition     = var.model_version == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", var.model_version))
    error_message = "model_version must be a registry version id such as 20261126T091740Z-29553404."
  }
}

variable "model_retry_seconds" {
  description = "After a failed model load the function answers 503 for this long before trying the registry again (MODEL_RETRY_SECONDS)."
  type        = number
  default     = 2

  validation {
    condition     = var.model_retry_seconds >= 0 && var.model_retry_seconds <= 300
    error_message = "model_retry_seconds must be between 0 and 300."
  }
}

variable "lambda_memory_mb" {
  description = "Function memory in MB (CPU scales with it)."
  type        = number
  default     = 1024

  validation {
    condition     = var.lambda_memory_mb >= 128 && var.lambda_memory_mb <= 10240
    error_message = "lambda_memory_mb must be between 128 and 10240."
  }
}

variable "lambda_timeout_seconds" {
  description = "Function timeout; must stay under API Gateway's 30 s integration timeout."
  type        = number
  default     = 15

  validation {
    condition     = var.lambda_timeout_seconds >= 3 && var.lambda_timeout_seconds <= 29
    error_message = "lambda_timeout_seconds must be between 3 and 29."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of the image: x86_64 or arm64 (build the image for the same)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions: caps the function's scale (and cost) and guarantees it capacity."
  type        = number
  default     = 50

  validation {
    condition     = var.reserved_concurrency >= 1 && var.reserved_concurrency <= 10000
    error_message = "reserved_concurrency must be between 1 and 10000."
  }
}

variable "deployment_preference" {
  description = "How scripts/rollout.py moves the live alias to a new version: AllAtOnce, Canary<P>Percent<M>Minutes or Linear<P>PercentEvery<M>Minutes (CodeDeploy's names)."
  type        = string
  # 15 minutes: the slowest rollback alarms (p99 duration, API 5xx rate) need two breaching 5-minute periods.
  default = "Canary10Percent15Minutes"

  validation {
    condition     = can(regex("^(AllAtOnce|Canary[1-9][0-9]?Percent[1-9][0-9]*Minutes?|Linear[1-9][0-9]?PercentEvery[1-9][0-9]*Minutes?)$", var.deployment_preference))
    error_message = "deployment_preference must be AllAtOnce, Canary<P>Percent<M>Minutes or Linear<P>PercentEvery<M>Minutes (P 1-99, M >= 1)."
  }

  validation {
    # The rollout runs inside the deploy job (60-minute timeout, with build, plan and apply before it).
    condition = var.deployment_preference == "AllAtOnce" || try(tonumber(regex("^Canary[0-9]+Percent([0-9]+)Minutes?$", var.deployment_preference)[0]) <= 30, false) || try(
      floor(99 / tonumber(regex("^Linear([0-9]+)Percent", var.deployment_preference)[0])) * tonumber(regex("Every([0-9]+)Minutes?$", var.deployment_preference)[0]) <= 30, false
    )
    error_message = "deployment_preference must finish within 30 minutes (the deploy job's budget)."
  }
}

variable "rollback_alarms" {
  description = "Alarm name suffixes that stop a rollout and put the previous version back (errors, latency, 5xx, model failures)."
  type        = list(string)
  default     = ["lambda-errors", "server-errors", "lambda-duration-p99", "api-5xx-rate", "model-unavailable", "non-finite-scores"]
}

variable "provisioned_concurrency" {
  description = "Provisioned concurrency on the live alias (0 = none). Removes cold starts up to this concurrency; billed per hour whether used or not."
  type        = number
  default     = 0

  validation {
    condition     = var.provisioned_concurrency >= 0 && var.provisioned_concurrency <= 10000
    error_message = "provisioned_concurrency must be between 0 and 10000."
  }
}

variable "retraining_enabled" {
  description = "Create the scheduled retraining job (ECS Fargate task run by EventBridge). Off by default."
  type        = bool
  default     = false
}

variable "retraining_image_uri" {
  description = "The training image (Dockerfile.train) in ECR, by immutable tag or digest. Required when retraining_enabled."
  type        = string
  default     = ""

  validation {
    condition     = var.retraining_image_uri == "" || can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$", var.retraining_image_uri))
    error_message = "retraining_image_uri must be an ECR image URI with a tag or digest."
  }
}

variable "retraining_schedule" {
  description = "When the retraining task runs: an EventBridge cron() or rate() expression (UTC)."
  type        = string
  default     = "cron(0 3 ? * MON *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.retraining_schedule))
    error_message = "retraining_schedule must be cron(...) or rate(...)."
  }
}

variable "retraining_on_drift" {
  description = "Also run the retraining task when a feature drift alarm (drift_features) enters ALARM."
  type        = bool
  default     = true
}

variable "retraining_data_prefix" {
  description = "Prefix in the model bucket where new training data lands; each run trains on its newest CSV or Parquet file."
  type        = string
  default     = "incoming"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.retraining_data_prefix))
    error_message = "retraining_data_prefix must be a relative key prefix without leading or trailing slashes."
  }
}

variable "retraining_subnet_ids" {
  description = "Subnets the task runs in (private with a NAT or VPC endpoints, or public with retraining_assign_public_ip)."
  type        = list(string)
  default     = []
}

variable "retraining_security_group_ids" {
  description = "Security groups of the task; empty creates one allowing outbound HTTPS only."
  type        = list(string)
  default     = []
}

variable "retraining_assign_public_ip" {
  description = "Give the task a public IP (needed in public subnets without a NAT to reach ECR and S3)."
  type        = bool
  default     = false
}

variable "retraining_cpu" {
  description = "Fargate CPU units of the task (1024 = 1 vCPU)."
  type        = number
  default     = 1024

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.retraining_cpu)
    error_message = "retraining_cpu must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "retraining_memory_mb" {
  description = "Memory of the task in MiB (must be valid for retraining_cpu on Fargate)."
  type        = number
  default     = 4096
}

variable "max_rows" {
  description = "Most records per /predict request (MAX_ROWS)."
  type        = number
  default     = 100000

  validation {
    condition     = var.max_rows >= 1
    error_message = "max_rows must be at least 1."
  }
}

variable "max_body_bytes" {
  description = "Largest /predict body in bytes (MAX_BODY_BYTES). Lambda's synchronous payload limit is 6 MB for the whole event; a base64-encoded body grows by a third."
  type        = number
  default     = 4500000

  validation {
    condition     = var.max_body_bytes >= 1024 && var.max_body_bytes <= 4500000
    error_message = "max_body_bytes must be between 1024 and 4500000 (the event, base64 included, must stay under 6 MB)."
  }
}

variable "log_level" {
  description = "Log level of the function (POWERTOOLS_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the service's own metrics (POWERTOOLS_METRICS_NAMESPACE)."
  type        = string
  default     = "AnomalyDetector"
}

variable "log_retention_days" {
  description = "Retention of the function's and the API's log groups."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 3653)."
  }
}

variable "api_throttle_rate_limit" {
  description = "Steady-state requests per second the API accepts before answering 429."
  type        = number
  default     = 100

  validation {
    condition     = var.api_throttle_rate_limit > 0
    error_message = "api_throttle_rate_limit must be positive."
  }
}

variable "api_throttle_burst_limit" {
  description = "Burst of requests the API accepts before answering 429."
  type        = number
  default     = 200

  validation {
    condition     = var.api_throttle_burst_limit > 0
    error_message = "api_throttle_burst_limit must be positive."
  }
}

variable "authorization_type" {
  description = "Who may call the API: AWS_IAM (SigV4-signed requests), JWT (an OIDC issuer), or NONE (public: set it explicitly)."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "JWT", "NONE"], var.authorization_type)
    error_message = "authorization_type must be AWS_IAM, JWT or NONE."
  }
}

variable "jwt_issuer" {
  description = "OIDC issuer URL for the JWT authorizer (authorization_type = JWT)."
  type        = string
  default     = ""
}

variable "jwt_audience" {
  description = "Accepted audiences for the JWT authorizer (authorization_type = JWT)."
  type        = list(string)
  default     = []
}

variable "alarm_email" {
  description = "Email address subscribed to the alarm topic; empty for none (the subscription must be confirmed)."
  type        = string
  default     = ""

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an email address or empty."
  }
}

variable "alarm_5xx_rate_percent" {
  description = "Alarm when more than this percentage of API requests answer 5xx over 5 minutes."
  type        = number
  default     = 1

  validation {
    condition     = var.alarm_5xx_rate_percent > 0 && var.alarm_5xx_rate_percent <= 100
    error_message = "alarm_5xx_rate_percent must be in (0, 100]."
  }
}

variable "alarm_4xx_count" {
  description = "Alarm when the API answers more than this many 4xx in 5 minutes (a client or abuse spike)."
  type        = number
  default     = 500

  validation {
    condition     = var.alarm_4xx_count > 0
    error_message = "alarm_4xx_count must be positive."
  }
}

variable "model_task" {
  description = "The served model's task (its manifest's task): anomaly, classification or regression. Chooses the task's own alarms: anomaly-rate band (anomaly), mean top-class probability (classification), prediction-mean band (regression)."
  type        = string
  default     = "anomaly"

  validation {
    condition     = contains(["anomaly", "classification", "regression"], var.model_task)
    error_message = "model_task must be anomaly, classification or regression."
  }
}

variable "alarm_confidence_min" {
  description = "Classification: alarm when the hourly mean probability of the predicted class (TopProbabilityMean) falls below this: the model is unsure of what it now sees."
  type        = number
  default     = 0.6

  validation {
    condition     = var.alarm_confidence_min > 0 && var.alarm_confidence_min < 1
    error_message = "alarm_confidence_min must be in (0, 1)."
  }
}

variable "alarm_prediction_mean_band" {
  description = "Regression: alarm when the hourly mean prediction (PredictionMean) leaves [min, max]; null for no alarm. Take it from the manifest's reference.prediction_quantiles."
  type        = object({ min = number, max = number })
  default     = null

  validation {
    condition     = var.alarm_prediction_mean_band == null ? true : var.alarm_prediction_mean_band.min < var.alarm_prediction_mean_band.max
    error_message = "alarm_prediction_mean_band.min must be below its max."
  }
}

variable "alarm_anomaly_rate_max" {
  description = "Alarm when the share of records predicted anomalous over 15 minutes exceeds this (a drift or attack signal)."
  type        = number
  default     = 0.2

  validation {
    condition     = var.alarm_anomaly_rate_max > 0 && var.alarm_anomaly_rate_max < 1
    error_message = "alarm_anomaly_rate_max must be in (0, 1)."
  }
}

variable "drift_features" {
  description = "The model's input features: one PSI drift alarm each (FeaturePSI_<name> metrics)."
  type        = list(string)
  default     = ["one", "two", "three"]
}

variable "alarm_psi_threshold" {
  description = "Alarm when a feature's population stability index against the training reference stays above this (0.25: major shift)."
  type        = number
  default     = 0.25

  validation {
    condition     = var.alarm_psi_threshold > 0
    error_message = "alarm_psi_threshold must be positive."
  }
}

variable "alarm_unseen_category_percent" {
  description = "Alarm when more than this percentage of category values were never seen in training (UnseenCategoryShare)."
  type        = number
  default     = 5

  validation {
    condition     = var.alarm_unseen_category_percent > 0 && var.alarm_unseen_category_percent <= 100
    error_message = "alarm_unseen_category_percent must be in (0, 100]."
  }
}

variable "alarm_out_of_range_percent" {
  description = "Alarm when more than this percentage of input values fall outside the training range."
  type        = number
  default     = 5

  validation {
    condition     = var.alarm_out_of_range_percent > 0 && var.alarm_out_of_range_percent <= 100
    error_message = "alarm_out_of_range_percent must be in (0, 100]."
  }
}

variable "alarm_anomaly_rate_min" {
  description = "Alarm when the hourly anomaly rate falls below this (the lower edge of the expected band)."
  type        = number
  default     = 0.001

  validation {
    condition     = var.alarm_anomaly_rate_min >= 0 && var.alarm_anomaly_rate_min < 1
    error_message = "alarm_anomaly_rate_min must be in [0, 1)."
  }
}

variable "alarm_anomaly_rate_min_volume" {
  description = "The low anomaly-rate alarm only judges hours with more scored records than this."
  type        = number
  default     = 1000
}

variable "alarm_model_age_hours" {
  description = "Alarm when the served model is older than this many hours (ModelAgeHours)."
  type        = number
  default     = 720

  validation {
    condition     = var.alarm_model_age_hours > 0
    error_message = "alarm_model_age_hours must be positive."
  }
}

variable "model_refresh_seconds" {
  description = "How often a running function checks whether its alias moved (MODEL_REFRESH_SECONDS); 0 never."
  type        = number
  default     = 60

  validation {
    condition     = var.model_refresh_seconds >= 0
    error_message = "model_refresh_seconds must not be negative."
  }
}

variable "ecr_keep_images" {
  description = "How many most recent images the ECR lifecycle policy keeps."
  type        = number
  default     = 30

  validation {
    condition     = var.ecr_keep_images >= 1
    error_message = "ecr_keep_images must be at least 1."
  }
}

variable "noncurrent_version_days" {
  description = "Days before noncurrent object versions in the model bucket expire."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}

variable "force_destroy" {
  description = "Let destroy delete a non-empty model bucket and ECR repository. Keep false in production."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "batch_enabled" {
  description = "Create batch scoring: a Step Functions Distributed Map over an S3 prefix and the batch function (same image). Off by default."
  type        = bool
  default     = false
}

variable "batch_input_prefix" {
  description = "Key prefix (in the stack's bucket) under which batch runs read tables; each run names a prefix under it."
  type        = string
  default     = "batch/input"

  validation {
    condition     = can(regex("^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$", var.batch_input_prefix))
    error_message = "batch_input_prefix must be a relative key prefix without leading or trailing slashes."
  }
}

variable "batch_output_prefix" {
  description = "Key prefix (in the stack's bucket) under which batch runs write scored tables, rejects and run results (_runs/)."
  type        = string
  default     = "batch/output"

  validation {
    condition     = can(regex("^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$", var.batch_output_prefix))
    error_message = "batch_output_prefix must be a relative key prefix without leading or trailing slashes."
  }
}

variable "batch_concurrency" {
  description = "The batch function's reserved concurrency, and the Distributed Map's MaxConcurrency (never more children than it may run)."
  type        = number
  default     = 20

  validation {
    condition     = var.batch_concurrency >= 1 && var.batch_concurrency <= 10000
    error_message = "batch_concurrency must be between 1 and 10,000 (Distributed Map's limit)."
  }
}

variable "batch_objects_per_invocation" {
  description = "Objects handed to one batch function invocation (ItemBatcher MaxItemsPerBatch)."
  type        = number
  default     = 4

  validation {
    condition     = var.batch_objects_per_invocation >= 1 && var.batch_objects_per_invocation <= 100
    error_message = "batch_objects_per_invocation must be between 1 and 100."
  }
}

variable "batch_tolerated_failure_percentage" {
  description = "Share of items (0-100) that may fail, past their retries, before the run fails."
  type        = number
  default     = 0

  validation {
    condition     = var.batch_tolerated_failure_percentage >= 0 && var.batch_tolerated_failure_percentage <= 100
    error_message = "batch_tolerated_failure_percentage must be between 0 and 100."
  }
}

variable "batch_memory_mb" {
  description = "Memory of the batch function (MB); CPU grows with it (1 vCPU per 1,769 MB)."
  type        = number
  default     = 3538

  validation {
    condition     = var.batch_memory_mb >= 512 && var.batch_memory_mb <= 10240
    error_message = "batch_memory_mb must be between 512 and 10,240."
  }
}

variable "batch_timeout_seconds" {
  description = "Timeout of one batch invocation; an object not scored in time is refused, nothing written."
  type        = number
  default     = 900

  validation {
    condition     = var.batch_timeout_seconds >= 60 && var.batch_timeout_seconds <= 900
    error_message = "batch_timeout_seconds must be between 60 and 900 (Lambda's maximum)."
  }
}

variable "batch_ephemeral_storage_mb" {
  description = "/tmp of the batch function (MB): an object, its output and rejects must fit, so objects up to a third of it are taken."
  type        = number
  default     = 4096

  validation {
    condition     = var.batch_ephemeral_storage_mb >= 512 && var.batch_ephemeral_storage_mb <= 10240
    error_message = "batch_ephemeral_storage_mb must be between 512 and 10,240."
  }
}

variable "explain_max_rows" {
  description = "Most records per explained request (POST /predict?explain=true): explanations cost more than predictions."
  type        = number
  default     = 100

  validation {
    condition     = var.explain_max_rows >= 1 && floor(var.explain_max_rows) == var.explain_max_rows
    error_message = "explain_max_rows must be a whole number of at least 1."
  }
}

variable "batch_chunk_rows" {
  description = "Rows the batch function scores per chunk: bounds its memory, whatever the object's size."
  type        = number
  default     = 100000
}

variable "batch_explain" {
  description = "Batch scoring: add each row's explanation with its K largest feature contributions as columns (0: none). Costs about 1 ms per row for a 300-tree forest."
  type        = number
  default     = 0

  validation {
    condition     = var.batch_explain >= 0 && var.batch_explain <= 100 && floor(var.batch_explain) == var.batch_explain
    error_message = "batch_explain must be a whole number from 0 to 100."
  }
}

variable "batch_separator" {
  description = "Batch scoring: the input CSVs' field separator: \",\", \";\", \"tab\" or \"|\" (empty: a comma, or semicolons or tabs when a file's header has no comma but those). Outputs are written with the same separator."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", ",", ";", "tab", "|"], var.batch_separator)
    error_message = "batch_separator must be empty, \",\", \";\", \"tab\" or \"|\"."
  }
}

variable "batch_decimal" {
  description = "Batch scoring: the decimal separator of the input CSVs' numbers: \".\" or \",\" (then 12,5 is 12.5)."
  type        = string
  default     = "."

  validation {
    condition     = contains([".", ","], var.batch_decimal)
    error_message = "batch_decimal must be \".\" or \",\"."
  }
}

variable "batch_schedule" {
  description = "An EventBridge Scheduler expression (cron(...), rate(...)) that scores the whole input prefix; empty: no schedule."
  type        = string
  default     = ""

  validation {
    condition     = var.batch_schedule == "" || can(regex("^(cron|rate|at)\\(.+\\)$", var.batch_schedule))
    error_message = "batch_schedule must be empty, cron(...), rate(...) or at(...)."
  }
}
