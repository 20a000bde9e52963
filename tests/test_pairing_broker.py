"""Pairing through a real mosquitto: buttons on the device, y/n in a shell, forget."""

from __future__ import annotations

import io
import os
import threading

from micromance.core import commands as cmd
from micromance.core.commands import LightMode
from micromance.core.events import Gesture
from micromance.core.view import view_of
from micromance.link.pair_cli import forget_from_shell, pair_from_shell
from micromance.link.pair_file import load_pair
from micromance.screens import views as v
from tests.test_link import THANKS, Home
from tests.units import desk_config


def members(pair) -> tuple[str, str]:
    """(this unit's, the partner's) member ids, as the unit derives them from pair.json."""
    from micromance.protocol import members as derive

    return derive(pair.key, pair.device_id, pair.partner_id)


def code_on(home: Home) -> str:
    frame = home.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                          and isinstance(c.frame.view, v.PairingView)
                          and c.frame.view.phase is v.PairingPhase.CODE)
    return frame.frame.view.code


def phase_on(home: Home) -> v.PairingPhase | None:
    """The pairing phase the unit's state is in now (drawn or not yet)."""
    view = view_of(home.state)
    return view.phase if isinstance(view, v.PairingView) else None


def paired_on(home: Home) -> None:
    home.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                  and c.frame.view == v.PairingView(v.PairingPhase.CONFIRMED))


def test_two_units_pair_with_their_buttons_then_exchange_a_thanks(tmp_path, broker):
    a, b = Home(tmp_path / "a", "Sam", broker), Home(tmp_path / "b", "Alex", broker)
    try:
        a.start()
        b.start()
        for home in (a, b):
            home.runtime.on_gesture(Gesture.BOTH_HOLD)
        code_a, code_b = code_on(a), code_on(b)
        assert code_a == code_b and len(code_a) == 6
        for home in (a, b):
            home.runtime.on_gesture(Gesture.THANKS_PRESS)
        paired_on(a)
        paired_on(b)
        pair_a, pair_b = load_pair(a.state_dir), load_pair(b.state_dir)
        assert pair_a.key == pair_b.key
        assert members(pair_a) == members(pair_b)[::-1]  # each knows the other's member id
        assert (a.state_dir / "pair.json").stat().st_mode & 0o777 == 0o600
        a.wait_for(lambda c: isinstance(c, cmd.PublishState))   # the link switched to the new pair
        b.wait_for(lambda c: isinstance(c, cmd.PublishState))
        a.press(THANKS)
        b.wait_for(lambda c: c == cmd.SetLight(LightMode.PULSE))
        b.wait_until(lambda: b.state.counters.received_total == 1)
        # After a restart, both are still paired.
        a.stop()
        b.stop()
        a.start().connected()
        b.start().connected()
        a.press(THANKS)
        b.wait_until(lambda: b.state.counters.received_total == 2)
    finally:
        a.close()
        b.close()


def test_declining_the_code_on_one_side_pairs_nobody(tmp_path, broker):
    a = Home(tmp_path / "a", "Sam", broker)
    shell_config = desk_config(tmp_path / "shell", name="Alex", broker_port=broker.port)
    out = io.StringIO()
    # The shell's answer waits in a pipe until A has said yes: A confirms, then the shell
    # declines (typed at once, "n" could beat A's press and the press would then be a thanks).
    reply_end, typing_end = os.pipe()
    result = []
    try:
        a.start()
        a.runtime.on_gesture(Gesture.BOTH_HOLD)
        with open(reply_end, encoding="utf-8") as answers:
            shell = threading.Thread(target=lambda: result.append(
                pair_from_shell(shell_config, "", answers=answers, out=out)))
            shell.start()
            code_on(a)
            a.runtime.on_gesture(Gesture.THANKS_PRESS)
            a.wait_until(lambda: phase_on(a) is v.PairingPhase.WAITING)
            os.write(typing_end, b"n\n")
            shell.join(30)
        assert result == [1]
        assert "Code: " in out.getvalue() and "codes rejected" in out.getvalue()
        a.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                   and isinstance(c.frame.view, v.PairingView)
                   and c.frame.view.phase is v.PairingPhase.FAILED)
        assert load_pair(a.state_dir) is None and load_pair(tmp_path / "shell") is None
    finally:
        os.close(typing_end)
        a.close()


