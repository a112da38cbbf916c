"""``VLLMPolicy`` on CPU: fake ``VLLMGeneration`` objects that check the calls TRL's engine would get.

The server-mode fake reproduces what TRL's ``VLLMGeneration.generate`` does with several ranks: it
gathers every rank's prompts, generates them all, and hands rank ``r`` the slice
``[r * len(prompts), (r + 1) * len(prompts))``.  That is only right when every rank sends as many rows in
as many calls, which is what the policy must guarantee while a search's branch counts differ by rank.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from tests.tsr_train.training_utils import tiny_config
from tsr_train.grpo import SearchRollout, seed_prompts
from tsr_train.policy import VLLMPolicy
from tsr_train.strategies import make_strategy

ENV_ID = "tsr/FrozenLake-v0"


def reply_ids(tokenizer, prompt: list[int], index: int) -> list[int]:
    """A deterministic reply per (prompt, row): a legal move, EOS, then junk after it (to be cut)."""
    move = ("Up", "Down", "Left", "Right")[(len(prompt) + index) % 4]
    return [
        *tokenizer.encode(f"<answer>{move}</answer>", add_special_tokens=False),
        tokenizer.eos_token_id,
        7,
    ]


class FakeGeneration:
    """One rank's view of TRL's ``VLLMGeneration`` (the attributes and ``generate`` signature it has)."""

    def __init__(self, tokenizer, model, *, rank=0, world=1, mode="colocate", server=None, prefix=True):
        self.tokenizer = tokenizer
        self.model = model
        self.mode = mode
        self.tensor_parallel_size = 1
        self.accelerator = SimpleNamespace(num_processes=world, process_index=rank)
        self.rank = rank
        self.server = server
        self.max_completion_length = 16
        self.temperature = 1.0
        self.calls: list[int] = []  # rows per call
        cache = SimpleNamespace(enable_prefix_caching=prefix)
        self.llm = SimpleNamespace(llm_engine=SimpleNamespace(cache_config=cache))

    def generate(self, prompts, images, num_generations, profiler=None):
        assert images is None and num_generations == 1  # one completion per row: copies are rows
        self.calls.append(len(prompts))
        if self.server is not None:
            everything = self.server.gather(self.rank, prompts)  # all ranks' prompts, rank order
            outputs = [reply_ids(self.tokenizer, p, i) for i, p in enumerate(everything)]
            mine = slice(self.rank * len(prompts), (self.rank + 1) * len(prompts))
            completions, rows = outputs[mine], everything[mine]
        else:
            completions = [reply_ids(self.tokenizer, p, i) for i, p in enumerate(prompts)]
            rows = prompts
        logprobs = [[[-0.25 * (t + 1)] for t in range(len(c))] for c in completions]
        return rows, completions, logprobs, None


class Collective:
    """A 2-rank all-gather over threads (what ``gather_object`` does across processes)."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.barrier = threading.Barrier(world, timeout=30)
        self.slots: list = [None] * world

    def gather(self, rank: int, items: list) -> list:
        self.barrier.wait()
        self.slots[rank] = list(items)
        self.barrier.wait()
        out = [item for slot in self.slots for item in slot]
        self.barrier.wait()
        return out


def test_sample_sends_n_rows_per_prompt_and_reads_ids_and_logprobs(tokenizer, tiny_model):
    generation = FakeGeneration(tokenizer, tiny_model)
    policy = VLLMPolicy(generation, tokenizer, max_new_tokens=12, temperature=0.7)
    assert (generation.max_completion_length, generation.temperature) == (12, 0.7)
    prompts = [tokenizer.encode("hello there", add_special_tokens=False), [5, 6, 7]]
    samples = policy.sample(prompts, 3)
    assert generation.calls == [6] and [len(group) for group in samples] == [3, 3]
    first = samples[0][0]
    full = reply_ids(tokenizer, prompts[0], 0)
    assert first.token_ids == full[:-1] and first.token_ids[-1] == tokenizer.eos_token_id  # cut after EOS
    assert first.logprobs == [-0.25 * (t + 1) for t in range(len(full) - 1)]
    assert first.text == tokenizer.decode(full[:-1], skip_special_tokens=True)
    assert policy.sample([], 2) == [] and generation.calls == [6]  # nothing to sample, no call
    policy.finish()  # a lone colocated engine has nobody to wait for
    assert policy.prefix_caching() is True
    with pytest.raises(ValueError, match="temperature > 0"):
        VLLMPolicy(generation, tokenizer, temperature=0.0)


