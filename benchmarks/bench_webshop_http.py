"""WebShop over HTTP: loopback requests/s with concurrent clients, env steps/s per transport, and the
original stack's published costs. Used by ``bench_webshop.py --http / --transports / --original``.

    python benchmarks/bench_webshop.py --http          # waitress (threads=8) in a subprocess, 1/4/8 clients
    python benchmarks/bench_webshop.py --transports    # tsr/WebShop-v0 steps/s: inprocess, http, browser
    python benchmarks/bench_webshop.py --original      # the original stack's published costs beside ours

Every client repeats a fixed episode script per goal: ``POST /api/sessions``, then ``POST .../step`` with
``search[<goal query>]``, ``click[<first result>]``, ``click[<its first option value>]`` (when it has
options) and ``click[buy now]``. A setting stops at its request budget or its wall-time budget, whichever
comes first (a started episode is finished). Only 127.0.0.1 is used. Nothing here asserts timings.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data" / "webshop"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def episode_scripts(engine, count: int) -> list[tuple[int, list[str]]]:
    """``(goal, actions)`` for the first ``count`` goals: search the goal query, open the first result,
    click its first option value (if any), buy."""
    from webshop_server.engine import normalize_query

    scripts = []
    for goal_index in range(min(count, len(engine.catalog.goals))):
        query = normalize_query(engine.catalog.goals[goal_index]["query"])
        results = engine.results(query)
        if not results:
            continue
        product = engine.catalog.product(results[0])
        actions = [f"search[{query}]", f"click[{product.asin.lower()}]"]
        actions += [f"click[{product.options[0][1][0]}]"] if product.options else []
        scripts.append((goal_index, [*actions, "click[buy now]"]))
    return scripts


# -- the server subprocess ---------------------------------------------------------------------------------
def serve(num_products: int, seed: int, threads: int) -> None:
    """Run a waitress server on 127.0.0.1:<ephemeral>; print the port; exit when stdin closes."""
    import waitress

    from webshop_server.app import create_app
    from webshop_server.sources import load_catalog

    catalog = load_catalog("synthetic", num_products=num_products, seed=seed)
    server = waitress.create_server(create_app(catalog, seed=seed), host=HOST, port=0, threads=threads)

    def stop_on_eof() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=stop_on_eof, daemon=True).start()
    print(server.effective_port, flush=True)
    server.run()


@contextlib.contextmanager
def server_process(num_products: int, seed: int, threads: int):
    """A server subprocess (its own GIL); yields its port and always stops it."""
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(num_products), "--seed", str(seed),
                             "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the server subprocess did not start (exit code {proc.poll()})")
        yield int(line)
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- concurrent clients ------------------------------------------------------------------------------------
class _Budget:
    """Shared request and time budget: an episode of ``n`` requests starts only while both allow it."""

    def __init__(self, requests: int, seconds: float) -> None:
        self.left = requests
        self.deadline = time.perf_counter() + seconds
        self.lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self.lock:
            if self.left < n or time.perf_counter() >= self.deadline:
                return False
            self.left -= n
            return True


def _client(port: int, scripts: list, offset: int, budget: _Budget, latencies: list, errors: list) -> None:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Content-Type": "application/json"}

    def call(method: str, path: str, body: dict) -> dict | None:
        t0 = time.perf_counter()
        try:
            connection.request(method, path, body=json.dumps(body).encode(), headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()  # reconnects on the next request
            errors.append(type(exc).__name__)
            return None
        latencies.append((time.perf_counter() - t0) * 1e3)
        if response.status >= 400:
            errors.append(f"HTTP {response.status}")
            return None
        return json.loads(data)

    episode = offset
    try:
        while True:
            goal, actions = scripts[episode % len(scripts)]
            if not budget.take(1 + len(actions)):
                return
            created = call("POST", "/api/sessions", {"goal": goal})
            if created is None:
                continue
            for action in actions:
                answer = call("POST", f"/api/s/{created['session']}/step", {"action": action})
                if answer is not None and answer.get("error"):
                    errors.append(f"rejected {action}")
            episode += 1
    finally:
        connection.close()


def http_throughput(num_products: int = 10_000, seed: int = 0, clients: tuple[int, ...] = (1, 4, 8),
                    max_requests: int = 2000, max_seconds: float = 20.0, threads: int = 8) -> list[dict]:
    """Requests/s against a waitress server (``threads``) in a subprocess, for each client count."""
    from webshop_server import Engine
    from webshop_server.sources import load_catalog

    scripts = episode_scripts(Engine(load_catalog("synthetic", num_products=num_products, seed=seed)), 500)
    rows = []
    with server_process(num_products, seed, threads) as port:
        for count in clients:
            budget = _Budget(max_requests, max_seconds)
            latencies: list[float] = []
            errors: list[str] = []
            workers = [threading.Thread(target=_client,
                                        args=(port, scripts, i * 37, budget, latencies, errors))
                       for i in range(count)]
            t0 = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - t0
            done = len(latencies)
            rows.append({
                "products": num_products, "server_threads": threads, "clients": count, "requests": done,
                "seconds": round(elapsed, 2), "requests_per_s": round(done / elapsed, 1),
                "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
                "p99_ms": round(_percentile(latencies, 0.99), 2), "errors": len(errors),
                "stopped_by": "time" if t0 + elapsed >= budget.deadline else "count",
            })
    return rows


# -- env steps/s per transport ----------------------------------------------------------------------------
def _browser_missing() -> str | None:
    missing = [p for p in ("/usr/bin/chromium", "/usr/bin/chromedriver") if not Path(p).exists()]
    if importlib.util.find_spec("selenium") is None:
        missing.append("selenium")
    return f"skipped: {', '.join(missing)} not found" if missing else None


def transport_steps(num_products: int = 10_000, seed: int = 0, max_seconds: float = 20.0,
                    max_steps: dict[str, int] | None = None) -> list[dict]:
    """``WebShopEnv`` ``step()`` rate per transport on the same fixed action scripts (resets not timed)."""
    from tsr_envs.webshop import WebShopEnv

    limits = {"inprocess": 2000, "http": 1000, "browser": 30, **(max_steps or {})}
    rows = []
    for transport, limit in limits.items():
        row: dict = {"transport": transport, "products": num_products}
        reason = _browser_missing() if transport == "browser" else None
        if reason:
            rows.append({**row, "steps": 0, "note": reason})
            continue
        t0 = time.perf_counter()
        try:
            env = WebShopEnv(num_products=num_products, catalog_seed=seed, transport=transport)
        except Exception as exc:  # a benchmark reports why a transport could not run
            rows.append({**row, "steps": 0, "note": f"skipped: {type(exc).__name__}: {exc}"[:120]})
            continue
        setup_s = time.perf_counter() - t0
        try:
            scripts = episode_scripts(env.engine, 500)
            latencies: list[float] = []
            rewards: list[float] = []
            errors: list[str] = []
            deadline = time.perf_counter() + max_seconds
            episode = 0
            while len(latencies) < limit and time.perf_counter() < deadline and len(errors) < 5:
                goal, actions = scripts[episode % len(scripts)]
                episode += 1
                try:
                    env.reset(options={"goal_index": goal})
                    for action in actions:
                        if len(latencies) >= limit:
                            break
                        t1 = time.perf_counter()
                        _, reward, terminated, truncated, _ = env.step(action)
                        latencies.append((time.perf_counter() - t1) * 1e3)
                        if terminated or truncated:
                            rewards.append(float(reward))
                            break
                except Exception as exc:  # reported in the row; the next episode starts afresh
                    errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        finally:
            env.close()
        total = sum(latencies) / 1e3
        rows.append({**row, "setup_s": round(setup_s, 2), "steps": len(latencies),
                     "steps_per_s": round(len(latencies) / total, 1) if total else None,
                     "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
                     "p99_ms": round(_percentile(latencies, 0.99), 2),
                     "mean_reward": round(statistics.mean(rewards), 3) if rewards else None,
                     "errors": len(errors), "note": errors[0][:160] if errors else ""})
    return rows


# -- the original stack ------------------------------------------------------------------------------------
NOTES = "WebShop README / issues (notes)"


def original_stack(ours: dict | None = None) -> list[dict]:
    """The original WebShop's published costs (from the project notes, section 7 and 3) beside ours, and
    what of the original stack this machine has. ``ours`` may carry measured numbers for the last column."""
    ours = ours or {}
    here = {
        "java": shutil.which("java") is not None,
        "pyserini importable": importlib.util.find_spec("pyserini") is not None,
        "spacy importable": importlib.util.find_spec("spacy") is not None,
        "full items_shuffle.json": (DATA_DIR / "items_shuffle.json").exists(),
    }
    return [
        {"item": "search index", "original (published)":
            "Lucene index built by pyserini (Java 11+); 'indexes does not exist' and 'Total 0 documents "
            "indexed' failures (WebShop #24, #28; AgentBench #24/#42)",
         "ours": ours.get("index", "pure-Python BM25 built at start-up; no Java"), "source": NOTES},
        {"item": "pyserini import", "original (published)":
            "faiss-cpu/MKL 'libmkl_gnu_thread.so: invalid ELF header' (WebShop #22)",
         "ours": "not used", "source": NOTES},
        {"item": "data download", "original (published)":
            "Google Drive via gdown; 'Cannot retrieve the public link' (WebShop #46), manual download + scp",
         "ours": "synthetic catalogue generated locally; original 1k files optional", "source": NOTES},
        {"item": "full catalogue load", "original (published)":
            "1,181,436 products; about 15 GB RAM and 30-90 s to load (AgentBench #32)",
         "ours": ours.get("load", "see the size table (start-up, rss_mb)"), "source": NOTES},
        {"item": "spaCy model", "original (published)":
            "en_core_web_sm loaded but setup.sh downloads en_core_web_lg: \"Can't find model\" "
            "(WebShop #53); spaCy import failures (WebShop #32)",
         "ours": "no spaCy (rule-based nouns)", "source": NOTES},
        {"item": "dependency pins", "original (published)":
            "Python 3.8; Flask 2.1.2 vs Werkzeug 'url_quote' import error (WebShop #28); ARM-Mac fixes",
         "ours": "current Flask/waitress", "source": NOTES},
        {"item": "server speed", "original (published)":
            "no published requests/s; 'extremely slow' with 1,000 instructions (ArCHer #6, unverified), "
            "'sampling process is slow' (WebShop #42)",
         "ours": ours.get("http", "see the --http table"), "source": NOTES},
        {"item": "installable here?", "original (published)":
            "needs Java + pyserini + Google Drive data + spaCy model; no internet here for the data/model",
         "ours": "this machine: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in here.items()),
         "source": "checked on this machine"},
    ]


def check_registry(package: str = "pyserini", timeout: float = 60.0) -> str:
    """Whether ``pip`` can see ``package`` on the configured registry (versions only; nothing installed)."""
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"pip index versions {package}: timed out after {timeout:.0f} s"
    text = (out.stdout or out.stderr).strip().splitlines()
    return f"pip index versions {package}: {text[0] if text else f'exit code {out.returncode}'}"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=int, required=True, help="serve a synthetic catalogue of N products")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    serve(args.serve, args.seed, args.threads)
