"""The training data: read (local or S3, CSV or Parquet), validated, streamed into a bounded sample,
features chosen, labels parsed, leaks refused; and the seeded example data."""
