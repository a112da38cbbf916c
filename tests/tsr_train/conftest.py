"""Fixtures of the ``tsr_train`` tests: the tiny model, built once per session, and a scripted policy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tsr_train.policy import Sample
from tsr_train.tiny_model import FORMAT_RECIPE, build_tiny_model

#: A quick build for the tests (seconds, not minutes): the format-only warm-up on a small corpus.  The
#: tests check behaviour, not skill, so they need well-formed replies, not a good player.
FAST_RECIPE = FORMAT_RECIPE

#: A script maps (decoded context, n) to the n replies a fake policy returns for that context.
Script = Callable[[str, int], list[str]]


class ScriptedPolicy:
    """A fake ``Policy`` whose replies are a function of the context: outcomes known in advance.

    It records the decoded prompts of every ``sample`` call in ``calls``, so tests can check what the
    strategy asked for (e.g. which beams survived).
    """

    max_new_tokens = 16

    def __init__(self, tokenizer, script: Script, *, max_context_length: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.script = script
        self.max_context_length = max_context_length
        self.calls: list[list[str]] = []

    def sample(self, prompts: list[list[int]], n: int) -> list[list[Sample]]:
        contexts = [self.tokenizer.decode(prompt) for prompt in prompts]
        self.calls.append(contexts)
        results = []
        for context in contexts:
            samples = []
            for reply in self.script(context, n):
                ids = [*self.tokenizer.encode(reply, add_special_tokens=False), self.tokenizer.eos_token_id]
                samples.append(
                    Sample(self.tokenizer.decode(ids, skip_special_tokens=True), ids, [-1.0] * len(ids))
                )
            results.append(samples)
        return results


def cycle(*replies: str) -> Script:
    """A script returning the first ``n`` of ``replies`` (repeated if needed), whatever the context."""
    return lambda context, n: [replies[i % len(replies)] for i in range(n)]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), **FAST_RECIPE)


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


@pytest.fixture
def scripted(tokenizer) -> Callable[..., ScriptedPolicy]:
    return lambda script, **kwargs: ScriptedPolicy(tokenizer, script, **kwargs)
