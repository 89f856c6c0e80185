"""The training config file's schema (TOML), validated once at start-up.

Plain data: what a value must look like, and its default. What the schema cannot judge alone (the
estimator exists and takes these parameters, a metric fits the task) is a ``ConfigChecks`` given by
training/tasks/checks.py, which knows the estimators and the tasks; its ``load_config`` is how a run
reads its config.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from lambda_app.registry import Task
from training.exceptions import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("config.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


DEFAULT_LABEL = "label"


class DataConfig(_Section):
    # "auto": every usable column but the label and `exclude` (training/data/validate.py says what it
    # chose and why it skipped the rest); or an explicit list, in the order the model sees them.
    features: Literal["auto"] | list[str] = "auto"
    exclude: list[str] = Field(default_factory=list)
    label: str | None = DEFAULT_LABEL
    # A label named anything but the default must be in the data (else an error listing the columns);
    # the default name may be absent (anomaly detection without labels) after a loud warning, unless this
    # is set (--label sets it).
    require_label: bool = False
    # Missing values (empty cells, NaN, NA, null...): "impute" serves the model with the training median
    # (numbers) or most frequent value (booleans, categories) recorded in the manifest, and /predict takes
    # null for those features; "refuse" makes any missing value an error naming its row; "native" leaves
    # a number's or a boolean's missing values to gradient-boosted trees (HistGradientBoosting, XGBoost,
    # LightGBM), which learn where they go (other estimators, and categories, are imputed).
    missing: Literal["impute", "refuse", "native"] = "impute"
    # Text columns become categories up to this many distinct values (more: free text or an id, skipped
    # under "auto", an error when listed).
    max_categories: int = Field(default=1000, ge=2, le=100_000)
    # Per-column type overrides: number | integer | boolean | category (e.g. a port number as a category).
    types: dict[str, Literal["number", "integer", "boolean", "category"]] = Field(default_factory=dict)
    # A file with more rows is read in chunks (every row validated) into a uniform sample of this many
    # (seeded by [split] seed), which training, tuning and evaluation use: memory stays flat as data grows.
    sample_rows: int = Field(default=1_000_000, ge=1_000)
    # Before fitting, every feature is tried alone against the label (a one-feature tree, cross-validated
    # on the fitting rows): one that predicts it with balanced accuracy / R^2 at or above this is refused
    # as a leak (training/data/leakage.py), unless listed in allow_leaky (a real, known-at-prediction
    # signal).
    leak_threshold: float = Field(default=0.99, gt=0.5, le=1.0)
    allow_leaky: list[str] = Field(default_factory=list)
    # A CSV's column separator, e.g. ";" or "\t". Unset: a comma, unless the header has no comma but
    # semicolons or tabs (a spreadsheet's export in many locales): then those, said in the log.
    separator: str | None = Field(default=None, min_length=1, max_length=1)
    # The decimal separator of a CSV's numbers: "." or "," (then 12,5 is 12.5, and a number written
    # with a dot, such as 1.250, is an error: it may mean 1250).
    decimal: Literal[".", ","] = "."

    @model_validator(mode="after")
    def _distinct(self) -> DataConfig:
        if isinstance(self.features, list):
            if not self.features:
                raise ValueError('list at least one feature, or use features = "auto"')
            if len(set(self.features)) != len(self.features):
                raise ValueError("features must be distinct")
            if self.label in self.features:
                raise ValueError("the label cannot also be a feature")
        return self

    @property
    def label_required(self) -> bool:
        """A missing label column is an error (named explicitly), not an unlabelled run."""
        return self.label is not None and (self.require_label or self.label != DEFAULT_LABEL)


class SplitConfig(_Section):
    validation_fraction: float = Field(default=0.2, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0, lt=0.5)
    seed: int = 42


class ModelConfig(_Section):
    task: Task = "anomaly"
    # A short name of an anomaly detector (training/estimators/families.py: ANOMALY_DETECTORS), any
    # scikit-learn estimator's import path, e.g. "sklearn.ensemble.RandomForestClassifier", or "auto" (the
    # default: the best of a few families, cross-validated; for anomaly detection without labels to rank
    # detectors by, an IsolationForest with scikit-learn's defaults).
    estimator: str = Field(default="auto", min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    scale: bool | None = None  # a StandardScaler in front; default: only for distance-based detectors
    # Regression only: "log" fits the model on log(1 + label) and answers exp(prediction) - 1 (in the
    # served graph too): for a skewed, non-negative target such as a price, and never below -1.
    target_transform: Literal["none", "log"] = "none"

    @model_validator(mode="after")
    def _estimator_fits(self, info: ValidationInfo) -> ModelConfig:
        """The estimator exists, takes these parameters and fits the task: known before reading data."""
        if self.target_transform != "none" and self.task != "regression":
            raise ValueError(f"target_transform applies to regression only, not {self.task}")
        checks = _checks(info)
        if checks is not None:
            checks.check_model(self)
        return self


class ThresholdConfig(_Section):
    # max_f1 (needs labels) | quantile | estimator: the detector's own rule (offset_, from contamination)
    strategy: Literal["max_f1", "quantile", "estimator"] = "max_f1"
    quantile: float = Field(default=0.97, gt=0, lt=1)


class TuningConfig(_Section):
    enabled: bool = True
    budget: int = Field(default=8, ge=1, le=200)
    # estimator = "auto": no family is started once this many seconds have gone into choosing (the first
    # always runs; the winner's tuning comes after and is not counted).
    budget_s: float = Field(default=600, gt=0)
    folds: int = Field(default=3, ge=2, le=10)
    metric: str | None = None  # default: the task's (pr_auc, f1_macro, rmse); checked against the task
    seed: int | None = None  # default: [split] seed, the run's one seed
    space: dict[str, list[Any]] = Field(default_factory=dict)
    # Candidates are cross-validated on a seeded sample of at most this many training rows: enough to
    # rank them (an IsolationForest sees max_samples rows per tree), at a cost that does not grow with data.
    max_rows: int = Field(default=100_000, ge=100)


class EvaluationConfig(_Section):
    beat_baseline: bool = True  # refuse to publish a model that the task's baseline beats


class PromotionConfig(_Section):
    metric: str | None = None  # default: the task's (pr_auc, f1_macro, rmse); checked against the task
    margin: float = Field(default=0.01, ge=0)


class DriftConfig(_Section):
    psi_threshold: float = Field(default=0.25, gt=0)
    # A feature has also drifted when its share of missing values rises by more than this (0.1: ten
    # percentage points): an upstream field that stopped arriving is drift even if the rest look alike.
    missing_share_increase: float = Field(default=0.1, gt=0, le=1)


LAMBDA_MEMORY_MB = 1024
"""Terraform's default function memory (terraform/variables.tf lambda_memory_mb; a test keeps them equal)."""


