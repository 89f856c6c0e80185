"""The manifest: what one immutable model version is, for the service and for training alike.

``schema_version`` 2 makes the model's task part of the contract (anomaly, classification,
regression) with the classes of a classifier and a threshold only where one means something.
Manifests written with ``schema_version`` 1 (anomaly detectors, before tasks existed) are read
through their own frozen schema and upgraded in memory, so an upgrade never strands a model.

The schema is a contract, checked when a version is written and when it is loaded: every number the
service computes with is a finite JSON number, every category can be matched, and the feature list,
its drift reference and the reference's bins agree. A version that breaks it is refused at load (no
model, 503) rather than served wrongly (a NaN threshold answers 0 to everything).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from lambda_app.registry.errors import ManifestError

SCHEMA_VERSION: Literal[2] = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

Task = Literal["anomaly", "classification", "regression"]
TASKS: tuple[Task, ...] = ("anomaly", "classification", "regression")
ArtifactRole = Literal["model", "serving", "evaluation", "report", "other"]
ClassLabel = int | str
"""A class as it was in the training data: numbers stay numbers, strings stay strings."""

ANOMALY_SCORE = "anomaly score in (0, 1]: higher is more anomalous; >= threshold is an anomaly"

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A number the service computes with: finite, and a JSON number (an integer is one). Strict, because
lax parsing turns the string "0.5" or the boolean true into a float; NaN, Infinity and 1e999 (which
overflows) are refused, as training never writes them (pydantic stores a NaN as null)."""

EMPTY_CATEGORY = "an empty value means missing, so it could never be matched"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Compact(_Strict):
    """Optional fields are written only when set: a manifest without categories or missing values
    stays readable by a service that predates those fields (extra fields are forbidden there)."""

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        optional = {name for name, info in type(self).model_fields.items() if not info.is_required()}
        return {k: v for k, v in data.items() if not (k in optional and v is None)}


class ArtifactFile(_Strict):
    """One file of a version, with what it takes to verify it before use."""

    path: str
    role: ArtifactRole
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


Encoding = Literal["ordinal", "onehot"]
FillValue = bool | int | float | str


