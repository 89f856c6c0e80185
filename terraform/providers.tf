# Credentials, and the endpoint of a local AWS (moto) in tests, come from the environment
# (AWS_PROFILE / AWS_ACCESS_KEY_ID ..., AWS_ENDPOINT_URL): this code holds no local-only switches.
provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = var.name, ManagedBy = "terraform" }, var.tags)
  }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {} # var.region, or the environment's when it is null
data "aws_partition" "current" {}
