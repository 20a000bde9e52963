"""The MQTT adapter's set-up, checked on a recording stand-in for paho's client."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from micromance import protocol
from micromance.config import BrokerConfig
from micromance.core import events as ev
from micromance.errors import LinkError
from micromance.link.client import Backoff
from micromance.link.mqtt import SESSION_EXPIRY_SECONDS, MqttLink
from micromance.link.pair_file import Pair

PAIR = Pair(pair_id="00112233445566778899aabbccddeeff", key=bytes(range(32)),
            device_id="0123456789abcdef", partner_id="fedcba9876543210")
PARTNER = protocol.pair_names(PAIR.key, PAIR.device_id, PAIR.partner_id)[1]


class RecordingClient:
    """Records what the adapter asks of paho; behaves like a connected client."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs
        self.calls: list[tuple] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.refuse = False

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return SimpleNamespace(wait_for_publish=lambda timeout: None, mid=len(self.calls))
        return record

    def socket(self):
        return self.sock

    def want_write(self):
        return False

    def reconnect(self):
        self.calls.append(("reconnect", (), {}))
        if self.refuse:
            raise ConnectionRefusedError(111, "Connection refused")

    def called(self, name):
        return [(args, kwargs) for call, args, kwargs in self.calls if call == name]


def make_link(tmp_path, **broker):
    posted = []
    made = {}

    def factory(*args, **kwargs):
        made["client"] = RecordingClient(*args, **kwargs)
        return made["client"]

    link = MqttLink(BrokerConfig(**broker), PAIR, lambda kind, **f: posted.append((kind, f)),
                    next_seq=itertools.count(1).__next__, name="Sam", client_factory=factory)
    return link, made["client"], posted


def presence_of(link, payload: bytes) -> protocol.Message:
    """Open one of our own sealed presence payloads (the partner's view of it)."""
    return protocol.open_sealed(payload, key=PAIR.key, topic=link.mine.presence,
                                expected_sender=link.mine.member)


def partner_presence(link, seq: int, online: bool) -> tuple[protocol.Message, bytes]:
    message = protocol.Message(type="presence", sender=PARTNER.member, seq=seq,
                               time="2026-11-25T12:00:00+01:00", name="Alex", sent_total=0,
                               online=online)
    return message, protocol.seal(message, key=PAIR.key, topic=link.partner.presence)


def test_persistent_session_will_and_fixed_client_id(tmp_path):
    import paho.mqtt.client as mqtt

    link, client, _ = make_link(tmp_path, tls=False, port=1883)
    assert client.kwargs["client_id"] == link.mine.client_id and len(link.mine.client_id) == 22
    assert client.kwargs["protocol"] == mqtt.MQTTv5
    link.start()
    ((topic, payload), options), = client.called("will_set")  # sealed anew for each attempt
    assert topic == link.mine.presence and options == {"qos": 1, "retain": True}
    will = presence_of(link, payload)
    assert will.type == "presence" and will.online is False
    ((host, port), options), = client.called("connect_async")
    assert (host, port) == ("localhost", 1883)
    assert options["clean_start"] is False
    assert options["properties"].SessionExpiryInterval == SESSION_EXPIRY_SECONDS
    assert not client.called("loop_start")  # the runtime's loop drives the network
    (low, high), = [(kw["min_delay"], kw["max_delay"]) for _, kw in
                    client.called("reconnect_delay_set")]
    assert 1 <= low < 2 and 50 <= high <= 70  # each unit its own base: reconnects spread out
    link.stop()


def settled(link: MqttLink) -> None:
    """Wait for the connection attempt's thread (events only: the link wakes the loop)."""
    link._attempt.join(5)
    link.handle_timers()


def test_the_connection_is_opened_off_the_loop_then_served_by_it(tmp_path):
    woken = []
    link, client, _ = make_link(tmp_path, tls=False)
    link._wake = lambda: woken.append(True)
    link.start()
    assert link.socket() is None  # while the attempt runs, the loop leaves the client alone
    settled(link)
    assert client.called("reconnect") and woken == [True]
    assert link.socket() is client.sock and not link.wants_write()
    assert link.deadline() is not None  # the keepalive check
    link.handle_io(readable=True)
    assert client.called("loop_read")
    client.sock.close()


