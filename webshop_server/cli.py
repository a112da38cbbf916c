"""The ``serve-webshop`` subcommand: serve the shop with waitress (a production WSGI server).

It binds to 127.0.0.1 unless ``--host`` says otherwise: the site has no authentication, so exposing it on
other interfaces must be a deliberate choice (and prints a warning).

Sessions are bounded: at most ``--max-sessions`` live at once, and one idle for ``--session-ttl`` seconds
expires.  At the cap, creating a session is refused with 503 and a ``Retry-After`` header (the seconds until
the least recently used session expires); live sessions are never dropped to make room.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from webshop_server.original_files import GOAL_KINDS
from webshop_server.sessions import DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_TTL

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register ``serve-webshop`` on an argparse subparsers object (``func`` runs it)."""
    parser = subparsers.add_parser(
        "serve-webshop", help="serve the WebShop site (HTML + JSON API)", description=__doc__
    )
    parser.add_argument(
        "--catalog",
        default="synthetic",
        help="'synthetic' (built-in, default) or a folder / items_shuffle*.json path",
    )
    parser.add_argument(
        "--num-products",
        type=int,
        default=None,
        help="catalogue size (synthetic default 1000; original files: truncate)",
    )
    parser.add_argument("--goals", choices=GOAL_KINDS, default="synthetic")
    parser.add_argument("--seed", type=int, default=0, help="catalogue, prices and goal seed")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    parser.add_argument("--show-attributes", action="store_true", help="add the Attributes product page")
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_MAX_SESSIONS,
        help=f"live sessions at most; more get 503 + Retry-After (default {DEFAULT_MAX_SESSIONS})",
    )
    parser.add_argument(
        "--session-ttl",
        type=float,
        default=DEFAULT_SESSION_TTL,
        help=f"seconds an idle session lives (default {DEFAULT_SESSION_TTL:g})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the catalogue, build the app and serve it until interrupted."""
    import waitress

    from webshop_server.app import create_app
    from webshop_server.sources import CatalogError, load_catalog

    def fail(message: str) -> int:
        print(f"tsr serve-webshop: error: {message}", file=sys.stderr)
        return 2

    checks = (
        (0 <= args.port <= 65535, f"--port must be in 0..65535, got {args.port}"),
        (args.threads >= 1, f"--threads must be at least 1, got {args.threads}"),
        (args.max_sessions >= 1, f"--max-sessions must be at least 1, got {args.max_sessions}"),
        (0 < args.session_ttl < float("inf"), f"--session-ttl must be a positive number: {args.session_ttl}"),
    )
    for ok, message in checks:
        if not ok:
            return fail(message)
    try:
        catalog = load_catalog(args.catalog, num_products=args.num_products, goals=args.goals, seed=args.seed)
    except CatalogError as error:
        return fail(str(error))
    app = create_app(
        catalog,
        seed=args.seed,
        show_attributes=args.show_attributes,
        max_sessions=args.max_sessions,
        session_ttl=args.session_ttl,
    )
    try:
        server = waitress.create_server(app, host=args.host, port=args.port, threads=args.threads)
    except (OSError, ValueError) as error:  # port in use, permission, unknown host
        return fail(f"cannot listen on {args.host}:{args.port}: {error}")
    if args.host not in LOOPBACK_HOSTS:
        print(
            f"tsr serve-webshop: warning: listening on {args.host}, beyond this machine; the site and its "
            "JSON API have no authentication, so anyone who can reach the port can create, read and "
            "change sessions.",
            file=sys.stderr,
            flush=True,
        )
    print(f"Serving {catalog!r} on http://{args.host}:{server.effective_port}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0
