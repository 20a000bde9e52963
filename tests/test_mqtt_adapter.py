"""The MQTT adapter's set-up, checked on a recording stand-in for paho's client."""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest

from micromance import protocol
from micromance.config import BrokerConfig
from micromance.core import events as ev
from micromance.errors import LinkError
from micromance.link.mqtt import SESSION_EXPIRY_SECONDS, Backoff, MqttLink
from micromance.link.pair_file import Pair

PAIR = Pair(pair_id="00112233445566778899aabbccddeeff", key=bytes(range(32)),
            device_id="0123456789abcdef", partner_id="fedcba9876543210")


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
            return SimpleNamespace(wait_for_publish=lambda timeout: None)
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
                    client_factory=factory)
    return link, made["client"], posted


def test_persistent_session_will_and_fixed_client_id(tmp_path):
    import paho.mqtt.client as mqtt

    link, client, _ = make_link(tmp_path, tls=False, port=1883)
    assert client.kwargs["client_id"] == "micromance-0123456789abcdef"
    assert client.kwargs["protocol"] == mqtt.MQTTv5
    (will,) = client.called("will_set")
    assert will == ((link.mine.presence, b"offline"), {"qos": 1, "retain": True})
    link.start()
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
    reason = SimpleNamespace(is_failure=False)
    link._on_connect(client, None, None, reason, None)
    (subscriptions,), _ = client.called("subscribe")[0]
    assert {topic for topic, qos in subscriptions} == {
        link.partner.events, link.partner.state, link.partner.presence}
    assert all(qos == 1 for _, qos in subscriptions)
    assert client.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    assert ((link.mine.presence, b"online"), {"qos": 1, "retain": True}) in \
        client.called("publish")
    assert posted[-1] == (ev.LinkChanged, {"link": ev.LinkState.CONNECTED})
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
    message = protocol.Message(type="thanks", sender=PAIR.partner_id, seq=4,
                               time="2026-11-25T12:00:00+01:00", name="Alex", sent_total=4)
    sealed = protocol.seal(message, key=PAIR.key, topic=link.partner.events)
    for topic, payload in [(link.partner.events, sealed), (link.partner.events, b"{}"),
                           (link.partner.presence, b"online"), ("elsewhere", b"x")]:
        link._on_message(client, None, SimpleNamespace(topic=topic, payload=payload, qos=0,
                                                       mid=0))
    assert posted == [(ev.Delivery, {"message": message}),
                      (ev.Rejected, {"reason": "bad_envelope"}),
                      (ev.PartnerPresence, {"online": True}),
                      (ev.Rejected, {"reason": "unexpected_topic"})]
    client.sock.close()


def test_the_broker_gets_its_puback_once_the_loop_has_acted(tmp_path):
    link, client, posted = make_link(tmp_path, tls=False)
    assert client.called("manual_ack_set") == [((True,), {})]
    link.start()
    settled(link)
    link._on_message(client, None, SimpleNamespace(topic=link.partner.presence,
                                                   payload=b"online", qos=1, mid=7))
    assert posted[-1] == (ev.PartnerPresence, {"online": True})
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