def test_a_refused_attempt_is_retried_after_this_units_backoff(tmp_path):
    link, client, _ = make_link(tmp_path, tls=False)
    client.refuse = True
    link.start()
    settled(link)
    assert link.socket() is None
    first = link._backoff.first
    assert link.deadline() == pytest.approx(time.monotonic() + first, abs=0.5)
    link._connect_at = time.monotonic()  # the delay has passed
    link.handle_timers()
    settled(link)
    assert len(client.called("reconnect")) == 2
    assert link.deadline() == pytest.approx(time.monotonic() + 2 * first, abs=0.5)
    link.stop()
    client.sock.close()


def test_backoff_doubles_to_its_cap_and_starts_over_after_a_connection():
    backoff = Backoff(first=1.5, cap=60)
    assert [backoff.next_delay() for _ in range(8)] == [1.5, 3, 6, 12, 24, 48, 60, 60]
    backoff.reset()
    assert backoff.next_delay() == 1.5
    spread = {Backoff.for_this_unit().first for _ in range(20)}
    assert len(spread) > 1 and all(1 <= first < 2 for first in spread)


def test_on_connect_subscribes_sets_nodelay_and_says_online(tmp_path):
    link, client, posted = make_link(tmp_path, tls=False)
    link.start()
    (_, will), _ = client.called("will_set")[0]
    reason = SimpleNamespace(is_failure=False)
    link._on_connect(client, None, None, reason, None)
    (subscriptions,), _ = client.called("subscribe")[0]
    assert {topic for topic, qos in subscriptions} == {
        link.partner.events, link.partner.state, link.partner.presence}
    assert all(qos == 1 for _, qos in subscriptions)
    assert client.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    (online,) = [args[1] for args, kwargs in client.called("publish")
                 if args[0] == link.mine.presence and kwargs == {"qos": 1, "retain": True}]
    assert presence_of(link, online).online is True
    assert presence_of(link, online).seq < presence_of(link, will).seq  # the will is newer
    assert posted[-1] == (ev.BrokerChanged, {"broker": 0, "where": "localhost:8883",
                                             "connected": True})
    client.sock.close()


def test_tls_and_password_file_reach_the_client(tmp_path):
    """One trust for every connection: ``link.client.tls_context``, handed over whole."""
    import ssl

    from tests.selfhosted import write_certificates

    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    ca_file = write_certificates(tmp_path)
    _, client, _ = make_link(tmp_path, tls=True, ca_file=str(ca_file),
                             client_cert=str(tmp_path / "fullchain.pem"),
                             client_key=str(tmp_path / "privkey.pem"),
                             username="sam", password_file=str(secret))
    assert client.called("username_pw_set") == [(("sam", "s3cret"), {})]
    ((context,), _), = client.called("tls_set_context")
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert [dict(part[0] for part in ca["subject"])["commonName"]
            for ca in context.get_ca_certs()] == ["micromance test CA"]
    assert not client.called("tls_set")


def test_a_missing_tls_file_is_a_clear_link_error(tmp_path):
    with pytest.raises(LinkError) as caught:
        make_link(tmp_path, tls=True, ca_file=str(tmp_path / "missing.pem"))
    assert caught.value.message.startswith("cannot set up TLS for the broker")
    assert "broker.ca_file" in caught.value.fix


def test_unreadable_password_file_is_a_clear_link_error(tmp_path):
    with pytest.raises(LinkError, match=r"broker\.password_file"):
        make_link(tmp_path, username="sam", password_file=str(tmp_path / "missing"))


def test_messages_become_events_or_counted_rejections(tmp_path):
    link, client, posted = make_link(tmp_path, tls=False)
    link._connected.set()
    message = protocol.Message(type="thanks", sender=PARTNER.member, seq=4,
                               time="2026-11-25T12:00:00+01:00", name="Alex", sent_total=4)
    sealed = protocol.seal(message, key=PAIR.key, topic=link.partner.events)
    presence, sealed_presence = partner_presence(link, 9, online=True)
    for topic, payload in [(link.partner.events, sealed), (link.partner.events, b"{}"),
                           (link.partner.presence, b"online"),  # forged: not sealed
                           (link.partner.presence, sealed_presence),
                           (link.partner.presence, b""),        # a retained topic cleared
                           ("elsewhere", b"x")]:
        link._on_message(client, None, SimpleNamespace(topic=topic, payload=payload, qos=0,
                                                       mid=0))
    assert posted == [(ev.Delivery, {"message": message, "broker": 0}),
                      (ev.Rejected, {"reason": "bad_envelope"}),
                      (ev.Rejected, {"reason": "not_json"}),
                      (ev.Delivery, {"message": presence, "broker": 0}),
                      (ev.OldPairMessage, {})]  # an old session's topic: not an attack
    client.sock.close()


