"""The ``tsr`` console script.

Each subcommand lives with the code it drives and registers itself through an ``add_subcommand(subparsers)``
function, published as an entry point of the group ``tsr.subcommands`` (``pyproject.toml``).  This module
only collects them, so it names no other package: ``tsr_envs`` does not depend on ``tsr_train``, and a
third-party package adds a subcommand by declaring an entry point of its own.  Subcommand modules import
their heavy dependencies only when their subcommand runs, so ``tsr play`` starts fast and works without
torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "tsr.subcommands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsr", description="Trajectory-Search Rollouts suite.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)
    if not found:
        parser.error(f"no subcommands installed (entry points {ENTRY_POINT_GROUP!r}): reinstall the package")
    for point in found:
        point.load()(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``tsr eval ... | head``): stop quietly, as Unix tools do.
        sys.stdout = None  # type: ignore[assignment]
        return 0


if __name__ == "__main__":
    sys.exit(main())