def run_ranks(tokenizer, model, work, mode="server"):
    """Run ``work(rank, policy)`` on two threads as two ranks sharing one fake engine and collective."""
    collective, server = Collective(2), Collective(2) if mode == "server" else None
    generations = [
        FakeGeneration(tokenizer, model, rank=r, world=2, mode=mode, server=server) for r in range(2)
    ]
    results, errors = [None, None], []

    def body(rank: int) -> None:
        try:
            policy = VLLMPolicy(
                generations[rank],
                tokenizer,
                max_new_tokens=16,
                gather=lambda items, rank=rank: collective.gather(rank, items),
            )
            results[rank] = work(rank, policy)
        except Exception as error:  # surfaced below, with the rank
            errors.append((rank, error))
            raise

    threads = [threading.Thread(target=body, args=(rank,)) for rank in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads), "a rank hung"
    return results, generations


def test_ranks_with_different_call_counts_pad_to_the_same_calls(tokenizer, tiny_model):
    plans = {0: [[[1, 2, 3]] * 3, [[4, 5]]], 1: [[[8, 9]]]}  # rank 0: two calls (3 then 1 prompts)

    def work(rank, policy):
        out = [policy.sample(prompts, 2) for prompts in plans[rank]]
        policy.finish()
        return out

    results, generations = run_ranks(tokenizer, tiny_model, work)
    # both ranks made the same calls with the same row counts: the max over ranks (rank 1 padded)
    assert generations[0].calls == generations[1].calls == [6, 2]
    # and each rank got the replies to its own rows (row j of rank r is row r * width + j of the call)
    for rank, calls in plans.items():
        for prompts, samples, width in zip(calls, results[rank], [6, 2], strict=False):
            rows = [prompt for prompt in prompts for _ in range(2)]
            got = [sample.token_ids for group in samples for sample in group]
            want = [reply_ids(tokenizer, row, rank * width + j)[:-1] for j, row in enumerate(rows)]
            assert got == want


def test_a_beam_search_on_two_ranks_makes_the_same_calls_and_never_hangs(tokenizer, tiny_model):
    """Beams die at different turns on different ranks; every rank still makes the same calls."""
    seeds = {0: [0, 0, 1, 1], 1: [2, 2, 3, 3]}

    padding = [0, 0]

    def work(rank, policy):
        strategy = make_strategy("beam-2x2", seed=rank)
        try:
            return strategy.rollout(policy, ENV_ID, seeds[rank], max_turns=3)
        finally:
            policy.finish()
            padding[rank] = policy.rows_padding

    results, generations = run_ranks(tokenizer, tiny_model, work)
    assert generations[0].calls == generations[1].calls
    assert sum(padding) > 0  # the ranks' branch counts did differ, and padding kept them in step
    for rank in (0, 1):
        trajectories = results[rank].trajectories
        assert [t.seed for t in trajectories] == seeds[rank]
        assert all(1 <= t.num_turns <= 3 for t in trajectories)


def test_colocated_engines_without_tensor_parallelism_do_not_wait_for_each_other(tokenizer, tiny_model):
    generation = FakeGeneration(tokenizer, tiny_model, rank=1, world=2, mode="colocate")
    policy = VLLMPolicy(generation, tokenizer, gather=lambda items: pytest.fail("no collective expected"))
    policy.sample([[1, 2]], 2)
    policy.finish()
    assert generation.calls == [2]
    generation.tensor_parallel_size = 2  # a TP group gathers inside generate: lockstep again
    assert VLLMPolicy(generation, tokenizer).lockstep


def test_grpo_rollout_uses_the_trainers_vllm_engine(tokenizer, tiny_model, tiny_model_dir, tmp_path):
    config = tiny_config(tiny_model_dir, tmp_path, "grpo", rollout_search="best-of-2", use_vllm=True)
    generation = FakeGeneration(tokenizer, tiny_model, prefix=False)
    trainer = SimpleNamespace(
        args=SimpleNamespace(use_vllm=True),
        processing_class=tokenizer,
        state=SimpleNamespace(global_step=0),
        accelerator=SimpleNamespace(process_index=0, num_processes=1),
        vllm_generation=generation,
    )
    rollout = SearchRollout(config)
    with pytest.warns(UserWarning, match="prefix caching is off"):
        out = rollout(seed_prompts([3, 3, 4, 4]), trainer)
    assert generation.calls and all(rows % 2 == 0 for rows in generation.calls)  # best-of-2: pairs
    assert len(out["completion_ids"]) == 4 and out["prompt_ids"][0] == out["prompt_ids"][1]
    for ids, mask, logprobs in zip(out["completion_ids"], out["env_mask"], out["logprobs"], strict=True):
        assert len(ids) == len(mask) == len(logprobs)
        assert any(lp < 0 for lp, m in zip(logprobs, mask, strict=True) if m == 1)  # vLLM's logprobs
