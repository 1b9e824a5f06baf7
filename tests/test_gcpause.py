"""The cyclic garbage collector is paused around bulk work and always comes back as it was."""

from __future__ import annotations

import gc
import threading

import pytest

from gis.gcpause import paused_gc


@pytest.fixture(autouse=True)
def _collector_on():
    gc.enable()
    yield
    gc.enable()


def test_collections_are_off_inside_and_on_again_after():
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_comes_back_when_the_body_raises():
    with pytest.raises(ValueError), paused_gc():
        raise ValueError("bad row")
    assert gc.isenabled()


def test_overlapping_bodies_keep_it_paused_until_the_last_one_ends():
    first_inside, second_done, states = threading.Event(), threading.Event(), []

    def first() -> None:
        with paused_gc():
            first_inside.set()
            second_done.wait(5)
            states.append(("first, after second ended", gc.isenabled()))

    worker = threading.Thread(target=first)
    worker.start()
    first_inside.wait(5)
    with paused_gc():
        states.append(("second", gc.isenabled()))
    second_done.set()
    worker.join(5)
    assert states == [("second", False), ("first, after second ended", False)]
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()


def test_it_decorates_a_function():
    @paused_gc()
    def work() -> bool:
        return gc.isenabled()

    assert work() is False and work() is False
    assert gc.isenabled()
