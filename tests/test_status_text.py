"""`micromance status` in words: whether the unit runs, and a plain answer where nothing is set
up yet (not the default name "Sam" as if it were a unit)."""

from __future__ import annotations

from dataclasses import replace

from micromance.config import Config, PathsConfig
from micromance.runtime import Runtime
from micromance.status import collect_status, format_status
from tests.units import Running, desk_config


def test_nothing_set_up_says_so_and_what_to_do(tmp_path):
    config = replace(Config(), paths=PathsConfig(state_dir=str(tmp_path / "none")))
    text = format_status(collect_status(config))
    assert "nothing is set up here yet" in text
    assert "micromance simulate" in text and "install.sh" in text
    assert "Sam" not in text


def test_a_running_unit_says_it_runs(tmp_path, mock_factory):
    config = desk_config(tmp_path)
    with Running(Runtime(config, pin_factory=mock_factory)) as unit:
        unit.wait_until(lambda: unit.runtime.status_written.is_set())
        text = format_status(collect_status(config))
    assert "unit:     running" in text.splitlines()[1]
