"""The ``serve-webshop`` subcommand: serve the shop with waitress (a production WSGI server).

It binds to 127.0.0.1 unless ``--host`` says otherwise: the site has no authentication, so exposing it on
other interfaces must be a deliberate choice.
"""

from __future__ import annotations

import argparse

from webshop_server.original_files import GOAL_KINDS


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register ``serve-webshop`` on an argparse subparsers object (``func`` runs it)."""
    parser = subparsers.add_parser("serve-webshop", help="serve the WebShop site (HTML + JSON API)",
                                   description=__doc__)
    parser.add_argument("--catalog", default="synthetic",
                        help="'synthetic' (built-in, default) or a folder / items_shuffle*.json path")
    parser.add_argument("--num-products", type=int, default=None,
                        help="catalogue size (synthetic default 1000; original files: truncate)")
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
    from webshop_server.sources import load_catalog

    catalog = load_catalog(args.catalog, num_products=args.num_products, goals=args.goals, seed=args.seed)
    app = create_app(catalog, seed=args.seed, show_attributes=args.show_attributes)
    print(f"Serving {catalog!r} on http://{args.host}:{args.port}/", flush=True)
    waitress.serve(app, host=args.host, port=args.port, threads=args.threads)
    return 0
