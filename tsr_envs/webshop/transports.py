"""How a WebShop env reaches the shop: in-process, over the site's JSON API, or through a real browser.

All three run the same :class:`~webshop_server.engine.Engine` transitions on the same session records, so a
seed and an action script give the same observations and rewards whichever transport runs them.  The env
validates every action with its local engine before a transport sees it, so transports only ever execute
legal, canonical actions; a transport error is therefore a broken server or browser, never bad model input.

Remote transports (:class:`HttpTransport` here, ``BrowserTransport`` in :mod:`tsr_envs.webshop.browser`) own
one server session each.  With ``base_url=None`` they share a private waitress server for the catalogue,
started on ``127.0.0.1`` with an ephemeral port in a daemon thread and stopped when its last user closes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from abc import ABC, abstractmethod
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from tsr_envs.webshop.catalogs import CatalogKey, Shop
from webshop_server.engine import EngineStep, SessionRecord

DEFAULT_TIMEOUT = 10.0


class StepResult(NamedTuple):
    """One executed action: the new record, its reward, whether it ended the episode, the page text.

    ``observation`` is ``None`` when the env should render the record itself (in-process: lazily, because
    search rollouts step far more often than they read observations).
    """

    record: SessionRecord
    reward: float
    done: bool
    observation: str | None


class Transport(ABC):
    """One session of the shop, driven by canonical actions (already validated by the env)."""

    @abstractmethod
    def step(self, record: SessionRecord, action: str, known: EngineStep | None = None) -> StepResult:
        """Execute ``action`` on the session, whose current state is ``record``.

        ``known`` is the local engine's transition for it, already computed when the env validated the
        action: the in-process transport returns it as it is; remote ones execute the action remotely.
        """

    @abstractmethod
    def restore(self, record: SessionRecord) -> str | None:
        """Put the session into ``record``'s state (reset, ``set_state``); returns its observation."""

    @abstractmethod
    def fork(self, record: SessionRecord) -> Transport:
        """An independent session in ``record``'s state, for ``clone()``."""

    @abstractmethod
    def close(self) -> None:
        """Release the session and whatever the transport holds; safe to call twice."""


class InProcessTransport(Transport):
    """The engine called directly: stateless, so clones share it and restoring costs nothing."""

    def __init__(self, shop: Shop) -> None:
        self.engine = shop.engine

    def step(self, record: SessionRecord, action: str, known: EngineStep | None = None) -> StepResult:
        result = known if known is not None else self.engine.transition(record, action)
        return StepResult(result.record, result.reward, result.done, None)

    def restore(self, record: SessionRecord) -> str | None:
        return None

    def fork(self, record: SessionRecord) -> Transport:
        return self

    def close(self) -> None:
        """Nothing to release: the engine belongs to the shared catalogue cache."""


