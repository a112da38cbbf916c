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


class ModelLoadError(FileNotFoundError):
    """A model path or id that does not hold a loadable causal LM and tokenizer (one clear sentence)."""


def load_causal_lm(
    path: str | Path, *, device: str | None = None, dtype: str | torch.dtype | None = None
) -> tuple[Any, PreTrainedTokenizerBase]:
    """The one loader of a Hugging Face causal LM and its tokenizer, for training, rollouts and evaluation.

    bf16 on a GPU that supports it, fp32 otherwise (unless ``dtype`` says); the model moves to ``device``
    if one is given (trainers place it themselves); padding on the left (every row's next token at the
    same column) and a pad token (the eos token when the tokenizer has none).  The model is returned in
    train mode, as ``from_pretrained`` gives it; callers that only generate put it in eval mode.
    """
    cuda = torch.cuda.is_available()
    if dtype is None:
        dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    except (OSError, ValueError) as error:  # missing files, bad hub id, no network
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise ModelLoadError(
            f"cannot load a causal LM from {str(path)!r}: {reason} (for the embedded tiny model use "
            "'embedded', or build one with tsr_train.tiny_model.build_tiny_model(dir))"
        ) from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return (model.to(device) if device is not None else model), tokenizer


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
        """Load with :func:`load_causal_lm`; ``kwargs`` go to ``__init__``."""
        model, tokenizer = load_causal_lm(path, device=device, dtype=dtype)
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

    def _prefill_shared_prefixes(self, rows: list[list[int]]) -> tuple[Any, list[list[int]], list[list[int]]]:
        """Prefill each run of rows that share a prefix once; return the cache, prefixes and suffixes.

        Why: rollout contexts are long (the whole episode so far) and replies short, so prefill dominates
        a turn's cost.  The rows of one call share long prefixes: the ``n`` samples of one prompt share
        all of it, and a lookahead's continuations of one branch share the branch's context.  Each run
        of consecutive rows with a long common prefix (see the rule below) is prefilled once and its KV
        cache replicated to the run's rows; only the suffixes (at least one token each, so that
        ``generate`` has a token to start from) are encoded per row.
        """
        runs: list[list[int]] = []  # [first row, end row, shared length]
        for index, row in enumerate(rows):
            if runs:
                first, end, shared = runs[-1]
                common = _common_prefix_length(rows[first][:shared], row)
                # Join if the row shares at least half of itself with the run, and, once the run has
                # several rows, without cutting the run's shared prefix by more than a tenth (the n
                # copies of one prompt must not lose their whole-prompt sharing to the next prompt).
                if common >= max(len(row) // 2, 1) and (end - first == 1 or common >= 0.9 * shared):
                    runs[-1] = [first, index + 1, common]
                    continue
            runs.append([index, index + 1, len(row)])
        prefixes, suffixes, owner = [], [], []
        for run_index, (first, end, shared) in enumerate(runs):
            shared = min(shared, *(len(rows[i]) - 1 for i in range(first, end)))
            prefixes.append(rows[first][:shared])
            for i in range(first, end):
                suffixes.append(rows[i][shared:])
                owner.append(run_index)
        if min(len(prefix) for prefix in prefixes) == 0:  # a one-token prompt: nothing to share
            return None, [[] for _ in rows], [list(row) for row in rows]
        input_ids, attention_mask = self._left_padded(prefixes)
        cache = DynamicCache(config=self.model.config)
        self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=(attention_mask.cumsum(-1) - 1).clamp(min=0),
            cache=cache,
            use_cache=True,
        )
        cache.batch_select_indices(torch.tensor(owner, device=self.device))
        return cache, [prefixes[run] for run in owner], suffixes

    def _left_padded(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(sequence) for sequence in sequences)
        ids = [[self.pad_id] * (width - len(seq)) + list(seq) for seq in sequences]
        mask = [[0] * (width - len(seq)) + [1] * len(seq) for seq in sequences]
        return torch.tensor(ids, device=self.device), torch.tensor(mask, device=self.device)

    @torch.inference_mode()
    def sample(self, prompts: list[list[int]], n: int) -> list[list[Sample]]:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if not prompts:
            return []
        if any(not prompt for prompt in prompts):
            raise ValueError("every prompt needs at least one token")
        rows = [list(prompt) for prompt in prompts for _ in range(n)]
        cache, prefixes, suffixes = self._prefill_shared_prefixes(rows)
        # Each row is [padding][its shared prefix][padding][its suffix]: the cache covers the first two
        # parts (as wide as the longest prefix), the padding before the suffix right-aligns every row so
        # that the next token of each is generated at the same column.  Positions follow the mask.
        input_ids, attention_mask = self._left_padded(suffixes)
        if cache is not None:
            prefix_ids, prefix_mask = self._left_padded(prefixes)
            input_ids = torch.cat([prefix_ids, input_ids], dim=1)
            attention_mask = torch.cat([prefix_mask, attention_mask], dim=1)
        width = input_ids.shape[1]
        with self._own_rng():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                cache=cache,
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


