"""Policies: what samples replies for the rollout strategies.

A policy takes token-id contexts (already chat-templated by the trajectory builder) and returns, for each,
``n`` sampled replies with their exact token ids and sampling log-probabilities.  All prompts of a search
step (every live branch of every env) go through one ``sample`` call, so a best-of-4 rollout costs one
batched ``generate`` per turn, not four.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    GenerationConfig,
    PreTrainedTokenizerBase,
)


@dataclass
class Sample:
    """One generated reply."""

    text: str
    #: exactly the ids generated, up to and including the stop token if one was generated
    token_ids: list[int]
    #: log-probability of each generated token under the (temperature-scaled) logits it was sampled from
    logprobs: list[float]


@runtime_checkable
class Policy(Protocol):
    """What the rollout strategies need from a model."""

    tokenizer: PreTrainedTokenizerBase
    #: the longest reply ``sample`` may return, in tokens (a strategy checks the context has room for it)
    max_new_tokens: int
    #: the model's context length in tokens, or ``None`` if unbounded
    max_context_length: int | None

    def sample(self, prompts: list[list[int]], n: int) -> list[list[Sample]]:
        """``n`` replies for each prompt, in prompt order."""
        ...


class HFPolicy:
    """A policy over any transformers causal LM, sampling with ``generate``.

    ``seed`` gives the policy its own torch random stream, so its samples do not depend on (nor disturb)
    the global one; with ``seed=None`` sampling follows ``torch.manual_seed``.  ``temperature=0`` is greedy
    decoding.  Log-probabilities are computed from the raw logits divided by the temperature, the same
    quantity TRL's GRPO recomputes for the ratio, so they are comparable (top-k/top-p truncation is not
    renormalised into them, exactly like TRL).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_new_tokens: int = 48,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int | None = None,
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.max_context_length: int | None = getattr(model.config, "max_position_embeddings", None)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.stop_ids = self._stop_ids(model, tokenizer)
        self.generation_config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=top_p if temperature > 0 else None,
            top_k=top_k if temperature > 0 else None,
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.stop_ids),
            output_logits=True,
            return_dict_in_generate=True,
        )
        self._seed = seed
        self._rng_states: tuple[torch.Tensor, ...] | None = None

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        **kwargs: Any,
    ) -> HFPolicy:
        """Load a model directory or a Hugging Face id already cached; ``kwargs`` go to ``__init__``."""
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype or "auto")
        except (OSError, ValueError) as error:
            raise FileNotFoundError(
                f"cannot load a model from {str(path)!r}: it is not a model directory nor a cached Hugging "
                "Face id. Build the embedded tiny model with `tsr_train.tiny_model.default_model_path()` "
                f"(or `build_tiny_model(dir)`). Cause: {error}"
            ) from error
        if device is not None:
            model = model.to(device)
        return cls(model.eval(), tokenizer, **kwargs)

    @staticmethod
    def _stop_ids(model: Any, tokenizer: PreTrainedTokenizerBase) -> set[int]:
        configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        ids = set(configured if isinstance(configured, list) else [configured])
        ids.add(tokenizer.eos_token_id)
        ids.discard(None)
        if not ids:
            raise ValueError("neither the tokenizer nor the model's generation config names an eos token")
        return ids

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @contextlib.contextmanager
    def _own_rng(self) -> Iterator[None]:
        """Swap in this policy's random stream (CPU and the model's accelerator) while sampling."""
        if self._seed is None:
            yield
            return
        accelerator = self.device.type != "cpu"
        device_type = self.device.type if accelerator else "cuda"
        devices = [self.device] if accelerator else []
        with torch.random.fork_rng(devices=devices, device_type=device_type):
            if self._rng_states is None:
                torch.manual_seed(self._seed)
            else:
                torch.set_rng_state(self._rng_states[0])
                if accelerator:
                    torch.get_device_module(self.device.type).set_rng_state(self._rng_states[1], self.device)
            yield
            states = [torch.get_rng_state()]
            if accelerator:
                states.append(torch.get_device_module(self.device.type).get_rng_state(self.device))
            self._rng_states = tuple(states)

    def _shared_prefix_cache(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, n: int) -> Any:
        """Prefill each prompt once and share its KV cache among its ``n`` samples.

        Why: rollout contexts are long (the whole episode so far) and replies short, so the prefill
        dominates a turn's cost; ``generate`` alone would prefill every prompt ``n`` times.  The last
        prompt token is left out of the cache so that ``generate`` has a token to start from.
        """
        if n == 1 or input_ids.shape[1] < 2:
            return None
        cache = DynamicCache(config=self.model.config)
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        self.model(
            input_ids=input_ids[:, :-1],
            attention_mask=attention_mask[:, :-1],
            position_ids=positions[:, :-1],
            past_key_values=cache,
            use_cache=True,
        )
        cache.batch_repeat_interleave(n)
        return cache

    @torch.inference_mode()
    def sample(self, prompts: list[list[int]], n: int) -> list[list[Sample]]:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if not prompts:
            return []
        if any(not prompt for prompt in prompts):
            raise ValueError("every prompt needs at least one token")
        width = max(len(prompt) for prompt in prompts)
        # Left padding, so every row's next token is generated at the same column.
        padding = [width - len(prompt) for prompt in prompts]
        input_ids = torch.tensor(
            [[self.pad_id] * pad + list(prompt) for pad, prompt in zip(padding, prompts, strict=True)],
            device=self.device,
        )
        columns = torch.arange(width, device=self.device)
        attention_mask = (columns >= torch.tensor(padding, device=self.device)[:, None]).long()
        cache = self._shared_prefix_cache(input_ids, attention_mask, n)
        with self._own_rng():
            output = self.model.generate(
                input_ids=input_ids.repeat_interleave(n, dim=0),
                attention_mask=attention_mask.repeat_interleave(n, dim=0),
                past_key_values=cache,
                generation_config=self.generation_config,
            )
        generated = output.sequences[:, width:]
        logits = torch.stack(output.logits, dim=1).float()  # (rows, steps, vocab)
        if self.temperature > 0:
            logits = logits / self.temperature
        token_logprobs = torch.log_softmax(logits, dim=-1).gather(-1, generated.unsqueeze(-1)).squeeze(-1)
        is_stop = torch.isin(generated, torch.tensor(sorted(self.stop_ids), device=generated.device))
        # Length up to and including the first stop token (everything after it is padding).
        first_stop = torch.where(is_stop.any(dim=1), is_stop.int().argmax(dim=1) + 1, generated.shape[1])
        rows = zip(generated.tolist(), token_logprobs.tolist(), first_stop.tolist(), strict=True)
        decode = self.tokenizer.decode
        flat = [
            Sample(decode(ids[:length], skip_special_tokens=True), ids[:length], logprobs[:length])
            for ids, logprobs, length in rows
        ]
        return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]
