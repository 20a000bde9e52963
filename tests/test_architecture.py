"""The import rule of docs/architecture.md, read from the source with ast.

- ``core/``, ``protocol/`` and ``screens/`` are pure: no adapter, no I/O library.
- Layers only import downwards: ``protocol`` imports no other layer of the package,
  ``screens`` only its own, ``core`` only ``protocol`` and ``screens``.
- Adapters never import each other across hardware and network.

Every import counts, also those inside functions (the lazy ones). A failure names the file,
the line and the import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "device" / "micromance"

#: Libraries that do I/O, wait or talk to hardware: never in a pure package.
IO_LIBRARIES = ("paho", "luma", "gpiozero", "lgpio", "smbus2", "sqlite3", "socket",
                "threading", "selectors", "subprocess", "schedule", "ssl", "select")
PURE = ("core", "protocol", "screens")
#: What each pure package may import of micromance, besides itself.
ALLOWED = {
    "protocol": ("micromance.protocol",),
    "screens": ("micromance.screens",),
    "core": ("micromance.core", "micromance.protocol", "micromance.screens",
             "micromance.errors"),
}
#: Adapters of one kind never import the other kind.
ACROSS = {"hardware": "micromance.link", "link": "micromance.hardware"}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, absolute names, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                parts = path.relative_to(PACKAGE.parent).parent.parts
                base = ".".join(parts[:len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def files_of(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


def under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(package: str) -> list[str]:
    problems = []
    for path in files_of(package):
        where = path.relative_to(PACKAGE.parent)
        for line, module in imports(path):
            top = module.split(".")[0]
            if package in PURE and top in IO_LIBRARIES:
                problems.append(f"{where}:{line}: imports {module} ({package}/ is pure)")
            elif package in PURE and top == "micromance" and module != "micromance" \
                    and not under(module, ALLOWED[package]) \
                    and module != "micromance.__version__":
                problems.append(f"{where}:{line}: imports {module} ({package}/ may import "
                                f"only {', '.join(ALLOWED[package])})")
            elif package in ACROSS and under(module, (ACROSS[package],)):
                problems.append(f"{where}:{line}: imports {module} (hardware and network "
                                "adapters never import each other)")
    return problems


@pytest.mark.parametrize("package", [*PURE, *ACROSS])
def test_imports_only_run_downwards(package):
    assert files_of(package), f"no package {package}/"
    problems = violations(package)
    assert not problems, "\n".join(problems)


def test_the_rule_catches_a_forbidden_import(tmp_path, monkeypatch):
    """The checker itself: an I/O import, a lazy one inside a function, an upward one."""
    fake = tmp_path / "micromance"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text(
        "import json\nfrom micromance.store import Store\n\n\ndef later():\n"
        "    import sqlite3\n    return sqlite3\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    problems = violations("core")
    assert problems == [
        "micromance/core/bad.py:2: imports micromance.store.Store (core/ may import only "
        "micromance.core, micromance.protocol, micromance.screens, micromance.errors)",
        "micromance/core/bad.py:6: imports sqlite3 (core/ is pure)",
    ]
