"""The embedded default model: a tiny Qwen2 and a tokenizer built locally from the environments' own text.

Why: ``tsr train`` and the test suite must run on a laptop CPU with no download, and RL needs a policy
that is neither hopeless nor solved.  A pretrained LLM brings a weak prior for these games; a random
1M-parameter model brings none (it never even writes ``<answer>…</answer>``), so a supervised warm-up
stands in for pretraining.  Two warm-ups (``prior``) are available:

* ``"noisy-expert"`` (the default): imitate a *noisy* expert that plays the oracle's next action with
  probability ``1 - expert_epsilon`` and a uniformly random legal action otherwise, the way a pretrained
  model knows roughly what to do.  This prior does use the oracle, so a trained policy's gain over the
  *base* model is what RL (and search) added, not what it learned from scratch.
* ``"format"`` (``FORMAT_RECIPE``): imitate random legal actions only (never solutions), so the model
  learns the reply format and nothing about winning.  It builds in about 25 s; the tests use it.

The default recipe (about 15 minutes on one core, once: the model is cached) is the noisy expert at
epsilon 0.75 on FrozenLake, taught with *soft labels*, without the env's rules in the prompt.  On 200
test maps with 5 turns it samples to 0.20 success (the oracle gets 0.60, random moves 0.18) and plays
0.415 greedily, so it reads the board and leaves RL a weak, improvable preference.  Three things were
needed, all measured with ``benchmarks/imitation_capacity.py``:

* one token per grid cell and per row break (byte-level BPE otherwise merges runs such as ``_O__``);
* no system message in the prompt (``system_message=False``): the env's rules in English, the same in
  every episode and about 130 tokens long.  With them, 600-2,000 warm-up steps left the loss on the
  action token at chance (0.15-0.18 success, oracle imitation included);
* soft labels (``soft_labels=True``, see ``expert_distribution``): trained on the noisy moves it sampled,
  the same model stayed at 0.145 sampled and 0.16 greedy.

On Sokoban the default model has seen no game (the warm-up is FrozenLake only, to keep it to a quarter
of an hour): it knows the reply format and the four move words, not the board.

Everything is derived from ``seed``: the corpus (env seeds drawn from it, all in the train split), the
BPE merges, the weights and the warm-up batches, and the warm-up runs on one thread, so two builds with
the same arguments and library versions give the same model.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

import tsr_envs  # noqa: F401  (registers the tsr/ ids)
from tsr_envs.chat import initial_messages, observation_message
from tsr_envs.splits import SPLITS
from tsr_train.trajectory import ChatTokens

#: Envs the default model is built for; ids not registered in this install are skipped.
DEFAULT_ENV_IDS: tuple[str, ...] = ("tsr/FrozenLake-v0",)
#: Bump when the recipe changes, so cached default models are rebuilt.
RECIPE_VERSION = 6
MANIFEST = "tsr_tiny_model.json"
CACHE_ENV_VAR = "TSR_TINY_MODEL_CACHE"

PAD, BOS, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
#: ChatML, as Qwen2 instruct models use it (no default system prompt: the env's instructions are one).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
#: The same, less the system message (``TinyModelConfig.system_message = False``): the env's rules never
#: reach the model, which cannot read English and learns the board far faster without them.
CHAT_TEMPLATE_WITHOUT_SYSTEM = CHAT_TEMPLATE.replace(
    "{%- for message in messages %}", "{%- for message in messages if message['role'] != 'system' %}"
)
#: The reply format's tags, one token each: the warm-up then only has to learn where they go.
FORMAT_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
#: Other text of the chat format, so it gets merged tokens too.
_FORMAT_TEXT = (" || ", "system", "user", "assistant", "I will move towards the goal.")
#: Every symbol of the FrozenLake and Sokoban grids.
GRID_SYMBOLS = "_#OGPXS√"
#: A grid symbol on a line made only of grid symbols (a row of the board): isolated, one token each.
#: Words that merely contain these letters ("Observation") are left to BPE.
GRID_CELL_PATTERN = f"[{GRID_SYMBOLS}](?=[{GRID_SYMBOLS}]*(?:\\n|$))"
PRIORS = ("noisy-expert", "format")


#: the tiny model's architectures: "qwen2" (rotary positions) or "gpt2" (learned absolute positions)
ARCHITECTURES = ("qwen2", "gpt2")


@dataclass(frozen=True)
class TinyModelConfig:
    """The recipe; saved in the model directory (``tsr_tiny_model.json``) to tell a stale cache."""

    seed: int = 0
    env_ids: tuple[str, ...] = DEFAULT_ENV_IDS
    #: one of ``ARCHITECTURES``
    architecture: str = "qwen2"
    vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 2048
    #: what the warm-up imitates (see the module docstring): "noisy-expert" or "format"
    prior: str = "noisy-expert"
    #: noisy expert only: the probability of a random legal action instead of the oracle's
    expert_epsilon: float = 0.75
    #: noisy expert only: at most this many of the oracle's actions per reply on deterministic games (the
    #: slippery FrozenLake oracle replans after every move, so it gives one)
    expert_actions: int = 2
    #: noisy expert only: train each action token on the noisy expert's whole distribution (its soft
    #: label) instead of on the one move it happened to play; see ``expert_distribution``
    soft_labels: bool = True
    warmup_steps: int = 3000
    batch_size: int = 16
    learning_rate: float = 1e-3
    #: episodes per env for the tokenizer corpus and the warm-up conversations
    episodes_per_env: int = 4000
    max_turns: int = 5
    #: show the env's rules (the system message) to the model; see ``CHAT_TEMPLATE_WITHOUT_SYSTEM``
    system_message: bool = False
    recipe_version: int = RECIPE_VERSION

    def __post_init__(self) -> None:
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        if not 0.0 <= self.expert_epsilon <= 1.0:
            raise ValueError(f"expert_epsilon must be in [0, 1], got {self.expert_epsilon}")
        if self.architecture not in ARCHITECTURES:
            choices = ", ".join(ARCHITECTURES)
            raise ValueError(f"architecture must be one of {choices}, got {self.architecture!r}")
        if self.warmup_steps < 0 or self.learning_rate <= 0:
            raise ValueError("warmup_steps must be >= 0 and learning_rate positive")
        below_one = [f"{name} = {getattr(self, name)}" for name in _COUNTS if getattr(self, name) < 1]
        if below_one:
            raise ValueError(f"sizes and counts must be at least 1, got {', '.join(below_one)}")


#: the recipe's fields that count something, so must be at least 1
_COUNTS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "expert_actions",
    "batch_size",
    "episodes_per_env",
    "max_turns",
)

#: The format-only warm-up (``build_tiny_model(dir, **FORMAT_RECIPE)``, about 25 s): random legal moves
#: on both grid games, the rules in the prompt.  It was the default before the board-reading recipe; the
#: tests build it, since they check behaviour, not skill.
FORMAT_RECIPE: dict[str, Any] = {
    "env_ids": ("tsr/FrozenLake-v0", "tsr/Sokoban-v0"),
    "prior": "format",
    "soft_labels": False,
    "system_message": True,
    "warmup_steps": 60,
    "batch_size": 8,
    "learning_rate": 5e-3,
    "episodes_per_env": 96,
}


def _available(env_ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(env_id for env_id in env_ids if env_id in gym.registry)


def _random_reply(rng: np.random.Generator, legal: list[str], max_actions: int) -> str:
    count = int(rng.integers(1, min(3, max_actions) + 1))
    actions = [legal[int(i)] for i in rng.integers(0, len(legal), size=count)]
    return _reply_text(actions)


def expert_reply(rng: np.random.Generator, env: gym.Env, config: TinyModelConfig) -> str:
    """The oracle's next actions, or with probability ``expert_epsilon`` (or when lost) random legal ones."""
    legal = env.legal_actions()
    plan = env.optimal_actions()
    count = min(config.expert_actions, env.max_actions_per_turn)
    if plan and rng.random() >= config.expert_epsilon:
        actions = plan[:count]
    else:
        actions = [legal[int(i)] for i in rng.integers(0, len(legal), size=len(plan[:count]) if plan else 1)]
    return _reply_text(actions)


