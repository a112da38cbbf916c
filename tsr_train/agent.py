"""``tsr eval --agent hf:PATH``: a Hugging Face causal LM as an evaluation agent, through the training stack.

The agent samples with the same :class:`~tsr_train.policy.HFPolicy` as the rollouts of ``tsr train`` and
builds its contexts the same way, token by token: the chat template renders the first messages once, the
ids the model generated are kept as they were (never re-tokenised from their text), and only the template's
delta after each reply is tokenised.  So a trained model is evaluated on exactly the token sequences it
was trained on, and ``hf:`` numbers agree with the held-out checks of training.

The evaluation harness finds this class through the entry point ``hf`` of the group ``tsr.agents``, so
``tsr_envs`` does not import ``tsr_train``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from tsr_train.policy import HFPolicy, ModelLoadError, load_causal_lm
from tsr_train.trajectory import ChatTokens

Message = dict[str, str]
#: contexts and generated replies remembered for the next turn (finished episodes age out)
_MEMORY = 20_000


class PolicyAgent:
    """Greedy decoding by default (``temperature=0``); sampling from a seeded stream otherwise.

    ``PolicyAgent(path)`` loads a model folder (what ``hf:PATH`` does); ``PolicyAgent.from_model`` wraps
    a model already in memory, which is how training's held-out checks play through the same harness.
    """

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
        import torch

        from tsr_envs.evaluation.errors import EvalInputError

        try:
            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
            model, tokenizer = load_causal_lm(path, device=device)
            self._setup(model.eval(), tokenizer, temperature, max_new_tokens, batch_size, seed)
        except (ModelLoadError, ValueError) as error:
            raise EvalInputError(f"hf agent: {error}") from None
        self.name = name or f"hf:{path}"

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        temperature: float = 0.0,
        max_new_tokens: int = 256,
        batch_size: int = 16,
        seed: int = 0,
        name: str = "policy",
    ) -> PolicyAgent:
        """An agent on ``model`` as it is (its mode and device are the caller's)."""
        agent = cls.__new__(cls)
        agent._setup(model, tokenizer, temperature, max_new_tokens, batch_size, seed)
        agent.name = name
        return agent

    def _setup(
        self, model: Any, tokenizer: Any, temperature: float, max_new_tokens: int, batch_size: int, seed: int
    ) -> None:
        self.batch_size = batch_size
        self.chat = ChatTokens(tokenizer)
        self.policy = HFPolicy(
            model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed
        )
        self._contexts: OrderedDict[tuple[str, ...], list[int]] = OrderedDict()
        self._replies: OrderedDict[tuple[str, ...], list[int]] = OrderedDict()

    def act_batch(self, histories: Sequence[list[Message]]) -> list[str | None]:
        replies: list[str | None] = []
        for start in range(0, len(histories), self.batch_size):
            replies.extend(self._act(histories[start : start + self.batch_size]))
        return replies

    def _act(self, histories: Sequence[list[Message]]) -> list[str | None]:
        contexts = [self._context_ids(list(history)) for history in histories]
        limit = self.policy.max_context_length
        room = None if limit is None else limit - self.policy.max_new_tokens
        fits = [i for i, ids in enumerate(contexts) if room is None or len(ids) <= room]
        replies: list[str | None] = [None] * len(histories)  # no room left: a missing reply
        samples = self.policy.sample([contexts[i] for i in fits], 1)
        for i, (sample,) in zip(fits, samples, strict=True):
            replies[i] = sample.text
            self._remember(self._replies, (*_key(histories[i]), sample.text), sample.token_ids)
        return replies

    def _context_ids(self, history: list[Message]) -> list[int]:
        """The token ids of a chat ending in a user message, extending the ids of its previous turn."""
        key = _key(history)
        if key in self._contexts:
            return self._contexts[key]
        if len(history) <= 2:
            ids = self.chat.prompt_ids(history)
        else:
            previous = self._context_ids(history[:-2])
            reply = history[-2]["content"]
            reply_ids = self._replies.pop((*_key(history[:-2]), reply), None)
            if reply_ids is None:  # a reply this agent did not generate: its text is all we have
                reply_ids = [*self.chat.encode(reply), self.chat.tokenizer.eos_token_id]
            ids = previous + reply_ids + self.chat.turn_delta_ids(history[:2], reply_ids, history[-1])
        self._remember(self._contexts, key, ids)
        return ids

    @staticmethod
    def _remember(store: OrderedDict, key: tuple[str, ...], value: list[int]) -> None:
        store[key] = value
        if len(store) > _MEMORY:
            store.popitem(last=False)


def _key(history: Sequence[Message]) -> tuple[str, ...]:
    return tuple(f"{message['role']}\x00{message['content']}" for message in history)
