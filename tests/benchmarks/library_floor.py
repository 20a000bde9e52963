"""The memory floor: the unit's libraries, loaded and used once, with none of micromance.

``python -m tests.benchmarks.library_floor`` does the least a unit must do with each library
it depends on, prints ``ready`` and waits for its stdin to close, so that the memory benchmark
reads its /proc status exactly as it reads the unit's:

- gpiozero: a PWMLED and two DigitalInputDevices on mock pins (PWM), the LED lit;
- Pillow and luma.core: text drawn with Pillow's default font on a 128x64 mode "1" image,
  shown on luma's dummy device;
- paho-mqtt: an MQTT 5 client, set up but not connected;
- cryptography: one ChaCha20-Poly1305 seal, one X25519 exchange, one HKDF;
- the standard library the daemon needs: sqlite3 (a WAL database), json, logging, argparse,
  tomllib, zoneinfo, dataclasses, threading, queue, and schedule.

Whatever the unit's own RSS is above this figure is micromance's share; this much is the
price of the card's libraries on this machine and interpreter.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


def use_the_libraries(state_dir: Path) -> None:
    import argparse
    import logging
    import queue
    import sqlite3
    import threading
    import tomllib
    import zoneinfo
    from dataclasses import dataclass

    import gpiozero
    import luma.core.device
    import paho.mqtt.client as mqtt
    import schedule
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    from PIL import Image, ImageDraw, ImageFont

    @dataclass(frozen=True)
    class Fact:
        value: int

    argparse.ArgumentParser(prog="floor").parse_args([])
    logging.getLogger("floor").info("nothing")
    tomllib.loads('a = 1')
    zoneinfo.ZoneInfo("UTC")
    queue.SimpleQueue().put(Fact(1))
    threading.Event().set()
    schedule.every(5).minutes.do(lambda: None)
    json.dumps({"fact": Fact(2).value})

    database = sqlite3.connect(state_dir / "floor.db")
    database.execute("PRAGMA journal_mode=WAL")
    with database:
        database.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT)")
        database.execute("INSERT INTO kv VALUES ('a', 'b')")
    database.close()

    factory = MockFactory(pin_class=MockPWMPin)
    led = gpiozero.PWMLED(18, pin_factory=factory)
    buttons = [gpiozero.DigitalInputDevice(pin, pin_factory=factory) for pin in (17, 27)]
    led.on()

    image = Image.new("1", (128, 64))
    ImageDraw.Draw(image).text((2, 2), "Thank you", font=ImageFont.load_default(size=12),
                               fill=1)
    screen = luma.core.device.dummy(width=128, height=64, mode="1")
    screen.display(image)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="floor",
                         protocol=mqtt.MQTTv5)
    client.reconnect_delay_set(1, 60)

    key = os.urandom(32)
    ChaCha20Poly1305(key).encrypt(os.urandom(12), b"x" * 200, b"associated")
    ours, theirs = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    shared = ours.exchange(theirs.public_key())
    HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"floor").derive(shared)

    for device in (led, *buttons):
        device.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mm-bench-floor-") as tmp:
        use_the_libraries(Path(tmp))
        print("ready", flush=True)
        sys.stdin.read()  # measured now; the benchmark closes stdin when it is done


if __name__ == "__main__":
    main()
