"""Running whole units in tests: a runtime on a thread, waited on through its commands."""

from __future__ import annotations

import threading
from pathlib import Path

from micromance.config import (
    BrokerConfig,
    Config,
    DeviceConfig,
    DisplayConfig,
    PathsConfig,
    QuietHoursConfig,
)
from micromance.core import commands as cmd
from micromance.runtime import Runtime

WAIT = 10.0  # generous upper bound for an event to arrive; tests normally take milliseconds


def desk_config(state_dir: Path, *, name: str = "Sam", broker_port: int = 1883,
                **display) -> Config:
    return Config(
        device=DeviceConfig(name=name),
        display=DisplayConfig(driver="dummy", **display),
        paths=PathsConfig(state_dir=str(state_dir)),
        quiet_hours=QuietHoursConfig(enabled=False),
        broker=BrokerConfig(host="127.0.0.1", port=broker_port, tls=False),
    )


class Running:
    """A runtime on a thread, with a way to wait for the commands it carried out."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.seen: list[cmd.Command] = []
        self._changed = threading.Condition()
        runtime.observers.append(self._observe)
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(runtime.run()))

    def _observe(self, command: cmd.Command) -> None:
        with self._changed:
            self.seen.append(command)
            self._changed.notify_all()

    def mark(self) -> int:
        """A point in the command history; ``wait_for(..., since=mark)`` looks after it."""
        with self._changed:
            return len(self.seen)

    def wait_for(self, predicate, timeout: float = WAIT, since: int = 0):
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((c for c in self.seen[since:] if predicate(c)), None), timeout)
        assert found, f"no matching command within {timeout}s; saw {self.seen[-5:]}"
        return found

    def wait_until(self, condition, timeout: float = WAIT) -> None:
        """Wait until ``condition()`` holds, re-checked after every command."""
        with self._changed:
            assert self._changed.wait_for(condition, timeout), "condition not reached"

    def __enter__(self) -> Running:
        self.thread.start()
        assert self.runtime.wait_started(WAIT), "runtime did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.runtime.stop()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


class RunningUnit:
    """A whole unit on its own mock pins, running on a thread from construction until
    ``close`` (for tests that start and stop several units as they go)."""

    def __init__(self, config: Config, *, timeout: float = 30.0) -> None:
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        self.factory = MockFactory(pin_class=MockPWMPin)
        self.timeout = timeout
        self.running = Running(Runtime(config, pin_factory=self.factory)).__enter__()

    @property
    def runtime(self) -> Runtime:
        return self.running.runtime

    @property
    def state(self):
        return self.running.runtime.state

    def wait_until(self, condition, timeout: float | None = None) -> None:
        self.running.wait_until(condition, self.timeout if timeout is None else timeout)

    def close(self) -> None:
        self.running.__exit__(None, None, None)
        self.factory.reset()
        self.factory.close()


def press(factory, pin: int) -> None:
    factory.pin(pin).drive_low()
    factory.pin(pin).drive_high()


def names_of(pair):
    """The names of the unit whose pair.json this is (v2: from the key, not the ids)."""
    from micromance.protocol import pair_names

    return pair_names(pair.key, pair.device_id, pair.partner_id)[0]


def partner_names_of(pair):
    """The names of that unit's partner."""
    from micromance.protocol import pair_names

    return pair_names(pair.key, pair.device_id, pair.partner_id)[1]
