"""The embedded default model: a tiny Qwen2 and a tokenizer built locally from the environments' own text.

Why: ``tsr train`` and the test suite must run on a laptop CPU with no download.  A random model never
writes ``<answer>…</answer>``, so every turn would be an invalid action and there would be nothing to
learn from; a short supervised warm-up teaches the *format* only.  The warm-up replies are random legal
actions, never solutions, so whatever the model later solves it learned by RL.

Everything is derived from ``seed``: the corpus (env seeds drawn from it), the BPE merges, the weights and
the warm-up batches, and the warm-up runs on one thread, so two builds with the same arguments and library
versions give the same model.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

import tsr_envs  # noqa: F401  (registers the tsr/ ids)
from tsr_envs.chat import initial_messages, observation_message
from tsr_train.trajectory import ChatTokens

#: Envs the default model is built for; ids not registered in this install are skipped.
DEFAULT_ENV_IDS: tuple[str, ...] = ("tsr/FrozenLake-v0", "tsr/Sokoban-v0")
#: Bump when the recipe changes, so cached default models are rebuilt.
RECIPE_VERSION = 3
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
#: The reply format's tags, one token each: the warm-up then only has to learn where they go.
FORMAT_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
#: Other text of the chat format, so it gets merged tokens too.
_FORMAT_TEXT = (" || ", "system", "user", "assistant", "I will move towards the goal.")


@dataclass(frozen=True)
class TinyModelConfig:
    """The recipe; saved in the model directory (``tsr_tiny_model.json``) to tell a stale cache."""

    seed: int = 0
    env_ids: tuple[str, ...] = DEFAULT_ENV_IDS
    vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 2048
    warmup_steps: int = 60
    batch_size: int = 8
    learning_rate: float = 5e-3
    #: episodes per env for the tokenizer corpus and the warm-up conversations
    episodes_per_env: int = 96
    max_turns: int = 5
    recipe_version: int = RECIPE_VERSION


def _available(env_ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(env_id for env_id in env_ids if env_id in gym.registry)


def _random_reply(rng: np.random.Generator, legal: list[str], max_actions: int) -> str:
    count = int(rng.integers(1, min(3, max_actions) + 1))
    actions = [legal[int(i)] for i in rng.integers(0, len(legal), size=count)]
    return "<answer>" + " || ".join(actions) + "</answer>"


@dataclass
class _Episode:
    """One random-legal-action conversation: the messages and the replies, turn by turn."""

    context: list[dict[str, str]]
    replies: list[str]
    followups: list[dict[str, str]]


def _episodes(
    config: TinyModelConfig, env_ids: Sequence[str], rng: np.random.Generator
) -> Iterator[_Episode]:
    """Random-play conversations in the exact chat format of ``tsr_envs.chat``."""
    for env_id in env_ids:
        env = gym.make(env_id).unwrapped
        for _ in range(config.episodes_per_env):
            max_turns = int(rng.integers(1, config.max_turns + 1))
            observation, info = env.reset(seed=int(rng.integers(2**31)))
            context = initial_messages(observation, info, max_turns)
            replies, followups = [], []
            for turn in range(1, max_turns + 1):
                reply = _random_reply(rng, env.legal_actions(), env.max_actions_per_turn)
                observation, _, terminated, truncated, info = env.step(reply)
                replies.append(reply)
                if terminated or truncated or turn == max_turns:
                    break
                followups.append(observation_message(observation, info, max_turns - turn))
            yield _Episode(context, replies, followups)


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


def _train_tokenizer(texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (every string is encodable, ``√`` included) with ChatML special tokens."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
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
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
    )


def _sft_examples(episodes: Sequence[_Episode], chat: ChatTokens) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) built exactly as rollouts build trajectories; labels only on reply tokens."""
    eos = chat.tokenizer.eos_token_id
    examples = []
    for episode in episodes:
        ids = chat.prompt_ids(episode.context)
        labels = [-100] * len(ids)
        for turn, reply in enumerate(episode.replies):
            reply_ids = [*chat.encode(reply), eos]
            ids += reply_ids
            labels += reply_ids
            if turn < len(episode.followups):
                delta = chat.turn_delta_ids(episode.context, reply_ids, episode.followups[turn])
                ids += delta
                labels += [-100] * len(delta)
        examples.append((ids, labels))
    return examples


def _warm_up(model: Qwen2ForCausalLM, examples: list, config: TinyModelConfig, pad_id: int) -> float:
    """A few hundred milliseconds per step of plain AdamW; returns the last loss."""
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
    for _ in range(config.warmup_steps):
        rows = torch.randint(len(examples), (config.batch_size,), generator=generator)
        batch = [examples[int(row)] for row in rows]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
        attention_mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = loss.item()
    model.eval()
    return loss_value


def build_tiny_model(
    out_dir: str | Path,
    *,
    seed: int = 0,
    warmup_steps: int = TinyModelConfig.warmup_steps,
    env_ids: Sequence[str] = DEFAULT_ENV_IDS,
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
    tokenizer = _train_tokenizer(_corpus(episodes, available), config.vocab_size)
    examples = _sft_examples(episodes, ChatTokens(tokenizer))

    torch.manual_seed(seed)
    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.convert_tokens_to_ids(BOS),
    )
    model = Qwen2ForCausalLM(model_config)
    # One thread: CPU kernels sum in an order that depends on the thread count, so this makes the weights
    # the same on any machine; and a 1M-parameter model gains little from more threads, while a busy
    # machine makes the threads wait for each other (10x slower builds were measured on 2 shared cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        final_loss = _warm_up(model, examples, config, tokenizer.pad_token_id)
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
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out_dir


def read_manifest(model_dir: str | Path) -> dict | None:
    """The build record of a tiny-model directory, or ``None`` if it is not one."""
    path = Path(model_dir) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def default_model_path() -> Path:
    """The embedded default model, built on first use (about a minute on a CPU) and cached.

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
