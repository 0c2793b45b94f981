"""Every shipped profile passes the schema, its id matches its file, and its examples decode as written."""

from __future__ import annotations

import ast
from pathlib import Path

import jsonschema
import pytest

import device_profiles
from device_profiles import LIBRARY_DIR, check_examples, default_registry, load_library, load_profile
from device_profiles._loader import profile_schema
from device_profiles._yamlmarks import read_marked

SHIPPED = sorted(LIBRARY_DIR.glob("*/*.yaml"))
REGISTRY = default_registry(load_entry_points=False)


def test_library_is_not_empty_and_has_the_documented_serial_formats() -> None:
    ids = set(load_library())
    assert {"nonin.xpod", "masimo.rad8"} <= ids
    assert {f"generic.{m}" for m in ("heart_rate_strap", "bp_cuff", "thermometer", "pulse_oximeter",
                                     "glucose_meter", "weight_scale")} <= ids
    assert len(ids) == len(SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_profile_matches_schema_and_file_name(path: Path) -> None:
    data = read_marked(path.read_text(encoding="utf-8")).data
    jsonschema.Draft202012Validator(profile_schema()).validate(data)
    assert data["id"] == f"{path.parent.name}.{path.stem}"
    profile = load_profile(path)
    assert profile.id == data["id"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_profile_examples_decode_as_written(path: Path) -> None:
    profile = load_profile(path)
    missing = sorted(name for name in profile.decoder_names() if name not in REGISTRY)
    if missing:
        pytest.skip(f"decoder(s) {', '.join(missing)} not registered yet (device_profiles/builtin.py)")
    assert check_examples(profile, REGISTRY) == []


def test_serial_profiles_name_their_public_source_document() -> None:
    for profile in load_library().values():
        if profile.serial is not None:
            assert profile.source_document and len(profile.source_document) > 20, profile.id


def test_exported_names_are_honest() -> None:
    for name in device_profiles.__all__:
        assert hasattr(device_profiles, name), name
    public = {n for n in vars(device_profiles) if not n.startswith("_")}
    modules = {"errors", "registry", "profile", "layout", "serial", "builtin", "gatt", "ieee11073", "userfile",
               "ecg_patch"}
    assert public - modules <= set(device_profiles.__all__)


def test_my_modules_import_only_vitals_and_device_profiles() -> None:
    root = Path(device_profiles.__file__).parent
    allowed_third_party = {"yaml", "jsonschema"}
    files = [root / n for n in ("profile.py", "_loader.py", "_examples.py", "_yamlmarks.py", "layout.py")]
    files += sorted((root / "serial").glob("*.py"))
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top in {"vitals", "device_profiles", "__future__"} | allowed_third_party or top in (
                    __import__("sys").stdlib_module_names), f"{file.name} imports {name}"
