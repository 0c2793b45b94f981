"""Check a ``pipeline`` config section against the stages' option models, naming field and line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from device_profiles._yamlmarks import MarkedDocument
from device_profiles.userfile import FieldPath, FileProblem, plain_problems
from edge.pipeline._stage import PipelineConfigError, Stage
from edge.pipeline.builtin import default_chain
from edge.pipeline.registry import STAGES
from vitals import CATALOGUE

__all__ = ["pipeline_problems"]


def pipeline_problems(config: Any, *, file: str, document: MarkedDocument | None = None,
                      root: FieldPath = ("pipeline",)) -> list[FileProblem]:
    """Every mistake in a ``pipeline`` section: unknown metrics, stages or options, bad values.

    ``config`` maps metric names (and ``defaults``) to their section: an optional ``stages`` list
    and flat stage options. Each option is checked by the model of every stage in the chain that
    reads it. Returns an empty list when :class:`edge.pipeline.Pipeline` can be built from it.
    """
    report = _Report(file, document)
    if config is None:
        return []
    if not isinstance(config, Mapping):
        report.add(root, f"expected a mapping of metric -> settings, not {config!r}")
        return report.problems
    for key, section in config.items():
        where = (*root, str(key))
        if key != "defaults" and key not in CATALOGUE:
            report.add(where, f"unknown metric; expected 'defaults' or one of: {', '.join(sorted(CATALOGUE))}")
            continue
        if section is None:
            continue
        if not isinstance(section, Mapping):
            report.add(where, f"expected a mapping of stage options, not {section!r}")
            continue
        if key == "defaults":
            _check_options(report, where, section, list(STAGES.values()), chain_named=False)
            continue
        names = section.get("stages", default_chain(str(key)))
        if not isinstance(names, list | tuple) or not all(isinstance(name, str) for name in names):
            report.add((*where, "stages"), f"expected a list of stage names, not {names!r}")
            continue
        unknown = [name for name in names if name not in STAGES]
        if unknown:
            report.add((*where, "stages"), f"unknown stage {unknown[0]!r}; known stages: {', '.join(sorted(STAGES))}")
            continue
        options = {k: v for k, v in section.items() if k != "stages"}
        _check_options(report, where, options, [STAGES[name] for name in names], chain_named=True)
    if not report.problems:
        report.problems.extend(_build_problems(config, root, report))
    return report.problems


class _Report:
    def __init__(self, file: str, document: MarkedDocument | None) -> None:
        self.file = file
        self.document = document
        self.problems: list[FileProblem] = []

    def add(self, path: FieldPath, message: str) -> None:
        line = self.document.line_of(path) if self.document is not None else None
        self.problems.append(FileProblem(self.file, line, path, message))


def _check_options(report: _Report, where: FieldPath, options: Mapping[str, Any], stages: list[type[Stage]],
                   *, chain_named: bool) -> None:
    for key in options:
        if not any(key in stage.Options.model_fields for stage in stages):
            known = sorted({name for stage in stages for name in stage.Options.model_fields})
            scope = f"the stages {', '.join(stage.name for stage in stages)}" if chain_named else "any stage"
            report.add((*where, str(key)), f"unknown option: not read by {scope}; options: {', '.join(known)}")
    for stage in stages:
        mine = {key: value for key, value in options.items() if key in stage.Options.model_fields}
        if not mine:
            continue
        try:
            stage.Options.model_validate(mine)
        except ValidationError as exc:
            for problem in plain_problems(exc, stage.Options, file=report.file, document=report.document,
                                          root=where):
                if problem not in report.problems:
                    report.problems.append(problem)


def _build_problems(config: Mapping[str, Any], root: FieldPath, report: _Report) -> list[FileProblem]:
    # The models cover what can be said per option; building every configured chain catches the rest.
    from edge.pipeline._chain import Pipeline

    try:
        Pipeline(config)
    except (PipelineConfigError, ValueError, TypeError, ArithmeticError) as exc:
        line = report.document.line_of(root) if report.document is not None else None
        return [FileProblem(report.file, line, root, str(exc))]
    return []
