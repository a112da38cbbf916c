"""The one exception type for bad user input to the evaluation harness.

Why a dedicated type: the ``tsr`` CLI turns exactly these errors into a one-line message and exit code 2,
while anything else (a bug) keeps its traceback.
"""

from __future__ import annotations


class EvalInputError(ValueError):
    """An unknown env id, a malformed agent spec or seed list, a missing module, a mismatched run folder."""