def expert_distribution(
    env: gym.Env, config: TinyModelConfig, played: Sequence[str]
) -> list[dict[str, float]]:
    """The noisy expert's probability of each legal action at each slot of a reply, given the slots before.

    The expert plays the oracle's plan (``n`` actions) with probability ``1 - epsilon`` and ``n``
    uniformly random legal ones otherwise, so slot ``i`` given the played prefix weighs action ``a`` by
    ``(1 - epsilon) [prefix + a = plan[:i+1]] + epsilon / L**(i+1)`` (``L`` legal actions), normalised.

    Why soft labels: the sampled noisy moves have the same optimum, but at epsilon 0.75 their label
    noise drowned the signal about the board (3,000 warm-up steps left the model at 0.16 greedy, barely
    above its 0.145 sampled); the soft label carries the exact expected gradient without that noise.
    """
    legal = env.legal_actions()
    plan = (env.optimal_actions() or [])[: min(config.expert_actions, env.max_actions_per_turn)]
    epsilon = config.expert_epsilon
    slots = []
    for i in range(len(played)):
        on_plan = bool(plan) and i < len(plan) and list(played[:i]) == plan[:i]
        weights = {action: epsilon / len(legal) ** (i + 1) for action in legal}
        if on_plan:
            weights[plan[i]] += 1.0 - epsilon
        total = sum(weights.values())
        slots.append({action: weight / total for action, weight in weights.items()})
    return slots


