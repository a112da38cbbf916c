"""The results folder: ``episodes.jsonl`` (one finished episode per line) and ``run.json`` (settings).

Why append-only JSONL: a run can be killed at any moment and loses at most the episodes in flight.  Only
the main process writes, one whole line per record, flushed after every batch; a line cut short by a kill
is removed when the folder is opened again, so a rerun appends cleanly and skips every episode on file.

``run.json`` remembers the settings that change results (turn limit, env kwargs, each agent's sampling
settings): resuming into a folder with different settings is refused instead of silently mixing runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tsr_envs.evaluation.errors import EvalInputError

EPISODES_FILE = "episodes.jsonl"
SETTINGS_FILE = "run.json"


class ResultsFolder:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.episodes_path = self.path / EPISODES_FILE
        self.settings_path = self.path / SETTINGS_FILE

    def exists(self) -> bool:
        return self.episodes_path.is_file()

    def read_lines(self) -> list[str]:
        """Every complete record line; a partial last line (a killed write) is cut off the file."""
        if not self.episodes_path.is_file():
            return []
        data = self.episodes_path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(self.episodes_path, "r+b") as handle:
                handle.truncate(end)
        return [line for line in data[:end].decode("utf-8").split("\n") if line.strip()]

    def read_records(self) -> list[dict[str, Any]]:
        records = []
        for number, line in enumerate(self.read_lines(), start=1):
            try:
                records.append(json.loads(line))
            except ValueError:
                raise EvalInputError(f"{self.episodes_path}: line {number} is not a JSON record") from None
        return records

    def append(self, lines: list[str]) -> None:
        if lines:
            with open(self.episodes_path, "a", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")

    def merge_settings(self, settings: dict[str, Any]) -> None:
        """Record this run's settings; refuse if they contradict the folder's earlier runs."""
        self.path.mkdir(parents=True, exist_ok=True)
        settings = json.loads(json.dumps(settings))
        old = json.loads(self.settings_path.read_text()) if self.settings_path.is_file() else {}
        merged = dict(old)
        for key, value in settings.items():
            if key == "agents":
                agents = dict(old.get("agents", {}))
                for label, agent_settings in value.items():
                    if label in agents and agents[label] != agent_settings:
                        raise EvalInputError(
                            self._mismatch(f"agent {label!r}", agents[label], agent_settings)
                        )
                    agents[label] = agent_settings
                merged["agents"] = agents
            elif key in old and old[key] != value and self.exists():
                raise EvalInputError(self._mismatch(key, old[key], value))
            else:
                merged[key] = value
        self.settings_path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")

    def _mismatch(self, what: str, old: Any, new: Any) -> str:
        return (
            f"{self.path} holds episodes run with {what} = {json.dumps(old)}, but this run asks for "
            f"{json.dumps(new)}; use another --out folder"
        )
