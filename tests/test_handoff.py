"""The channel between threads: direct handover holds no waiting item, order and stop are kept."""
import queue
import threading
import time

import pytest

from idc_edge.handoff import Handoff


def test_put_returns_only_once_the_consumer_has_taken_the_item():
    channel = Handoff(0)
    returned = threading.Event()
    producer = threading.Thread(target=lambda: (channel.put("frame"), returned.set()))
    producer.start()
    assert not returned.wait(0.3)  # nobody took it yet: the producer is still handing it over
    assert channel.get(timeout=5) == "frame"
    assert returned.wait(5)
    producer.join(5)


def test_items_arrive_in_order_and_the_producer_runs_at_most_one_item_ahead():
    channel = Handoff(0)
    made = []

    def produce():
        for i in range(50):
            made.append(i)
            channel.put(i)
        channel.put(None)

    producer = threading.Thread(target=produce)
    producer.start()
    got = []
    while (item := channel.get(timeout=5)) is not None:
        got.append(item)
        # the producer may have made the next item, never two more: nothing waits in between
        assert len(made) <= item + 2
        time.sleep(0.001)
    producer.join(5)
    assert got == list(range(50))


def _waiting_producer(channel, stop):
    """A thread handing ``"frame"`` over, its result appended to the returned list when it returns."""
    result = []
    producer = threading.Thread(target=lambda: result.append(channel.put("frame", stop)))
    producer.start()
    time.sleep(0.1)
    return producer, result


def test_a_stop_ends_a_wait_for_the_consumer():
    channel, stop = Handoff(0), threading.Event()
    producer, result = _waiting_producer(channel, stop)
    stop.set()
    producer.join(5)
    assert result == [False]


def test_clear_frees_a_producer_waiting_for_its_item_to_be_taken():
    channel = Handoff(0)
    producer, result = _waiting_producer(channel, threading.Event())
    channel.clear()
    producer.join(5)
    assert result == [True]
    with pytest.raises(queue.Empty):
        channel.get(timeout=0)


def test_put_newest_replaces_the_waiting_item_and_says_so():
    channel = Handoff(1)
    assert channel.put_newest(1) is False
    assert channel.put_newest(2) is True
    assert channel.get(timeout=0) == 2


def test_put_newest_fails_without_room_to_wait():
    with pytest.raises(ValueError, match="waiting >= 1"):
        Handoff(0).put_newest(1)


def test_waiting_fails_with_a_negative_number():
    with pytest.raises(ValueError, match="waiting"):
        Handoff(-1)
