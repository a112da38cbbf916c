"""A local Hugging Face causal LM as an agent, batched across episodes.

torch and transformers are imported inside the constructor, so importing ``tsr_envs`` (or listing agents)
never pulls them in; they come with the ``[train]`` extra.  The prompt is the tokenizer's own chat template
applied to the harness's chat histories, so a model is evaluated in the format it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tsr_envs.evaluation.errors import EvalInputError


class HFAgent:
    """Greedy decoding by default (``temperature=0``); sampling with a seeded generator otherwise."""

    def __init__(
        self,
        path: str,
        *,
        temperature: float = 0.0,
        max_new_tokens: int = 256,
        batch_size: int = 16,
        seed: int = 0,
        device: str | None = None,
        name: str | None = None,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as error:
            raise EvalInputError(
                f"hf agent needs torch and transformers (pip install 'tsr-suite[train]'): {error}"
            ) from None
        self._torch = torch
        self.name = name or f"hf:{path}"
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype="auto").to(self.device).eval()
        except (OSError, ValueError) as error:
            raise EvalInputError(f"hf agent: cannot load a causal LM from {path!r}: {error}") from None
        if not getattr(self.tokenizer, "chat_template", None):
            raise EvalInputError(f"hf agent: the tokenizer in {path!r} has no chat template")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._generator = torch.Generator().manual_seed(seed)

    def act_batch(self, histories: Sequence[list[dict[str, str]]]) -> list[str | None]:
        replies: list[str | None] = []
        for start in range(0, len(histories), self.batch_size):
            replies.extend(self._generate(histories[start : start + self.batch_size]))
        return replies

    def _generate(self, histories: Sequence[list[dict[str, str]]]) -> list[str]:
        prompts = [
            self.tokenizer.apply_chat_template(list(history), tokenize=False, add_generation_prompt=True)
            for history in histories
        ]
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {key: value.to(self.device) for key, value in batch.items()}
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": self.temperature}
            if self.temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        with self._torch.no_grad():
            if self.temperature > 0:
                # generate() draws from the global RNG; seed it from our generator for reproducible samples
                self._torch.manual_seed(int(self._torch.randint(2**31, (1,), generator=self._generator)))
            output = self.model.generate(
                **batch,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
