"""Training failures: each becomes one line on stderr and a non-zero exit."""


class TrainingError(Exception):
    """Base class for failures the CLI reports as one line."""


class DataValidationError(TrainingError):
    """The data is empty, misses a column or holds a value the model cannot use."""


class ConfigError(TrainingError):
    """The training config file is missing or invalid."""
