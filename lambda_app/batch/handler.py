"""The batch entry point of the function image: ``lambda_app.batch.handler.handler``.

AWS Step Functions Distributed Map invokes it with S3 objects to score, either one item
(``{"bucket", "input_prefix", "output_prefix", "Key", "Size"}``) or, with an ItemBatcher, a batch
(``{"BatchInput": {"bucket", "input_prefix", "output_prefix"}, "Items": [{"Key", "Size"}, ...]}``).
Rows never travel through the state machine: each item names an object, and each object's output
goes to a deterministic key (the input key with ``input_prefix`` replaced by ``output_prefix``), so a
retried or re-run item rewrites the same objects. The answer is a small summary per object.

An item is refused, with an error naming the limit, when its object is larger than
BATCH_MAX_OBJECT_BYTES (the input and its output must fit /tmp) or when the invocation's time runs
out before the object is scored; nothing is written for it then. Split such files, or raise the
function's ephemeral storage, memory and timeout (terraform/batch.tf).
"""

from __future__ import annotations

import gc
import warnings
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from lambda_app.batch.formats import beside, is_table
from lambda_app.batch.job import BatchTimeLimitError
from lambda_app.batch.locations import A_REJECTS_FILE, REJECTS_TAG, Job
from lambda_app.batch.run import run_job
from lambda_app.config import Settings
from lambda_app.model_store import LoadedModel, ModelStore
from lambda_app.observability import SERVICE_NAME, logger, metrics, traced_handler

# An item refused before scoring publishes no metrics; that is expected, not worth a warning each.
warnings.filterwarnings("ignore", message="No application metrics to publish")

TIME_MARGIN_MS = 20_000
"""Stop starting chunks when less than this is left: the last chunk and the upload need time."""


class BatchItemError(ValueError):
    """The event does not name objects this function may score (Step Functions should not retry)."""


class ObjectTooLargeError(ValueError):
    """An object larger than one invocation can score (Step Functions should not retry)."""


class BatchObjectsFailedError(RuntimeError):
    """Some objects of a batch failed (each named with its reason); the others were scored."""


@dataclass(frozen=True)
class Item:
    bucket: str
    key: str
    size: int | None
    input_prefix: str
    output_prefix: str

    def job(self) -> Job:
        if not self.key.startswith(self.input_prefix):
            raise BatchItemError(f"object {self.key!r} is not under the input prefix {self.input_prefix!r}")
        output_key = self.output_prefix + self.key[len(self.input_prefix) :]
        output = f"s3://{self.bucket}/{output_key}"
        return Job(f"s3://{self.bucket}/{self.key}", output, beside(output, REJECTS_TAG), self.size or 0)


def read_items(event: Any) -> list[Item]:
    """The objects an event names, from either of the two shapes above."""
    if not isinstance(event, dict):
        raise BatchItemError("the event must be a JSON object naming S3 objects to score")
    common = event.get("BatchInput", event) if "Items" in event else event
    items = event.get("Items", [event])
    if not isinstance(common, dict) or not isinstance(items, list) or not items:
        raise BatchItemError("'Items' must be a non-empty list and 'BatchInput' an object")
    try:
        bucket, input_prefix, output_prefix = (
            str(common[k]) for k in ("bucket", "input_prefix", "output_prefix")
        )
    except KeyError as exc:
        raise BatchItemError(
            f"the event lacks {exc.args[0]!r} (bucket, input_prefix, output_prefix)"
        ) from None
    if not output_prefix or output_prefix.startswith(input_prefix) or input_prefix.startswith(output_prefix):
        # either inside the other, an output key could be an input object's key
        raise BatchItemError("output_prefix must be set and lie outside input_prefix (and it outside it)")
    found = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Key"), str):
            raise BatchItemError("each item must be an object with the S3 'Key' to score")
        size = item.get("Size")
        found.append(
            Item(bucket, item["Key"], int(size) if size is not None else None, input_prefix, output_prefix)
        )
    return found


