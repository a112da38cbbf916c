"""Any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, hosted APIs) as an agent.

Uses only the standard library (``urllib.request``), so evaluation needs no ``openai`` package.  Endpoints
fail in ordinary ways -- timeouts, 5xx under load, 429, a proxy answering with an HTML page -- and one bad
request must not end a run of thousands of episodes: such requests are retried (after the ``Retry-After``
the server asks for, else after exponential backoff with jitter), and a reply that still never comes is
returned as ``None`` (an invalid turn for the episode, counted in its record).  Only errors that will
recur on every request (401, 403, 404: wrong key, URL or model) stop the run with a clear message.
``act_batch`` keeps at most ``concurrency`` requests in flight.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from tsr_envs.evaluation.errors import EvalInputError

API_KEY_VARIABLES = ("TSR_API_KEY", "OPENAI_API_KEY")
_FATAL_STATUS = {
    401: "unauthorized (check TSR_API_KEY / OPENAI_API_KEY)",
    403: "forbidden",
    404: "not found (check the base URL and --model)",
}
_RETRY_STATUS = {408, 409, 429}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


class MalformedResponse(ValueError):
    """A 200 response whose body is not a chat completion."""


class OpenAIAgent:
    """Chat completions from ``{base_url}/chat/completions``; counters of what went wrong in ``stats``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 256,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        concurrency: int = 8,
        name: str | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.name = name or f"openai:{base_url}|{model}"
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.concurrency = max(1, concurrency)
        key = api_key or next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), None)
        self._headers = {"Content-Type": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        #: requests, timeouts, server_errors, connection_errors, malformed, client_errors, retries, failed
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_pool"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def act_batch(self, histories: Sequence[list[dict[str, str]]]) -> list[str | None]:
        if len(histories) <= 1 or self.concurrency == 1:
            return [self.complete(history) for history in histories]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="tsr-openai")
        return list(self._pool.map(self.complete, histories))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def complete(self, history: Sequence[dict[str, str]]) -> str | None:
        """One reply, or ``None`` after the retries are spent."""
        body = json.dumps(
            {
                "model": self.model,
                "messages": list(history),
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
            }
        ).encode()
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._count("retries")
                time.sleep(self._delay(attempt, retry_after))
            retry_after = None
            self._count("requests")
            try:
                return self._post(body)
            except urllib.error.HTTPError as error:
                retry_after = parse_retry_after(error.headers.get("Retry-After") if error.headers else None)
                if error.code in _FATAL_STATUS:
                    raise EvalInputError(
                        f"{self.url}: HTTP {error.code} {_FATAL_STATUS[error.code]}"
                    ) from None
                if error.code < 500 and error.code not in _RETRY_STATUS:
                    self._count("client_errors")
                    break
                self._count("server_errors")
            except TimeoutError:
                self._count("timeouts")
            except urllib.error.URLError as error:
                timed_out = isinstance(error.reason, TimeoutError)
                self._count("timeouts" if timed_out else "connection_errors")
            except (OSError, http.client.HTTPException):
                self._count("connection_errors")
            except MalformedResponse:
                self._count("malformed")
        self._count("failed")
        return None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait before retry ``attempt``: the server's ``Retry-After`` if it sent one, else backoff.

        Backoff is "full jitter" (uniform in ``[0, backoff * 2**(attempt-1)]``), so that many episodes
        that failed together do not all come back at the same instant; both are capped at ``max_backoff``.
        """
        if retry_after is not None:
            return min(self.max_backoff, retry_after)
        return random.uniform(0.0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))

    def _post(self, body: bytes) -> str:
        request = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            raw = response.read()
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise MalformedResponse(raw[:200]) from None
        if content is not None and not isinstance(content, str):
            raise MalformedResponse(raw[:200])
        return content or ""

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1
