"""The estimators: the supported families built from the config, the preprocessing fitted in front of
them, their conversion to ONNX with parity, and their serving footprint."""
