"""The WAL is checkpointed once the unit is quiet, never in the middle of a burst of presses."""

from __future__ import annotations

import pytest

from micromance.checkpoints import AFTER_CHANGES, QUIET_SECONDS, QuietCheckpoints
from micromance.core.counters import Counters
from micromance.store import Store


class Monotonic:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path)
    store.checkpoint()  # what opening wrote is not this test's
    yield store
    store.close()


def write(store: Store, rows: int) -> None:
    for _ in range(rows):
        store.put("row", str(store.changes_since_checkpoint()))


def test_nothing_is_due_until_enough_is_written(store):
    clock = Monotonic()
    timer = QuietCheckpoints(store, clock)
    write(store, AFTER_CHANGES - 1)
    assert timer.seconds_until_due() is None
    clock.now += 3600
    timer.run_due()
    assert store.changes_since_checkpoint() == AFTER_CHANGES - 1  # not worth its writes


def test_due_once_quiet_and_every_write_puts_it_off(store):
    clock = Monotonic()
    timer = QuietCheckpoints(store, clock)
    write(store, AFTER_CHANGES)
    assert timer.seconds_until_due() == QUIET_SECONDS
    clock.now += QUIET_SECONDS - 0.5
    timer.run_due()
    assert store.changes_since_checkpoint() == AFTER_CHANGES  # not quiet long enough yet
    write(store, 1)  # another press: the quiet starts again
    assert timer.seconds_until_due() == QUIET_SECONDS
    clock.now += QUIET_SECONDS
    assert timer.seconds_until_due() == 0
    timer.run_due()
    assert store.changes_since_checkpoint() == 0
    assert timer.seconds_until_due() is None  # nothing left: the loop sleeps on


def test_a_held_press_is_left_alone_and_tried_after_another_quiet_spell(store):
    clock = Monotonic()
    timer = QuietCheckpoints(store, clock)
    write(store, AFTER_CHANGES)
    timer.seconds_until_due()
    clock.now += QUIET_SECONDS
    assert store.rehearse("press", lambda: None)  # THANKS held, its commit written ahead
    timer.run_due()
    assert store.commit_rehearsal("press")  # untouched: the release only commits
    assert timer.seconds_until_due() == QUIET_SECONDS  # not every wake-up from now on
    clock.now += QUIET_SECONDS
    timer.run_due()
    assert store.changes_since_checkpoint() == 0


def test_a_rehearsal_counts_as_a_write(store):
    clock = Monotonic()
    timer = QuietCheckpoints(store, clock)
    write(store, AFTER_CHANGES)
    timer.seconds_until_due()
    clock.now += QUIET_SECONDS - 0.1
    assert store.rehearse("press", lambda: store.save_counters(Counters(sent_total=1)))
    assert timer.seconds_until_due() == QUIET_SECONDS  # pressed: not quiet any more
    assert store.commit_rehearsal("press")
