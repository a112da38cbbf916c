"""Model agents: the OpenAI-compatible agent against a real local HTTP server, and the Hugging Face agent.

The server runs on 127.0.0.1 (ephemeral port) in a thread of the test process, answers at most
``MAX_REQUESTS`` requests, and injects the failures an endpoint really has: timeouts, 500s, bodies that are
not chat completions, and replies that are nonsense.  It serves the suite's tiny local model when
``tsr_train.tiny_model.build_tiny_model`` is available, else a small scripted policy.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tsr_envs.cli import main
from tsr_envs.evaluation import EvalInputError, evaluate
from tsr_envs.evaluation.openai_agent import OpenAIAgent, parse_retry_after

EASY = "tsr/FrozenLake-Deterministic-v0"
MAX_REQUESTS = 300
API_KEY = "sekrit"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    try:
        from tsr_train.tiny_model import FORMAT_RECIPE, build_tiny_model
    except ImportError:
        return None
    recipe = {**FORMAT_RECIPE, "warmup_steps": 0, "episodes_per_env": 24}
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), **recipe)


class FakeEndpoint(ThreadingHTTPServer):
    """An OpenAI-style ``/v1/chat/completions`` with scripted faults, keyed by request number."""

    daemon_threads = False  # server_close() joins the handlers: no thread is cut off mid-generation
    block_on_close = True

    def __init__(self, backend) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.backend = backend
        self.faults: dict[int, str] = {}
        self.delay = 0.0
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeEndpoint
    counted_in_flight = False

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            index = server.requests
            server.requests += 1
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        self.counted_in_flight = True
        try:
            self._answer(index, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout)
        finally:
            self._leave_flight()

    def _leave_flight(self) -> None:
        """Stop counting this request as in flight, once.

        Called before the reply is written: once the client has read it, it may send its next request
        before this thread runs again, and counting both would report one request more than the client
        ever had open.
        """
        if self.counted_in_flight:
            self.counted_in_flight = False
            with self.server.lock:
                self.server.in_flight -= 1

    def _answer(self, index: int, body: dict) -> None:
        server = self.server
        fault = server.faults.get(index)
        if self.path != "/v1/chat/completions":
            return self._send(404, b"{}")
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            return self._send(401, b'{"error": "bad key"}')
        if index >= MAX_REQUESTS:
            return self._send(503, b"request budget spent")
        time.sleep(server.delay)
        if fault == "timeout":
            time.sleep(0.6)  # longer than the client waits; the answer below goes nowhere
            return self._send(200, b"{}")
        if fault == "500":
            return self._send(500, b"internal error")
        if fault == "429":
            return self._send(429, b"slow down", headers={"Retry-After": "1"})
        if fault == "garbage body":
            return self._send(200, b"<html>upstream hiccup</html>")
        content = "lorem ipsum ~~" if fault == "garbage reply" else server.backend(body["messages"])
        reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
        self._send(200, json.dumps(reply).encode())

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self._leave_flight()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def scripted_policy(messages) -> str:
    moves = ["Right", "Down", "Left", "Up"]
    return f"<think>turn {len(messages)}</think><answer>{moves[len(messages) % 4]}</answer>"


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    if tiny_model_dir is None:
        return scripted_policy
    from tsr_train.agent import PolicyAgent

    model = PolicyAgent(str(tiny_model_dir), max_new_tokens=4)
    lock = threading.Lock()

    def generate(messages) -> str:
        with lock:
            return model.act_batch([messages])[0]

    return generate


@pytest.fixture
def endpoint(backend, monkeypatch):
    monkeypatch.setenv("TSR_API_KEY", API_KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = FakeEndpoint(backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(60)
def test_500s_and_garbage_are_survived_and_counted(endpoint):
    # One request at a time, so request numbers map to histories: three episodes, turn 1 asks for A, B, C.
    endpoint.faults = {
        0: "500",
        2: "garbage body",  # A and B each need one retry on turn 1
        4: "garbage reply",  # C's reply on turn 1 is nonsense: an invalid turn
        5: "500",
        6: "500",
        7: "500",  # A's turn-2 reply never comes (retries=2): an invalid turn
    }
    agent = OpenAIAgent(endpoint.base_url, "tiny", timeout=30, retries=2, backoff=0.01, concurrency=1)
    results = evaluate(agent, EASY, episodes=3, max_turns=2)
    assert len(results.records) == 3
    assert dict(agent.stats) == {
        "requests": endpoint.requests,
        "server_errors": 4,
        "malformed": 1,
        "retries": 4,
        "failed": 1,
    }
    a, _, c = results.records
    assert c["messages"][2]["content"] == "lorem ipsum ~~" and not c["infos"][0]["action_is_valid"]
    assert a["missing_replies"] == 1 and a["messages"][4]["content"] == ""
    assert not a["infos"][1]["action_is_valid"]
    assert results.rows()[0].missing_replies == 1
    assert results.agent_stats[agent.name]["failed"] == 1


@pytest.mark.timeout(60)
def test_timeouts_are_retried_with_backoff(endpoint):
    endpoint.backend = scripted_policy  # a fast backend, so that only the injected delay can time out
    endpoint.faults = {0: "timeout", 3: "timeout", 4: "timeout", 5: "timeout"}
    agent = OpenAIAgent(endpoint.base_url, "tiny", timeout=0.3, retries=2, backoff=0.05, concurrency=1)
    started = time.monotonic()
    results = evaluate(agent, EASY, episodes=2, max_turns=2)
    assert agent.stats["timeouts"] == 4 and agent.stats["failed"] == 1 and agent.stats["retries"] == 3
    assert sum(r["missing_replies"] for r in results.records) == 1
    assert time.monotonic() - started >= 4 * 0.3  # the client did wait out each timeout


@pytest.mark.timeout(60)
def test_a_429_is_retried_after_the_servers_retry_after(endpoint):
    endpoint.backend = scripted_policy
    endpoint.faults = {0: "429"}
    # backoff alone would wait at most 0.01 s: only honouring Retry-After makes the first reply late
    agent = OpenAIAgent(endpoint.base_url, "tiny", retries=2, backoff=0.01, concurrency=1)
    started = time.monotonic()
    reply = agent.complete([{"role": "user", "content": "hi"}])
    assert reply and agent.stats["retries"] == 1
    assert time.monotonic() - started >= 1.0


def test_retry_after_parsing():
    from email.utils import format_datetime

    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    assert 25 < parse_retry_after(format_datetime(future, usegmt=True)) <= 30


@pytest.mark.timeout(60)
def test_the_concurrency_limit_holds(endpoint):
    endpoint.backend = scripted_policy
    endpoint.delay = 0.05
    agent = OpenAIAgent(endpoint.base_url, "tiny", concurrency=3)
    results = evaluate(agent, EASY, episodes=8, max_turns=2)
    assert len(results.records) == 8
    assert 1 < endpoint.max_in_flight <= 3
    assert agent.stats["failed"] == 0


@pytest.mark.timeout(60)
def test_the_cli_reaches_the_endpoint_and_a_wrong_key_is_a_clear_error(
    endpoint, monkeypatch, tmp_path, capsys
):
    endpoint.backend = scripted_policy
    args = [
        "eval",
        "--agent",
        f"openai:{endpoint.base_url}",
        "--model",
        "tiny",
        "--env",
        EASY,
        "--episodes",
        "2",
        "--max-turns",
        "2",
        "--quiet",
        "--no-plots",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"openai:{endpoint.base_url}|tiny" in out and "requests" in out
    monkeypatch.setenv("TSR_API_KEY", "wrong")
    with pytest.raises(EvalInputError, match="401"):
        OpenAIAgent(endpoint.base_url, "tiny").complete([{"role": "user", "content": "hi"}])
    assert main([*args[:-1], str(tmp_path / "other")]) == 2
    assert "unauthorized" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_the_hf_agent_is_batched_greedy_and_reproducible(tiny_model_dir):
    if tiny_model_dir is None:
        pytest.skip("tsr_train.tiny_model is not available")
    from tsr_envs.evaluation import AgentOptions

    options = AgentOptions(max_tokens=8)
    first = evaluate(f"hf:{tiny_model_dir}", EASY, episodes=3, max_turns=2, agent_options=options)
    second = evaluate(
        f"hf:{tiny_model_dir}", EASY, episodes=3, max_turns=2, agent_options=options, batch_size=1
    )
    assert first.records == second.records
    assert all(r["turns"] == len(r["rewards"]) <= 2 for r in first.records)
