"""Model selection: the cross-validated hyperparameter search."""
