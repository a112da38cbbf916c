"""tsr/WebShop-v0: goals and splits, bad input, the oracle, pickling, and the HTTP transport against the
in-process one (equivalence, clone/restore, concurrent sessions, server errors)."""

from __future__ import annotations

import pickle
import socket
import threading
import time

import gymnasium as gym
import numpy as np
import pytest

import tsr_envs  # noqa: F401  (registers the ids)
from tests.webshop_server.test_catalog import GOAL_KEYS as CATALOG_GOAL_KEYS
from tsr_envs.utils.env_checker import HOSTILE_REPLIES, random_replies, trace_replies
from tsr_envs.webshop import CatalogKey, WebShopEnv, get_shop, transports
from tsr_envs.webshop.transports import acquire_private_server, release_private_server

#: The goal dict's keys as the env hands them out: the catalogue's, without the sampling weight.
GOAL_KEYS = CATALOG_GOAL_KEYS - {"weight"}


def trace(env: WebShopEnv, seed: int, replies: list[str] | None = None, count: int = 25) -> list:
    """Reset with ``seed`` and step a script (or seeded random replies): everything the agent sees."""
    observation, info = env.reset(seed=seed)
    script = replies if replies is not None else random_replies(env, np.random.default_rng(seed), count)
    return [observation, repr(sorted(info.items())), *trace_replies(env, script)]


def oracle_script(seed: int) -> list[str]:
    """A script with detours and bad input that ends in the optimal purchase."""
    env = WebShopEnv()
    env.reset(seed=seed)
    plan = env.optimal_actions()
    detour = ["not an action", plan[0], "search[again]", "click[back to search]"]
    return [*detour, *plan[:-1], plan[-2], plan[-1]]


@pytest.fixture(scope="module")
def server_url():
    """One private waitress server on the default catalogue, shared by the module's HTTP envs."""
    shop = get_shop(CatalogKey.of("synthetic", None, "synthetic", 0))
    url = acquire_private_server(shop)
    yield url
    release_private_server(shop.key)


# -- goals, splits, observations ---------------------------------------------------------------------------
def test_reset_info_goal_and_available_actions():
    env = gym.make("tsr/WebShop-v0").unwrapped
    observation, info = env.reset(seed=0)
    assert set(info["goal"]) >= GOAL_KEYS and info["instructions"]
    assert info["goal"]["instruction_text"] in observation and "search[" in observation
    assert info["available_actions"] == {"has_search_bar": True, "clickables": []}
    assert info["score"] == 0.0 and env.max_actions_per_turn == 1
    observation, _, _, _, info = env.step(env.optimal_actions()[0])
    assert info["available_actions"]["clickables"][0] == "back to search"
    assert all(f"[{c}]" in observation for c in info["available_actions"]["clickables"])


def test_goal_index_is_exact_and_checked():
    env = WebShopEnv()
    goals = env.engine.catalog.goals
    _, info = env.reset(options={"goal_index": 7})
    assert info["goal_index"] == 7 and info["goal"]["asin"] == goals[7]["asin"]
    for bad in (-1, len(goals), "3", True, 1.0):
        with pytest.raises(ValueError, match="goal_index"):
            env.reset(options={"goal_index": bad})


def test_splits_partition_the_goals_and_seeds_stay_inside_their_split():
    env = WebShopEnv()
    splits = {name: env.goal_indices(name) for name in ("train", "validation", "test")}
    count = len(env.engine.catalog.goals)
    assert (len(splits["test"]), len(splits["validation"])) == (500, 1000)
    assert sorted(sum(splits.values(), ())) == list(range(count))
    for split in splits:
        env = WebShopEnv(split=split)
        drawn = {env.reset(seed=seed)[1]["goal_index"] for seed in range(30)}
        assert drawn <= set(splits[split]) and len(drawn) > 20
    assert WebShopEnv().reset(seed=4)[1]["goal"] == WebShopEnv().reset(seed=4)[1]["goal"]


