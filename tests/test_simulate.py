"""`micromance simulate`: two paired units through a private mosquitto, from one terminal."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from micromance import cli
from micromance.store import Store


@pytest.mark.broker
def test_scripted_thanks_reaches_the_other_unit(tmp_path):
    state = tmp_path / "sim"
    result = subprocess.run(
        [sys.executable, "-m", "micromance", "simulate", "--state", str(state)],
        input="t", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    final = result.stdout.strip().split(" q: quit")[-2]  # the last picture of both units
    left, right = final.split("light")[1:3]
    assert "pulsing" in right and "pulsing" not in left
    pair_id = json.loads((state / "a" / "pair.json").read_text())["pair_id"]
    for unit, sent, received in (("a", 1, 0), ("b", 0, 1)):
        store = Store.open(state / unit)
        counters = store.load_counters(pair_id)
        store.close()
        assert (counters.sent_total, counters.received_total) == (sent, received)
    # A second run continues with the same pair and counters.
    again = subprocess.run(
        [sys.executable, "-m", "micromance", "simulate", "--state", str(state)],
        input="y", capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    pair_a = json.loads((state / "a" / "pair.json").read_text())["pair_id"]
    assert pair_a == json.loads((state / "b" / "pair.json").read_text())["pair_id"]


def test_missing_mosquitto_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from micromance.simulator import private_broker as broker

    monkeypatch.setattr(broker, "find_mosquitto", lambda: None)
    code = cli.main(["simulate", "--state", str(tmp_path / "sim")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 69
    assert err == ["micromance: mosquitto is not installed: sudo apt-get install mosquitto"]