def test_shell_pairing_then_forget_tells_the_partner(tmp_path, broker):
    a = Home(tmp_path / "a", "Sam", broker)
    shell_dir = tmp_path / "shell"
    shell_config = desk_config(shell_dir, name="Alex", broker_port=broker.port)
    out = io.StringIO()
    result = []
    try:
        a.start()
        a.runtime.on_gesture(Gesture.BOTH_HOLD)
        shell = threading.Thread(target=lambda: result.append(
            pair_from_shell(shell_config, "", answers=io.StringIO("y\n"), out=out)))
        shell.start()
        code = code_on(a)
        a.runtime.on_gesture(Gesture.THANKS_PRESS)
        shell.join(30)
        assert result == [0], out.getvalue()
        assert f"Code: {code[:3]} {code[3:]}" in out.getvalue()
        paired_on(a)
        pair = load_pair(shell_dir)
        assert pair == load_pair(a.state_dir).__class__(
            pair.pair_id, pair.key, pair.device_id, pair.partner_id, pair.created)
        assert load_pair(a.state_dir).key == pair.key
        a.wait_for(lambda c: isinstance(c, cmd.PublishState))
        # The shell side forgets: A is told and forgets too; nothing of the pair is left.
        assert forget_from_shell(shell_config, out=out) == 0
        assert "was told" in out.getvalue()
        a.wait_for(lambda c: isinstance(c, cmd.ForgetPair))
        a.wait_until(lambda: load_pair(a.state_dir) is None)
        assert load_pair(shell_dir) is None
        a.wait_until(lambda: not a.state.partner.paired)
    finally:
        a.close()


