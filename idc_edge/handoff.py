"""A one-way channel between two threads that holds as few frames as the stages allow.

Every frame waiting between two threads is memory: 6 MB at 1920×1080 BGR. With ``waiting=0`` the
producer hands each item over directly — ``put`` returns once the consumer has taken it — so the
producer works on the next item while the consumer works on this one, and nothing waits in
between. ``waiting=1`` lets one item wait (a producer may then run one item ahead); with it,
:meth:`Handoff.put_newest` replaces a waiting item instead of waiting (newest wins: a camera's frame,
a browser view). A ``stop`` event passed to :meth:`Handoff.put` ends a wait early.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Optional

from . import validate

#: seconds between looks at the ``stop`` event while waiting
POLL_S = 0.05


class Handoff:
    """Items from one producer thread to one consumer thread, in order.

    Args:
        waiting: items that may wait between the two threads (0: handed over directly).
    """

    def __init__(self, waiting: int = 0):
        self.waiting = validate.whole_number("waiting", waiting, minimum=0, unit="items")
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, self.waiting))
        self._taken = threading.Semaphore(0)

    def put(self, item: Any, stop: Optional[threading.Event] = None) -> bool:
        """Put ``item``, waiting for room (and, with ``waiting=0``, until it was taken); False when
        ``stop`` was set meanwhile."""
        while True:
            if stop is not None and stop.is_set():
                return False
            try:
                self._queue.put(item, timeout=POLL_S)
                break
            except queue.Full:
                continue
        if self.waiting == 0:
            while not self._taken.acquire(timeout=POLL_S):
                if stop is not None and stop.is_set():
                    return False
        return True

    def put_newest(self, item: Any) -> bool:
        """Put ``item`` without waiting, replacing an item still waiting; True when one was replaced
        (dropped). Only for ``waiting >= 1``."""
        if self.waiting == 0:
            raise ValueError("put_newest needs a Handoff with waiting >= 1")
        dropped = False
        while True:
            try:
                self._queue.put_nowait(item)
                return dropped
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    dropped = True
                except queue.Empty:
                    pass

    def get(self, timeout: Optional[float] = None) -> Any:
        """The next item; raises ``queue.Empty`` after ``timeout`` seconds without one (0: do not wait)."""
        item = self._queue.get(timeout=timeout)
        if self.waiting == 0:
            self._taken.release()
        return item

    def clear(self) -> None:
        """Drop what waits (frees a producer waiting for room or for its item to be taken)."""
        try:
            while True:
                self.get(timeout=0)
        except queue.Empty:
            pass
