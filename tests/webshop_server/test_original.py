"""The original WebShop's URL scheme, pages and observation strings, and its goal numbering on the real files.

Expected strings follow the original's templates and its ``WebAgentTextEnv``: visible strings joined by
`` [SEP] `` (text), ``[button] … [button_]`` markup (text_rich), hand-written URLs (url).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import replace
from html import unescape
from urllib.parse import quote

import pytest

from webshop_server import Catalog, Engine, SessionRecord
from webshop_server.app import create_app
from webshop_server.original import OriginalSite, parse_page, simple_text
from webshop_server.text import clean_text
from webshop_server.urls import (
    LiteralError,
    original_url,
    parse_keywords,
    parse_literal,
    parse_options,
)


@pytest.fixture(scope="module")
def site(real_catalog: Catalog) -> OriginalSite:
    return OriginalSite(Engine(real_catalog))


def walk(engine: Engine, record: SessionRecord, actions: list[str]) -> list[SessionRecord]:
    records = [record]
    for action in actions:
        result = engine.transition(records[-1], action)
        assert result.error is None, (action, result.error)
        records.append(result.record)
    return records


# -- literals in URLs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("['red', 'shoes']", ["red", "shoes"]),
        ('["men\'s", "x\\"y"]', ["men's", 'x"y']),
        ("[]", []),
        ("{}", {}),
        ("{'color': 'red', 'size': 'x-large',}", {"color": "red", "size": "x-large"}),
        ('{"size": "28\\" x 28\\"", "u": "\\u00e9\\x41"}', {"size": '28" x 28"', "u": "éA"}),
    ],
)
def test_literals_parse_in_python_and_json_quoting(text, value):
    assert parse_literal(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "[1, 2]",
        "{'a': ['b']}",
        "[['a']]",
        "['a'] + ['b']",
        "['a'",
        "'a'",
        "{'a' 'b'}",
        "['a\\q']",
        "[" * 3000,
        "['" + "x" * 5000 + "']",
    ],
)
def test_anything_but_a_flat_string_literal_is_refused(text):
    with pytest.raises(LiteralError):
        parse_literal(text)


def test_keywords_and_options_segments():
    assert parse_keywords("['red', 'shoes']") == ["red", "shoes"]
    assert parse_keywords("red+shoes") == parse_keywords("red shoes") == ["red", "shoes"]
    assert parse_options("{'color': 'red'}") == {"color": "red"}
    with pytest.raises(LiteralError):
        parse_options("['red']")
    with pytest.raises(LiteralError):
        parse_keywords("[{'a': 'b'}]")


# -- goals ---------------------------------------------------------------------------------------------
def test_goal_numbers_follow_the_originals_synthetic_goal_list_and_its_seeded_shuffle(webshop_data, site):
    """Rebuild the original's goal list from the raw files (catalogue order, option names sorted, every
    combination of values), shuffle it as the original does, and compare with ``fixed_<n>`` goals."""
    items = json.loads((webshop_data / "items_shuffle_1000.json").read_text())
    mined = json.loads((webshop_data / "items_ins_v2_1000.json").read_text())
    original: list[tuple[str, dict[str, str]]] = []
    for raw in items:
        if mined.get(raw["asin"], {}).get("instruction") is None:
            continue
        options = {
            clean_text(name.lower()): [
                clean_text(c["value"].strip().replace("/", " | ").lower()) for c in values
            ]
            for name, values in (raw["customization_options"] or {}).items()
            if values is not None
        }
        names = sorted(options)
        for combination in itertools.product(*(options[name] for name in names)):
            original.append((raw["asin"], dict(zip(names, combination, strict=True))))
    assert len(original) == 6910
    state = random.getstate()
    try:
        random.seed(233)
        random.shuffle(original)
    finally:
        random.setstate(state)
    goals = site.engine.catalog.goals
    ours = [
        (goals[site.goal_index(n)]["asin"], goals[site.goal_index(n)]["goal_options"]) for n in range(6910)
    ]
    assert ours == original
    assert [site.goal_index(n) for n in range(3)] == [3963, 2638, 2193]
    assert all(site.original_index(site.goal_index(n)) == n for n in (0, 17, 6909))
    with pytest.raises(IndexError):
        site.goal_index(6910)


# -- observation strings -------------------------------------------------------------------------------
def test_text_modes_give_the_originals_strings_page_by_page(site):
    engine = site.engine
    record = engine.new_record(site.goal_index(1))  # B09QCP4579: color black, size 3x-large
    goal = engine.goal(record)
    instruction = goal["instruction_text"]
    product = engine.catalog.product(goal["asin"])
    query = goal["query"]
    plan = [
        "search[" + query + "]",
        "click[b09qcp4579]",
        "click[black]",
        "click[3x-large]",
        "click[features]",
    ]
    search, results, item, black, both, features = walk(engine, record, plan)
    assert (
        site.observe("1", search, "text")[0] == f"WebShop [SEP] Instruction: [SEP] {instruction} [SEP] Search"
    )
    assert site.observe("1", search, "text_rich")[0] == (
        f"WebShop\nInstruction: \n{instruction}\n[button] Search [button_]\n"
    )
    assert site.observe("1", search, "url")[0] == "http://127.0.0.1:3000/1"

    text, actions = site.observe("1", results, "text")
    first = engine.catalog.product(engine.results(query)[0])
    assert text.startswith(
        f"Instruction: [SEP] {instruction} [SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] "
        f"Next > [SEP] {first.asin} [SEP] {first.title} [SEP] {first.price_text} [SEP] "
    )
    assert actions["clickables"][:2] == ["back to search", "next >"] and not actions["has_search_bar"]
    assert actions["clickables"][2] == first.asin.lower()
    assert (
        site.observe("1", results, "url")[0]
        == f"http://127.0.0.1:3000/search_results/1/{query.replace(' ', '+')}/1"
    )

    text, actions = site.observe("1", item, "text")
    assert text == (
        f"Instruction: [SEP] {instruction} [SEP] Back to Search [SEP] < Prev [SEP] "
        + " [SEP] ".join(f"{name} [SEP] " + " [SEP] ".join(vs) for name, vs in product.options)
        + f" [SEP] {product.title} [SEP] Price: {product.price_text} [SEP] Rating: N.A. "
        "[SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
    )
    assert actions["clickables"] == [
        "back to search",
        "< prev",
        "description",
        "features",
        "reviews",
        "buy now",
        *dict.fromkeys(v for _, vs in product.options for v in vs),
    ]
    rich = site.observe("1", both, "text_rich")[0]
    assert rich.startswith("You have clicked 3x-large.\nYou have clicked black.\nInstruction:\n")
    assert "  [clicked button] black [clicked button_]\n" in rich and "[button] Buy Now [button_]" in rich
    url = site.observe("1", both, "url")[0]
    assert url.endswith(
        f'/item_page/1/B09QCP4579/{query.replace(" ", "+")}/1/{{"color": "black", "size": "3x-large"}}'
    )

    text = site.observe("1", features, "text")[0]
    assert text == (
        f"Instruction: [SEP] {instruction} [SEP] Back to Search [SEP] < Prev [SEP] "
        + " [SEP] ".join(product.bullet_points)
    )
    assert site.observe("1", features, "url")[0].endswith("/Features/{'color': 'black', 'size': '3x-large'}")
    back_results = engine.transition(
        engine.transition(features, "click[< prev]").record, "click[< prev]"
    ).record
    rich = site.observe("1", back_results, "text_rich")[0]
    assert "\n[clicked button] B09QCP4579 [clicked button_]\n" in rich, "opened products are marked"

    done = engine.transition(both, "click[buy now]").record
    text, actions = site.observe("1", done, "text")
    assert text.startswith("Thank you for shopping with us! [SEP] Your code: [SEP] None [SEP] (Paste it")
    assert f"[SEP] options [SEP] {json.dumps(dict(done.options))} [SEP]" in text
    assert text.endswith(f"Your score (min 0.0, max 1.0) [SEP] {done.reward} [SEP] Reward Details [SEP] None")
    assert actions == {"has_search_bar": False, "clickables": []}


def test_page_structure_is_what_the_original_clients_select(site):
    engine = site.engine
    record = engine.new_record(site.goal_index(1))
    search, results, item, chosen = walk(engine, record, engine.oracle_actions(record)[:3])
    html = site.html("s1", search)
    assert re.search(r'<form[^>]*method="post" action="/s1">', html)
    assert re.search(r'<input id="search_input"[^>]*name="search_query"', html)
    assert '<div id="instruction-text"' in html and "<h4>Instruction: <br>" in html
    html = site.html("s1", results)
    links = re.findall(r'<a class="product-link" href="([^"]+)">([A-Z0-9]{10})</a>', html)
    assert len(links) == 10 and unescape(links[0][0]) == original_url(
        "s1", engine.transition(results, f"click[{links[0][1].lower()}]").record
    )
    html = site.html("s1", chosen)
    radios = re.findall(
        r'<input type="radio" id="([^"]+)" name="([^"]+)" value="([^"]+)" data-url="([^"]+)"', html
    )
    assert radios and all(
        f'<label for="{rid}">{unescape(value)}</label>' in unescape(html) for rid, _, value, _ in radios
    )
    assert re.search(r'<img id="product-image" src="[^"]*"', html)
    assert html.count('class="btn') == 6 and "checked>" in html
    for page in (search, results, item, chosen):
        html = site.html("sid9xq", page)
        visible = simple_text(parse_page(html))
        assert 'id="observation"' not in html and "sid9xq" not in visible and "session" not in visible.lower()


def test_original_routes_serve_a_whole_purchase_with_a_server_computed_reward(real_catalog):
    app = create_app(real_catalog)
    client = app.test_client()
    site: OriginalSite = app.extensions["webshop"].original
    engine = site.engine
    goal_index = site.goal_index(1)
    record = engine.new_record(goal_index)
    page = client.get("/fixed_1")
    assert page.status_code == 200
    assert page.get_data(as_text=True) == site.html("fixed_1", record)
    assert client.post("/fixed_1", data={"search_query": "Some Query  Words"}).location == (
        "/search_results/fixed_1/" + quote("['some', 'query', 'words']", safe="") + "/1"
    )
    for action in engine.oracle_actions(record):
        record = engine.transition(record, action).record
        url = original_url("fixed_1", record)
        response = client.post(url) if record.done else client.get(url)
        assert response.status_code == 200, (action, url)
        assert response.get_data(as_text=True) == site.html("fixed_1", record), action
    assert record.reward == 1.0
    assert client.get("/api/s/fixed_1/record").json == record.to_dict()
    assert client.get(original_url("fixed_1", replace(record, page="results", done=False))).status_code == 302
    again = client.get("/fixed_1")  # a finished session starts over on the same goal, as in the original
    assert 'id="search_input"' in again.get_data(as_text=True)
    assert client.get("/api/s/fixed_1/record").json["goal_index"] == goal_index


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/fixed_abc", 400),
        ("/fixed_99999999", 404),
        ("/search_results/nosuch/['a']/1", 404),
        ("/search_results/{sid}/['a']/x", 400),
        ("/search_results/{sid}/['a']/999", 404),
        ("/search_results/{sid}/__import__('os')/1", 200),  # not a literal: plain keywords, searched
        ("/search_results/{sid}/[__import__('os')]/1", 400),
        ("/item_page/{sid}/B09QCP4579/['a']/1/__import__('os').system('true')", 400),
        ("/item_page/{sid}/B09QCP4579/['a']/1/{'colour': 'black'}", 400),
        ("/item_page/{sid}/NOPE/['a']/1/{}", 404),
        ("/item_sub_page/{sid}/B09QCP4579/['a']/1/Nope/{}", 404),
        ("/item_sub_page/{sid}/B09QCP4579/['a']/1/Attributes/{}", 400),
        ("/done/{sid}/B09QCP4579/{'color': ['x']}", 400),
    ],
)
def test_bad_original_urls_answer_4xx(real_catalog, path, status):
    client = create_app(real_catalog).test_client()
    assert client.get("/fixed_1").status_code == 200
    response = client.get(path.replace("{sid}", "fixed_1"))
    assert response.status_code == status, response.get_data(as_text=True)[:300]
