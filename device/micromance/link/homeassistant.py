"""The unit as a device in Home Assistant, through MQTT discovery on the home's own broker.

Optional (``[homeassistant]`` in the config) and separate from the couple's link: another
broker (usually the home's mosquitto, often Home Assistant's add-on), another connection, the
same loop and backoff (``connection.LoopConnection``). A dead home broker changes nothing
about thanks between the units.

What goes to the home broker is only what the entities show (``core.commands.HomeFacts``):
counts, today's gesture, whether the partner is online and a thank-you waits. Never the pair
key, an id of the partner or anything sealed. Topics (``<id>`` is this unit's device id, which
the home broker may know; it is not the couple's broker):

- ``<prefix>/<component>/micromance_<id>/<object>/config``: discovery, retained (empty to
  remove the device: ``remove``);
- ``micromance/<id>/state``: one retained JSON object every sensor reads from;
- ``micromance/<id>/availability``: ``online`` / ``offline``, retained, with the Last Will;
- ``micromance/<id>/send``: the "Send thanks" button's command (``PRESS``);
- ``micromance/<id>/trigger``: ``received`` or ``together``, the device triggers.

Discovery is published on every connect and again whenever Home Assistant announces itself
(``<prefix>/status`` = ``online``), as its docs ask. Payload builders are plain functions
(``discovery``, ``state_payload``): the tests check them field by field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from micromance import __version__
from micromance.config import HomeAssistantConfig
from micromance.core import events as ev
from micromance.core.commands import HomeFacts
from micromance.link.connection import LoopConnection, Wake

log = logging.getLogger(__name__)

PRESS = "PRESS"
ONLINE, OFFLINE = "online", "offline"

#: (component, object id, the entity's own keys) of every entity; the device triggers follow.
_SENSORS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("sensor", "sent_today", {"name": "Thank-yous sent today", "icon": "mdi:heart-outline",
                              "state_class": "total_increasing"}),
    ("sensor", "received_today", {"name": "Thank-yous received today", "icon": "mdi:heart",
                                  "state_class": "total_increasing"}),
    ("sensor", "sent_total", {"name": "Thank-yous sent", "icon": "mdi:heart-outline",
                              "state_class": "total_increasing"}),
    ("sensor", "received_total", {"name": "Thank-yous received", "icon": "mdi:heart",
                                  "state_class": "total_increasing"}),
    ("sensor", "together_total", {"name": "Together moments", "icon": "mdi:heart-multiple",
                                  "state_class": "total_increasing"}),
    ("sensor", "streak", {"name": "Gesture streak", "icon": "mdi:fire",
                          "state_class": "measurement", "unit_of_measurement": "d"}),
    ("sensor", "gesture", {"name": "Today's gesture", "icon": "mdi:hand-heart"}),
    ("binary_sensor", "partner_online", {"name": "Partner online",
                                         "device_class": "connectivity",
                                         "payload_on": "ON", "payload_off": "OFF"}),
    ("binary_sensor", "waiting", {"name": "Thank-you waiting", "icon": "mdi:heart-pulse",
                                  "payload_on": "ON", "payload_off": "OFF"}),
)
#: (trigger payload, type, subtype): "thank_you received", "both together".
TRIGGERS = (("received", "received", "thank_you"), ("together", "together", "both"))


class Topics:
    """Every topic of one unit on the home broker."""

    def __init__(self, prefix: str, device_id: str) -> None:
        self.prefix = prefix
        self.node = f"micromance_{device_id}"
        base = f"micromance/{device_id}"
        self.state = f"{base}/state"
        self.availability = f"{base}/availability"
        self.command = f"{base}/send"
        self.trigger = f"{base}/trigger"
        self.ha_status = f"{prefix}/status"

    def config(self, component: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{self.node}/{object_id}/config"


def device_block(topics: Topics, name: str) -> dict[str, Any]:
    return {"identifiers": [topics.node], "name": name, "manufacturer": "Micromance",
            "model": "Micromance kitchen unit", "sw_version": __version__}


def discovery(topics: Topics, name: str) -> dict[str, dict[str, Any]]:
    """Every discovery payload, by its config topic."""
    device = device_block(topics, name)
    available = {"availability_topic": topics.availability, "payload_available": ONLINE,
                 "payload_not_available": OFFLINE}
    payloads: dict[str, dict[str, Any]] = {}
    for component, object_id, keys in _SENSORS:
        payloads[topics.config(component, object_id)] = {
            **keys, "unique_id": f"{topics.node}_{object_id}", "state_topic": topics.state,
            "value_template": "{{ value_json." + object_id + " }}", **available,
            "device": device}
    payloads[topics.config("button", "send_thanks")] = {
        "name": "Send thanks", "icon": "mdi:heart-plus", "unique_id": f"{topics.node}_send",
        "command_topic": topics.command, "payload_press": PRESS, **available,
        "device": device}
    for payload, kind, subtype in TRIGGERS:
        payloads[topics.config("device_automation", payload)] = {
            "automation_type": "trigger", "topic": topics.trigger, "payload": payload,
            "type": kind, "subtype": subtype, "device": device}
    return payloads


def state_payload(facts: HomeFacts) -> dict[str, Any]:
    """The one state object the sensors read (``value_json.<object id>``)."""
    return {"sent_today": facts.sent_today, "received_today": facts.received_today,
            "sent_total": facts.sent_total, "received_total": facts.received_total,
            "together_total": facts.together_total, "streak": facts.streak,
            "gesture": facts.gesture,
            "partner_online": "ON" if facts.partner_online else "OFF",
            "waiting": "ON" if facts.waiting else "OFF"}


def triggers_between(before: HomeFacts | None, after: HomeFacts) -> list[str]:
    """The device triggers a change of facts fires (none for the first facts after start)."""
    if before is None:
        return []
    fired = []
    if after.received_total > before.received_total:
        fired.append("received")
    if after.together_total > before.together_total:
        fired.append("together")
    return fired


class HomeAssistantLink(LoopConnection):
    """The connection to the home broker: discovery, state, availability, the button."""

    def __init__(self, config: HomeAssistantConfig, *, device_id: str, name: str,
                 post: Callable[..., None], wake: Wake | None = None,
                 client_factory: Callable[..., Any] | None = None) -> None:
        self.topics = Topics(config.prefix, device_id)
        super().__init__(config.broker, f"{self.topics.node}_ha", wake=wake,
                         client_factory=client_factory)
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._removal: set[int] = set()                 # mids of the removal, unconfirmed
        self._name = name
        self._post = post
        self._facts: HomeFacts | None = None
        self._published: dict[str, Any] | None = None   # the state last sent
        self._announced = False                         # discovery is on the broker
        self.removing = False                           # connect only to remove the device
        self.finished = False                           # ...and that is done
        self.error = ""

    # --- from the executor (loop thread) ----------------------------------------------------

    def remove_when_connected(self) -> None:
        """Connect only to take the device out of Home Assistant, then stop."""
        self.removing = True

    def update(self, facts: HomeFacts) -> None:
        """New facts: the state (when it changed), the triggers they fire, and discovery
        on a pairing or its removal on an unpairing."""
        before, self._facts = self._facts, facts
        if not self.connected or self.removing:
            return
        if facts.paired != (before.paired if before else facts.paired) or not self._announced:
            self._announce()
        for payload in triggers_between(before, facts):
            self._client.publish(self.topics.trigger, payload, qos=1)
        self._publish_state()

    def remove(self) -> None:
        """Take the device out of Home Assistant (empty retained configs), if connected."""
        if self.connected:
            self._removal = {self._client.publish(topic, b"", qos=1, retain=True).mid
                             for topic in [*discovery(self.topics, self._name),
                                           self.topics.state]}
            self._announced = False

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any = None,
                    properties: Any = None) -> None:
        if mid in self._removal:
            self._removal.discard(mid)
            if not self._removal and self.removing and not self.finished:
                log.info("taken out of Home Assistant on %s (switched off)", self.where)
                self._stopping = self.finished = True
                client.disconnect()

    # --- hooks -------------------------------------------------------------------------------

    def _prepare_attempt(self) -> None:
        self._client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)

    def _when_connected(self, client: Any) -> None:
        self._connected.set()
        if self.removing:
            self.remove()
            self._removal = {client.publish(self.topics.availability, b"", qos=1,
                                            retain=True).mid, *self._removal}
            return  # disconnects once the broker has confirmed all of it (_on_publish)
        client.subscribe([(self.topics.command, 1), (self.topics.ha_status, 1)])
        self.error = ""
        log.info("Home Assistant broker up: %s", self.where)
        self._published = None
        self._announce()
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        self._publish_state()

    def _before_disconnect(self) -> None:
        self._client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)

    def _when_lost(self, reason: Any) -> None:
        log.info("Home Assistant broker down: %s (%s): reconnecting", self.where, reason)
        self.error = f"connection lost ({reason})"

    def _report(self, error: str) -> None:
        self.error = error

    # --- the rest ---------------------------------------------------------------------------

    def _announce(self) -> None:
        """Discovery while paired; removed while not (a unit without a partner sends and
        receives nothing worth an automation)."""
        if self._facts is not None and not self._facts.paired:
            self.remove()
            return
        for topic, payload in discovery(self.topics, self._name).items():
            self._client.publish(topic, json.dumps(payload), qos=1, retain=True)
        self._announced = True

    def _publish_state(self) -> None:
        if self._facts is None or not self._facts.paired:
            return
        state = state_payload(self._facts)
        if state != self._published:
            self._client.publish(self.topics.state, json.dumps(state), qos=1, retain=True)
            self._published = state

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        """Home Assistant said it (re)started, or its button was pressed (on the loop)."""
        payload = bytes(message.payload[:16])
        if message.topic == self.topics.ha_status:
            if payload == ONLINE.encode():
                self._announce()     # it forgot what it knew: tell it again
                self._published = None
                self._publish_state()
        elif message.topic == self.topics.command:
            if payload == PRESS.encode() and self._facts is not None and self._facts.paired:
                self._post(ev.GestureInput, gesture=ev.Gesture.THANKS_PRESS)
            else:
                log.debug("ignored %r on %s", payload, message.topic)


class HomeAssistant:
    """The unit's Home Assistant side as the runtime sees it: the link of the moment (none
    while switched off), the facts for it, and a change of config on reload.

    Switched off with its settings still there (``enabled = false``), it connects once to
    take the device out of Home Assistant, then goes quiet."""

    def __init__(self, config: HomeAssistantConfig, *, device_id: str, name: str,
                 post: Callable[..., None], wake: Wake | None = None,
                 client_factory: Callable[..., Any] | None = None) -> None:
        self._config = config
        self._make = lambda c, n: HomeAssistantLink(
            c, device_id=device_id, name=n, post=post, wake=wake,
            client_factory=client_factory)
        self._name = name
        self.link: HomeAssistantLink | None = None
        self._facts: HomeFacts | None = None

    def open(self) -> None:
        config = self._config
        if config.enabled:
            self.link = self._make(config, self._name)
        elif config != HomeAssistantConfig():  # its settings are there, switched off
            self.link = self._make(config, self._name)
            self.link.remove_when_connected()
        else:
            return
        if self._facts is not None:
            self.link.update(self._facts)
        self.link.start()

    def close(self) -> None:
        if self.link is not None:
            self.link.stop()
            self.link = None

    def sources(self) -> list[HomeAssistantLink]:
        return [self.link] if self.link is not None and not self.link.finished else []

    def report(self, facts: HomeFacts) -> None:
        self._facts = facts
        if self.link is not None and not self.link.removing:
            self.link.update(facts)

    def reconfigure(self, config: HomeAssistantConfig, name: str) -> None:
        """A reload: a new connection only if its settings (or the unit's name) changed; a
        switch-off takes the device out of Home Assistant first."""
        if (config, name) == (self._config, self._name):
            return
        if self.link is not None and self._config.enabled and not config.enabled:
            self.link.remove()
        self.close()
        self._config, self._name = config, name
        self.open()
