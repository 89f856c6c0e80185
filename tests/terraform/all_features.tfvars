# Every optional feature on, so checkov scans the count-gated resources too (tests/terraform/test_checkov.py).
image_uri             = "123456789012.dkr.ecr.us-east-1.amazonaws.com/anomaly-detector:v1"
retraining_enabled    = true
retraining_image_uri  = "123456789012.dkr.ecr.us-east-1.amazonaws.com/anomaly-detector-training:v1"
retraining_subnet_ids = ["subnet-0123456789abcdef0"]
batch_enabled         = true
batch_schedule        = "cron(0 2 * * ? *)"
