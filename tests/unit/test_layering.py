"""One direction of dependency: each package imports only what sits below it.

vitals         -> nothing of ours; numpy, cbor2, pydantic and the standard library without I/O or clocks
device_profiles -> vitals
edge, cloud, simulators -> vitals, device_profiles (edge and cloud never import each other)
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = frozenset({"vitals", "device_profiles", "edge", "cloud", "simulators", "vitalbridge", "tests"})

ALLOWED_OURS: dict[str, frozenset[str]] = {
    "vitals": frozenset({"vitals"}),
    "device_profiles": frozenset({"vitals", "device_profiles"}),
    "edge": frozenset({"vitals", "device_profiles", "edge"}),
    "cloud": frozenset({"vitals", "device_profiles", "cloud"}),
    "simulators": frozenset({"vitals", "device_profiles", "simulators"}),
}

# vitals is the pure kernel: besides these, only standard-library modules that do no I/O.
VITALS_THIRD_PARTY = frozenset({"numpy", "cbor2", "pydantic"})
IO_STDLIB = frozenset({
    "asyncio", "bz2", "concurrent", "ctypes", "dbm", "fcntl", "fileinput", "ftplib", "glob", "gzip", "http",
    "imaplib", "io", "logging", "lzma", "mailbox", "mmap", "multiprocessing", "os", "pathlib", "poplib", "pty",
    "select", "selectors", "shelve", "shutil", "signal", "smtplib", "socket", "socketserver", "sqlite3", "ssl",
    "subprocess", "tarfile", "tempfile", "termios", "threading", "time", "tty", "urllib.request", "webbrowser",
    "xmlrpc", "zipfile",
})


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """Absolute names of everything a module imports (also inside functions), with line numbers."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if not node.level:
                yield node.module or "", node.lineno
                continue
            parts = module.split(".")
            base = parts[: len(parts) - node.level + (1 if is_package else 0)]
            if node.module:
                yield ".".join([*base, node.module]), node.lineno
            else:  # "from .. import name": each name is a module or a member of the base package
                for alias in node.names:
                    yield ".".join([*base, alias.name]), node.lineno


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def violations(package: str, source: str, path: str, module: str, is_package: bool = False) -> list[str]:
    """Every forbidden import in ``source`` (a module of ``package``), as ``path:line: message``."""
    found: list[str] = []
    for name, line in _imports(ast.parse(source, path), module, is_package):
        top = name.split(".")[0]
        if top == "__future__":
            continue
        if top in OURS:
            if top not in ALLOWED_OURS[package]:
                found.append(f"{path}:{line}: {package} must not import {name}")
        elif package == "vitals":
            if top in VITALS_THIRD_PARTY:
                continue
            if top not in sys.stdlib_module_names:
                found.append(f"{path}:{line}: vitals may use only numpy, cbor2, pydantic and the standard library, "
                             f"not {name}")
            elif top in IO_STDLIB or any(name == io or name.startswith(io + ".") for io in IO_STDLIB):
                found.append(f"{path}:{line}: vitals must do no I/O or clock reads, but imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED_OURS))
def test_package_imports_only_what_sits_below_it(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    found: list[str] = []
    for path in files:
        module, is_package = _module_name(path)
        relative = str(path.relative_to(ROOT))
        found.extend(violations(package, path.read_text(encoding="utf-8"), relative, module, is_package))
    assert not found, "forbidden imports:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("edge", "import os\nfrom cloud.store import Store\n", ["x.py:2: edge must not import cloud.store"]),
        ("cloud", "def f():\n    import edge.spool\n", ["x.py:2: cloud must not import edge.spool"]),
        ("device_profiles", "from edge import config\n", ["x.py:1: device_profiles must not import edge"]),
        ("simulators", "import cloud\n", ["x.py:1: simulators must not import cloud"]),
        ("vitals", "import socket\n", ["x.py:1: vitals must do no I/O or clock reads, but imports socket"]),
        ("vitals", "from urllib.request import urlopen\n",
         ["x.py:1: vitals must do no I/O or clock reads, but imports urllib.request"]),
        ("vitals", "import yaml\n",
         ["x.py:1: vitals may use only numpy, cbor2, pydantic and the standard library, not yaml"]),
        ("vitals", "from device_profiles import errors\n", ["x.py:1: vitals must not import device_profiles"]),
        ("vitals", "from urllib.parse import urlsplit\nimport numpy as np\nimport cbor2, math\n", []),
        ("edge", "from vitals.codec import encode_batch\nfrom device_profiles import registry\n", []),
    ],
)
def test_checker_finds_forbidden_imports(package: str, source: str, expected: list[str]) -> None:
    assert violations(package, source, "x.py", f"{package}.x") == expected


def test_relative_imports_are_resolved() -> None:
    assert violations("edge", "from . import sibling\n", "x.py", "edge.pipeline.x") == []
    assert violations("edge", "from ..spool import BatchSpool\n", "x.py", "edge.pipeline.x") == []
    assert violations("edge", "from ...cloud import store\n", "x.py", "edge.pipeline.x") == [
        "x.py:1: edge must not import cloud"
    ]
    assert violations("edge", "from ... import cloud\n", "x.py", "edge.pipeline.x") == [
        "x.py:1: edge must not import cloud"
    ]
    # From a package's __init__, one dot is the package itself.
    assert violations("edge", "from . import _base\n", "x.py", "edge.transports", is_package=True) == []
    assert violations("edge", "from .. import spool\n", "x.py", "edge.transports", is_package=True) == []
