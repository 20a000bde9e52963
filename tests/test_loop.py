"""The loop's turn: ``handle_now`` runs a handler on the calling thread while the loop sleeps,
queues otherwise, keeps the order, and the loop draws (``idle``) once a burst is over.

The loop runs on a thread of the test; every wait is on an event, never a sleep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from micromance.loop import Loop

WAIT = 10.0


class Recorder:
    """The loop's handler, tick and idle hook, recording what ran on which thread."""

    def __init__(self) -> None:
        self.handled: list[tuple[object, int]] = []
        self.ticks = 0
        self.idles = 0
        self.changed = threading.Condition()
        self.block: dict[object, threading.Event] = {}   # event -> released when set
        self.entered: dict[object, threading.Event] = {}

    def handle(self, event: object) -> None:
        if event in self.entered:
            self.entered[event].set()
        if event in self.block:
            assert self.block[event].wait(WAIT)
        if isinstance(event, Exception):
            raise event
        with self.changed:
            self.handled.append((event, threading.get_ident()))
            self.changed.notify_all()

    def hold(self, event: object) -> tuple[threading.Event, threading.Event]:
        """Make ``event``'s handler stop inside: (set to let it go on, set once it is in)."""
        release = self.block[event] = threading.Event()
        entered = self.entered[event] = threading.Event()
        return release, entered

    def tick(self) -> str:
        self.ticks += 1
        return "tick"

    def idle(self) -> None:
        with self.changed:
            self.idles += 1
            self.changed.notify_all()

    def wait_for(self, condition: Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, WAIT), self.handled

    def events(self) -> list[object]:
        return [event for event, _ in self.handled if event != "tick"]


@contextmanager
def running(recorder: Recorder) -> Iterator[tuple[Loop, threading.Thread, list[BaseException]]]:
    loop = Loop()
    failures: list[BaseException] = []
    idle_once = threading.Event()

    def idle() -> None:
        recorder.idle()
        idle_once.set()

    def run() -> None:
        try:
            loop.run(recorder.handle, recorder.tick, idle=idle)
        except BaseException as error:  # the test looks at it
            failures.append(error)

    thread = threading.Thread(target=run, name="test-loop", daemon=True)
    with loop:
        thread.start()
        assert idle_once.wait(WAIT)  # asleep in select from here on (or about to be)
        try:
            yield loop, thread, failures
        finally:
            loop.stop()
            thread.join(WAIT)


def wait_asleep(loop: Loop) -> None:
    """Until the loop sleeps in ``select``: the only moment its thread lets go of the turn."""
    assert loop._turn.acquire(timeout=WAIT), "the loop never went to sleep"
    loop._turn.release()


def test_an_edge_while_the_loop_sleeps_is_handled_on_the_calling_thread():
    recorder = Recorder()
    with running(recorder) as (loop, _thread, failures):
        wait_asleep(loop)
        idles = recorder.idles
        loop.handle_now("press")
        # Done when handle_now returns, on this thread, and not a tick's worth of work.
        assert recorder.events() == ["press"]
        assert recorder.handled[-1][1] == threading.get_ident()
        # The loop wakes to draw and plan again: idle runs, no Tick for that wake-up.
        recorder.wait_for(lambda: recorder.idles > idles)
        assert recorder.ticks == 0
    assert failures == []


def test_an_edge_while_a_handler_runs_waits_its_turn_in_order():
    recorder = Recorder()
    release, entered = recorder.hold("first")
    with running(recorder) as (loop, thread, failures):
        loop.post("first")
        assert entered.wait(WAIT)        # the loop thread is inside the first handler
        loop.handle_now("second")        # may not run beside it: queued
        assert recorder.events() == []
        release.set()
        recorder.wait_for(lambda: recorder.events() == ["first", "second"])
        assert {ident for _, ident in recorder.handled} == {thread.ident}
    assert failures == []


def test_an_edge_behind_queued_events_is_queued_behind_them():
    recorder = Recorder()
    release, entered = recorder.hold("a")
    with running(recorder) as (loop, _thread, failures):
        loop.post("a")
        assert entered.wait(WAIT)
        loop.post("b")
        release.set()
        loop.handle_now("c")  # "b" may still wait in the queue: never overtaken
        recorder.wait_for(lambda: len(recorder.events()) == 3)
        assert recorder.events() == ["a", "b", "c"]
    assert failures == []


def test_before_the_loop_runs_an_edge_is_queued_for_it():
    recorder = Recorder()
    loop = Loop()
    with loop:
        loop.handle_now("early")
        assert recorder.events() == []
        done = threading.Event()
        thread = threading.Thread(target=lambda: (loop.run(recorder.handle, recorder.tick),
                                                  done.set()), daemon=True)
        thread.start()
        recorder.wait_for(lambda: recorder.events() == ["early"])
        loop.stop()
        assert done.wait(WAIT)
    assert recorder.handled[0][1] == thread.ident


def test_a_handler_failing_on_the_edge_thread_stops_the_loop_with_that_error():
    recorder = Recorder()
    with running(recorder) as (loop, thread, failures):
        wait_asleep(loop)
        loop.handle_now(RuntimeError("broken step"))  # does not raise on the edge thread
        thread.join(WAIT)
        assert not thread.is_alive()
    assert [str(error) for error in failures] == ["broken step"]


def test_a_burst_of_queued_events_is_drawn_once():
    recorder = Recorder()
    release, entered = recorder.hold("first")
    with running(recorder) as (loop, _thread, failures):
        loop.post("first")
        assert entered.wait(WAIT)
        idles = recorder.idles
        for name in ("second", "third", "fourth"):
            loop.post(name)
        release.set()
        recorder.wait_for(lambda: len(recorder.events()) == 4 and recorder.idles > idles)
        wait_asleep(loop)
        assert recorder.idles == idles + 1
        assert recorder.ticks == 0  # the posts' wake-ups were spent: no empty wake-up after
    assert failures == []


@pytest.mark.parametrize("edges", [2, 50])
def test_edges_from_two_threads_are_each_handled_once(edges):
    recorder = Recorder()
    with running(recorder) as (loop, _thread, failures):
        wait_asleep(loop)
        start = threading.Barrier(2)

        def finger(name: str) -> None:
            start.wait(WAIT)
            for index in range(edges):
                loop.handle_now((name, index))

        fingers = [threading.Thread(target=finger, args=(name,)) for name in ("L", "R")]
        for finger_thread in fingers:
            finger_thread.start()
        for finger_thread in fingers:
            finger_thread.join(WAIT)
        recorder.wait_for(lambda: len(recorder.events()) == 2 * edges)
        events: list[Any] = recorder.events()
        for name in ("L", "R"):  # each thread's own edges in its order
            assert [index for who, index in events if who == name] == list(range(edges))
    assert failures == []
