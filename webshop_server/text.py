"""Text normalisation shared by every catalogue source.

Observations must stay inside the environment's gymnasium ``Text`` charset (``string.printable`` plus "√"),
so product text is cleaned once, when a catalogue is loaded, instead of on every render: typographic
punctuation is mapped to its ASCII look-alike, accents are stripped by NFKD decomposition, and whatever is
still outside the charset (emoji, CJK, symbols) is dropped.
"""

from __future__ import annotations

import re
import string
import unicodedata

#: Characters an observation may contain (the gymnasium Text space of the environments).
CHARSET: frozenset[str] = frozenset(string.printable + "√")

# Typographic characters that NFKD leaves alone but that have an obvious ASCII spelling.
_ASCII_LOOKALIKES = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": ",",
        "“": '"',
        "”": '"',
        "″": '"',
        "′": "'",
        "‐": "-",
        "‑": "-",
        "‒": "-",
        "–": "-",
        "—": "-",
        "―": "-",
        "−": "-",
        "•": "*",
        "·": "*",
        "…": "...",
        "×": "x",
        "⁄": "/",
        "›": ">",
        "‹": "<",
        "→": "->",
        "\xa0": " ",
        "°": " deg ",
        "±": "+/-",
        "≤": "<=",
        "≥": ">=",
        "™": "",
        "®": "",
        "©": "",
    }
)
_SPACES = re.compile(r"\s+")


def clean_text(value: object) -> str:
    """Return ``value`` as a single-line string that uses only :data:`CHARSET` characters.

    Whitespace runs (newlines included) collapse to one space, because product text is shown inline.
    """
    text = unicodedata.normalize("NFKD", str(value).translate(_ASCII_LOOKALIKES))
    kept = "".join(ch for ch in text if ch in CHARSET)
    return _SPACES.sub(" ", kept).strip()


def in_charset(text: str) -> bool:
    """True when every character of ``text`` belongs to :data:`CHARSET`."""
    return all(ch in CHARSET for ch in text)
