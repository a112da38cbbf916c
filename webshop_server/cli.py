"""The ``serve-webshop`` subcommand: serve the shop with waitress (a production WSGI server).

It binds to 127.0.0.1 unless ``--host`` says otherwise: the site has no authentication, so exposing it on
other interfaces must be a deliberate choice.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from webshop_server.original_files import GOAL_KINDS


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the catalogue, build the app and serve it until interrupted."""
    import waitress

    from webshop_server.app import create_app
    from webshop_server.sources import CatalogError, load_catalog

    def fail(message: str) -> int:
        print(f"tsr serve-webshop: error: {message}", file=sys.stderr)
        return 2

    if not 0 <= args.port <= 65535:
        return fail(f"--port must be in 0..65535, got {args.port}")
    if args.threads < 1:
        return fail(f"--threads must be at least 1, got {args.threads}")
    try:
        catalog = load_catalog(args.catalog, num_products=args.num_products, goals=args.goals, seed=args.seed)
    except CatalogError as error:
        return fail(str(error))
    app = create_app(catalog, seed=args.seed, show_attributes=args.show_attributes)
    try:
        server = waitress.create_server(app, host=args.host, port=args.port, threads=args.threads)
    except (OSError, ValueError) as error:  # port in use, permission, unknown host
        return fail(f"cannot listen on {args.host}:{args.port}: {error}")
    print(f"Serving {catalog!r} on http://{args.host}:{server.effective_port}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0
