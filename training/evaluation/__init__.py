"""Evaluation: anomaly scores, thresholds and metrics, the HTML reports, and offline drift."""
