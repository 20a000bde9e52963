"""Home Assistant's MQTT discovery: the payloads against its documented schema, and the link on
a real mosquitto (the home's broker), driven by the unit's own loop."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from micromance import __version__
from micromance.config import HomeAssistantConfig
from micromance.core import events as ev
from micromance.core.commands import HomeFacts
from micromance.link.homeassistant import (
    HomeAssistantLink,
    Topics,
    discovery,
    state_payload,
    triggers_between,
)
from micromance.loop import Loop

DEVICE_ID = "0123456789abcdef"

# --- what Home Assistant's MQTT docs say (integrations sensor.mqtt, binary_sensor.mqtt,
# button.mqtt, device_trigger.mqtt, and the shared "device" and availability options) -------

#: Options each platform documents (only those we might use are listed; any key we send must
#: be one of them).
ALLOWED = {
    "sensor": {"name", "unique_id", "state_topic", "value_template", "availability_topic",
               "payload_available", "payload_not_available", "device", "icon",
               "state_class", "unit_of_measurement", "device_class", "qos",
               "entity_category", "expire_after", "force_update"},
    "binary_sensor": {"name", "unique_id", "state_topic", "value_template",
                      "availability_topic", "payload_available", "payload_not_available",
                      "device", "icon", "device_class", "payload_on", "payload_off", "qos",
                      "entity_category", "expire_after", "off_delay"},
    "button": {"name", "unique_id", "command_topic", "payload_press", "availability_topic",
               "payload_available", "payload_not_available", "device", "icon",
               "device_class", "qos", "retain", "entity_category"},
    "device_automation": {"automation_type", "topic", "type", "subtype", "payload", "device",
                          "qos", "value_template"},
}
REQUIRED = {
    "sensor": {"state_topic"},
    "binary_sensor": {"state_topic"},
    "button": {"command_topic"},
    "device_automation": {"automation_type", "topic", "type", "subtype", "device"},
}
#: The device registry's options.
DEVICE_KEYS = {"identifiers", "connections", "name", "manufacturer", "model", "model_id",
               "sw_version", "hw_version", "serial_number", "suggested_area", "via_device",
               "configuration_url"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
BINARY_DEVICE_CLASSES = {"connectivity", "occupancy", "presence", "problem", "running",
                         "update"}


def facts(**changes: Any) -> HomeFacts:
    values: dict[str, Any] = dict(paired=True, sent_today=2, received_today=1, sent_total=40,
                                  received_total=31, together_total=3, streak=4,
                                  gesture="Ask about their day", partner_online=True,
                                  waiting=1)
    values.update(changes)
    return HomeFacts(**values)


def test_every_discovery_payload_follows_home_assistants_schema():
    topics = Topics("homeassistant", DEVICE_ID)
    payloads = discovery(topics, "Sam")
    components = {}
    for topic, payload in payloads.items():
        prefix, component, node, object_id, last = topic.split("/")
        assert (prefix, node, last) == ("homeassistant", f"micromance_{DEVICE_ID}", "config")
        components.setdefault(component, []).append(object_id)
        assert REQUIRED[component] <= set(payload) <= ALLOWED[component], (topic, payload)
        json.dumps(payload)  # it goes out as JSON
        device = payload["device"]
        assert set(device) <= DEVICE_KEYS
        assert device["identifiers"] == [f"micromance_{DEVICE_ID}"]
        assert (device["name"], device["sw_version"]) == ("Sam", __version__)
        if component != "device_automation":
            assert payload["availability_topic"] == topics.availability
            assert (payload["payload_available"], payload["payload_not_available"]) == (
                "online", "offline")
        if "state_class" in payload:
            assert payload["state_class"] in STATE_CLASSES
        if component == "binary_sensor" and "device_class" in payload:
            assert payload["device_class"] in BINARY_DEVICE_CLASSES
    assert sorted(components) == ["binary_sensor", "button", "device_automation", "sensor"]
    assert sorted(components["sensor"]) == sorted(
        ["sent_today", "received_today", "sent_total", "received_total", "together_total",
         "streak", "gesture"])
    assert sorted(components["binary_sensor"]) == ["partner_online", "waiting"]
    assert sorted(components["device_automation"]) == ["received", "together"]
    unique_ids = [p["unique_id"] for p in payloads.values() if "unique_id" in p]
    assert len(unique_ids) == len(set(unique_ids)) == 10
    kinds = [(p["type"], p["subtype"]) for p in payloads.values() if "type" in p]
    assert len(kinds) == len(set(kinds))  # unique per device, as the docs require


def test_totals_are_total_increasing_and_every_template_reads_a_state_key():
    payloads = discovery(Topics("homeassistant", DEVICE_ID), "Sam")
    state = state_payload(facts())
    for payload in payloads.values():
        if "value_template" in payload:
            key = payload["value_template"].removeprefix("{{ value_json.").removesuffix(" }}")
            assert key in state
            if key.endswith("_total"):
                assert payload["state_class"] == "total_increasing"
    assert state["partner_online"] == "ON" and state["waiting"] == "ON"
    assert state_payload(facts(partner_online=False, waiting=0))["waiting"] == "OFF"


def test_nothing_of_the_pair_goes_to_the_home_broker():
    """Only what the entities show: no key, no partner id, no pair id, nothing sealed."""
    text = json.dumps([discovery(Topics("homeassistant", DEVICE_ID), "Sam"),
                       state_payload(facts())])
    assert set(HomeFacts.__dataclass_fields__) == {
        "paired", "sent_today", "received_today", "sent_total", "received_total",
        "together_total", "streak", "gesture", "partner_online", "waiting"}
    for secret in ("key", "pair_id", "partner_id", "nonce", "ct"):
        assert f'"{secret}"' not in text


def test_triggers_fire_on_rises_only_and_not_for_the_first_facts():
    assert triggers_between(None, facts()) == []
    assert triggers_between(facts(), facts(received_total=32)) == ["received"]
    assert triggers_between(facts(), facts(received_total=33, together_total=4)) == [
        "received", "together"]
    assert triggers_between(facts(), facts(sent_total=41)) == []


# --- the link on a real mosquitto --------------------------------------------------------


class Watcher:
    """Home Assistant's side of the home broker: everything under the two prefixes."""

    def __init__(self, port: int) -> None:
        self.retained: dict[str, bytes] = {}
        self.messages: list[tuple[str, bytes]] = []
        self._changed = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha-watcher",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe([("homeassistant/#", 1),
                                                            ("micromance/#", 1)])
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._changed:
            self.messages.append((message.topic, bytes(message.payload)))
            if message.payload:
                self.retained[message.topic] = bytes(message.payload)
            else:
                self.retained.pop(message.topic, None)
            self._changed.notify_all()

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        with self._changed:
            assert self._changed.wait_for(condition, timeout), what

    def configs(self) -> dict[str, Any]:
        return {t: json.loads(p) for t, p in self.retained.items() if t.endswith("/config")}

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Driven:
    """The link served by a real ``Loop`` on a thread, as the runtime serves it."""

    def __init__(self, link_of: Callable[[Callable[..., None], Callable[[], None]],
                                         HomeAssistantLink]) -> None:
        self.loop = Loop()
        self.events: list[Any] = []
        self._changed = threading.Condition()
        self.link = link_of(self._post, self.loop.wake)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _post(self, factory: Callable[..., Any], **fields: Any) -> None:
        self.loop.post(("event", factory, fields))

    def _run(self) -> None:
        self.link.start()
        self.loop.run(self._handle, lambda: None, sources=lambda: [self.link])

    def _handle(self, item: Any) -> None:
        if item is None:
            return  # a wake-up with no event (the loop's tick)
        if callable(item):
            item()  # work for the loop's thread (as the executor would call the link)
            return
        with self._changed:
            self.events.append(item)
            self._changed.notify_all()

    def on_loop(self, action: Callable[[], None]) -> None:
        self.loop.post(action)

    def wait_event(self, predicate: Callable[[Any], bool], timeout: float = 10.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: any(predicate(e) for e in self.events),
                                          timeout), self.events

    def close(self) -> None:
        self.on_loop(self.link.stop)
        self.loop.stop()
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def home(broker) -> Iterator[tuple[Watcher, Driven]]:
    watcher = Watcher(broker.port)
    config = HomeAssistantConfig(host="127.0.0.1", port=broker.port, enabled=True)
    driven = Driven(lambda post, wake: HomeAssistantLink(
        config, device_id=DEVICE_ID, name="Sam", post=post, wake=wake))
    yield watcher, driven
    driven.close()
    watcher.close()