def test_small_catalogues_split_proportionally():
    env = WebShopEnv(num_products=60, split="test")
    count = len(env.engine.catalog.goals)
    assert count < 3000
    assert len(env.goal_indices("test")) == count // 6 and len(env.goal_indices("validation")) == count // 3
    assert env.reset(seed=0)[1]["goal_index"] in env.goal_indices("test")


def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="split"):
        WebShopEnv(split="dev")
    with pytest.raises(ValueError, match="transport"):
        WebShopEnv(transport="carrier-pigeon")
    with pytest.raises(ValueError, match="synthetic goals only"):
        WebShopEnv(goals="human")


# -- actions -------------------------------------------------------------------------------------------------
def test_optimal_agent_reaches_reward_one_on_50_goals():
    env = WebShopEnv(split="test")
    for goal_index in env.goal_indices()[:50]:
        env.reset(options={"goal_index": goal_index})
        for action in env.optimal_actions():
            _, reward, terminated, _, info = env.step(f"<answer>{action.upper()}</answer>")
            assert info["action_is_valid"], info["feedback"]
        assert terminated and reward == 1.0 and info["success"] and info["score"] == 1.0


def test_replanning_oracle_one_step_at_a_time_never_loops():
    env = WebShopEnv(split="test")
    for goal_index in env.goal_indices()[:30]:
        env.reset(options={"goal_index": goal_index})
        env.step("search[shoes]")  # start from a detour
        for _ in range(15):
            _, reward, terminated, _, _ = env.step(env.optimal_actions()[0])
            if terminated:
                break
        assert terminated and reward == 1.0


def test_bad_input_is_an_invalid_turn_with_reasons():
    env = WebShopEnv()
    env.reset(seed=2)
    cases = {
        "click[nothing]": "not clickable here",
        "buy the red one": "Cannot parse",
        "search[   ]": "empty",
        "search[" + "a" * 1200 + "]": "longer than",
    }
    for reply, reason in cases.items():
        observation, reward, terminated, _, info = env.step(reply)
        assert not info["action_is_valid"] and reward == pytest.approx(env.format_penalty)
        assert reason in info["feedback"] and "search[<your query>]" in info["feedback"]
        assert not terminated and not info["action_is_effective"]
    env.step("search[shoes]")
    _, _, _, _, info = env.step("search[hats]")
    assert "no search bar" in info["feedback"] and "click[back to search]" in info["feedback"]
    for reply in HOSTILE_REPLIES:
        assert env.step(reply)[4]["action_is_valid"] is False


def test_actions_are_canonicalised_and_legal_actions_are_executable_and_goal_free():
    env = WebShopEnv()
    env.reset(seed=0)
    first = env.legal_actions()
    env.reset(seed=1)
    assert env.legal_actions() == first and all(a.startswith("search[") for a in first)
    _, _, _, _, info = env.step("  SEARCH [ Red   Shoes ]")
    assert info["actions"] == ["search[red shoes]"]
    rng = np.random.default_rng(0)
    for _ in range(200):
        legal = env.legal_actions()
        if not legal:
            env.reset(seed=int(rng.integers(1000)))
            continue
        _, _, terminated, _, info = env.step(legal[int(rng.integers(len(legal)))])
        assert info["action_is_valid"], info["feedback"]
        assert 0.0 <= info["score"] <= 1.0


# -- state, pickling ---------------------------------------------------------------------------------------
def test_catalogue_is_shared_and_never_pickled():
    env = WebShopEnv()
    env.reset(seed=3)
    env.step(env.optimal_actions()[0])
    assert WebShopEnv().engine is env.engine and env.clone().engine is env.engine
    data = pickle.dumps(env)
    assert b"webshop_server.catalog" not in data and len(data) < 20_000, "the catalogue was pickled"
    twin = pickle.loads(data)
    assert twin.engine is env.engine and twin.get_state() == env.get_state()
    assert twin.render() == env.render()
    snapshot = env.get_state()
    assert len(pickle.dumps(snapshot)) < 2_000


