"""Batch scoring: the same model and validation as ``POST /predict``, over table files.

- ``python -m lambda_app.batch --input ... --output ...``: one command on a laptop (the embedded
  default registry) or against S3, chunked, bounded memory (__main__.py).
- ``lambda_app.batch.handler.handler``: the same image's second entry point, invoked by AWS Step
  Functions Distributed Map with S3 objects to score (handler.py).

Modules: columns (feature columns -> matrix + per-row reasons), formats (CSV/Parquet chunked I/O),
job (one file through the predictor), locations (local/S3, atomic put), run (one planned job).
"""
