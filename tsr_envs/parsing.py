"""The one reply parser shared by every environment.

A model's reply is free text.  We accept the RAGEN-style format
``<think>...</think><answer>A1 || A2</answer>`` and also bare action text (``Up || Left``), tolerant of
tag case and whitespace.  The parser never raises and runs in time linear in the reply's length: it only
uses ``str.lower``/``str.find``/``str.split`` (no backtracking regular expressions), so nothing a model
writes can make a step slow.

Decisions, written down because the format is ambiguous:

* Everything up to the *last* ``</think>`` is reasoning and ignored.  A ``<think>`` that is never
  closed (none after it) means the model ran out of tokens mid-thought: that is a format error.
* The actions are the contents of the *first* complete ``<answer>...</answer>`` block after the
  reasoning.  If several ``<answer>`` openings precede its closing tag (nested or repeated tags), the
  text after the innermost opening is used.  An ``<answer>`` without a closing tag is a format error;
  a stray ``</answer>`` without an opening one takes the text before it as the answer.
* Without answer tags the whole remaining text is read as bare actions.
* Actions are separated by ``||``; each is stripped and inner whitespace is collapsed.  Empty pieces
  are dropped.  At most ``max_actions`` are kept; the rest are reported as dropped, not executed.
"""

from __future__ import annotations

from typing import NamedTuple

ACTION_SEPARATOR = "||"
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
_ECHO_LIMIT = 60
# ASCII-only lowering keeps indices aligned with the original text (``"İ".lower()`` has two characters).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class ParsedReply(NamedTuple):
    """What the parser read from one reply.

    ``error`` is ``None`` when the reply was well formed; otherwise it is a sentence that says what was
    wrong, suitable for the environment's feedback.  ``dropped`` counts actions beyond ``max_actions``.
    """

    actions: tuple[str, ...]
    error: str | None = None
    dropped: int = 0


def echo(text: str, limit: int = _ECHO_LIMIT) -> str:
    """A short, single-line quotation of model text for feedback messages."""
    flat = " ".join(text[: limit * 4].split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def _strip_reasoning(text: str, lowered: str) -> tuple[str, str, str | None]:
    close = lowered.rfind(_THINK_CLOSE)
    start = close + len(_THINK_CLOSE) if close >= 0 else 0
    if lowered.find(_THINK_OPEN, start) >= 0:
        return "", "", "The <think> block is never closed with </think>, so no answer could be read."
    return text[start:], lowered[start:], None


def _answer_body(text: str, lowered: str) -> tuple[str, str | None]:
    close = lowered.find(_ANSWER_CLOSE)
    open_ = lowered.rfind(_ANSWER_OPEN, 0, close) if close >= 0 else lowered.find(_ANSWER_OPEN)
    if open_ >= 0 and close >= 0:
        return text[open_ + len(_ANSWER_OPEN) : close], None
    if open_ >= 0:
        return "", "The <answer> tag is never closed with </answer>."
    if close >= 0:
        return text[:close], None
    return text, None


#: The longest reply the parser reads, in characters (the action space's maximum length too).
REPLY_MAX_LENGTH = 8_192


def parse_reply(reply: str, max_actions: int) -> ParsedReply:
    """Extract the action strings from a raw model reply.  Never raises for any ``str`` input.

    A reply longer than ``REPLY_MAX_LENGTH`` characters is refused unread (an invalid turn), so a runaway
    generation costs constant time, whatever it contains.
    """
    if not isinstance(reply, str):
        return ParsedReply((), f"The reply must be text, got {type(reply).__name__}.")
    if len(reply) > REPLY_MAX_LENGTH:
        return ParsedReply(
            (), f"The reply is {len(reply)} characters long; at most {REPLY_MAX_LENGTH} are read."
        )
    text, lowered, error = _strip_reasoning(reply, reply.translate(_ASCII_LOWER))
    if error is None:
        text, error = _answer_body(text, lowered)
    if error is not None:
        return ParsedReply((), error)
    pieces = [" ".join(piece.split()) for piece in text.split(ACTION_SEPARATOR)]
    actions = [piece for piece in pieces if piece]
    if not actions:
        return ParsedReply((), "The reply contains no action.")
    kept = tuple(actions[:max_actions])
    return ParsedReply(kept, None, len(actions) - len(kept))
