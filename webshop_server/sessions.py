"""A bounded, thread-safe session store: a cap on live sessions plus an idle timeout.

The original keeps every session forever in a process-global dict (AgentGym issue #62: memory grows until
the server dies during long RL runs), so sessions need a bound.  Evicting the least recently used session
to make room would let one fast client (10,000 creations take seconds) wipe out every other client's
episode mid-way, so the bound works the other way round:

* a session lives until it is deleted or has been idle (no request) for ``ttl_seconds``;
* while ``max_sessions`` sessions are live, creating another one is refused with
  :class:`SessionLimitError`, which says how long until the least recently used session expires (the
  site answers 503 with a ``Retry-After`` header); live sessions are never dropped to make room.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from webshop_server.engine import SessionRecord

DEFAULT_MAX_SESSIONS = 10_000
DEFAULT_SESSION_TTL = 3600.0


class SessionLimitError(RuntimeError):
    """The store is full; ``retry_after`` is the number of seconds until a slot frees by expiry."""

    def __init__(self, max_sessions: int, retry_after: int) -> None:
        super().__init__(
            f"The server holds its maximum of {max_sessions} live sessions; retry in {retry_after} s "
            "(idle sessions expire) or delete finished sessions."
        )
        self.retry_after = retry_after


class SessionExistsError(KeyError):
    """A new session was asked for under an id that is already live."""


class SessionStore:
    """``session id -> SessionRecord`` with a hard cap and idle expiry; ``clock`` is injectable for tests."""

    def __init__(
        self,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        ttl_seconds: float = DEFAULT_SESSION_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions < 1 or not ttl_seconds > 0:
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

    def add(self, session_id: str, record: SessionRecord) -> None:
        """Start a new session; :class:`SessionExistsError` if the id is live, :class:`SessionLimitError`
        if the store is full."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if session_id in self._items:
                raise SessionExistsError(session_id)
            self._insert(session_id, record, now)

    def put(self, session_id: str, record: SessionRecord) -> None:
        """Store ``record`` as the session's current state (re-creating it, within the cap, if it expired)."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if session_id in self._items:
                self._items[session_id] = (record, now)
                self._items.move_to_end(session_id)
            else:
                self._insert(session_id, record, now)

    def delete(self, session_id: str) -> bool:
        """Forget a session; True when it existed."""
        with self._lock:
            return self._items.pop(session_id, None) is not None

    def _insert(self, session_id: str, record: SessionRecord, now: float) -> None:
        if len(self._items) >= self.max_sessions:
            _, (_, oldest_use) = next(iter(self._items.items()))
            wait = max(1, math.ceil(self.ttl_seconds - (now - oldest_use)))
            raise SessionLimitError(self.max_sessions, wait)
        self._items[session_id] = (record, now)

    def _expire(self, now: float) -> None:
        while self._items:
            oldest_id, (_, last_used) = next(iter(self._items.items()))
            if now - last_used <= self.ttl_seconds:
                break
            del self._items[oldest_id]
