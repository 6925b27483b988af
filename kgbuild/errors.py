"""Errors a user can act on. Each message says what went wrong and what to do next; the CLI
prints it on one line and exits with code 1."""

from __future__ import annotations


class KgbuildError(Exception):
    """Base class: `str(err)` is the one-line message, `err.hint` what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg} ({self.hint})" if self.hint else msg


class ConfigError(KgbuildError):
    """The pipeline config is missing, malformed or names something that does not exist."""


class UnknownBackendError(ConfigError):
    """A stage names a backend that is not registered."""


class CorpusError(KgbuildError):
    """The corpus path is missing, or holds no readable document."""


class ModelLoadError(KgbuildError):
    """A model named in the config could not be loaded."""


class GraphError(KgbuildError):
    """The output folder holds no graph, or a query or export failed."""


class StageError(KgbuildError):
    """A stage returned something that breaks the pipeline contract."""
