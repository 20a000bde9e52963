"""The code checks are part of the suite: ruff and mypy for Python, shellcheck for shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_types_check():
    """mypy as pyproject.toml sets it: strict on core/, protocol/ and screens/."""
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_pass_shellcheck():
    shellcheck = require_tool("shellcheck", "shellcheck is missing: install.sh --dev installs it")
    scripts = [ROOT / "install.sh", ROOT / ".ci" / "run", *ROOT.glob("firmware_config/*.sh")]
    result = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