def test_rooms_keep_couples_apart(tmp_path, broker):
    one = desk_config(tmp_path / "one", broker_port=broker.port)
    two = desk_config(tmp_path / "two", broker_port=broker.port)
    outs, results = [io.StringIO(), io.StringIO()], []
    from micromance.protocol import pairing

    pairing_timeout = pairing.SEARCH_SECONDS
    pairing.SEARCH_SECONDS = 3.0
    try:
        threads = [threading.Thread(target=lambda c=c, r=r, o=o: results.append(
            pair_from_shell(c, r, answers=io.StringIO("y\n"), out=o)))
            for c, r, o in ((one, "kitchen-sam", outs[0]), (two, "kitchen-kim", outs[1]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        pairing.SEARCH_SECONDS = pairing_timeout
    assert results == [1, 1]
    assert all("no other unit in the room" in out.getvalue() for out in outs)


def test_a_third_unit_arriving_late_cannot_take_over(tmp_path, broker):
    from micromance.protocol import pairing

    a, b = Home(tmp_path / "a", "Sam", broker), Home(tmp_path / "b", "Alex", broker)
    third = desk_config(tmp_path / "c", name="Kim", broker_port=broker.port)
    out, result = io.StringIO(), []
    search = pairing.SEARCH_SECONDS
    try:
        a.start()
        b.start()
        for home in (a, b):
            home.runtime.on_gesture(Gesture.BOTH_HOLD)
        code = code_on(a)
        assert code_on(b) == code
        pairing.SEARCH_SECONDS = 3.0
        late = threading.Thread(target=lambda: result.append(
            pair_from_shell(third, "", answers=io.StringIO("y\n"), out=out)))
        late.start()
        late.join(30)
        assert result == [1] and "no other unit in the room" in out.getvalue()
        for home in (a, b):
            home.runtime.on_gesture(Gesture.THANKS_PRESS)
        paired_on(a)
        paired_on(b)
        assert members(load_pair(a.state_dir)) == members(load_pair(b.state_dir))[::-1]
        assert load_pair(tmp_path / "c") is None
    finally:
        pairing.SEARCH_SECONDS = search
        a.close()
        b.close()


class Griefer:
    """A plain MQTT client in the room: says hello under the highest id there is, all the
    time, and forges a cancel (no MAC, a junk MAC) both ways for every exchange it sees."""

    def __init__(self, broker) -> None:
        import json

        import paho.mqtt.client as mqtt

        from micromance.link.rendezvous import room_topic

        self.json, self.topic = json, room_topic("")
        self.heard: list[dict] = []
        self.stopped = threading.Event()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="griefer",
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._hello, daemon=True)

    def start(self) -> Griefer:
        assert self.subscribed.wait(10)
        self.thread.start()
        return self

    def _hello(self) -> None:
        hello = self.json.dumps({"v": 1, "t": "hello", "from": "f" * 16}).encode()
        while not self.stopped.wait(0.1):
            self.client.publish(self.topic, hello, qos=1)

    def _on_message(self, client, userdata, message) -> None:
        try:
            body = self.json.loads(message.payload)
        except ValueError:
            return
        self.heard.append(body)
        if body.get("from") == "f" * 16 or "s" not in body or body["t"] == "cancel":
            return
        for sender, to in ((body["from"], body["to"]), (body["to"], body["from"])):
            for extra in ({}, {"mac": "00" * 32}):
                forged = {"v": 1, "t": "cancel", "from": sender, "to": to, "s": body["s"],
                          **extra}
                client.publish(self.topic, self.json.dumps(forged).encode(), qos=1)

    def stop(self) -> None:
        self.stopped.set()
        self.client.disconnect()
        self.client.loop_stop()


def test_a_griefer_in_the_room_cannot_stop_two_units_pairing(tmp_path, broker):
    a, b = Home(tmp_path / "a", "Sam", broker), Home(tmp_path / "b", "Alex", broker)
    griefer = Griefer(broker)
    try:
        a.start()
        b.start()
        griefer.start()
        for home in (a, b):
            home.runtime.on_gesture(Gesture.BOTH_HOLD)
        code = code_on(a)
        assert code_on(b) == code
        for home in (a, b):
            home.runtime.on_gesture(Gesture.THANKS_PRESS)
        paired_on(a)
        paired_on(b)
        assert load_pair(a.state_dir).key == load_pair(b.state_dir).key
        kinds = {m["t"] for m in griefer.heard if m.get("from") != "f" * 16}
        assert {"commit", "key", "reveal", "confirm", "cancel"} <= kinds  # it had its chances
    finally:
        griefer.stop()
        a.close()
        b.close()


def test_repairing_starts_fresh_counters_and_drops_the_old_outbox(tmp_path, broker, caplog):
    from micromance.link.pair_file import pair_locally
    from micromance.status import collect_status
    from micromance.store import Store

    caplog.set_level("DEBUG")
    a = Home(tmp_path / "a", "Sam", broker)
    old_pair, _ = pair_locally(a.state_dir, tmp_path / "gone")
    try:
        a.start().connected()
        for _ in range(3):
            a.press(THANKS)
        a.wait_until(lambda: a.state.partner.outbox == 3)  # the old partner never answers
        a.runtime.on_gesture(Gesture.BOTH_HOLD)
        result = []
        shell = threading.Thread(target=lambda: result.append(pair_from_shell(
            desk_config(tmp_path / "new", name="Kim", broker_port=broker.port), "",
            answers=io.StringIO("y\n"), out=io.StringIO())))
        shell.start()
        code_on(a)
        a.runtime.on_gesture(Gesture.THANKS_PRESS)
        shell.join(30)
        assert result == [0]
        paired_on(a)
        new_pair = load_pair(a.state_dir)
        assert new_pair.pair_id != old_pair.pair_id
        assert a.state.counters.sent_total == 0 and a.state.partner.outbox == 0
        report = collect_status(a.runtime.config)
        a.stop()
        store = Store.open(a.state_dir)
        try:
            assert store.outbox(old_pair.pair_id) == []
            assert store.load_counters(old_pair.pair_id).sent_total == 3  # kept, per pair
        finally:
            store.close()
        # The pair key never shows: not in logs, not in status.
        for key in (old_pair.key, new_pair.key):
            assert key.hex() not in caplog.text
            assert key.hex() not in str(report)
            import base64

            assert base64.b64encode(key).decode() not in caplog.text + str(report)
    finally:
        a.close()