class ServingConfig(_Section):
    # The function's memory: the job measures the compiled model loaded and scoring, and refuses to
    # publish one that would need more than 90% of it (training/estimators/footprint.py). Keep it equal
    # to the lambda_memory_mb you deploy with.
    memory_mb: int = Field(default=LAMBDA_MEMORY_MB, ge=128, le=10240)


DEFAULT_NAMES = {"anomaly": "anomaly-detector", "classification": "classifier", "regression": "regressor"}


class TrainingConfig(_Section):
    """The whole config. Validated alone it checks the schema only: runs validate it through
    training/tasks/checks.py, which adds the estimator and metric checks (``ConfigChecks``)."""

    name: str = ""  # default: anomaly-detector, classifier or regressor, after the task
    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    threshold: ThresholdConfig = Field(default_factory=ThresholdConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)

    @model_validator(mode="before")
    @classmethod
    def _anomaly_default(cls, raw: Any) -> Any:
        """No estimator named for anomaly detection: "auto", unless the config sets what only a named
        estimator takes (model.params, model.scale, tuning.space). Such a config was written for the
        IsolationForest, the anomaly default before "auto", and keeps it."""
        if not isinstance(raw, dict) or not isinstance(raw.get("model", {}), dict):
            return raw
        model = raw.get("model", {})
        if "estimator" in model or model.get("task", "anomaly") != "anomaly":
            return raw
        tuning = raw.get("tuning", {})
        space = tuning.get("space") if isinstance(tuning, dict) else None
        if model.get("params") or model.get("scale") is not None or space:
            return {**raw, "model": {**model, "estimator": "isolation_forest"}}
        return raw

    @model_validator(mode="after")
    def _metrics_fit_the_task(self, info: ValidationInfo) -> TrainingConfig:
        checks = _checks(info)
        if checks is not None:
            checks.check_config(self)
        if not self.name:
            self.name = DEFAULT_NAMES[self.model.task]
        if self.tuning.seed is None:
            self.tuning.seed = self.split.seed
        return self

    @property
    def tuning_seed(self) -> int:
        """[tuning] seed, else the run's one seed ([split] seed)."""
        return self.split.seed if self.tuning.seed is None else self.tuning.seed


class ConfigChecks(Protocol):
    """What the schema cannot judge alone, knowing neither the estimators nor the tasks.

    training/tasks/checks.py gives them to ``read_config`` and ``config_from``; they run inside the
    schema's own validators (through pydantic's validation context), so a bad estimator or metric is
    refused while the config is validated, before any data is read.
    """

    def check_model(self, model: ModelConfig) -> None:
        """ConfigError unless the estimator exists, takes these parameters and fits the task."""
        ...

    def check_config(self, config: TrainingConfig) -> None:
        """ValueError or ConfigError unless the metrics fit the task and the search space the estimator."""
        ...


_CHECKS = "checks"


def _checks(info: ValidationInfo) -> ConfigChecks | None:
    """The checks ``config_from`` passed in pydantic's validation context, if any."""
    context = info.context
    return context.get(_CHECKS) if isinstance(context, dict) else None


def config_from(raw: Any, checks: ConfigChecks) -> TrainingConfig:
    """``raw`` (a parsed TOML table, a recorded config) validated, ``checks`` included.

    Raises pydantic's ValidationError, or ConfigError from the checks.
    """
    return TrainingConfig.model_validate(raw, context={_CHECKS: checks})


def read_config(path: str | Path, checks: ConfigChecks) -> TrainingConfig:
    """Read and validate a TOML config, ``checks`` included; raises ConfigError with the reason."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    try:
        return config_from(raw, checks)
    except ConfigError as exc:  # raised by the estimator checks, which know the key at fault
        raise ConfigError(f"config {path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"config {path}: {where}: {unknown_key(first['loc'])}") from exc
        raise ConfigError(f"config {path}: {where}: {first['msg']}") from exc


def unknown_key(loc: tuple[int | str, ...]) -> str:
    """What to say of a key its section does not take: the nearest valid key, and all of them."""
    import difflib

    section: type[BaseModel] = TrainingConfig
    for part in loc[:-1]:
        annotation = section.model_fields[str(part)].annotation if str(part) in section.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return "not a setting here"
        section = annotation
    keys = list(section.model_fields)
    name = f"[{'.'.join(str(p) for p in loc[:-1])}]" if len(loc) > 1 else "the top level"
    near = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    guess = f"did you mean {near[0]!r}? " if near else ""
    return f"no such setting; {guess}{name} takes {', '.join(keys)}"