def _common_prefix_length(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


class VLLMPolicy:
    """A policy that samples through TRL's vLLM engine (``GRPOTrainer.vllm_generation``), for GPU rollouts.

    Why a policy and not TRL's own generation: the search decides, turn by turn, which contexts to extend
    and how many candidates each gets, so it calls ``sample`` with contexts TRL never sees.  This class
    turns each call into one ``generation.generate`` call of ``n`` copies per context (TRL's engine
    samples one completion per row in colocate mode) and reads back the exact token ids and the sampling
    log-probabilities (temperature-scaled, as TRL configures vLLM), so trajectories stay token-exact.

    Every rank must make the same calls when the engine is shared: in server mode ``generate`` gathers
    the prompts of all ranks and hands each rank the slice at ``rank * len(prompts)``, and colocated
    tensor parallelism gathers inside each group.  A search's branch counts differ by rank (episodes end
    early, beams die), so in those modes each call first agrees with the other ranks on the largest row
    count, pads its rows to it with a filler prompt, and drops the filler's outputs; and a rank whose
    rollout is done calls :meth:`finish`, which keeps taking part (with padding only) until every rank is
    done.  Plain colocated engines (one per rank, no tensor parallelism) share nothing and skip this.

    ``generation`` is anything with TRL's ``VLLMGeneration`` interface (``generate``, ``mode``,
    ``tensor_parallel_size``, ``accelerator``, ``model``); this policy sets its ``max_completion_length``
    and ``temperature`` to the rollout's, since the trainer's own generation settings are unused when a
    ``rollout_func`` supplies the completions.  ``gather`` (default: accelerate's ``gather_object``) is
    the collective used to agree on row counts.
    """

    def __init__(
        self,
        generation: Any,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_new_tokens: int = 48,
        temperature: float = 1.0,
        max_context_length: int | None = None,
        gather: Any = None,
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if temperature <= 0:
            raise ValueError(f"vLLM sampling needs a temperature > 0, got {temperature}")
        self.generation = generation
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        generation.max_completion_length = max_new_tokens
        generation.temperature = temperature
        model_config = getattr(generation.model, "config", None)
        self.max_context_length = max_context_length or getattr(model_config, "max_position_embeddings", None)
        self.stop_ids = HFPolicy._stop_ids(generation.model, tokenizer)
        self.filler = [tokenizer.eos_token_id if tokenizer.eos_token_id is not None else min(self.stop_ids)]
        accelerator = generation.accelerator
        shared = generation.mode == "server" or getattr(generation, "tensor_parallel_size", 1) > 1
        self.lockstep = accelerator.num_processes > 1 and shared
        if gather is None:
            from accelerate.utils import gather_object

            gather = gather_object
        self._gather = gather
        #: generate calls made, rows sent and, of those, filler rows that kept the ranks in step
        self.generate_calls = 0
        self.rows_sent = 0
        self.rows_padding = 0

    def prefix_caching(self) -> bool | None:
        """Whether the colocated engine reuses KV blocks of shared prefixes (``None``: unknown, e.g. server).

        Beam and lookahead sample many continuations of one long context, so without prefix caching they
        pay the context's prefill once per row.  vLLM's V1 engine enables it by default; a server must be
        started with it (``trl vllm-serve --enable_prefix_caching true``).
        """
        engine = getattr(getattr(self.generation, "llm", None), "llm_engine", None)
        config = getattr(engine, "cache_config", None) or getattr(
            getattr(engine, "vllm_config", None), "cache_config", None
        )
        value = getattr(config, "enable_prefix_caching", None)
        return None if value is None else bool(value)

    def sample(self, prompts: list[list[int]], n: int) -> list[list[Sample]]:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if any(not prompt for prompt in prompts):
            raise ValueError("every prompt needs at least one token")
        rows = [list(prompt) for prompt in prompts for _ in range(n)]
        outputs = self._round(rows, active=True)
        flat = [self._sample(ids, logprobs) for ids, logprobs in outputs or []]
        return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]

    def finish(self) -> None:
        """Join the other ranks' remaining ``generate`` calls until every rank has finished its rollout."""
        while self._round([], active=False) is not None:
            pass

    def _round(self, rows: list[list[int]], active: bool) -> list[tuple[list[int], Any]] | None:
        """One lockstep generate call (or a plain one); ``None`` once no rank is active any more."""
        width = len(rows)
        if self.lockstep:
            counts = self._gather([(len(rows), active)])
            if not any(is_active for _, is_active in counts):
                return None
            width = max(count for count, _ in counts)
        elif not active:
            return None
        if width == 0:
            return []
        padded = rows + [rows[0] if rows else self.filler] * (width - len(rows))
        _, completion_ids, logprobs, _ = self.generation.generate(padded, None, 1)
        self.generate_calls += 1
        self.rows_sent += len(padded)
        self.rows_padding += len(padded) - len(rows)
        if logprobs is None:
            logprobs = [None] * len(completion_ids)
        return list(zip(completion_ids, logprobs, strict=True))[: len(rows)]

    def _sample(self, token_ids: list[int], logprobs: Any) -> Sample:
        ids = list(token_ids)
        for index, token in enumerate(ids):
            if token in self.stop_ids:
                ids = ids[: index + 1]
                break
        # one list per token, the sampled token's log-probability first (TRL's layout); vLLM may leave
        # a value out (None), and an engine without logprobs gives none: those count as 0.0
        steps = [None] * len(ids) if logprobs is None else list(logprobs)[: len(ids)]
        values = [_first_logprob(step) for step in steps]
        return Sample(self.tokenizer.decode(ids, skip_special_tokens=True), ids, values)


def _first_logprob(step: Any) -> float:
    value = step[0] if isinstance(step, list | tuple) else step
    return 0.0 if value is None else float(value)
