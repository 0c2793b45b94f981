"""``__all__`` tells the truth: every listed name exists, every public class and function is listed."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

# vitals: every public module must declare __all__. cloud and edge: those that declare it are checked.
_REQUIRED_ALL = ("vitals",)
_CHECKED_PACKAGES = ("vitals", "cloud", "edge")


def _public_modules(package_name: str) -> list[str]:
    package = importlib.import_module(package_name)
    names = [package_name]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts) or "migrations" in parts:
            continue
        names.append(info.name)
    return sorted(names)


_MODULES = [name for package in _CHECKED_PACKAGES for name in _public_modules(package)]


def _defined_here(module: ModuleType) -> list[str]:
    return sorted(
        name for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module.__name__
    )


def test_the_walk_finds_the_known_modules() -> None:
    assert {"vitals", "vitals.codec", "vitals.catalogue", "cloud.store", "cloud.rules", "edge.spool"} <= set(_MODULES)
    assert not any("._" in name for name in _MODULES)


@pytest.mark.parametrize("module_name", _MODULES)
def test_exported_members(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert not module_name.startswith(_REQUIRED_ALL), f"{module_name} is public but declares no __all__"
        return
    assert len(exported) == len(set(exported)), f"{module_name}.__all__ lists a name twice"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what the module lacks: {missing}"
    unlisted = [name for name in _defined_here(module) if name not in exported]
    assert not unlisted, f"{module_name} defines public {unlisted} but leaves them out of __all__"


@pytest.mark.parametrize("package_name", ["vitals", "cloud.api", "cloud.ingest", "cloud.rules", "cloud.store",
                                          "cloud.timeseries", "edge.transports"])
def test_packages_re_export_from_their_private_modules(package_name: str) -> None:
    # A package's __init__ defines nothing itself: what it lists must come from its modules.
    package = importlib.import_module(package_name)
    for name in package.__all__:
        value = getattr(package, name)
        origin = getattr(value, "__module__", None)
        if origin is not None and (inspect.isclass(value) or inspect.isfunction(value)):
            assert origin.startswith(package_name.split(".")[0]), f"{package_name}.{name} comes from {origin}"
