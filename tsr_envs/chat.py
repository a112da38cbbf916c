"""How an episode is shown to a chat model: one format shared by evaluation agents and training.

The system message carries the env's instructions; each user message carries the feedback of the last
turn (if any) and the current observation; each assistant message is the model's raw reply.  Keeping this
in one place means a model trained by ``tsr train`` is evaluated by ``tsr eval`` on exactly the prompts it
saw.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, str]


def observation_message(observation: str, info: dict[str, Any], turns_left: int | None = None) -> Message:
    """The user message for one turn: last turn's feedback, then the observation."""
    lines = []
    feedback = info.get("feedback", "")
    if feedback and info.get("turn", 0) > 0:
        lines.append(f"Feedback: {feedback}")
    lines.append(f"Observation:\n{observation}")
    if turns_left is not None:
        lines.append(f"Turns left: {turns_left}.")
    return {"role": "user", "content": "\n".join(lines)}


def initial_messages(observation: str, info: dict[str, Any], turns_left: int | None = None) -> list[Message]:
    """System instructions plus the first observation, from ``reset``'s return values."""
    return [
        {"role": "system", "content": info["instructions"]},
        observation_message(observation, info, turns_left),
    ]


def reply_message(reply: str) -> Message:
    return {"role": "assistant", "content": reply}