def test_the_unit_appears_with_its_state_and_availability(home):
    watcher, unit = home
    topics = unit.link.topics
    unit.on_loop(lambda: unit.link.update(facts()))
    watcher.wait(lambda: len(watcher.configs()) == 12, "twelve discovery configs")
    watcher.wait(lambda: watcher.retained.get(topics.availability) == b"online", "online")
    watcher.wait(lambda: topics.state in watcher.retained, "state")
    assert json.loads(watcher.retained[topics.state]) == state_payload(facts())
    assert watcher.configs() == json.loads(json.dumps(discovery(topics, "Sam")))


def test_home_assistant_coming_online_gets_discovery_again(home):
    watcher, unit = home
    unit.on_loop(lambda: unit.link.update(facts()))
    watcher.wait(lambda: len(watcher.configs()) == 12, "discovery")
    before = len(watcher.messages)
    watcher.publish("homeassistant/status", "online")
    watcher.wait(lambda: sum(t.endswith("/config") for t, _ in watcher.messages[before:]) == 12,
                 "discovery again after homeassistant/status online")


def test_the_button_sends_thanks_and_a_received_thanks_fires_the_trigger(home):
    watcher, unit = home
    topics = unit.link.topics
    unit.on_loop(lambda: unit.link.update(facts()))
    watcher.wait(lambda: len(watcher.configs()) == 12, "discovery")
    watcher.publish(topics.command, "PRESS")
    unit.wait_event(lambda e: e[1] is ev.GestureInput
                    and e[2] == {"gesture": ev.Gesture.THANKS_PRESS})
    unit.on_loop(lambda: unit.link.update(facts(received_total=32, received_today=2)))
    watcher.wait(lambda: (topics.trigger, b"received") in watcher.messages, "the trigger")
    watcher.wait(lambda: json.loads(watcher.retained[topics.state])["received_total"] == 32,
                 "the new total")


