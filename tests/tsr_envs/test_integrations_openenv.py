"""``tsr serve-openenv``: openenv-core's server and its own ``GenericEnvClient`` over WebSocket sessions."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import gymnasium as gym
import pytest

pytest.importorskip("openenv")

from openenv.core import GenericEnvClient
from websockets.sync.client import connect

from tsr_envs.cli import main
from tsr_envs.integrations.openenv import ReplyAction, SnapshotStore, TextEnvironment

ENV_ID = "tsr/FrozenLake-v0"  # slippery: restoring must bring back the RNG, not just the board
SEED = 10_000
MAX_SESSIONS = 4


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("openenv") / "server.log"
    command = [sys.executable, "-m", "tsr_envs.cli", "serve-openenv", ENV_ID, "--port", "0"]
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            [*command, "--max-sessions", str(MAX_SESSIONS)], stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 120
    while "Serving" not in log_path.read_text() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    first = next((line for line in log_path.read_text().splitlines() if "Serving" in line), None)
    if first is None:
        process.kill()
        pytest.fail(f"the server did not start: {log_path.read_text()[-2000:]}")
    yield first.split(" on ")[1].split()[0]
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the server did not stop on SIGTERM: {log_path.read_text()[-2000:]}")


def local_episode(replies: list[str], seed: int = SEED) -> list[tuple]:
    """What the env itself gives for these replies: the server must match it exactly."""
    env = gym.make(ENV_ID)
    observation, info = env.reset(seed=seed)
    out = [(observation, None, info["score"])]
    for reply in replies:
        observation, reward, terminated, truncated, info = env.step(reply)
        out.append((observation, float(reward), info["score"]))
        if terminated or truncated:
            break
    return out


def seen(result) -> tuple:
    return (result.observation["text"], result.reward, result.observation["score"])


@pytest.mark.slow
def test_concurrent_sessions_are_isolated_and_honour_the_seed(server_url):
    plans = [["Up", "Up", "Left"], ["Down", "Right"], ["Left", "Left", "Left"], ["Right", "Down", "Up"]]

    async def play(plan: list[str]) -> list[tuple]:
        async with GenericEnvClient(base_url=server_url) as client:
            results = [await client.reset(seed=SEED)]
            for move in plan:
                results.append(await client.step({"reply": f"<answer>{move}</answer>"}))
                if results[-1].done:
                    break
            return [seen(result) for result in results]

    async def all_at_once() -> list[list[tuple]]:
        return await asyncio.gather(*(play(plan) for plan in plans))

    episodes = asyncio.run(all_at_once())
    for plan, episode in zip(plans, episodes, strict=True):
        assert episode == local_episode([f"<answer>{move}</answer>" for move in plan])
    assert len({episode[0] for episode in episodes}) == 1  # the same instance in every session


@pytest.mark.slow
def test_observation_fields_and_session_capacity(server_url):
    clients = [GenericEnvClient(base_url=server_url).sync() for _ in range(MAX_SESSIONS)]
    try:
        first = clients[0].reset(seed=SEED)
        assert first.observation["instructions"].startswith("You are solving the FrozenLake puzzle")
        result = clients[0].step({"reply": "jump"})
        fields = {"text", "success", "score", "feedback", "action_is_valid"}
        assert fields <= result.observation.keys()
        assert (
            result.observation["action_is_valid"] is False
            and "not a legal action" in result.observation["feedback"]
        )
        assert result.reward == pytest.approx(-0.1) and result.done is False
        for client in clients[1:]:
            client.reset(seed=SEED)
        # one session too many: the server says why and closes that connection
        with connect(server_url.replace("http://", "ws://") + "/ws") as extra:
            error = json.loads(extra.recv(timeout=30))
        assert error["type"] == "error" and error["data"]["code"] == "CAPACITY_REACHED"
        assert error["data"]["max_sessions"] == MAX_SESSIONS
    finally:
        for client in clients:
            client.close()


@pytest.mark.slow
def test_snapshot_restores_the_exact_episode_in_another_session(server_url):
    with GenericEnvClient(base_url=server_url).sync() as a, GenericEnvClient(base_url=server_url).sync() as b:
        a.reset(seed=SEED)
        a.step({"reply": "Right"})
        state = a.state()
        assert state["seed"] == SEED and state["step_count"] == 1 and state["snapshot"]
        later = [seen(a.step({"reply": move})) for move in ("Down", "Right")]
        restored = b.reset(restore=state["snapshot"])
        assert restored.observation["turn"] == 1
        # the slips after the snapshot replay too: the RNG was restored with the board
        assert [seen(b.step({"reply": move})) for move in ("Down", "Right")] == later
        a.reset(restore=state["snapshot"])  # and back in the session that made it
        assert [seen(a.step({"reply": move})) for move in ("Down", "Right")] == later


@pytest.mark.slow
def test_bad_requests_get_clear_errors_and_the_session_survives(server_url):
    with GenericEnvClient(base_url=server_url).sync() as client:
        with pytest.raises(RuntimeError, match="call reset"):
            client.step({"reply": "Up"})
        with pytest.raises(RuntimeError, match=r"unknown reset argument.*colour"):
            client.reset(colour="red")
        with pytest.raises(RuntimeError, match="seed must be a non-negative integer"):
            client.reset(seed="7")
        with pytest.raises(RuntimeError, match="unknown snapshot"):
            client.reset(restore="nope")
        client.reset(seed=SEED)
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            client.step({"move": "Up"})
        assert client.step({"reply": "Up"}).observation["turn"] == 1


def test_environment_turn_limit_done_episodes_and_webshop():
    env = TextEnvironment("tsr/Sokoban-v0", {"max_episode_steps": 2})
    assert env.state.snapshot is None
    env.reset(seed=SEED)
    assert not env.step(ReplyAction(reply="Up")).done
    last = env.step(ReplyAction(reply="Up"))
    assert last.done and last.truncated and not last.success
    after = env.step(ReplyAction(reply="Up"))
    assert after.done and after.turn == 2 and "episode is over" in after.feedback
    handle = env.state.snapshot
    env.reset(seed=SEED + 1)
    assert env.reset(restore=handle).done  # a restored finished episode stays finished

    shop = TextEnvironment("tsr/WebShop-v0")
    shop.reset(seed=SEED)
    assert shop.step(ReplyAction(reply="search[shoes]")).action_is_valid


def test_snapshot_store_keeps_the_newest():
    store = SnapshotStore(capacity=2)
    env = TextEnvironment("tsr/FrozenLake-v0", snapshots=store)
    env.reset(seed=SEED)
    handles = [env.state.snapshot for _ in range(3)]
    store.get(handles[2])
    with pytest.raises(ValueError, match="evicted"):
        store.get(handles[0])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tsr/Nope-v0"], "cannot make 'tsr/Nope-v0'"),
        (["CartPole-v1"], "not a TSR text environment"),
        ([ENV_ID, "--port", "70000"], "--port must be in 0..65535"),
        ([ENV_ID, "--max-sessions", "0"], "--max-sessions must be at least 1"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(["serve-openenv", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


class RemoteLake:
    """The README's TRL ``environment_factory`` class that points at a server (here the FrozenLake one)."""

    url = ""

    def __init__(self):
        self.client = GenericEnvClient(base_url=self.url).sync()
        self.reward = 0.0

    def reset(self, seed=None, **row) -> str:
        self.reward = 0.0
        first = self.client.reset(seed=seed).observation
        return f"{first['instructions']}\nAct by calling move.\n\n{first['text']}"

    def move(self, directions: str) -> str:
        """Move one cell per direction.

        Args:
            directions: One or more of Left, Down, Right, Up separated by spaces.
        """
        result = self.client.step({"reply": " || ".join(directions.split())})
        self.reward += result.reward
        return f"{result.observation['feedback']}\n{result.observation['text']}"

    def get_reward(self) -> float:
        return self.reward


@pytest.mark.slow
def test_readme_trl_class_plays_through_the_server(server_url):
    import inspect

    RemoteLake.url = server_url
    remote = RemoteLake()
    try:
        tools = {
            name
            for name, _ in inspect.getmembers(RemoteLake, predicate=inspect.isfunction)
            if name not in ("reset", "get_reward") and not name.startswith("_")
        }
        assert tools == {"move"}  # TRL's rule: the client attribute is not a tool
        assert local_episode([])[0][0] in remote.reset(seed=SEED, prompt=[])
        replies = ["Up || Left", "Down"]
        played = [remote.move(reply.replace(" || ", " ")) for reply in replies]
        expected = local_episode(replies)
        assert [text.split("\n", 1)[1] for text in played] == [step[0] for step in expected[1:]]
        assert remote.get_reward() == sum(step[1] for step in expected[1:])
    finally:
        remote.client.close()
