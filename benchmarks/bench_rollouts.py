"""Rollout throughput of each strategy, and its wall-time cost relative to naive sampling.

Every strategy builds the same number of trajectories (one per seed) with the same policy; the table shows
turns/s, env steps/s (clones included) and generated tokens/s, the share of wall time spent in the
policy's ``sample`` calls, and wall time relative to naive.  Search batches all candidates of a turn into
one ``generate`` call with a shared prompt prefill, which is what keeps best-of-N cheap.

    python benchmarks/bench_rollouts.py                               # tiny model, CPU
    python benchmarks/bench_rollouts.py --model PATH --dtype bfloat16 --device cuda
    python benchmarks/bench_rollouts.py --random-init-qwen2-0.5b --dtype bfloat16 --device cuda

On a CPU shared with other jobs pass ``--threads 1``: torch's threads otherwise wait for each other and
the timings swing tenfold from run to run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from tsr_train.policy import HFPolicy, Sample, load_causal_lm
from tsr_train.strategies import make_strategy
from tsr_train.tiny_model import default_model_path

DEFAULT_STRATEGIES = "naive,best-of-4,beam-2x2,lookahead-1x4"


class TimedPolicy:
    """Wraps a policy to measure the time spent generating."""

    def __init__(self, policy: HFPolicy) -> None:
        self.policy = policy
        self.tokenizer = policy.tokenizer
        self.max_new_tokens = policy.max_new_tokens
        self.max_context_length = policy.max_context_length
        self.seconds = 0.0

    def sample(self, prompts: list[list[int]], n: int) -> list[list[Sample]]:
        started = time.perf_counter()
        samples = self.policy.sample(prompts, n)
        if self.policy.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - started
        return samples


@dataclass
class Row:
    strategy: str
    trajectories: int
    wall_s: float
    generate_s: float
    turns: int
    env_steps: int
    generated_tokens: int
    generate_calls: int
    clones_made: int
    success_rate: float
    mean_final_score: float
    turns_per_s: float = 0.0
    env_steps_per_s: float = 0.0
    tokens_per_s: float = 0.0
    vs_naive: float = float("nan")


def load_model(args: argparse.Namespace) -> tuple[torch.nn.Module, object, str]:
    dtype = getattr(torch, args.dtype)
    if args.random_init_qwen2:
        # Qwen2-0.5B's shape with random weights (no download); the tiny tokenizer keeps the vocab small.
        tokenizer = AutoTokenizer.from_pretrained(args.model or default_model_path())
        config = Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=896,
            intermediate_size=4864,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            max_position_embeddings=32768,
            tie_word_embeddings=True,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config).to(dtype)
        name = "random-init Qwen2-0.5B shape"
    else:
        path = args.model or default_model_path()
        model, tokenizer = load_causal_lm(path, dtype=dtype)
        name = str(path)
    return model.to(args.device).eval(), tokenizer, name


def run_strategy(spec: str, model, tokenizer, args: argparse.Namespace) -> Row:
    policy = TimedPolicy(HFPolicy(model, tokenizer, max_new_tokens=args.max_new_tokens, seed=args.seed))
    seeds = list(range(args.seeds))
    started = time.perf_counter()
    batch = make_strategy(spec, seed=args.seed).rollout(policy, args.env, seeds, max_turns=args.max_turns)
    wall = time.perf_counter() - started
    turns = sum(t.num_turns for t in batch)
    row = Row(
        strategy=spec,
        trajectories=len(batch),
        wall_s=wall,
        generate_s=policy.seconds,
        turns=turns,
        env_steps=batch.stats.env_steps,
        generated_tokens=batch.stats.generated_tokens,
        generate_calls=batch.stats.generate_calls,
        clones_made=batch.stats.clones_made,
        success_rate=sum(t.success for t in batch) / len(batch),
        mean_final_score=sum(t.final_score for t in batch) / len(batch),
    )
    row.turns_per_s = turns / wall
    row.env_steps_per_s = row.env_steps / wall
    row.tokens_per_s = row.generated_tokens / wall
    return row


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'strategy':<15}{'wall s':>8}{'gen %':>7}{'x naive':>9}{'turns/s':>9}{'steps/s':>9}"
        f"{'tok/s':>9}{'calls':>7}{'success':>9}{'score':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.strategy:<15}{r.wall_s:>8.2f}{100 * r.generate_s / r.wall_s:>7.0f}{r.vs_naive:>9.2f}"
            f"{r.turns_per_s:>9.1f}{r.env_steps_per_s:>9.1f}{r.tokens_per_s:>9.0f}{r.generate_calls:>7}"
            f"{r.success_rate:>9.2f}{r.mean_final_score:>7.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="HF causal LM directory (default: the embedded tiny model)"
    )
    parser.add_argument(
        "--random-init-qwen2-0.5b",
        dest="random_init_qwen2",
        action="store_true",
        help="Qwen2-0.5B shape, random weights",
    )
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--env", default="tsr/FrozenLake-v0")
    parser.add_argument("--strategies", default=DEFAULT_STRATEGIES, help="comma-separated strategy specs")
    parser.add_argument("--seeds", type=int, default=8, help="trajectories per strategy (one per seed)")
    parser.add_argument("--max-turns", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each strategy keeps its fastest")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default="benchmarks/results/bench_rollouts.json")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer, model_name = load_model(args)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model: {model_name} ({parameters / 1e6:.2f}M parameters, {args.dtype}, {args.device})")
    print(f"env: {args.env}, {args.seeds} trajectories per strategy, max {args.max_turns} turns\n")
    run_strategy("naive", model, tokenizer, args)  # warm-up: allocator, kernels, lazy imports
    specs = [spec.strip() for spec in args.strategies.split(",")]
    # Rounds interleave the strategies and each keeps its fastest run: on a shared machine the noise is
    # additive, so the minimum is the best estimate of the cost (the trajectories are the same each round).
    best: dict[str, Row] = {}
    for _ in range(args.repeats):
        for spec in specs:
            row = run_strategy(spec, model, tokenizer, args)
            if spec not in best or row.wall_s < best[spec].wall_s:
                best[spec] = row
    rows = [best[spec] for spec in specs]
    naive = next((r for r in rows if r.strategy == "naive"), None)
    for row in rows:
        row.vs_naive = row.wall_s / naive.wall_s if naive else float("nan")
    print_table(rows)

    record = {
        "model": model_name,
        "parameters": parameters,
        "dtype": args.dtype,
        "device": args.device,
        "device_name": torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else platform.processor(),
        "torch_threads": torch.get_num_threads(),
        "env": args.env,
        "seeds": args.seeds,
        "max_turns": args.max_turns,
        "max_new_tokens": args.max_new_tokens,
        "repeats": args.repeats,
        "rows": [asdict(row) for row in rows],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