# -- HTTP transport ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 5])
def test_http_matches_inprocess(server_url, seed):
    remote = WebShopEnv(transport="http", base_url=server_url)
    try:
        local = WebShopEnv()
        assert trace(remote, seed, oracle_script(seed)) == trace(local, seed, oracle_script(seed))
        assert trace(remote, seed + 100) == trace(local, seed + 100)
    finally:
        remote.close()


def test_http_clone_and_restore(server_url):
    env = WebShopEnv(transport="http", base_url=server_url)
    local = WebShopEnv()
    plan = oracle_script(1)
    try:
        for e in (env, local):
            e.reset(seed=1)
            for action in plan[:4]:
                e.step(action)
        snapshot = env.get_state()
        twin = env.clone()
        assert twin._transport.client.session_id != env._transport.client.session_id
        rest = plan[4:]
        expected = [local.step(a) for a in rest]
        assert [twin.step(a) for a in rest] == expected
        assert twin.record.done and not env.record.done, "the clone's session must be its own"
        env.set_state(snapshot)
        assert [env.step(a) for a in rest] == expected
        env.set_state(snapshot)
        assert env._transport.client.get_record() == snapshot.dynamic[0], "set_state must PUT the record"
        twin.close()
    finally:
        env.close()


def test_concurrent_http_sessions_are_isolated(server_url):
    seeds = list(range(6))
    expected = {seed: trace(WebShopEnv(), seed, oracle_script(seed)) for seed in seeds}
    got: dict[int, list] = {}
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        env = WebShopEnv(transport="http", base_url=server_url)
        try:
            got[seed] = trace(env, seed, oracle_script(seed))
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            env.close()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and got == expected


def test_private_server_is_started_shared_and_stopped():
    key = CatalogKey.of("synthetic", 200, "synthetic", 0)
    first = WebShopEnv(transport="http", num_products=200)
    second = first.clone()
    assert transports._SERVERS[key].users == 2
    assert first.reset(seed=0)[0] == WebShopEnv(num_products=200).reset(seed=0)[0]
    pickled = pickle.loads(pickle.dumps(first))
    assert pickled.render() == first.render()
    for env in (first, second, pickled):
        env.close()
    assert key not in transports._SERVERS
    first.close()  # closing twice is harmless


def test_unreachable_or_wrong_server_fails_fast(server_url):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="not reachable"):
        WebShopEnv(transport="http", base_url=dead, timeout=2)
    assert time.monotonic() - start < 5
    with pytest.raises(ValueError, match="serves"):
        WebShopEnv(transport="http", base_url=server_url, num_products=200)
    with pytest.raises(ValueError, match="base_url"):
        WebShopEnv(transport="http", base_url="ftp://example")


def test_missing_browser_fails_at_construction(server_url, monkeypatch):
    from tsr_envs.webshop import browser

    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(RuntimeError, match="needs headless Chromium: /nonexistent/chromium not found"):
        WebShopEnv(transport="browser", base_url=server_url)


def test_each_action_runs_the_engine_once_and_a_refusal_reaches_the_feedback(monkeypatch):
    env = WebShopEnv()
    env.reset(seed=4)
    calls = []
    transition = env.engine.transition
    monkeypatch.setattr(env.engine, "transition", lambda *args: calls.append(args) or transition(*args))
    plan = env.optimal_actions()
    _, _, _, _, info = env.step(plan[0])
    assert len(calls) == 1 and info["action_is_valid"] and info["actions"] == [plan[0]]
    record = env.record
    _, reward, _, _, info = env.step("click[no such button]")
    assert len(calls) == 2 and not info["action_is_valid"] and env.record is record
    assert "is not a legal action here" in info["feedback"] and "The shop says:" in info["feedback"]
    assert reward == env.format_penalty
    _, _, _, _, info = env.step(plan[1])  # the refusal leaves nothing behind for the next step
    assert "The shop says:" not in info["feedback"] and info["action_is_valid"]
