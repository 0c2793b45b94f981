"""The stage registry: stage name (= folder name = config key) -> stage class.

Registration is explicit: :mod:`edge.pipeline.builtin` registers the built-in stages; a third-party
stage registers itself with :func:`register_stage`. Nothing is discovered by scanning folders.
"""

from __future__ import annotations

from edge.pipeline._stage import PipelineConfigError, Stage

__all__ = ["STAGES", "register_stage", "stage_class"]

STAGES: dict[str, type[Stage]] = {}
"""Every known stage class by name."""


def register_stage(cls: type[Stage]) -> type[Stage]:
    """Add ``cls`` under ``cls.name`` (usable as a class decorator); a name is registered once."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no stage name")
    existing = STAGES.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"stage {cls.name!r} is already registered by {existing.__qualname__}")
    STAGES[cls.name] = cls
    return cls


def stage_class(name: str) -> type[Stage]:
    """Return the class registered as ``name`` or raise :class:`PipelineConfigError`."""
    try:
        return STAGES[name]
    except KeyError:
        known = ", ".join(sorted(STAGES))
        raise PipelineConfigError(f"unknown pipeline stage {name!r}; known stages: {known}") from None
