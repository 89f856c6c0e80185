"""Fixtures shared by the batch tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws


@pytest.fixture
def s3() -> Iterator[Any]:
    """moto's S3, in process, with the bucket ``flows``."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="flows")
        yield client
