"""``tsr serve-openenv ENV_ID``: serve any registered env through openenv-core's server.

This module only parses the command line; the server code (and openenv-core, fastapi, uvicorn) is imported
when the command runs, so ``tsr --help`` stays fast and works without the ``openenv`` extra.  It binds to
127.0.0.1 unless ``--host`` says otherwise: the server has no authentication.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys

EXTRA_HINT = "install the openenv extra: pip install 'tsr-suite[openenv]'"


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register ``serve-openenv`` on an argparse subparsers object (``func`` runs it)."""
    parser = subparsers.add_parser(
        "serve-openenv",
        help="serve an environment over OpenEnv's protocol (WebSocket sessions, clone/restore)",
        description=__doc__,
    )
    parser.add_argument("env_id", help="a registered id such as tsr/Sokoban-v0")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port (0 picks a free one; default 8000)")
    parser.add_argument(
        "--max-sessions", type=int, default=8, help="concurrent WebSocket sessions, one env each (default 8)"
    )
    parser.add_argument(
        "--max-turns", type=int, default=None, help="turns per episode (default: the id's max_episode_steps)"
    )
    parser.add_argument(
        "--level-file", default=None, help="a level file for data-driven ids (tsr/Boxoban-v0)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the app (failing early on a bad id), bind the port, and serve until interrupted."""

    def fail(message: str) -> int:
        print(f"tsr serve-openenv: error: {message}", file=sys.stderr)
        return 2

    if not 0 <= args.port <= 65535:
        return fail(f"--port must be in 0..65535, got {args.port}")
    if args.max_sessions < 1:
        return fail(f"--max-sessions must be at least 1, got {args.max_sessions}")
    if args.max_turns is not None and args.max_turns < 1:
        return fail(f"--max-turns must be at least 1, got {args.max_turns}")
    try:
        import uvicorn

        from tsr_envs.integrations.openenv import build_app
    except ImportError as error:
        return fail(f"{error.name or error} is missing; {EXTRA_HINT}")
    env_kwargs = {}
    if args.max_turns is not None:
        env_kwargs["max_episode_steps"] = args.max_turns
    if args.level_file:
        env_kwargs["level_file"] = args.level_file
    try:
        app = build_app(args.env_id, env_kwargs, max_sessions=args.max_sessions)
    except ValueError as error:
        return fail(str(error))
    try:
        listener = socket.create_server((args.host, args.port))
    except (OSError, OverflowError) as error:  # port in use, permission, unknown host
        return fail(f"cannot listen on {args.host}:{args.port}: {error}")
    port = listener.getsockname()[1]
    print(
        f"Serving {args.env_id} over OpenEnv on http://{args.host}:{port} "
        f"(WebSocket sessions at ws://{args.host}:{port}/ws, at most {args.max_sessions})",
        flush=True,
    )
    # Shutdown waits at most 5 s for open sessions, so Ctrl-C or SIGTERM always stops the server.
    config = uvicorn.Config(
        app, log_level="warning", ws_max_size=16 * 1024 * 1024, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[listener])
    return 0
