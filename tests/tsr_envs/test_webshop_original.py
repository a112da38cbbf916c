"""tsr/WebShop-v0 in the original's observation modes, and the served site driven the way the original's
clients drive it: a ``WebAgentTextEnv``-style client over HTTP and a ``WebAgentSiteEnv``-style one in a
real headless Chromium (search -> item -> options -> buy -> the reward on the done page)."""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import tsr_envs  # noqa: F401  (registers the ids)
from tests.tsr_envs import test_webshop_env
from tsr_envs.webshop import WebShopEnv
from webshop_server.engine import Engine
from webshop_server.original import parse_page, simple_text

MODES = ("html", "text", "text_rich", "url")
server_url = test_webshop_env.server_url  # the private waitress server fixture, reused here


# -- the env's modes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_original_modes_pass_the_checker_and_reach_reward_one(mode):
    env = gym.make("tsr/WebShop-v0", observation_mode=mode).unwrapped
    check_env(env, skip_render_check=True)
    observation, info = env.reset(options={"original_goal_index": 4})
    assert info["original_goal_index"] == 4 and info["goal_index"] == env._shop.original.goal_index(4)
    assert info["available_actions"] == {"has_search_bar": True, "clickables": ["search"]}
    assert env.legal_actions()[0].startswith("search[")
    for action in env.optimal_actions():
        observation, reward, terminated, _, info = env.step(action)
        assert info["action_is_valid"], info["feedback"]
        assert all(f"click[{c}]" in env.legal_actions() for c in info["available_actions"]["clickables"])
    assert terminated and reward == 1.0 and info["success"]
    assert {"html": "<pre>1.0</pre>", "text": "[SEP] 1.0 [SEP]", "text_rich": "\n1.0\n", "url": "/done/4/"}[
        mode
    ] in observation


def test_the_default_mode_is_still_our_own_text_view():
    env = WebShopEnv()
    observation, info = env.reset(seed=3)
    assert env.observation_mode == "tsr" and "[SEP]" not in observation
    assert observation == env.engine.render_text(env.record)
    with pytest.raises(ValueError, match="observation_mode"):
        WebShopEnv(observation_mode="markdown")
    with pytest.raises(ValueError, match="original_goal_index"):
        env.reset(options={"original_goal_index": 10**9})


def test_modes_agree_on_dynamics_and_clone_and_restore():
    envs = {mode: WebShopEnv(observation_mode=mode) for mode in ("tsr", *MODES)}
    for env in envs.values():
        env.reset(seed=5)
    plan = envs["tsr"].optimal_actions()
    snapshot = envs["text"].get_state()
    results = {mode: [env.step(a)[1:4] for a in plan[:-1]] for mode, env in envs.items()}
    assert len({repr(r) for r in results.values()}) == 1
    twin = envs["text"].clone()
    envs["text"].set_state(snapshot)
    assert envs["text"].render() == envs["text"].reset(seed=5)[0]
    assert twin.render() != envs["text"].render() and twin.step(plan[-1])[1] == 1.0


def test_a_step_runs_the_shop_transition_once(monkeypatch):
    env = WebShopEnv()
    env.reset(seed=1)
    calls = []
    original = Engine.transition

    def counted(self, record, action):
        calls.append(action)
        return original(self, record, action)

    monkeypatch.setattr(Engine, "transition", counted)
    for action in env.optimal_actions():
        calls.clear()
        env.step(action)
        assert calls == [action]
    calls.clear()
    env.reset(seed=2)
    env.step("click[nothing here]")
    assert len(calls) == 1


