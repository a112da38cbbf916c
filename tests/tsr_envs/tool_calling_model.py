"""A tiny Qwen3 that calls a tool every turn, built locally in a second (no download, no training).

Why not a random model: TRL only enters its multi-turn tool loop when a completion parses as a tool
call, and a random model never writes one; teaching a tiny model the format takes a minute of SFT.  So
this model's weights are *set*: its attention and MLP output projections are zero, so the hidden state
at each position is the embedding of that token, and the embeddings and the output layer form a bigram
table over a few token classes::

    any other token -> <tool_call> -> '\\n{"name": TOOL, "arguments": {ARG: "' -> a direction (sampled
    uniformly from four) -> '"}}\\n' -> </tool_call> -> <|im_end|>

Every turn is then ``TOOL(ARG="<direction>")`` with a random direction: rollouts differ within a GRPO
group, so advantages are non-zero and training changes the weights (the other weights are random, and
gradients reach all of them).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM
from trl.chat_template_utils import qwen3_chat_template

DIRECTIONS = ("Left", "Down", "Right", "Up")
SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TAGS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>")
#: logit margin of the bigram table: the intended next token has probability ~1 - 1e-6
MARGIN = 20.0


def build_tool_calling_model(
    directory: Path, corpus: list[str], tool: str = "move", argument: str = "directions"
) -> Path:
    """Save the tokenizer and model in ``directory``; ``corpus`` (e.g. the env's text) trains the BPE."""
    opening = f'\n{{"name": "{tool}", "arguments": {{"{argument}": "'
    closing = '"}}\n'
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=list(SPECIAL), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    bpe.add_tokens(
        [AddedToken(text, special=False, normalized=False) for text in (*TAGS, opening, closing, *DIRECTIONS)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        padding_side="left",
        chat_template=qwen3_chat_template,
    )
    ids = {text: tokenizer.convert_tokens_to_ids(text) for text in (*TAGS, *SPECIAL, opening, closing)}
    direction_ids = [tokenizer.convert_tokens_to_ids(d) for d in DIRECTIONS]
    # token classes: 0 = any other token, 1 = <tool_call>, 2 = opening, 3 = a direction, 4 = closing,
    # 5 = </tool_call>; the successor of each class, as token ids
    classes = {ids["<tool_call>"]: 1, ids[opening]: 2, ids[closing]: 4, ids["</tool_call>"]: 5}
    classes.update(dict.fromkeys(direction_ids, 3))
    successors = {
        0: [ids["<tool_call>"]],
        1: [ids[opening]],
        2: direction_ids,
        3: [ids[closing]],
        4: [ids["</tool_call>"]],
        5: [ids["<|im_end|>"]],
    }
    hidden = 64
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embedding = torch.zeros(config.vocab_size, hidden)
        for token in range(config.vocab_size):
            embedding[token, classes.get(token, 0)] = 1.0
        model.model.embed_tokens.weight.copy_(embedding)
        # After the final RMSNorm the one-hot row is scaled by sqrt(hidden); undo it in the output layer.
        head = torch.zeros(config.vocab_size, hidden)
        for token_class, nexts in successors.items():
            head[nexts, token_class] = MARGIN / hidden**0.5
        model.lm_head.weight.copy_(head)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory
