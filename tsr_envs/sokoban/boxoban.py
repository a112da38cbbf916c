"""Loading DeepMind Boxoban level files.

A file holds levels separated by header lines ``; N``; each level is rows of ``#`` wall, ``@`` player,
``$`` box, ``.`` goal and space floor (``*`` box on goal and ``+`` player on goal are accepted too).
Files are parsed once per process and shared: their boards carry the solver's cache, so every env that
plays the same file reuses the solutions found so far.
"""

from __future__ import annotations

import functools
import os

from tsr_envs.sokoban.level import Level, indexed_levels


def load_boxoban(path: str | os.PathLike[str]) -> tuple[Level, ...]:
    """The levels of a Boxoban file, in file order.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file and line for a
    malformed one.
    """
    return _load(os.path.realpath(os.fspath(path)))


@functools.lru_cache(maxsize=32)
def _load(path: str) -> tuple[Level, ...]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Boxoban level file not found: {path}")
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not a text Boxoban level file ({error.reason})") from None
    return parse_boxoban(lines, source=path)


def parse_boxoban(lines: list[str], source: str = "<text>") -> tuple[Level, ...]:
    """Parse the lines of a Boxoban file (see the module docstring)."""
    blocks: list[tuple[int, list[str]]] = []  # (line number of the first row, rows)
    for number, line in enumerate(lines, start=1):
        if line.startswith(";"):
            blocks.append((number + 1, []))
        elif line.strip():
            if not blocks:
                raise ValueError(f"{source}, line {number}: expected a '; N' header before the first level")
            blocks[-1][1].append(line)
    if not blocks:
        raise ValueError(f"{source} holds no levels (a Boxoban file has '; N' header lines between levels)")
    labelled = ((f"{source}, level starting at line {first_line}", rows) for first_line, rows in blocks)
    return indexed_levels(labelled)