# -- a WebAgentTextEnv-style client over HTTP ------------------------------------------------------------
class _Controls(HTMLParser):
    """What the original text env finds on a page: buttons (their form), product links, radio options."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.targets: dict[str, tuple[str, str]] = {}  # clickable -> (method, url)
        self.form_action: str | None = None
        self._open: tuple[str, str, str] | None = None  # (kind, method, url) of the element being read
        self._text: list[str] = []
        self.reward: str | None = None
        self._in_reward = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if tag == "form":
            self.form_action = values.get("action")
        elif tag == "button" and "btn" in classes:
            self._open, self._text = ("button", "POST", self.form_action or ""), []
        elif tag == "a" and "product-link" in classes:
            self._open, self._text = ("link", "GET", values["href"]), []
        elif tag == "input" and values.get("type") == "radio":
            self.targets.setdefault(values["value"], ("GET", values["data-url"]))
        elif tag == "h3" and values.get("id") == "reward":
            self._in_reward = True
        elif tag == "pre" and self._in_reward:
            self.reward = ""

    def handle_endtag(self, tag):
        if self._open is not None and tag in ("button", "a"):
            self.targets.setdefault("".join(self._text).lower(), self._open[1:])
            self._open = None
        if tag == "h3":
            self._in_reward = False

    def handle_data(self, data):
        if self._open is not None:
            self._text.append(data)
        if self.reward is not None and self._in_reward:
            self.reward += data


class TextEnvClient:
    """``reset(session)``, ``step(action)``, ``get_available_actions()`` like the original text env, but
    against the served site: every page comes from an HTTP request."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.html = ""
        self.session = ""

    def _load(self, method: str, path: str, form: dict[str, str] | None = None) -> None:
        data = (
            urllib.parse.urlencode(form).encode() if form is not None else (b"" if method == "POST" else None)
        )
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:  # follows the search redirect
            self.html = response.read().decode()

    def reset(self, session: int) -> str:
        self.session = f"fixed_{session}"
        self._load("GET", f"/{self.session}")
        return self.observation

    @property
    def observation(self) -> str:
        return simple_text(parse_page(self.html))

    def get_available_actions(self) -> dict:
        page = parse_page(self.html)
        return {"has_search_bar": page.has_search_bar, "clickables": page.clickables()}

    def step(self, action: str) -> tuple[str, float, bool]:
        verb, argument = action[:-1].split("[", 1)
        if verb == "search":
            self._load("POST", f"/{self.session}", {"search_query": argument})
            return self.observation, 0.0, False
        controls = _Controls()
        controls.feed(self.html)
        method, url = controls.targets[argument]
        self._load(method, urllib.parse.urlsplit(url).path)
        after = _Controls()
        after.feed(self.html)
        return (
            self.observation,
            float(after.reward) if after.reward is not None else 0.0,
            argument == "buy now",
        )


def test_text_env_style_client_over_http_sees_the_env_text_mode(server_url):
    client = TextEnvClient(server_url)
    env = WebShopEnv(observation_mode="text")
    for number in (0, 7):
        observation, info = env.reset(options={"original_goal_index": number})
        assert client.reset(number) == observation
        assert client.get_available_actions() == info["available_actions"]
        for action in env.optimal_actions():
            observation, reward, terminated, _, info = env.step(action)
            assert client.step(action) == (observation, reward, terminated), action
            assert client.get_available_actions() == info["available_actions"], action
        assert reward == 1.0


# -- a WebAgentSiteEnv-style client in Chromium ------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.browser
def test_site_env_style_client_in_chromium_buys_and_reads_the_reward(server_url, tmp_path):
    from tsr_envs.webshop.browser import (
        CHROMEDRIVER,
        CHROMIUM,
        CHROMIUM_FLAGS,
        browser_missing_reason,
        load_after,
    )

    reason = browser_missing_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need headless Chromium in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.common.exceptions import ElementNotInteractableException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    env = WebShopEnv(observation_mode="text")
    try:

        def available() -> dict:
            has_search_bar = bool(browser.find_elements(By.ID, "search_input"))
            clickables = {b.text: b for b in browser.find_elements(By.CLASS_NAME, "btn")}
            clickables.update({a.text: a for a in browser.find_elements(By.CLASS_NAME, "product-link")})
            for radio in browser.find_elements(By.CSS_SELECTOR, "input[type='radio']"):
                clickables[radio.get_attribute("value")] = radio
            return {"has_search_bar": has_search_bar, "clickables": clickables}

        def reward() -> float:
            found = browser.find_elements(By.CSS_SELECTOR, "#reward pre")
            return float(found[0].text) if found else 0.0

        observation, info = env.reset(options={"original_goal_index": 2})
        load_after(browser, 10, lambda: browser.get(f"{server_url}/fixed_2"))
        instruction = browser.find_element(By.CSS_SELECTOR, "#instruction-text h4").text
        assert info["goal"]["instruction_text"] in instruction
        assert simple_text(parse_page(browser.page_source)) == observation
        for action in env.optimal_actions():
            observation, expected, terminated, _, _ = env.step(action)
            verb, argument = action[:-1].split("[", 1)
            clickables = available()["clickables"]
            if verb == "search":
                box = browser.find_element(By.ID, "search_input")
                box.send_keys(argument)
                load_after(browser, 10, box.submit)
                got, done = 0.0, False
            else:
                element = next(e for text, e in clickables.items() if text.lower() == argument)
                text = next(t for t in clickables if t.lower() == argument)

                def click(element=element) -> None:
                    try:
                        element.click()
                    except ElementNotInteractableException:
                        browser.execute_script("arguments[0].click();", element)

                load_after(browser, 10, click)
                got, done = reward(), text == "Buy Now"
            assert (got, done) == (expected, terminated), action
            assert simple_text(parse_page(browser.page_source)) == observation, action
        assert got == 1.0
    finally:
        browser.quit()
