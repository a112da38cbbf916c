"""The ``tsr`` console script.

Each subcommand lives with the code it drives and registers itself through an ``add_subcommand(subparsers)``
function; this module only collects them.  Modules of optional parts (training, the browser) are listed
here but import their heavy dependencies only when their subcommand runs, so ``tsr play`` starts fast and
works without torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "tsr_envs.play",
    "tsr_envs.evaluation.cli",
    "webshop_server.cli",
    "tsr_train.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsr", description="Trajectory-Search Rollouts suite.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).add_subcommand(subparsers)
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