def _reply_text(actions: Sequence[str]) -> str:
    return "<answer>" + " || ".join(actions) + "</answer>"


@dataclass
class _Episode:
    """One warm-up conversation: the messages and the replies, turn by turn.

    With soft labels, ``targets[turn]`` holds the reply's played actions and the expert's distribution
    over each of them (``expert_distribution``); otherwise it is empty and each reply is its own label.
    """

    context: list[dict[str, str]]
    replies: list[str]
    followups: list[dict[str, str]]
    targets: list[tuple[list[str], list[dict[str, float]]]]


def _episodes(
    config: TinyModelConfig, env_ids: Sequence[str], rng: np.random.Generator
) -> Iterator[_Episode]:
    """Warm-up conversations in the exact chat format of ``tsr_envs.chat``, on train-split instances."""
    first_train_seed = SPLITS["train"].first_seed
    for env_id in env_ids:
        env = gym.make(env_id).unwrapped
        for _ in range(config.episodes_per_env):
            max_turns = int(rng.integers(1, config.max_turns + 1))
            observation, info = env.reset(seed=first_train_seed + int(rng.integers(2**31)))
            context = initial_messages(observation, info, max_turns)
            replies, followups, targets = [], [], []
            for turn in range(1, max_turns + 1):
                if config.prior == "noisy-expert":
                    reply = expert_reply(rng, env, config)
                    if config.soft_labels:
                        played = reply.removeprefix("<answer>").removesuffix("</answer>").split(" || ")
                        targets.append((played, expert_distribution(env, config, played)))
                else:
                    reply = _random_reply(rng, env.legal_actions(), env.max_actions_per_turn)
                observation, _, terminated, truncated, info = env.step(reply)
                replies.append(reply)
                if terminated or truncated or turn == max_turns:
                    break
                followups.append(observation_message(observation, info, max_turns - turn))
            yield _Episode(context, replies, followups, targets)


def _corpus(episodes: Sequence[_Episode], env_ids: Sequence[str]) -> list[str]:
    texts = list(_FORMAT_TEXT)
    for env_id in env_ids:
        env = gym.make(env_id).unwrapped
        env.reset(seed=0)
        texts += env.legal_actions()
        _, _, _, _, info = env.step("<answer>Jump</answer>")  # the feedback for an illegal action
        texts.append(info["feedback"])
        _, _, _, _, info = env.step("<think>unfinished")  # and for a malformed reply
        texts.append(info["feedback"])
    for episode in episodes:
        texts += [message["content"] for message in episode.context + episode.followups]
        texts += episode.replies
    return texts


def _train_tokenizer(
    texts: Sequence[str], vocab_size: int, chat_template: str = CHAT_TEMPLATE
) -> PreTrainedTokenizerFast:
    """Byte-level BPE (every string is encodable, ``√`` included) with ChatML special tokens.

    Grid cells are split off before BPE (``GRID_CELL_PATTERN``), so no merge can span two cells.
    """
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(GRID_CELL_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    bpe.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in FORMAT_TAGS])
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token=PAD,
        eos_token=EOS,
        bos_token=None,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        chat_template=chat_template,
        model_max_length=2048,
    )


#: A soft label: (position in the input ids, candidate token ids, their probabilities).
SoftLabel = tuple[int, list[int], list[float]]


