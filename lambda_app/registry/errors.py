"""Registry failures: each names what is missing, unreadable or refused."""

from __future__ import annotations


class RegistryError(Exception):
    """Base class for registry failures."""


class ArtifactNotFoundError(RegistryError):
    """A manifest, alias or artifact file does not exist in the registry."""


class ManifestError(RegistryError):
    """A manifest or alias record is unreadable or of an unknown schema version."""


class ArtifactIntegrityError(RegistryError):
    """An artifact's bytes do not match the sha256 or size its manifest records."""


class VersionExistsError(RegistryError):
    """A version is immutable: publishing it a second time is refused."""


class AliasConflictError(RegistryError):
    """An alias changed between reading and writing it: another move got there first."""
