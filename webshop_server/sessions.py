"""A bounded, thread-safe session store: least-recently-used eviction plus an idle timeout.

The original keeps every session forever in a process-global dict (AgentGym issue #62: memory grows until
the server dies during long RL runs). Records are tiny, but the number of sessions is unbounded without a
cap, so the store evicts the least recently used session beyond ``max_sessions`` and any session idle for
longer than ``ttl_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from webshop_server.engine import SessionRecord


class SessionStore:
    """``session id -> SessionRecord`` with LRU + TTL expiry; ``clock`` is injectable for tests."""

    def __init__(self, max_sessions: int = 10_000, ttl_seconds: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_sessions < 1 or ttl_seconds <= 0:
            raise ValueError("max_sessions must be >= 1 and ttl_seconds > 0")
        self.max_sessions = max_sessions
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._items: OrderedDict[str, tuple[SessionRecord, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._items)

    def __contains__(self, session_id: object) -> bool:
        return self.get(session_id) is not None  # type: ignore[arg-type]

    def get(self, session_id: str) -> SessionRecord | None:
        """The session's record (refreshing its last use), or None when unknown or expired."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            item = self._items.get(session_id)
            if item is None:
                return None
            self._items[session_id] = (item[0], now)
            self._items.move_to_end(session_id)
            return item[0]

    def put(self, session_id: str, record: SessionRecord) -> None:
        """Store ``record`` as the session's current state, evicting the oldest sessions beyond the cap."""
        with self._lock:
            now = self._clock()
            self._items[session_id] = (record, now)
            self._items.move_to_end(session_id)
            self._expire(now)
            while len(self._items) > self.max_sessions:
                self._items.popitem(last=False)

    def delete(self, session_id: str) -> bool:
        """Forget a session; True when it existed."""
        with self._lock:
            return self._items.pop(session_id, None) is not None

    def _expire(self, now: float) -> None:
        while self._items:
            oldest_id, (_, last_used) = next(iter(self._items.items()))
            if now - last_used <= self.ttl_seconds:
                break
            del self._items[oldest_id]
