"""The loaded model's explainer, built on the first request that asks for an explanation.

Most requests never explain, so the cold start does not pay for it: the artifact is read from the
registry (its sha256 checked like every artifact), parsed and prepared once, under a lock, the first
time ``/predict?explain=true`` (or batch ``--explain``) needs it, and reused afterwards. A registry
hiccup is not remembered (the next request tries again); a broken artifact is (it is immutable).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from lambda_app.errors import ExplanationUnavailableError, ModelUnavailableError
from lambda_app.explain.artifact import EXPLANATION_FILE, ExplanationArtifactError, load
from lambda_app.explain.explainer import Explainer
from lambda_app.registry import ArtifactFile, ArtifactIntegrityError, Manifest


class LazyExplainer:
    """One model version's explainer, or the reason it has none."""

    def __init__(self, manifest: Manifest, read: Callable[[ArtifactFile], bytes]) -> None:
        self._manifest = manifest
        self._read = read
        self._file = next((a for a in manifest.artifacts if a.path == EXPLANATION_FILE), None)
        self._lock = threading.Lock()
        self._explainer: Explainer | None = None
        self._broken: str | None = None

    @property
    def available(self) -> bool:
        """The version was published with an explanation artifact (not yet known to be broken)."""
        return self._file is not None and self._broken is None

    def get(self) -> Explainer:
        """The explainer, built on first use.

        Raises:
            ExplanationUnavailableError: this version has no explanations, or its artifact is refused.
            ModelUnavailableError: the registry could not be read this time (retry).
        """
        explainer = self._explainer
        if explainer is not None:
            return explainer
        manifest = self._manifest
        if self._file is None:
            raise ExplanationUnavailableError(
                f"model version {manifest.version} ({manifest.estimator}) has no explanations: they cover"
                " tree ensembles (forests, gradient boosting, XGBoost, LightGBM, IsolationForest) and"
                " linear models; the model's evaluation.json says why this one has none"
            )
        with self._lock:
            if self._explainer is not None:
                return self._explainer
            if self._broken is not None:
                raise ExplanationUnavailableError(self._broken)
            try:
                data = self._read(self._file)
            except ArtifactIntegrityError as exc:
                self._broken = (
                    f"the explanations of model version {manifest.version} failed their integrity check"
                )
                raise ExplanationUnavailableError(self._broken) from exc
            except Exception as exc:  # the registry is unreachable right now: try again next time
                raise ModelUnavailableError(
                    f"explanations could not be read from the model registry ({type(exc).__name__}); retry",
                    retry_after=2,
                ) from exc
            try:
                self._explainer = Explainer.for_manifest(load(data), manifest)
            except ExplanationArtifactError as exc:
                self._broken = f"the explanations of model version {manifest.version} are unusable: {exc}"
                raise ExplanationUnavailableError(self._broken) from exc
            return self._explainer
