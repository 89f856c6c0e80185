"""The training batch job: read and validate data, fit, evaluate, publish to the model registry."""