def test_the_broker_gets_its_puback_once_the_loop_has_acted(tmp_path):
    link, client, posted = make_link(tmp_path, tls=False)
    assert client.called("manual_ack_set") == [((True,), {})]
    link.start()
    settled(link)
    presence, sealed = partner_presence(link, 9, online=True)
    link._on_message(client, None, SimpleNamespace(topic=link.partner.presence,
                                                   payload=sealed, qos=1, mid=7))
    assert posted[-1] == (ev.Delivery, {"message": presence, "broker": 0})
    assert not client.called("ack")  # not from inside paho's callback...
    link.flush()                      # ...but when the loop is about to sleep
    assert client.called("ack") == [((7, 1), {})]
    link.flush()
    assert len(client.called("ack")) == 1
    client.sock.close()


def test_keepalive_checks_run_on_the_loop_and_a_dead_link_is_reopened(tmp_path):
    link, client, _ = make_link(tmp_path, tls=False, keepalive=20)
    link.start()
    settled(link)
    assert link.deadline() == pytest.approx(time.monotonic() + 5, abs=0.5)  # keepalive / 4
    link._misc_at = time.monotonic()
    link.handle_timers()
    assert client.called("loop_misc") and link.socket() is client.sock
    client.sock.close()
    client.sock = None  # what loop_misc leaves after a missed PINGRESP (Wi-Fi gone, no FIN)
    link._misc_at = time.monotonic()
    link.handle_timers()
    assert link.socket() is None
    assert link.deadline() == pytest.approx(time.monotonic() + link._backoff.first, abs=0.5)


# --- hardening: packet size limit, pair changes ------------------------------------------------


def connect_options(client: RecordingClient) -> dict:
    (_, options), = client.called("connect_async") or client.called("connect")
    return options


def test_every_client_of_ours_announces_the_maximum_packet_size(tmp_path, monkeypatch):
    """The partner link, the pairing room, ``pair --forget`` and doctor: the broker must never
    hand any of them more than MAX_PACKET_BYTES (paho would read it all into memory)."""
    from micromance import doctor
    from micromance.link.client import MAX_PACKET_BYTES
    from micromance.link.pair_cli import _tell_partner
    from micromance.link.rendezvous import Rendezvous
    from tests.units import desk_config

    clients: list[RecordingClient] = []

    def factory(*args, **kwargs):
        clients.append(RecordingClient(*args, **kwargs))
        return clients[-1]

    link = MqttLink(BrokerConfig(tls=False), PAIR, lambda *a, **k: None, client_factory=factory,
                    next_seq=itertools.count(1).__next__, name="Sam")
    link.start()
    settled(link)
    Rendezvous([BrokerConfig(tls=False)], "0" * 32, lambda payload: None,
               client_factory=factory).start()
    _tell_partner(desk_config(tmp_path), PAIR, factory, timeout=0.01)
    monkeypatch.setattr(doctor, "new_client", lambda broker, client_id: factory(
        client_id=client_id))
    session = doctor._PingSession(BrokerConfig(tls=False), doctor.SessionPlan("d", "ping"))
    with pytest.raises(TimeoutError):
        session.run(0.01)
    assert len(clients) == 4
    for client in clients:
        assert connect_options(client)["properties"].MaximumPacketSize == MAX_PACKET_BYTES
        client.sock.close()