settings = Settings()
model_store = ModelStore(settings)
s3 = boto3.client(
    "s3",
    endpoint_url=settings.aws_endpoint_url,
    config=Config(retries={"max_attempts": 5, "mode": "standard"}),
)
if settings.preload_model:
    model_store.try_load()
gc.collect()
gc.freeze()


@logger.inject_lambda_context
@traced_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Score each object the event names. A failed object fails alone: the others are still scored
    and written, then the invocation raises (so Step Functions records the failure) naming each."""
    items = read_items(event)
    model = model_store.get()
    metrics.add_dimension(name="service", value=SERVICE_NAME)
    results = []
    skipped = []
    failures: list[tuple[str, Exception]] = []
    for item in items:
        if not is_table(item.key) or f".{REJECTS_TAG}." in item.key.rsplit("/", 1)[-1]:
            # A prefix lists what else lives there (_SUCCESS markers, folders, notes): not a failure.
            source = f"s3://{item.bucket}/{item.key}"
            reason = "not a .csv, .csv.gz or .parquet table" if not is_table(item.key) else A_REJECTS_FILE
            skipped.append({"input": source, "skipped": reason})
            continue
        job = item.job()
        try:
            result = _score_object(item, job, model, context)
        except Exception as exc:  # this object's failure, never its siblings'
            logger.error("object failed", extra={"input": job.source, "reason": str(exc)})
            metrics.add_metric(name="BatchObjectsFailed", unit=MetricUnit.Count, value=1)
            failures.append((job.source, exc))
            continue
        results.append(result)
    if skipped:
        logger.info("objects skipped", extra={"skipped": [entry["input"] for entry in skipped]})
    if failures:
        if len(failures) == 1 and len(items) == 1:
            raise failures[0][1]  # one object: its own error, which Step Functions can match by name
        raise BatchObjectsFailedError(
            f"{len(failures)} of {len(items)} object(s) failed ({len(results)} scored and written): "
            + "; ".join(f"{source}: {type(exc).__name__}: {exc}" for source, exc in failures)
        )
    return {
        "objects": results,
        "skipped": skipped,
        "rows": sum(r["rows"] for r in results),
        "rejected": sum(r["rejected"] for r in results),
    }


def _score_object(item: Item, job: Job, model: LoadedModel, context: LambdaContext) -> dict[str, Any]:
    if context.get_remaining_time_in_millis() < TIME_MARGIN_MS:
        raise BatchTimeLimitError(f"{job.source}: not started, out of time")
    limit = settings.batch_max_object_bytes
    size = (
        item.size
        if item.size is not None
        else s3.head_object(Bucket=item.bucket, Key=item.key)["ContentLength"]
    )
    if size > limit:
        raise ObjectTooLargeError(
            f"{job.source} is {size:,} bytes, over this function's limit of {limit:,} bytes"
            " (BATCH_MAX_OBJECT_BYTES): split the file, or raise the function's ephemeral storage"
        )
    result = run_job(
        job,
        model,
        s3,
        settings.batch_chunk_rows,
        out_of_time=lambda: context.get_remaining_time_in_millis() < TIME_MARGIN_MS,
        refuse_unseen=settings.unseen_categories == "refuse",
        explain=settings.batch_explain,
        separator=settings.batch_separator,
        decimal=settings.batch_decimal,
    )
    logger.info(
        "object scored",
        extra={
            "input": job.source,
            "output": job.output,
            "rows": result.rows,
            "rejected": result.rejected,
            "separator": result.separator,
        },
    )
    metrics.add_metric(name="BatchRowsScored", unit=MetricUnit.Count, value=result.scored)
    metrics.add_metric(name="BatchRowsRejected", unit=MetricUnit.Count, value=result.rejected)
    return {
        "input": job.source,
        "output": job.output,
        "rejects": job.rejects if result.rejected else None,
        "rows": result.rows,
        "rejected": result.rejected,
        "model_version": model.manifest.version,
    }


__all__ = [
    "BatchItemError",
    "BatchObjectsFailedError",
    "BatchTimeLimitError",
    "ObjectTooLargeError",
    "handler",
    "read_items",
]
