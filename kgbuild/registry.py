"""Stage backends by name: `ner = "spacy"` in a config picks the class registered as "spacy"
for the "ner" stage. Later issues add backends by registering them; nothing else changes.

The stage contract: a backend instance is a callable that takes a list of Documents and returns
the same list (same length, same order), annotated. The runner checks that and names the stage
at fault. A backend may also define `info() -> dict` (models and versions, for the run report);
the linking backend also defines `finalize() -> (entities, remap)`."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from kgbuild.errors import ConfigError, UnknownBackendError

STAGES = ("ner", "relations", "linking")

# Modules that register built-in backends, imported on first lookup so that importing
# kgbuild stays cheap (no torch, no spaCy) until a pipeline is built.
_BUILTIN_MODULES = {
    "ner": ["kgbuild.ner.spacy_ner", "kgbuild.ner.transformers_ner"],
    "relations": ["kgbuild.relations.zeroshot", "kgbuild.relations.transformers_re"],
    "linking": ["kgbuild.linking.rules"],
}

_registry: dict[str, dict[str, type]] = {stage: {} for stage in STAGES}


def register(stage: str, name: str) -> Callable[[type], type]:
    """Class decorator: make `cls` available as backend `name` of `stage`."""
    if stage not in _registry:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")

    def deco(cls: type) -> type:
        _registry[stage][name] = cls
        cls.backend_name = name
        return cls

    return deco


def _load_builtins(stage: str) -> None:
    for module in _BUILTIN_MODULES.get(stage, []):
        importlib.import_module(module)


def names(stage: str) -> list[str]:
    _load_builtins(stage)
    return sorted(_registry[stage])


def get(stage: str, name: str) -> type:
    """The backend class registered as `name` for `stage`, or an error listing valid names."""
    _load_builtins(stage)
    try:
        return _registry[stage][name]
    except KeyError:
        valid = ", ".join(names(stage)) or "(none)"
        raise UnknownBackendError(
            f"unknown {stage} backend {name!r}",
            hint=f"valid {stage} backends: {valid}",
        ) from None


def build(stage: str, name: str, options: dict[str, Any], **context: Any) -> Any:
    """Instantiate backend `name` of `stage` with its config options.

    Shared context (such as `device`) is passed only to backends that take it; an option the
    backend does not take is a config error that lists the options it does take."""
    cls = get(stage, name)
    shared = sorted(set(options) & set(context))
    if shared:  # the shared value would silently replace the stage's own
        raise ConfigError(f"[{stage}] sets {shared[0]!r}, which is set once for the whole pipeline",
                          hint=f"remove it from [{stage}] and set the top-level {shared[0]} (or --{shared[0]})")
    params = inspect.signature(cls.__init__).parameters
    accepted = {p for p in params if p != "self" and params[p].kind is not inspect.Parameter.VAR_KEYWORD}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = sorted(set(options) - accepted)
    if unknown and not takes_any:
        raise ConfigError(
            f"{stage} backend {name!r} has no option {unknown[0]!r}",
            hint=f"its options are: {', '.join(sorted(accepted - set(context))) or '(none)'}",
        )
    kwargs = dict(options)
    kwargs.update({k: v for k, v in context.items() if k in accepted or takes_any})
    return cls(**kwargs)