def _soft_labels(
    chat: ChatTokens, played: list[str], slots: list[dict[str, float]], reply_ids: list[int], start: int
) -> list[SoftLabel]:
    """Where each action of a reply sits among its tokens, and the token of every alternative action there.

    Each alternative is found by swapping it into the reply and encoding again; an action that does not
    come out as exactly one differing token cannot be given a one-token soft label, which is an error.
    """
    labels = []
    for slot, distribution in enumerate(slots):
        position, candidates, probabilities = None, [], []
        for action, probability in distribution.items():
            swapped = chat.encode(_reply_text([*played[:slot], action, *played[slot + 1 :]]))
            if len(swapped) != len(reply_ids) - 1:  # the reply's ids end with eos
                raise ValueError(f"action {action!r} is not one token in {_reply_text(played)!r}")
            differ = [j for j, (a, b) in enumerate(zip(swapped, reply_ids[:-1], strict=True)) if a != b]
            if len(differ) > 1:
                raise ValueError(f"action {action!r} is not one token in {_reply_text(played)!r}")
            if differ:
                position = differ[0]
            candidates.append(swapped[differ[0]] if differ else None)
            probabilities.append(probability)
        if position is None:  # a single legal action: nothing to swap, the label is certain
            continue
        played_token = reply_ids[position]
        labels.append(
            (start + position, [played_token if c is None else c for c in candidates], probabilities)
        )
    return labels


def _sft_examples(
    episodes: Sequence[_Episode], chat: ChatTokens
) -> list[tuple[list[int], list[int], list[SoftLabel]]]:
    """(input ids, labels, soft labels) built exactly as rollouts build trajectories.

    Labels are only on reply tokens; with soft labels an action token's hard label is replaced by the
    expert's distribution over the legal actions (``expert_distribution``).
    """
    eos = chat.tokenizer.eos_token_id
    examples = []
    for episode in episodes:
        ids = chat.prompt_ids(episode.context)
        labels = [-100] * len(ids)
        soft: list[SoftLabel] = []
        for turn, reply in enumerate(episode.replies):
            reply_ids = [*chat.encode(reply), eos]
            reply_labels = list(reply_ids)
            if episode.targets:
                played, slots = episode.targets[turn]
                for label in _soft_labels(chat, played, slots, reply_ids, len(ids)):
                    reply_labels[label[0] - len(ids)] = -100
                    soft.append(label)
            ids += reply_ids
            labels += reply_labels
            if turn < len(episode.followups):
                delta = chat.turn_delta_ids(episode.context, reply_ids, episode.followups[turn])
                ids += delta
                labels += [-100] * len(delta)
        examples.append((ids, labels, soft))
    return examples


def _batch_loss(model: Any, input_ids: Any, attention_mask: Any, labels: Any, soft: list) -> Any:
    """Mean cross-entropy over labelled tokens, a soft label counting as one token.

    Without soft labels this is the model's own loss (the default recipe's weights stay as they were).
    """
    if not soft:
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
    hard = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), reduction="sum"
    )
    width = max(len(candidates) for _, _, candidates, _ in soft)
    rows = torch.tensor([row for row, _, _, _ in soft])
    positions = torch.tensor([position - 1 for _, position, _, _ in soft])  # the logits that predict it
    candidates = torch.tensor([c + [c[0]] * (width - len(c)) for _, _, c, _ in soft])
    probabilities = torch.tensor([p + [0.0] * (width - len(p)) for _, _, _, p in soft])
    log_probs = torch.log_softmax(logits[rows, positions], dim=-1).gather(1, candidates)
    soft_sum = -(probabilities * log_probs).sum()
    count = (labels[:, 1:] != -100).sum() + len(soft)
    return (hard + soft_sum) / count


def _warm_up(model: Any, examples: list, config: TinyModelConfig, pad_id: int, log: Callable | None) -> float:
    """Plain AdamW on batches of similar length (little padding); returns the last loss.

    A batch is a random window of the examples sorted by length, so a step costs what its tokens cost,
    not ``batch_size`` times the longest conversation.
    """
    examples = sorted(examples, key=lambda example: len(example[0]))
    windows = max(len(examples) - config.batch_size + 1, 1)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    warmup = max(config.warmup_steps // 10, 1)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(config.warmup_steps - warmup, 1)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    model.train()
    loss_value = float("nan")
    for step in range(config.warmup_steps):
        start = int(torch.randint(windows, (1,), generator=generator))
        batch = examples[start : start + config.batch_size]
        width = max(len(ids) for ids, _, _ in batch)
        input_ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab, _ in batch])
        attention_mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _, _ in batch])
        soft = [(row, *label) for row, (_, _, labels_of_row) in enumerate(batch) for label in labels_of_row]
        loss = _batch_loss(model, input_ids, attention_mask, labels, soft)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = loss.item()
        if log is not None and (step + 1) % 100 == 0:
            log(f"warm-up step {step + 1}/{config.warmup_steps}: loss {loss_value:.3f}")
    model.eval()
    return loss_value


