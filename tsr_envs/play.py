"""``tsr play ENV_ID``: a person plays any registered env in the terminal, replying exactly as a model would.

Each line typed is sent to ``env.step`` unchanged, so ``<answer>Up || Left</answer>``, a bare ``up`` or a
malformed reply behave exactly as they would for a model.  ``:quit`` (or end of input) stops,
``:legal`` lists the legal actions, ``:help`` repeats the instructions.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

import gymnasium as gym

import tsr_envs  # noqa: F401  (registers the ids)
from tsr_envs.registration import spec_of

COMMANDS = {
    ":quit": "stop playing",
    ":legal": "list the legal actions",
    ":help": "show the instructions again",
}


def play(
    env_id: str, seed: int | None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, **kwargs
) -> int:
    """Run one interactive episode; returns a process exit code."""
    env = gym.make(env_id, **kwargs)
    observation, info = env.reset(seed=seed)
    write = stdout.write
    write(
        f"{info['instructions']}\n\nCommands: " + ", ".join(f"{k} ({v})" for k, v in COMMANDS.items()) + "\n"
    )
    total, turn = 0.0, 0
    while True:
        write(f"\n{observation}\nscore {info['score']:.2f} | return {total:.2f}\nyour reply> ")
        stdout.flush()
        line = stdin.readline()
        if not line or line.strip() == ":quit":
            write("\nBye.\n")
            return 0
        if line.strip() == ":legal":
            write("Legal actions: " + ", ".join(env.unwrapped.legal_actions()) + "\n")
            continue
        if line.strip() == ":help":
            write(info.get("instructions", "") + "\n")
            continue
        observation, reward, terminated, truncated, info = env.step(line.rstrip("\n"))
        total += float(reward)
        turn += 1
        valid = "" if info["action_is_valid"] else " (invalid)"
        write(f"turn {turn}: reward {float(reward):+.2f}{valid} | {info['feedback']}\n")
        if terminated or truncated:
            outcome = "solved" if info["success"] else ("ended" if terminated else "out of turns")
            write(f"\n{observation}\nEpisode {outcome} after {turn} turns with return {total:.2f}.\n")
            return 0


def _run(args: argparse.Namespace) -> int:
    try:
        spec_of(args.env_id)
    except gym.error.UnregisteredEnv as error:
        print(f"tsr play: {error}", file=sys.stderr)
        return 2
    kwargs = {"level_file": args.level_file} if args.level_file else {}
    try:
        return play(args.env_id, args.seed, **kwargs)
    except (ValueError, OSError, TypeError, gym.error.Error) as error:  # gymnasium's: e.g. a negative seed
        print(f"tsr play: {error}", file=sys.stderr)
        return 2


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "play", help="play an environment in the terminal, replying as a model would"
    )
    parser.add_argument("env_id", help="a registered id such as tsr/Sokoban-v0")
    parser.add_argument("--seed", type=int, default=None, help="instance seed (default: random)")
    parser.add_argument(
        "--level-file", default=None, help="a level file for data-driven ids (tsr/Boxoban-v0)"
    )
    parser.set_defaults(func=_run)