def test_junk_on_the_command_topic_does_nothing(home):
    watcher, unit = home
    topics = unit.link.topics
    unit.on_loop(lambda: unit.link.update(facts()))
    watcher.wait(lambda: len(watcher.configs()) == 12, "discovery")
    for junk in ("press", "PRESS" * 1000, "", "\xff"):
        watcher.publish(topics.command, junk)
    watcher.publish(topics.command, "PRESS")  # after the junk (one client: in order)
    unit.wait_event(lambda e: e[1] is ev.GestureInput)
    assert len([e for e in unit.events if e[1] is ev.GestureInput]) == 1


def test_unpairing_takes_the_device_out_of_home_assistant(home):
    watcher, unit = home
    unit.on_loop(lambda: unit.link.update(facts()))
    watcher.wait(lambda: len(watcher.configs()) == 12, "discovery")
    unit.on_loop(lambda: unit.link.update(facts(paired=False)))
    watcher.wait(lambda: not watcher.configs(), "every config cleared")
    watcher.publish(unit.link.topics.command, "PRESS")  # its button no longer sends
    watcher.publish("homeassistant/status", "online")
    unit.on_loop(lambda: unit.link.update(facts(paired=True)))
    watcher.wait(lambda: len(watcher.configs()) == 12, "back once paired again")
    assert not [e for e in unit.events if e[1] is ev.GestureInput]


def test_a_clean_stop_says_offline(home):
    watcher, unit = home
    topics = unit.link.topics
    unit.on_loop(lambda: unit.link.update(facts()))
    watcher.wait(lambda: watcher.retained.get(topics.availability) == b"online", "online")
    unit.close()
    watcher.wait(lambda: watcher.retained.get(topics.availability) == b"offline", "offline")
