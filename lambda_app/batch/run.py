"""Run one planned job: fetch the input, score it into scratch files, put the outputs in place."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lambda_app.batch.formats import format_of
from lambda_app.batch.job import DEFAULT_CHUNK_ROWS, FileResult, score_file
from lambda_app.batch.locations import Job, fetched, put, remove, scratch_for
from lambda_app.model_store import LoadedModel


def run_job(
    job: Job,
    model: LoadedModel,
    s3: Any = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
    out_of_time: Callable[[], bool] | None = None,
    refuse_unseen: bool = False,
    explain: int = 0,
    separator: str | None = None,
    decimal: str = ".",
) -> FileResult:
    """Score ``job.source`` into ``job.output`` (and ``job.rejects`` when a row was rejected, else a
    stale rejects file of an earlier run is removed).

    Whatever fails, nothing partial is left: the scratch files always go, and an output put in
    place whose rejects then could not be is taken back, so an output never stands without them.
    """
    with tempfile.TemporaryDirectory(prefix="batch-") as tmp:
        scratch = Path(tmp)
        output = scratch_for(job.output, scratch, "output")
        rejects = scratch_for(job.rejects, scratch, "rejects")
        try:
            with fetched(job.source, scratch, s3) as local:
                result = score_file(
                    local,
                    format_of(job.source),
                    output,
                    rejects,
                    model,
                    chunk_rows,
                    on_chunk,
                    out_of_time,
                    refuse_unseen,
                    explain,
                    separator,
                    decimal,
                )
            put(output, job.output, s3)
            try:
                if result.rejected:
                    put(rejects, job.rejects, s3)
                else:
                    remove(job.rejects, s3)
            except BaseException:
                remove(job.output, s3)
                raise
        finally:
            output.unlink(missing_ok=True)
            rejects.unlink(missing_ok=True)
    return result
