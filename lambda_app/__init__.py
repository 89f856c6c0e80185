"""The inference service: a FastAPI app served by AWS Lambda through Mangum."""
