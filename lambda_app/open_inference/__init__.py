"""The Open Inference Protocol (REST, "V2"): tensors in, tensors out, beside the product's own routes.

``tensors`` turns an inference request into the served table (by /predict's row rules) and a
prediction into output tensors; ``schemas`` documents the protocol's bodies in the OpenAPI schema.
The routes are in lambda_app/api/routes/open_inference.py.
"""