class AckingClient(RecordingClient):
    """As the broker does: what was published or unsubscribed is acknowledged at the next
    read (through the callbacks the link set)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pending: list[tuple[str, int]] = []

    def publish(self, *args, **kwargs):
        self.calls.append(("publish", args, kwargs))
        self.pending.append(("publish", len(self.calls)))
        return SimpleNamespace(mid=len(self.calls))

    def unsubscribe(self, *args, **kwargs):
        self.calls.append(("unsubscribe", args, kwargs))
        self.pending.append(("unsubscribe", len(self.calls)))
        return 0, len(self.calls)

    def loop_read(self):
        self.calls.append(("loop_read", (), {}))
        pending, self.pending = self.pending, []
        for kind, mid in pending:
            callback = self.on_unsubscribe if kind == "unsubscribe" else self.on_publish
            callback(self, None, mid, SimpleNamespace(is_failure=False), None)


def test_leaving_takes_the_pair_off_the_broker(tmp_path):
    """A pair change while connected: unsubscribe, clear our retained topics, wait for the
    broker to confirm, end the session."""
    made = {}

    def factory(*args, **kwargs):
        made["client"] = AckingClient(*args, **kwargs)
        return made["client"]

    posted = []
    link = MqttLink(BrokerConfig(tls=False), PAIR, lambda kind, **f: posted.append(kind),
                    client_factory=factory, next_seq=itertools.count(1).__next__, name="Sam")
    client = made["client"]
    link.start()
    settled(link)
    link._on_connect(client, None, None, SimpleNamespace(is_failure=False), None)
    client.calls.clear()
    client.pending.clear()
    posted.clear()
    started = time.monotonic()
    link.leave()
    assert time.monotonic() - started < 1  # confirmed: no waiting out the timeout
    names = [name for name, _, _ in client.calls
             if name in ("unsubscribe", "publish", "loop_read", "disconnect")]
    assert names == ["unsubscribe", "publish", "publish", "loop_read", "disconnect"]
    (topics,), _ = client.called("unsubscribe")[0]
    assert set(topics) == {link.partner.events, link.partner.state, link.partner.presence}
    assert [args for args, _ in client.called("publish")] == [
        (link.mine.state, b""), (link.mine.presence, b"")]  # no "offline" after the clearing
    assert all(kw == {"qos": 1, "retain": True} for _, kw in client.called("publish"))
    (_, options), = client.called("disconnect")
    assert options["properties"].SessionExpiryInterval == 0  # and no Last Will either
    # What still arrives for the old pair is not handed to the unit any more.
    link._on_message(client, None, SimpleNamespace(topic=link.partner.events, payload=b"{}",
                                                   qos=1, mid=3))
    assert posted == []
    client.sock.close()


def test_leaving_while_offline_only_stops(tmp_path):
    link, client, _ = make_link(tmp_path, tls=False)
    client.refuse = True
    link.start()
    settled(link)
    client.calls.clear()
    link.leave()
    assert not client.called("unsubscribe") and not client.called("publish")
    link._connect_at = time.monotonic()
    link.handle_timers()
    assert not client.called("reconnect")  # gone for good: the next link does the clearing
    client.sock.close()


def test_a_plain_stop_keeps_the_session_and_says_offline(tmp_path):
    link, client, _ = make_link(tmp_path, tls=False)
    link.start()
    settled(link)
    link._on_connect(client, None, None, SimpleNamespace(is_failure=False), None)
    (_, will), _ = client.called("will_set")[-1]
    client.calls.clear()
    link.stop()
    assert not client.called("unsubscribe")
    # The Last Will itself: one offline for the partner, however the connection ends.
    assert [args for args, _ in client.called("publish")] == [(link.mine.presence, will)]
    (_, options), = client.called("disconnect")
    assert options.get("properties") is None
    client.sock.close()


def reconnected(link: MqttLink, client: RecordingClient) -> None:
    """The connection drops (paho closed the socket) and the next attempt is made."""
    client.sock, sock = None, client.sock
    link._check_closed()
    client.sock = sock
    client.calls.clear()
    link._connect_at = time.monotonic()
    link.handle_timers()
    settled(link)


def test_after_a_pair_change_the_session_starts_clean_until_the_leftovers_are_cleared(tmp_path):
    settled_calls = []
    made = {}

    def factory(*args, **kwargs):
        made["client"] = RecordingClient(*args, **kwargs)
        return made["client"]

    leftovers = ("ab" * 16, "cd" * 16)  # an earlier pair's state and presence
    link = MqttLink(BrokerConfig(tls=False), PAIR, lambda *a, **k: None, client_factory=factory,
                    next_seq=itertools.count(1).__next__, name="Sam",
                    fresh_session=True, leftovers=leftovers,
                    on_settled=lambda: settled_calls.append(True))
    client = made["client"]
    connected = SimpleNamespace(is_failure=False)
    link.start()
    settled(link)
    assert connect_options(client)["clean_start"] is True
    link._on_connect(client, None, None, connected, None)
    assert [args for args, _ in client.called("publish")][:2] == [
        (leftovers[0], b""), (leftovers[1], b"")]
    # Lost before the broker confirmed the clearing: the next connection is clean again.
    reconnected(link, client)
    assert connect_options(client)["clean_start"] is True and not settled_calls
    link._on_connect(client, None, None, connected, None)
    clearing = sorted(link._clearing)
    assert len(clearing) == 2
    link._on_publish(client, None, clearing[0], connected, None)
    assert not settled_calls
    link._on_publish(client, None, clearing[1], connected, None)
    assert settled_calls == [True]   # the courier records the session as this pair's
    # From now on the session is kept.
    reconnected(link, client)
    assert connect_options(client)["clean_start"] is False
    link._on_connect(client, None, None, connected, None)
    assert (leftovers[0], b"") not in [args for args, _ in client.called("publish")]
    assert settled_calls == [True]
    link.stop()
    client.sock.close()


@contextmanager
def recorded_courier(state_dir: Path) -> Iterator[tuple[Any, Any, Pair, list[RecordingClient]]]:
    """A paired courier over recording clients: (store, courier, its pair, the clients made)."""
    from micromance.link.courier import Courier
    from micromance.link.pair_file import save_pair
    from micromance.store import Store
    from tests.units import desk_config

    store = Store.open(state_dir)
    clients: list[RecordingClient] = []

    def factory(*args, **kwargs):
        clients.append(RecordingClient(*args, **kwargs))
        return clients[-1]

    mine = Pair(PAIR.pair_id, PAIR.key, store.device_id(), PAIR.partner_id)
    save_pair(state_dir, mine)
    courier = Courier(desk_config(state_dir), store, mine.device_id, lambda *a, **k: None,
                      lambda: None, client_factory=factory)
    try:
        yield store, courier, mine, clients
    finally:
        courier.disconnect()
        store.close()
        for client in clients:
            client.sock.close()


def test_the_courier_starts_a_clean_session_once_per_pair_change(tmp_path):
    """The store remembers whose session the broker keeps: one write per pair change."""
    from micromance.link.courier import BROKER_SESSION_KEY
    from micromance.protocol import pair_names, v1_retained_topics

    with recorded_courier(tmp_path) as (store, courier, mine, _):
        courier.connect()
        assert courier.links[0]._fresh  # nothing known: clean
        assert courier.links[0]._leftovers == ()
        courier.links[0]._settled()
        names = pair_names(mine.key, mine.device_id, mine.partner_id)[0]
        row = f"{mine.pair_id} {names.state} {names.presence}"
        assert store.get(f"{BROKER_SESSION_KEY}/127.0.0.1:1883") == row
        courier.disconnect()
        courier.connect()
        assert not courier.links[0]._fresh  # the session is this pair's: resumed
        new = Pair("00" * 16, bytes(32), mine.device_id, "ab" * 8)
        with store.transaction():
            courier.switch(new)
        assert courier.links[0]._fresh
        assert courier.links[0]._leftovers == (names.state, names.presence)
        # until the new one settles:
        assert store.get(f"{BROKER_SESSION_KEY}/127.0.0.1:1883") == row
        courier.links[0]._settled()
        assert store.get(f"{BROKER_SESSION_KEY}/127.0.0.1:1883").split()[0] == new.pair_id
        # A row from 1.x names only the pair (one broker, one row): its v1 retained topics
        # are cleared once.
        courier.disconnect()
        store.put(f"{BROKER_SESSION_KEY}/127.0.0.1:1883", "")
        store.put(BROKER_SESSION_KEY, new.pair_id)
        courier.connect()
        assert courier.links[0]._fresh
        assert courier.links[0]._leftovers == v1_retained_topics(new.pair_id, mine.device_id)


def test_on_each_connection_news_waits_for_our_summary(tmp_path):
    """A press in the moment between the link coming up and the core's summary on it stays
    in the outbox: the partner must answer our summary before it takes news of this run
    (docs/protocol.md, Catching up)."""
    from datetime import datetime

    from micromance.protocol import MessageType
    from tests.conftest import ZONE

    wall = datetime(2026, 12, 2, 9, 0, tzinfo=ZONE)
    with recorded_courier(tmp_path) as (store, courier, _, clients):
        courier.connect()
        link, client = courier.links[0], clients[0]
        names = courier.names()

        def sent_on(topic: str) -> int:
            return sum(1 for args, _ in client.called("publish") if args[0] == topic)

        def up() -> None:  # the broker's CONNACK, as paho reports it on the loop
            link._open = True
            link._when_connected(client)

        up()
        with store.transaction():
            courier.send_reliably(MessageType.THANKS, wall, sent_total=1)
        courier.send_once(MessageType.ACK, wall, sent_total=1, seqs=(7,))
        assert sent_on(names.events) == 0 and courier.outbox_size() == 1
        courier.send_once(MessageType.STATE, wall, sent_total=1, retained=True, broker=0)
        assert sent_on(names.state) == 1
        courier.redeliver(0)  # the core asks for it right after the summary
        assert sent_on(names.events) == 1
        with store.transaction():
            courier.send_reliably(MessageType.THANKS, wall, sent_total=2)
        assert sent_on(names.events) == 2
        # A new connection: held back again until its own summary.
        link._connected.clear()
        up()
        with store.transaction():
            courier.send_reliably(MessageType.THANKS, wall, sent_total=3)
        assert sent_on(names.events) == 2
        courier.send_once(MessageType.STATE, wall, sent_total=3, retained=True, broker=0)
        courier.redeliver(0)
        assert sent_on(names.events) == 5  # the three that wait (no ack from the partner yet)


def test_a_thank_you_sealed_while_thanks_is_down_is_the_one_the_release_sends(
        tmp_path, monkeypatch):
    """Prepared at the press, used by the release when it asks for that very message (same
    total, same second); otherwise the release makes its own and the prepared seq stays
    unused. Either way the outbox keeps what was published."""
    from datetime import datetime, timedelta

    from micromance.link import courier as courier_module
    from micromance.protocol import MessageType
    from tests.conftest import ZONE

    seals: list[int] = []
    real_seal = courier_module.seal
    monkeypatch.setattr(courier_module, "seal",
                        lambda message, **kw: seals.append(message.seq) or real_seal(message,
                                                                                       **kw))
    down = datetime(2026, 12, 2, 9, 0, 0, 100000, tzinfo=ZONE)
    with recorded_courier(tmp_path) as (store, courier, mine, clients):
        courier.connect()
        link, client = courier.links[0], clients[0]
        link._open = True
        link._when_connected(client)
        courier.send_once(MessageType.STATE, down, sent_total=0, retained=True, broker=0)
        names = courier.names()

        def published() -> list[protocol.Message]:
            return [protocol.open_sealed(args[1], key=mine.key, topic=names.events,
                                         expected_sender=names.member)
                    for args, _ in client.called("publish") if args[0] == names.events]

        def release(wall: datetime, total: int) -> protocol.Message:
            with store.transaction():
                courier.send_reliably(MessageType.THANKS, wall, sent_total=total)
            return published()[-1]

        courier.prepare_thanks(down, sent_total=1)
        prepared_seq = seals[-1]
        sent = release(down + timedelta(seconds=0.4), 1)
        assert (sent.seq, sent.sent_total) == (prepared_seq, 1)
        assert seals[-1] == prepared_seq  # sealed once, at the press
        assert dict(store.outbox(mine.pair_id))[sent.seq] == sent.to_plaintext()

        courier.prepare_thanks(down, sent_total=2)  # held across a second: a new message
        unused = seals[-1]
        sent = release(down + timedelta(seconds=1), 2)
        assert sent.seq == unused + 1 and sent.time.endswith("09:00:01+01:00")

        courier.prepare_thanks(down, sent_total=3)  # the total moved meanwhile: a new one
        sent = release(down, 4)
        assert sent.sent_total == 4 and sent.seq == seals[-2] + 1

        courier.prepare_thanks(down, sent_total=5)  # an ack in between takes the next seq
        courier.send_once(MessageType.ACK, down, sent_total=4, seqs=(9,))
        sent = release(down, 5)
        assert sent.seq == seals[-2] and sent.seq < seals[-1]  # numbered at the press
