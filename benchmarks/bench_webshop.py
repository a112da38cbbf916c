"""WebShop engine benchmarks: start-up, search latency, memory, step throughput, reward agreement.

    python benchmarks/bench_webshop.py                       # sizes 1k, 10k, 100k (each in a fresh process)
    python benchmarks/bench_webshop.py --sizes 1000 10000 --json out.json
    python benchmarks/bench_webshop.py --reward-agreement    # needs the original files (--data DIR)
    python benchmarks/bench_webshop.py --loader-scale 100000 # original-format loader: peak memory
    python benchmarks/bench_webshop.py --http                # loopback requests/s, 1/4/8 concurrent clients
    python benchmarks/bench_webshop.py --transports          # env steps/s: inprocess, http, browser
    python benchmarks/bench_webshop.py --original            # original stack's published costs beside ours
    python benchmarks/bench_webshop.py --http --transports --original --json out.json

``--http`` starts waitress (threads=8) on 127.0.0.1 with an ephemeral port in a subprocess for a synthetic
catalogue (``--products``, default 10k) and runs each client count until ``--max-requests`` requests or
``--max-seconds`` seconds, whichever comes first; the server is stopped at the end (see
``bench_webshop_http.py`` for the episode script). With any of ``--http/--transports/--original`` the JSON
file holds ``{"http": [...], "transports": [...], "original_stack": [...]}`` (the sections run); otherwise
it holds the list of rows as before.

Goals (not asserted in tests): start-up (generation + index) < 2 s and search p50 < 5 ms at 10k products,
memory < 1 GB at 100k. Memory is the resident-set growth of a fresh process while it builds the catalogue.

``--loader-scale N`` writes an ``items_shuffle``/``items_ins_v2`` pair of N products (the 1,000 real
products repeated under fresh ASINs) to a temporary folder and, each in a fresh process, loads it with
``load_webshop`` and with a bare ``json.load`` of the items file: the peak resident-set growth beside the
file's size (the goal: the loader does not need several times the file).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data" / "webshop"  # the default of --data
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_size(num_products: int, seed: int = 0) -> dict:
    """One catalogue size, measured in the current (fresh) process."""
    from webshop_server import Catalog, Engine
    from webshop_server.search import BM25Index
    from webshop_server.synthetic import generate_catalog

    base = _rss_mb()
    start = time.perf_counter()
    catalog = generate_catalog(num_products, seed)
    startup = time.perf_counter() - start
    rss = _rss_mb() - base
    # The catalogue indexes its products from their parts; this is what indexing their text would
    # cost (the path of the original-format loader), for comparison.
    t0 = time.perf_counter()
    BM25Index(p.search_text() for p in catalog.products)
    text_index_s = time.perf_counter() - t0
    assert isinstance(catalog, Catalog)

    rng = random.Random(seed)
    queries = []
    for i in rng.sample(range(len(catalog.goals)), min(300, len(catalog.goals))):
        goal = catalog.goals[i]
        queries += [
            goal["query"],
            f"{goal['query']} {' '.join(goal['attributes'])}",
            catalog.product(goal["asin"]).title.lower(),
        ]
    latencies = []
    for query in queries:
        t0 = time.perf_counter()
        catalog.index._search(query)  # uncached path
        latencies.append((time.perf_counter() - t0) * 1e3)

    engine = Engine(catalog)
    steps, t0 = 0, time.perf_counter()
    for i in range(0, len(catalog.goals), max(1, len(catalog.goals) // 300)):
        record = engine.new_record(i)
        for action in engine.oracle_actions(record):
            record = engine.transition(record, action).record
            engine.render_text(record)
            engine.score(record)
            steps += 1
    step_rate = steps / (time.perf_counter() - t0)
    return {
        "products": num_products,
        "goals": len(catalog.goals),
        "startup_s": round(startup, 3),
        "text_index_s": round(text_index_s, 3),
        "search_p50_ms": round(statistics.median(latencies), 3),
        "search_p99_ms": round(_percentile(latencies, 0.99), 3),
        "rss_mb": round(rss, 1),
        "index_mb": round(catalog.index.memory_bytes() / 2**20, 1),
        "steps_per_s": round(step_rate),
    }


def write_scaled_files(folder: Path, num_products: int, data_dir: Path) -> tuple[Path, Path]:
    """The real 1,000 products repeated under fresh ASINs up to ``num_products``, in the original format."""
    items = json.loads((data_dir / "items_shuffle_1000.json").read_text(encoding="utf-8"))
    mined = json.loads((data_dir / "items_ins_v2_1000.json").read_text(encoding="utf-8"))
    items_path, mined_path = folder / "items_shuffle.json", folder / "items_ins_v2.json"
    scaled_mined = {}
    with open(items_path, "w", encoding="utf-8") as out:
        out.write("[")
        for number in range(num_products):
            raw = items[number % len(items)]
            asin = f"S{number:09d}"
            out.write(("," if number else "") + json.dumps({**raw, "asin": asin}))
            if raw["asin"] in mined:
                scaled_mined[asin] = mined[raw["asin"]]
        out.write("]")
    mined_path.write_text(json.dumps(scaled_mined), encoding="utf-8")
    return items_path, mined_path


def measure_loader(kind: str, items_path: Path, mined_path: Path) -> dict:
    """Peak resident-set growth and time of one way of reading the files, in this (fresh) process."""
    import resource

    from webshop_server.original_files import load_webshop

    base = _rss_mb()
    start = time.perf_counter()
    if kind == "load_webshop":
        count = len(load_webshop(items_path, mined_path))
    else:
        with open(items_path, encoding="utf-8") as f:
            count = len(json.load(f))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"reader": kind, "products": count, "seconds": round(seconds, 2), "peak_mb": round(peak - base, 1)}


def run_loader_scale(num_products: int, data_dir: Path) -> list[dict]:
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        items_path, mined_path = write_scaled_files(Path(folder), num_products, data_dir)
        size_mb = items_path.stat().st_size / 2**20
        for kind in ("load_webshop", "json.load"):
            command = [sys.executable, __file__, "--one-loader", kind, str(items_path), str(mined_path)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["items_file_mb"] = round(size_mb, 1)
            row["peak_over_file"] = round(row["peak_mb"] / size_mb, 2)
            rows.append(row)
    return rows


def run_sizes(sizes: list[int], seed: int) -> list[dict]:
    rows = []
    for size in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one-size", str(size), "--seed", str(seed)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def print_table(rows: list[dict], title: str | None = None) -> None:
    """A Markdown table (columns: the union of the rows' keys, in first-seen order)."""
    if title:
        print(f"\n### {title}\n")
    columns = list(dict.fromkeys(c for row in rows for c in row))
    cells = [[str(row.get(c, "")).replace("|", "\\|") for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")


def _all_token_nouns(title: str) -> list[str]:
    """The crudest alternative extractor: every alphabetic token of two letters or more."""
    import re

    return re.findall(r"[a-z]{2,}", title.lower())


def reward_agreement(pairs: int, seed: int, data_dir: Path = DATA_DIR) -> list[dict]:
    """How the spaCy-free type term behaves on the real 1k catalogue (see the reward module docstring)."""
    from dataclasses import replace

    from webshop_server import Engine
    from webshop_server.engine import ITEM
    from webshop_server.original_files import load_webshop

    files = data_dir / "items_shuffle_1000.json", data_dir / "items_ins_v2_1000.json"
    catalog = load_webshop(*files, seed=seed)
    engine = Engine(catalog)
    goals = catalog.goals
    oracle_one = own_type_one = 0
    for i in range(len(goals)):
        record = engine.new_record(i)
        for action in engine.oracle_actions(record):
            record = engine.transition(record, action).record
        oracle_one += record.reward == 1.0
        own_type_one += engine.reward(replace(record, page=ITEM, done=False)).type.r_type == 1.0
    rows = [
        {
            "measure": "oracle buys goal product with goal options: reward == 1.0",
            "value": f"{oracle_one}/{len(goals)} ({oracle_one / len(goals):.1%})",
        },
        {
            "measure": "  ... r_type == 1.0 on the goal product (title matches itself)",
            "value": f"{own_type_one}/{len(goals)} ({own_type_one / len(goals):.1%})",
        },
    ]
    rng = random.Random(seed)
    random_pairs = [
        (goals[rng.randrange(len(goals))], catalog.products[rng.randrange(len(catalog))])
        for _ in range(pairs)
    ]
    result_pairs = []
    for i in rng.sample(range(len(goals)), min(pairs // 10, len(goals))):
        goal = goals[i]
        result_pairs += [(goal, catalog.product(a)) for a in catalog.search(goal["query"])[:10]]
    for label, sample in (
        ("random (goal, product) pairs", random_pairs),
        ("top-10 search results for the goal query", result_pairs),
    ):
        rows += _type_term_rows(label, sample)
    return rows


def _type_term_rows(label: str, sample: list) -> list[dict]:
    from webshop_server.reward import type_reward

    n = len(sample)
    levels: dict[float, int] = {}
    differs_qc = differs_alt = title_lifts = qc_total = qc_kept = 0
    for goal, product in sample:
        ours = type_reward(product, goal)
        alt = type_reward(product, goal, nouns=_all_token_nouns)
        qc = ours.query_match or ours.category_match
        levels[ours.r_type] = levels.get(ours.r_type, 0) + 1
        differs_qc += ours.r_type != (1.0 if qc else 0.5)
        differs_alt += ours.r_type != alt.r_type
        title_lifts += not qc and ours.r_type == 1.0
        qc_total += qc
        qc_kept += qc and ours.r_type == 1.0
    return [
        {
            "measure": f"{label}: r_type distribution (n={n})",
            "value": ", ".join(f"{k}: {v / n:.1%}" for k, v in sorted(levels.items())),
        },
        {
            "measure": "  r_type differs from query/category match alone (1.0 / 0.5)",
            "value": f"{differs_qc / n:.1%}",
        },
        {
            "measure": "  query/category match and r_type stays 1.0 (title nouns overlap)",
            "value": f"{qc_kept}/{qc_total} ({qc_kept / max(qc_total, 1):.1%})",
        },
        {"measure": "  title nouns alone lift r_type to 1.0", "value": f"{title_lifts / n:.1%}"},
        {"measure": "  r_type differs: our nouns vs all tokens as nouns", "value": f"{differs_alt / n:.1%}"},
    ]


def run_http_sections(args: argparse.Namespace) -> dict:
    """The ``--http``, ``--transports`` and ``--original`` sections; prints each table as it completes."""
    import bench_webshop_http as web

    sections: dict = {}
    ours: dict = {}
    if args.http:
        rows = web.http_throughput(
            args.products, args.seed, tuple(args.clients), args.max_requests, args.max_seconds
        )
        sections["http"] = rows
        print_table(
            rows,
            f"HTTP API on 127.0.0.1 (waitress threads=8, server in a subprocess, "
            f"<= {args.max_requests} requests or {args.max_seconds:g} s per setting)",
        )
        best = max(rows, key=lambda r: r["requests_per_s"])
        ours["http"] = (
            f"{best['requests_per_s']} requests/s with {best['clients']} client(s), p50 "
            f"{best['p50_ms']} ms ({args.products} products, this machine)"
        )
    if args.transports:
        rows = web.transport_steps(args.products, args.seed, args.max_seconds)
        sections["transports"] = rows
        print_table(rows, "tsr/WebShop-v0 step() per transport (same episode scripts; resets not timed)")
    if args.original:
        rows = web.original_stack(ours)
        if args.check_registry:
            rows.append(
                {
                    "item": "pyserini on the registry",
                    "original (published)": "",
                    "ours": web.check_registry(),
                    "source": "checked on this machine",
                }
            )
        sections["original_stack"] = rows
        print_table(rows, "Original stack (published costs) beside ours")
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--reward-agreement", action="store_true", help="type-term agreement on real data")
    parser.add_argument("--pairs", type=int, default=20_000, help="random pairs for --reward-agreement")
    parser.add_argument("--http", action="store_true", help="loopback HTTP requests/s, concurrent clients")
    parser.add_argument("--transports", action="store_true", help="env steps/s per transport")
    parser.add_argument("--original", action="store_true", help="original stack's published costs")
    parser.add_argument(
        "--check-registry",
        action="store_true",
        help="with --original: ask pip whether pyserini is on the registry",
    )
    parser.add_argument("--products", type=int, default=10_000, help="catalogue size for --http/--transports")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--max-requests", type=int, default=2000, help="per --http setting")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="per --http setting / transport")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder of the original WebShop files")
    parser.add_argument("--loader-scale", type=int, metavar="N", help="original-format loader at N products")
    parser.add_argument("--one-loader", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_size:
        print(json.dumps(measure_size(args.one_size, args.seed)))
        return
    if args.one_loader:
        kind, items_path, mined_path = args.one_loader
        print(json.dumps(measure_loader(kind, Path(items_path), Path(mined_path))))
        return
    if args.loader_scale:
        rows = run_loader_scale(args.loader_scale, args.data)
        print_table(rows)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
        return
    if args.http or args.transports or args.original:
        sections = run_http_sections(args)
        if args.json:
            args.json.write_text(json.dumps(sections, indent=2) + "\n")
        return
    if args.reward_agreement:
        rows = reward_agreement(args.pairs, args.seed, args.data)
    else:
        rows = run_sizes(args.sizes, args.seed)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