class FeatureSpec(_Compact):
    """One input feature, in the order the model expects it, and how it reaches the graph.

    A service older than a field refuses a manifest that uses it (extra fields are forbidden).
    """

    name: str
    # boolean: JSON true/false, fed to the model as 1/0; category: a JSON string (see categories)
    dtype: Literal["integer", "number", "boolean", "category"]
    # category: the known values; the graph sees the value's index (ordinal, -1 when unseen) or one 0/1
    # column per known value (onehot, all 0 when unseen): lambda_app/preprocess.py
    categories: list[str] | None = None
    encoding: Encoding | None = None
    # The value a missing one (JSON null, an empty cell) is served as: the training median or most
    # frequent value. None: the feature had no missing values in training and a null is refused.
    fill: FillValue | None = None
    # "native": a missing value reaches the model as NaN and its trees send it down the branch they
    # learned for missing values (gradient-boosted trees, [data] missing = "native"); never with a fill.
    missing: Literal["native"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSpec:
        if self.dtype == "category":
            if not self.categories or self.encoding is None:
                raise ValueError(f"category feature {self.name!r} needs its categories and an encoding")
            if "" in self.categories:
                raise ValueError(f"category feature {self.name!r} lists an empty category: {EMPTY_CATEGORY}")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(f"category feature {self.name!r} lists a category twice")
            if self.fill is not None and self.fill not in self.categories:
                raise ValueError(f"category feature {self.name!r}: fill {self.fill!r} is not a category")
        elif self.categories is not None or self.encoding is not None:
            raise ValueError(f"{self.dtype} feature {self.name!r} has no categories or encoding")
        if self.missing is not None and (self.fill is not None or self.dtype == "category"):
            raise ValueError(
                f"{self.dtype} feature {self.name!r}: missing = {self.missing!r} is for numbers and booleans"
                " without a fill"
            )
        if self.dtype == "boolean" and self.fill is not None and not isinstance(self.fill, bool):
            raise ValueError(f"boolean feature {self.name!r}: fill must be true or false")
        if self.dtype in ("number", "integer") and (
            isinstance(self.fill, bool | str) or (self.fill is not None and not math.isfinite(self.fill))
        ):
            raise ValueError(f"{self.dtype} feature {self.name!r}: fill must be a finite number")
        return self

    @property
    def takes_missing(self) -> bool:
        """True when a missing value (JSON null, an empty cell) is scored: filled, or left to the model."""
        return self.fill is not None or self.missing is not None

    @property
    def width(self) -> int:
        """How many graph input columns the feature takes."""
        return len(self.categories or ()) if self.encoding == "onehot" else 1


class FeatureReference(_Compact):
    """A summary of one feature's training distribution, the reference for drift checks."""

    count: int
    mean: FiniteFloat
    std: FiniteFloat
    min: FiniteFloat
    max: FiniteFloat
    quantiles: dict[str, FiniteFloat]
    bin_edges: list[FiniteFloat]
    bin_fractions: list[FiniteFloat]
    # Written only when they apply: a category feature's bins are its values' indices (its shares);
    # the share of missing values in training (the statistics above are over the values present).
    categories: list[str] | None = None
    missing_fraction: FiniteFloat | None = None

    @model_validator(mode="after")
    def _bins_fit(self) -> FeatureReference:
        """New data is binned on these edges and compared bin by bin (registry/reference.py)."""
        if len(self.bin_edges) < 2 or len(self.bin_fractions) != len(self.bin_edges) - 1:
            raise ValueError(
                f"{len(self.bin_edges)} bin_edges make {max(len(self.bin_edges) - 1, 0)} bins,"
                f" but bin_fractions has {len(self.bin_fractions)}"
            )
        if any(low > high for low, high in zip(self.bin_edges, self.bin_edges[1:], strict=False)):
            raise ValueError("bin_edges must be in increasing order")
        if self.categories is not None and (not self.categories or "" in self.categories):
            raise ValueError(f"categories must be listed, none of them empty: {EMPTY_CATEGORY}")
        return self


class ReferenceV1(_Strict):
    """The training distribution as schema_version 1 recorded it (anomaly detectors only)."""

    features: dict[str, FeatureReference]
    score_quantiles: dict[str, FiniteFloat]
    anomaly_rate: FiniteFloat


class Reference(_Strict):
    """The training distribution: per-feature summaries, and what the model predicted on it.

    Which prediction summary is present depends on the task: anomaly models record score
    quantiles and the anomaly rate, classifiers the share of each predicted class, regressors
    the quantiles and mean of their predictions.
    """

    features: dict[str, FeatureReference]
    score_quantiles: dict[str, FiniteFloat] | None = None
    anomaly_rate: FiniteFloat | None = None
    class_fractions: dict[str, FiniteFloat] | None = None
    prediction_quantiles: dict[str, FiniteFloat] | None = None
    prediction_mean: FiniteFloat | None = None


class Provenance(_Compact):
    """Where a version came from, so it can be reproduced and audited."""

    data_uri: str
    data_sha256: str
    rows: int  # in the data file
    # When the file had more rows than [data] sample_rows: the uniform sample trained on ({rows, seed}).
    sample: dict[str, int] | None = None
    params: dict[str, Any]
    library_versions: dict[str, str]
    code_revision: str
    config: dict[str, Any]


Metrics = dict[str, FiniteFloat | int | None]
"""Holdout metrics; null where a metric is undefined (one class only, a constant target)."""


class ManifestV1(_Strict):
    """schema_version 1, frozen as the code before model kinds wrote it. Read-only."""

    schema_version: Literal[1] = 1
    name: str
    version: str = Field(pattern=VERSION_PATTERN.pattern)
    created_at: datetime
    estimator: str
    artifacts: list[ArtifactFile]
    features: list[FeatureSpec] = Field(min_length=1)
    label: str | None
    threshold: FiniteFloat
    score: str = ANOMALY_SCORE
    metrics: Metrics | None
    reference: ReferenceV1
    provenance: Provenance
    tuning: dict[str, Any] | None = None


class Manifest(_Strict):
    """Everything the service needs to know about one immutable model version.

    ``schema_version`` is 2 for everything written now; a value of 1 marks a version written
    before tasks existed, upgraded in memory by ``parse_manifest`` (task ``anomaly``).
    """

    schema_version: Literal[1, 2] = SCHEMA_VERSION
    name: str
    version: str = Field(pattern=VERSION_PATTERN.pattern)
    created_at: datetime
    task: Task
    estimator: str
    artifacts: list[ArtifactFile]
    features: list[FeatureSpec] = Field(min_length=1)
    label: str | None
    classes: list[ClassLabel] | None = None
    threshold: FiniteFloat | None = None
    score: str | None = None  # what the anomaly score means
    converter: dict[str, str] | None = None  # how the serving graph was made, with versions
    metrics: Metrics | None
    reference: Reference
    provenance: Provenance
    tuning: dict[str, Any] | None = None  # the hyperparameter search: objective, trials, best

    @model_validator(mode="after")
    def _features_agree(self) -> Manifest:
        """Each feature once, and a drift reference of exactly those features."""
        names = self.feature_names
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValueError(f"features list {name!r} twice")
            seen.add(name)
        for name in names:
            if name not in self.reference.features:
                raise ValueError(f"reference.features has no summary of {name!r}")
        for name in self.reference.features:
            if name not in seen:
                raise ValueError(f"reference.features summarises {name!r}, which is not a feature")
        return self

    @model_validator(mode="after")
    def _fits_task(self) -> Manifest:
        if self.task == "anomaly" and self.threshold is None:
            raise ValueError("an anomaly model needs a threshold")
        if self.task != "anomaly" and self.threshold is not None:
            raise ValueError(f"a {self.task} model has no threshold")
        if self.task == "classification":
            if not self.classes or len(self.classes) < 2:
                raise ValueError("a classification model lists at least two classes")
            if len({str(c) for c in self.classes}) != len(self.classes):
                raise ValueError("classes must be distinct (also as strings: they key the probabilities)")
        elif self.classes is not None:
            raise ValueError(f"a {self.task} model has no classes")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def input_width(self) -> int:
        """The serving graph's input columns: one per feature, or one per category (one-hot)."""
        return sum(f.width for f in self.features)

    def artifact(self, role: str) -> ArtifactFile:
        """The artifact with ``role``; raises ManifestError if the manifest lists none."""
        for artifact in self.artifacts:
            if artifact.role == role:
                return artifact
        raise ManifestError(f"manifest of version {self.version} lists no {role!r} artifact")


def parse_manifest(raw: bytes, version: str) -> Manifest:
    """A stored manifest's bytes -> Manifest, upgrading schema_version 1 in memory.

    Raises:
        ManifestError: not JSON, an unknown schema version, invalid, or filed under another version.
    """
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest of version {version} is not valid JSON: {exc}") from exc
    found = data.get("schema_version") if isinstance(data, dict) else None
    if found not in READABLE_SCHEMA_VERSIONS:
        raise ManifestError(
            f"manifest of version {version} has schema_version {found!r};"
            f" this service reads {', '.join(map(str, READABLE_SCHEMA_VERSIONS))}"
        )
    try:
        if found == 1:
            legacy = ManifestV1.model_validate(data)
            manifest = Manifest.model_validate({**legacy.model_dump(), "task": "anomaly"})
        else:
            manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"manifest of version {version} is invalid: {exc}") from exc
    if manifest.version != version:
        raise ManifestError(f"manifest under {version} claims version {manifest.version}")
    return manifest