def _new_model(config: TinyModelConfig, tokenizer: PreTrainedTokenizerFast) -> Any:
    ids = {
        "vocab_size": len(tokenizer),
        "tie_word_embeddings": True,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.convert_tokens_to_ids(BOS),
    }
    if config.architecture == "gpt2":
        return GPT2LMHeadModel(
            GPT2Config(
                n_embd=config.hidden_size,
                n_inner=config.intermediate_size,
                n_layer=config.num_hidden_layers,
                n_head=config.num_attention_heads,
                n_positions=config.max_position_embeddings,
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attn_pdrop=0.0,
                **ids,
            )
        )
    return Qwen2ForCausalLM(
        Qwen2Config(
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            num_key_value_heads=config.num_key_value_heads,
            max_position_embeddings=config.max_position_embeddings,
            **ids,
        )
    )


def build_tiny_model(
    out_dir: str | Path,
    *,
    seed: int = 0,
    warmup_steps: int = TinyModelConfig.warmup_steps,
    env_ids: Sequence[str] = DEFAULT_ENV_IDS,
    log: Callable[[str], None] | None = None,
    **overrides: object,
) -> Path:
    """Build the tokenizer and the tiny Qwen2 into ``out_dir`` (``save_pretrained`` layout) and return it.

    ``overrides`` sets any other ``TinyModelConfig`` field (sizes, learning rate, corpus size).
    """
    available = _available(env_ids)
    if not available:
        raise ValueError(f"none of {list(env_ids)} is a registered environment")
    config = TinyModelConfig(seed=seed, warmup_steps=warmup_steps, env_ids=available, **overrides)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    episodes = list(_episodes(config, available, rng))
    template = CHAT_TEMPLATE if config.system_message else CHAT_TEMPLATE_WITHOUT_SYSTEM
    tokenizer = _train_tokenizer(_corpus(episodes, available), config.vocab_size, template)
    examples = _sft_examples(episodes, ChatTokens(tokenizer))

    torch.manual_seed(seed)
    model = _new_model(config, tokenizer)
    # One thread: CPU kernels sum in an order that depends on the thread count, so this makes two builds
    # on one install give the same weights, in any process; and a 1M-parameter model gains little from
    # more threads, while a busy machine makes the threads wait for each other (10x slower builds were
    # measured on 2 shared cores).  Across machines the rounding may still differ (CPU type, library
    # versions): the default recipe rebuilt on another machine ended at loss 0.3388 instead of 0.3357.
    # The build record names what built it.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        final_loss = _warm_up(model, examples, config, tokenizer.pad_token_id, log)
    finally:
        torch.set_num_threads(threads)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    manifest = {
        "config": asdict(config),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": final_loss,
        "build_time_s": round(time.perf_counter() - started, 2),
        "built_with": build_environment(),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out_dir


def build_environment() -> dict[str, str]:
    """What a build's bit-exact weights depend on beyond the recipe: the libraries and the CPU."""
    import platform
    from importlib.metadata import version

    import tokenizers
    import transformers

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
        "safetensors": version("safetensors"),
        "cpu": cpu,
    }


def read_manifest(model_dir: str | Path) -> dict | None:
    """The build record of a tiny-model directory, or ``None`` if it is not one."""
    path = Path(model_dir) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def default_model_path() -> Path:
    """The embedded default model, built on first use (about 15 minutes on one core) and cached.

    The cache is ``$TSR_TINY_MODEL_CACHE`` if set, else ``~/.cache/tsr/tiny-qwen2``.  It is rebuilt when it
    was built by another recipe or for another set of registered envs.
    """
    path = Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "tsr" / "tiny-qwen2").expanduser()
    wanted = asdict(TinyModelConfig(env_ids=_available(DEFAULT_ENV_IDS)))
    manifest = read_manifest(path)
    if manifest is not None and manifest["config"] == json.loads(json.dumps(wanted)):
        return path
    # Build next to the target and move it into place, so a concurrent reader never sees half a model.
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-qwen2-", dir=path.parent))
    build_tiny_model(staging)
    shutil.rmtree(path, ignore_errors=True)
    try:
        staging.rename(path)
    except OSError:  # another process moved its build in first; it is the same model
        shutil.rmtree(staging, ignore_errors=True)
    return path


def resolve_model(name: str | Path | None) -> str | Path:
    """A model path or hub id as given, or the embedded model's path for ``None`` and ``"embedded"``."""
    return default_model_path() if name is None or str(name) == "embedded" else name
