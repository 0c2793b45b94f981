"""Files people write (gateway configs, scenarios): read with line marks, check with pydantic models.

One validation layer for every YAML file a user writes: :func:`read_yaml` parses the file and
remembers the line of every key and list item, :func:`validate` checks the data against a pydantic
v2 model, and every mistake becomes a :class:`UserFileError` whose message is one line naming the
file, the line, the field and what is expected::

    gateway.yaml:14: devices[0].options.scan_timeout_s: expected a number greater than 0, not -3

The models live with what they describe (``edge.config``, ``simulators.scenarios``); this module
only turns pydantic's findings into plain words.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from device_profiles._yamlmarks import MarkedDocument, YamlSyntaxError, path_text, read_marked

__all__ = [
    "FieldPath",
    "FileProblem",
    "UserFileError",
    "plain_problems",
    "read_yaml",
    "read_yaml_text",
    "validate",
]

FieldPath = tuple[str | int, ...]
"""Where a value sits in a document: ``("devices", 0, "options", "speed")``."""

ModelT = TypeVar("ModelT")


@dataclass(frozen=True, slots=True)
class FileProblem:
    """One mistake in a file: the file, the 1-based line (if known), the field and what is wrong."""

    file: str
    line: int | None
    path: FieldPath
    message: str
    consequence: bool = False
    """A problem that usually follows from another (a required field missing after a misspelt key): told last."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        # A key with a line break or other control characters would break the one-line promise.
        path = tuple(part if isinstance(part, int) or part.isprintable() else repr(part) for part in self.path)
        message = self.message if self.message.isprintable() else repr(self.message)[1:-1]
        return f"{where}: {path_text(path)}: {message}" if path else f"{where}: {message}"


class UserFileError(ValueError):
    """A file a person wrote that cannot be used; ``str()`` is one line, ``problems`` has them all."""

    def __init__(self, problems: Sequence[FileProblem] | str) -> None:
        if isinstance(problems, str):
            self.problems: tuple[FileProblem, ...] = ()
            super().__init__(problems)
            return
        self.problems = tuple(sorted(problems, key=lambda p: (p.consequence, p.line or 0, path_text(p.path))))
        first = str(self.problems[0]) if self.problems else "invalid file"
        more = len(self.problems) - 1
        super().__init__(first + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""))


def read_yaml_text(text: str, file: str) -> MarkedDocument:
    """Parse YAML ``text`` (the safe tag set) keeping lines; :class:`UserFileError` names ``file``."""
    try:
        return read_marked(text)
    except YamlSyntaxError as exc:
        reason = str(exc).removeprefix("invalid YAML: ")
        raise UserFileError([FileProblem(file, exc.line, (), f"not valid YAML: {reason}")]) from None


def read_yaml(path: Path) -> MarkedDocument:
    """Read and parse the YAML file at ``path``; a missing, unreadable or broken file is a :class:`UserFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserFileError(f"{path}: no such file") from None
    except PermissionError:
        raise UserFileError(f"{path}: no permission to read it (try with sudo)") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UserFileError(f"{path}: cannot read: {reason}") from None
    return read_yaml_text(text, str(path))


def validate(model: type[ModelT], data: Any, *, file: str, document: MarkedDocument | None = None,
             root: FieldPath = ()) -> ModelT:
    """Check ``data`` against ``model`` (a pydantic model or dataclass); return the validated value.

    ``document`` supplies the lines; ``root`` is where ``data`` sits in it (for a part of a file).
    Raises :class:`UserFileError` listing every problem, the first one in its message.
    """
    adapter: TypeAdapter[ModelT] = TypeAdapter(model)
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise UserFileError(plain_problems(exc, model, file=file, document=document, root=root)) from None


def plain_problems(exc: ValidationError, model: Any, *, file: str, document: MarkedDocument | None = None,
                   root: FieldPath = ()) -> list[FileProblem]:
    """Turn pydantic's errors into :class:`FileProblem` s with plain messages and lines."""
    problems: list[FileProblem] = []
    seen: set[FieldPath] = set()
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
        path = (*root, *loc)
        if path in seen:  # one message per field: the first branch of a union says enough
            continue
        seen.add(path)
        message = _message(error, model, loc)
        line = document.line_of(path) if document is not None else None
        problems.append(FileProblem(file, line, path, message, consequence=error["type"] == "missing"))
    return problems


