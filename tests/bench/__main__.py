"""Run every benchmark module and write ``docs/benchmarks.md``.

Each ``tests/bench/bench_*.py`` module defines ``run() -> str`` returning one Markdown section
(heading level 2) with its measurements side by side with the baseline its issue names. Timings are
reported, never asserted. ``python -m tests.bench [NAME ...]`` runs only the named modules and
keeps the other sections of the existing file.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "benchmarks.md"
_SECTION = re.compile(r"^<!-- bench:(?P<name>\w+) -->$", re.M)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def _existing_sections() -> dict[str, str]:
    if not OUT.exists():
        return {}
    text = OUT.read_text()
    marks = list(_SECTION.finditer(text))
    sections = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        sections[mark["name"]] = text[mark.end():end].strip()
    return sections


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    wanted = [f"bench_{n}" if not n.startswith("bench_") else n for n in argv] or names
    sections = _existing_sections()
    stamp = f"{dt.date.today().isoformat()} on {_machine()}"
    for name in wanted:
        print(f"running {name} ...", flush=True)
        module = importlib.import_module(f"tests.bench.{name}")
        body = module.run()
        sections[name] = f"_Run {stamp}._\n\n{body.strip()}"
        print(body, flush=True)
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m tests.bench`). Each section names the machine and the date",
        "of its run; every comparison inside a section was measured in the same run. Timings are",
        "wall-clock on a shared machine: read them as ratios, not absolutes.",
        "",
    ]
    for name in sorted(sections):
        parts += [f"<!-- bench:{name} -->", sections[name], ""]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(parts))
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