class _PrivateServer:
    """A waitress server for one catalogue in a daemon thread, shared by reference count."""

    def __init__(self, shop: Shop) -> None:
        import waitress

        from webshop_server.app import create_app

        app = create_app(shop.catalog, seed=shop.key.seed)
        self.server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
        self.base_url = f"http://127.0.0.1:{self.server.effective_port}"
        self.users = 0
        self.thread = threading.Thread(target=self.server.run, name="webshop-private-server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Finish the requests in flight, then close every socket from the server's own loop thread.

        Closing from another thread races with the loop and the workers (waitress then reports a bad
        file descriptor); its trigger runs the close inside the loop, which then ends by itself.
        """
        from waitress import wasyncore

        self.server.task_dispatcher.shutdown()
        self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
        self.thread.join(timeout=5)


_SERVERS: dict[CatalogKey, _PrivateServer] = {}
_SERVERS_LOCK = threading.Lock()


def acquire_private_server(shop: Shop) -> str:
    """The base URL of this process's private server for ``shop``'s catalogue (started on first use)."""
    with _SERVERS_LOCK:
        server = _SERVERS.get(shop.key)
        if server is None:
            server = _SERVERS[shop.key] = _PrivateServer(shop)
        server.users += 1
        return server.base_url


def release_private_server(key: CatalogKey) -> None:
    """Drop one user of the private server; the last one stops it."""
    with _SERVERS_LOCK:
        server = _SERVERS.get(key)
        if server is None:
            return
        server.users -= 1
        if server.users <= 0:
            del _SERVERS[key]
            server.stop()


class ShopClient:
    """A keep-alive JSON client for one session of a WebShop server (one per transport: not thread-safe)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"base_url must look like http://host:port, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        self.session_id: str | None = None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request and decode the JSON answer; raises ``ConnectionError`` with the reason."""
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        try:
            self._connection.request(method, path, body=payload, headers=headers)
            response = self._connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._connection.close()
            raise ConnectionError(f"WebShop server at {self.base_url} is not reachable ({exc})") from exc
        if response.status >= 400:
            raise ConnectionError(
                f"WebShop server at {self.base_url} answered {method} {path} with "
                f"{response.status}: {data[:300].decode(errors='replace')}"
            )
        return json.loads(data) if data else None

    def open_session(self, record: SessionRecord) -> dict[str, Any]:
        """Create this client's session on the server and put it into ``record``'s state."""
        created = self.request("POST", "/api/sessions", {"goal": record.goal_index})
        self.session_id = created["session"]
        return self.put_record(record)

    def put_record(self, record: SessionRecord) -> dict[str, Any]:
        return self.request("PUT", f"/api/s/{self.session_id}/record", record.to_dict())

    def get_record(self) -> SessionRecord:
        return SessionRecord.from_dict(self.request("GET", f"/api/s/{self.session_id}/record"))

    def close(self) -> None:
        """Delete the session (best effort: the server may already be gone) and the connection."""
        if self.session_id is not None:
            with contextlib.suppress(ConnectionError):
                self.request("DELETE", f"/api/s/{self.session_id}")
            self.session_id = None
        self._connection.close()


class HttpTransport(Transport):
    """The site's JSON API: ``POST /api/s/<sid>/step`` per action, ``PUT .../record`` to restore.

    Construction checks that the server is up and serves the same catalogue as the env (same product and
    goal counts), so a wrong URL fails at once with a clear error instead of at the first step.
    """

    def __init__(
        self, shop: Shop, base_url: str | None, record: SessionRecord, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.shop = shop
        self.private = base_url is None
        self.base_url = acquire_private_server(shop) if self.private else base_url
        self.timeout = timeout
        self.client = ShopClient(self.base_url, timeout)
        try:
            self._check_catalog()
            self.client.open_session(record)
        except BaseException:
            self.close()
            raise

    def _check_catalog(self) -> None:
        info = self.client.request("GET", "/api/info")
        catalog = self.shop.catalog
        if (info["products"], info["goals"]) != (len(catalog), len(catalog.goals)):
            raise ValueError(
                f"the server at {self.base_url} serves {info['catalog']} ({info['products']} "
                f"products, {info['goals']} goals) but the env loaded {catalog!r}"
            )

    def step(self, record: SessionRecord, action: str, known: EngineStep | None = None) -> StepResult:
        answer = self.client.request("POST", f"/api/s/{self.client.session_id}/step", {"action": action})
        return StepResult(
            SessionRecord.from_dict(answer["record"]),
            float(answer["reward"]),
            bool(answer["done"]),
            answer["observation"],
        )

    def restore(self, record: SessionRecord) -> str | None:
        return self.client.put_record(record)["observation"]

    def fork(self, record: SessionRecord) -> Transport:
        return HttpTransport(self.shop, None if self.private else self.base_url, record, self.timeout)

    def close(self) -> None:
        self.client.close()
        if self.private:
            self.private = False
            release_private_server(self.shop.key)