_VALIDATOR_TAGS = frozenset({"constrained-float", "constrained-int", "constrained-str", "nullable", "lax-or-strict"})


def _is_union_tag(part: str | int) -> bool:
    # pydantic may name validator steps in locations ("function-after[_identifier()]"): not fields.
    return isinstance(part, str) and ((part.startswith("function-") and part.endswith("]")) or part in _VALIDATOR_TAGS)


_TYPE_WORDS = {
    "float_type": "a number", "float_parsing": "a number", "int_type": "a whole number",
    "int_from_float": "a whole number", "int_parsing": "a whole number", "string_type": "a text",
    "bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
    "dataclass_type": "a mapping", "model_attributes_type": "a mapping", "tuple_type": "a list",
    "finite_number": "a finite number", "none_required": "nothing (null)",
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: Mapping[str, Any], model: Any, loc: FieldPath) -> str:
    kind = str(error["type"])
    given = error.get("input")
    context = error.get("ctx") or {}
    if kind == "missing":
        return "missing required field"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        known = _known_fields(model, loc[:-1])
        hint = f"; expected one of: {', '.join(known)}" if known else ""
        return f"unknown field{hint}"
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, not {_shown(given)}"
    bounds = {"greater_than": "greater than", "greater_than_equal": "at least", "less_than": "less than",
              "less_than_equal": "at most"}
    if kind in bounds:
        limit = next(iter(context.values()), "?")
        limit = f"{limit:g}" if isinstance(limit, float) else limit
        return f"expected a number {bounds[kind]} {limit}, not {_shown(given)}"
    if kind == "literal_error":
        allowed = str(context.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"expected one of: {allowed}, not {_shown(given)}" if allowed else f"not allowed: {_shown(given)}"
    if kind in ("too_short", "too_long"):
        return f"{str(error['msg']).removeprefix('List ').removeprefix('Value ')}"
    if kind in ("string_too_short", "string_too_long", "string_pattern_mismatch"):
        return f"{_lower_first(str(error['msg']).removeprefix('String '))}, not {_shown(given)}"
    if kind in ("value_error", "assertion_error"):
        cause = context.get("error")
        return str(cause) if cause is not None else str(error["msg"]).removeprefix("Value error, ")
    return f"{_lower_first(str(error['msg']).removeprefix('Input '))}, not {_shown(given)}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _known_fields(model: Any, loc: FieldPath) -> list[str]:
    """The field names the (sub)model at ``loc`` accepts, for "unknown field" messages."""
    current: Any = model
    for part in loc:
        current = _inner(current, part)
        if current is None:
            return []
    fields = _fields_of(current)
    return sorted(fields) if fields is not None else []


def _fields_of(annotation: Any) -> Iterable[str] | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _fields_of(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            found = _fields_of(option)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [info.alias or name for name, info in annotation.model_fields.items()]
    dataclass_fields = getattr(annotation, "__dataclass_fields__", None)
    if isinstance(dataclass_fields, dict):
        return list(dataclass_fields)
    return None


def _field_type(annotation: Any, name: str) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get(name)
        return None if info is None else info.annotation
    if getattr(annotation, "__dataclass_fields__", None) is not None:
        try:
            return typing.get_type_hints(annotation, include_extras=False).get(name)
        except (NameError, TypeError):
            return None
    return None


def _inner(annotation: Any, part: str | int) -> Any:
    """The type found at ``part`` inside ``annotation`` (a field, a list item, a mapping value)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _inner(typing.get_args(annotation)[0], part)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            found = _inner(option, part)
            if found is not None:
                return found
        return None
    if isinstance(part, int):
        if origin in (list, tuple, Sequence):
            return typing.get_args(annotation)[0]
        return None
    if origin in (dict, Mapping):
        return typing.get_args(annotation)[1]
    return _field_type(annotation, part)
