"""``tsr serve-webshop``: the session limits reach the app, and binding beyond loopback warns."""

from __future__ import annotations

import pytest
import waitress

from tsr_envs.cli import main


class _FakeServer:
    effective_port = 4321

    def run(self) -> None:
        """Return at once: the test only checks what was configured."""


@pytest.fixture
def served(monkeypatch):
    """Capture the app and host that ``serve-webshop`` would serve, without serving."""
    seen: dict = {}

    def create_server(app, host, port, threads):
        seen.update(app=app, host=host)
        return _FakeServer()

    monkeypatch.setattr(waitress, "create_server", create_server)
    return seen


def test_session_limits_reach_the_store(served, capsys):
    argv = ["serve-webshop", "--num-products", "100", "--max-sessions", "7", "--session-ttl", "90"]
    assert main(argv) == 0
    store = served["app"].extensions["webshop"].sessions
    assert (store.max_sessions, store.ttl_seconds) == (7, 90.0)
    out = capsys.readouterr()
    assert "warning" not in out.err and "http://127.0.0.1:4321/" in out.out
    client = served["app"].test_client()
    assert client.get("/api/info").json["max_sessions"] == 7


def test_a_host_beyond_loopback_warns_that_there_is_no_authentication(served, capsys):
    assert main(["serve-webshop", "--num-products", "100", "--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "no authentication" in err and served["host"] == "0.0.0.0"
