"""The WebShop site in a real headless Chromium: the page end to end, and the browser transport against the
in-process and HTTP ones.  Skipped locally without Chromium/chromedriver/Selenium; a failure when CI=true."""

from __future__ import annotations

import os

import pytest

from tests.tsr_envs.test_webshop_env import oracle_script, trace
from tsr_envs.webshop import CatalogKey, WebShopEnv, get_shop
from tsr_envs.webshop.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    CHROMIUM_FLAGS,
    browser_missing_reason,
    load_after,
)
from tsr_envs.webshop.transports import ShopClient, acquire_private_server, release_private_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server_url():
    reason = browser_missing_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need headless Chromium in CI: {reason}")
        pytest.skip(reason)
    shop = get_shop(CatalogKey.of("synthetic", None, "synthetic", 0))
    url = acquire_private_server(shop)
    yield url
    release_private_server(shop.key)


def test_site_end_to_end_in_chromium(server_url, tmp_path):
    """A person's purchase: type a query, open the goal product, choose its options, buy, read the reward."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    env = WebShopEnv()
    for goal_index in range(11, 200):  # a goal whose product is on the first page of its oracle search
        goal = env.reset(options={"goal_index": goal_index})[1]["goal"]
        if "click[next >]" not in env.optimal_actions():
            break
    query = env.optimal_actions()[0][len("search[") : -1]
    client = ShopClient(server_url, 10)
    client.open_session(env.record)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        wait = WebDriverWait(driver, 10)
        driver.get(f"{server_url}/s/{client.session_id}/")
        assert goal["instruction_text"] in driver.find_element(By.ID, "instruction-text").text
        driver.find_element(By.ID, "search_input").send_keys(query)

        def click(selector: str) -> None:
            load_after(driver, 10, wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, selector))).click)

        click("#search_button")
        click(f"a.product-link[data-clickable='{goal['asin'].lower()}']")
        for name, value in goal["goal_options"].items():
            selector = f".option-button[data-option-name='{name}'][data-option-value='{value}']"
            click(selector)
            assert "selected" in driver.find_element(By.CSS_SELECTOR, selector).get_attribute("class")
        click("#buy_now")
        reward = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#reward pre"))).text
        assert float(reward) == 1.0
        record = client.get_record()
        assert record.done and record.reward == 1.0 and record.asin == goal["asin"]
    finally:
        driver.quit()
        client.close()


def test_browser_transport_matches_inprocess_and_http(server_url):
    browser = WebShopEnv(transport="browser", base_url=server_url)
    http = WebShopEnv(transport="http", base_url=server_url)
    try:
        for seed in (0, 3):
            script = oracle_script(seed)
            script.insert(-1, script[-2])  # click the selected option again: a no-op on every transport
            expected = trace(WebShopEnv(), seed, script)
            assert trace(browser, seed, script) == expected
            assert trace(http, seed, script) == expected
        assert trace(browser, 9, count=12) == trace(WebShopEnv(), 9, count=12)
    finally:
        browser.close()
        http.close()


def test_browser_clone_and_restore(server_url):
    """Clones share one Chromium, each on its own server session, even when their steps interleave."""
    env = WebShopEnv(transport="browser", base_url=server_url)
    local = WebShopEnv()
    plan = oracle_script(2)
    try:
        for e in (env, local):
            e.reset(seed=2)
            for action in plan[:5]:
                e.step(action)
        snapshot = env.get_state()
        twin = env.clone()
        rest = plan[5:]
        expected = [local.step(a) for a in rest]
        steps = [(twin.step(a), env.step(a)) for a in rest]
        assert [t for t, _ in steps] == expected and [e for _, e in steps] == expected
        env.set_state(snapshot)
        assert [env.step(a) for a in rest] == expected
        twin.close()
        env.set_state(snapshot)
        assert env.step(rest[0]) == expected[0], "closing a clone must keep the shared browser open"
    finally:
        env.close()
