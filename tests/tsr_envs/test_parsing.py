"""The reply parser: examples of the format, then properties over arbitrary text."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsr_envs.parsing import parse_reply


@pytest.mark.parametrize(
    ("reply", "actions"),
    [
        ("<think>the box is left</think><answer>Left || Up</answer>", ("Left", "Up")),
        ("<THINK> x </Think>\n<Answer>  down  ||   RIGHT </ANSWER>", ("down", "RIGHT")),
        ("Up", ("Up",)),
        ("  Up ||Left||  ", ("Up", "Left")),
        ("<answer><answer>Down</answer></answer>", ("Down",)),
        ("Up</answer> trailing words", ("Up",)),
        ("<think>I could <answer>Up</answer></think><answer>Down</answer>", ("Down",)),
        ("<answer>click[ buy   now ]</answer>", ("click[ buy now ]",)),
        ("İstanbul <answer>Up</answer>", ("Up",)),
    ],
)
def test_accepted_replies(reply, actions):
    parsed = parse_reply(reply, max_actions=5)
    assert parsed.error is None
    assert parsed.actions == actions


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("", "no action"),
        ("<answer> || </answer>", "no action"),
        ("<answer>Up", "never closed"),
        ("<think>Up || Down", "<think> block is never closed"),
    ],
)
def test_rejected_replies_say_why(reply, message):
    parsed = parse_reply(reply, max_actions=5)
    assert parsed.actions == ()
    assert message in parsed.error


def test_max_actions_keeps_the_first_and_counts_the_rest():
    parsed = parse_reply("<answer>Up || Down || Left || Right</answer>", max_actions=2)
    assert parsed.actions == ("Up", "Down")
    assert parsed.dropped == 2


def test_non_text_reply_is_an_error_not_a_crash():
    assert parse_reply(None, 3).error.startswith("The reply must be text")  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=6))
def test_any_text_parses_without_raising(reply, max_actions):
    parsed = parse_reply(reply, max_actions)
    assert (parsed.error is None) == bool(parsed.actions)
    assert len(parsed.actions) <= max_actions
    for action in parsed.actions:
        assert action == action.strip() and "||" not in action and action


TAGS = st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "<ANSWER>", "||", " ", "Up", "Left"])


@settings(max_examples=400, deadline=None)
@given(st.lists(TAGS, max_size=30))
def test_nested_and_unclosed_tags_never_leak_into_actions(pieces):
    parsed = parse_reply("".join(pieces), 3)
    for action in parsed.actions:
        lowered = action.lower()
        assert not any(tag in lowered for tag in ("<think>", "</think>", "<answer>", "</answer>"))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["<answer>", "<think>", "</answer>", "||", "a", "<", "</think>"]))
def test_huge_replies_take_linear_time(piece):
    small, large = piece * 20_000, piece * 200_000
    start = time.perf_counter()
    parse_reply(small, 5)
    small_time = time.perf_counter() - start
    start = time.perf_counter()
    parse_reply(large, 5)
    large_time = time.perf_counter() - start
    # Ten times the text must not cost a hundred times the work (quadratic behaviour).
    assert large_time < max(small_time, 1e-3) * 40


def test_overlong_replies_are_refused_unread():
    import gymnasium as gym

    from tsr_envs.parsing import REPLY_MAX_LENGTH

    env = gym.make("tsr/WebShop-v0")
    env.reset(seed=0)
    # characters that expand under Unicode normalisation, 10 MB of them
    reply = "<answer>search[" + "\ufdfa" * 10_000_000 + "]</answer>"
    _, reward, terminated, _, info = env.step(reply)
    assert not info["action_is_valid"] and reward < 0 and not terminated
    assert f"at most {REPLY_MAX_LENGTH}" in info["feedback"]
    ok = parse_reply("<answer>Up</answer>" + " " * (REPLY_MAX_LENGTH - 19), 5)
    assert ok.error is None and ok.actions == ("Up",)
