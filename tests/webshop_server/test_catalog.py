"""Catalogue sources: goal counts on the real files, determinism and the charset of the generated data."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from webshop_server import Catalog, load_catalog
from webshop_server.original_files import iter_json_array, load_webshop, parse_product
from webshop_server.reward import fuzzy_match, normalize_color
from webshop_server.synthetic import generate_catalog
from webshop_server.taxonomy import PRODUCT_TYPES
from webshop_server.text import clean_text, in_charset

GOAL_KEYS = {
    "asin",
    "instruction_text",
    "attributes",
    "goal_options",
    "price_upper",
    "query",
    "category",
    "product_category",
    "name",
    "weight",
}


def test_real_catalogue_has_exactly_6910_synthetic_goals(real_catalog: Catalog):
    assert len(real_catalog) == 1000
    assert len(real_catalog.goals) == 6910
    assert len({g["asin"] for g in real_catalog.goals}) == 415
    assert set(real_catalog.goals[0]) == GOAL_KEYS


def test_real_human_goals_from_the_subset_file(webshop_data: Path):
    catalog = load_catalog(webshop_data, goals="human")
    human = json.loads((webshop_data / "items_human_ins_subset.json").read_text())
    expected = sum(1 for records in human.values() for r in records if r["instruction_attributes"])
    assert len(catalog.goals) == expected == 13
    goal = catalog.goals[0]
    assert set(goal) == GOAL_KEYS and isinstance(goal["goal_options"], list) and goal["weight"] == 1


def test_real_goal_text_and_bounds_depend_only_on_the_seed(webshop_data: Path, real_catalog: Catalog):
    again = load_webshop(webshop_data / "items_shuffle_1000.json", webshop_data / "items_ins_v2_1000.json")
    other = load_webshop(
        webshop_data / "items_shuffle_1000.json", webshop_data / "items_ins_v2_1000.json", seed=1
    )
    texts = [g["instruction_text"] for g in real_catalog.goals]
    assert texts == [g["instruction_text"] for g in again.goals]
    assert texts != [g["instruction_text"] for g in other.goals]
    for goal in itertools.islice(real_catalog.goals, 0, None, 97):
        assert goal["price_upper"] > real_catalog.price(goal["asin"])


def test_real_products_are_cleaned_to_the_charset(real_catalog: Catalog):
    for product in real_catalog.products:
        texts = [product.title, product.description, *product.bullet_points, *product.attributes]
        texts += [v for _, values in product.options for v in values]
        assert all(in_charset(t) for t in texts), product.asin
    assert clean_text("Caf\u00e9 \u2013 \u201cbest\u201d \u2764 \u4e2d") == 'Cafe - "best"'


def test_range_prices_draw_inside_the_range(real_catalog: Catalog):
    ranged = [(p, real_catalog.price(p.asin)) for p in real_catalog.products if len(p.pricing) == 2]
    assert len(ranged) == 93
    assert all(min(p.pricing) <= price <= max(p.pricing) for p, price in ranged)  # some ranges are reversed


@pytest.mark.parametrize("size", [100, 2000])
def test_synthetic_catalogue_sizes_and_goals(size: int):
    catalog = generate_catalog(num_products=size, seed=3)
    assert len(catalog) == size
    assert 0.2 * size < len({g["asin"] for g in catalog.goals}) < 0.6 * size
    goal = catalog.goals[len(catalog.goals) // 2]
    assert set(goal) == GOAL_KEYS
    product = catalog.product(goal["asin"])
    assert set(goal["attributes"]) <= set(product.attributes)
    assert all(goal["goal_options"][name] in values for name, values in product.options)
    assert catalog.goals[-1] == catalog.goals[len(catalog.goals) - 1]
    with pytest.raises(IndexError):
        catalog.goals[len(catalog.goals)]


def test_the_generated_index_is_the_index_of_the_products_text(monkeypatch):
    import numpy as np

    from webshop_server import search
    from webshop_server.search import BM25Index

    monkeypatch.setattr(search, "_FILL_CHUNK_DOCS", 700)  # several chunks, the last one partial
    catalog = generate_catalog(num_products=3000, seed=4)
    from_text = BM25Index([p.search_text() for p in catalog.products])
    generated = catalog.index
    assert set(generated.vocab) == set(from_text.vocab)
    for term, text_id in from_text.vocab.items():  # same postings and weights, whatever the term ids
        ours, theirs = generated.vocab[term], text_id
        mine = slice(generated._starts[ours], generated._starts[ours + 1])
        want = slice(from_text._starts[theirs], from_text._starts[theirs + 1])
        assert np.array_equal(generated._docs[mine], from_text._docs[want]), term
        assert np.array_equal(generated._weights[mine], from_text._weights[want]), term
    for goal in itertools.islice(catalog.goals, 0, None, 97):
        query = f"{goal['query']} {' '.join(goal['attributes'])}"
        assert generated.search(query) == from_text.search(query)


def test_generated_asins_are_distinct_even_when_codes_collide(monkeypatch):
    import numpy as np

    from webshop_server import synthetic

    monkeypatch.setattr(synthetic, "_ASIN_LENGTH", 1)  # 36 codes: 36 products must use every one
    asins = synthetic._asins(np.random.default_rng(0), 36)
    assert sorted(asins) == sorted(f"B0{c}" for c in synthetic._ASIN_CHARS)


def test_synthetic_goal_weights_match_the_goal_dicts(synthetic_catalog: Catalog):
    weights = synthetic_catalog.goals.weights()
    assert len(weights) == len(synthetic_catalog.goals)
    assert all(weights[i] == synthetic_catalog.goals[i]["weight"] for i in range(0, len(weights), 53))


def test_synthetic_catalogue_is_deterministic_per_seed(synthetic_catalog: Catalog):
    assert generate_catalog(num_products=1000, seed=0).products == synthetic_catalog.products
    assert generate_catalog(num_products=1000, seed=1).products != synthetic_catalog.products


def test_taxonomy_option_values_survive_colour_normalisation():
    """Every generated goal option is reachable: the value, once normalised, still matches its goal text."""
    for kind in PRODUCT_TYPES:
        for name, values in kind.options:
            for value in values:
                assert fuzzy_match(normalize_color(value), normalize_color((name, value))), (name, value)


_FINGERPRINT = """
import hashlib, json
from webshop_server import Catalog, Engine
from webshop_server.synthetic import generate_catalog
c = generate_catalog(num_products=300, seed=7)
e = Engine(c)
r = e.new_record(5)
parts = [repr(c.products), json.dumps([c.goals[i] for i in range(len(c.goals))], sort_keys=True)]
for a in e.oracle_actions(r):
    r = e.transition(r, a).record
    parts.append(e.render_text(r))
print(hashlib.sha256("\\n".join(parts).encode()).hexdigest())
"""


def test_same_seed_same_catalogue_goals_and_observations_across_hash_seeds():
    root = Path(__file__).resolve().parents[2]
    digests = set()
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        out = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1
    assert len(hashlib.sha256().hexdigest()) == len(digests.pop())


def test_loaded_products_share_repeated_fields_and_equal_a_plain_parse(webshop_data: Path, real_catalog):
    raw_items = json.loads((webshop_data / "items_shuffle_1000.json").read_text(encoding="utf-8"))
    mined = json.loads((webshop_data / "items_ins_v2_1000.json").read_text(encoding="utf-8"))
    by_asin = {raw["asin"]: raw for raw in raw_items}
    for product in real_catalog.products[:200]:
        assert product == parse_product(by_asin[product.asin], mined.get(product.asin, {}).get("attributes"))
    paths: dict[tuple[str, ...], set[int]] = {}
    for product in real_catalog.products:
        paths.setdefault(product.category_path, set()).add(id(product.category_path))
    assert len(paths) < len(real_catalog) and all(len(ids) == 1 for ids in paths.values())


@pytest.mark.parametrize("chunk_chars", [1, 7, 4096])
def test_the_items_file_streams_to_the_same_records_as_json_load(webshop_data: Path, chunk_chars: int):
    path = webshop_data / "items_shuffle_1000.json"
    expected = json.loads(path.read_text(encoding="utf-8"))
    streamed = iter_json_array(path, chunk_chars=chunk_chars if chunk_chars > 1 else 1)
    if chunk_chars == 1:  # every value straddles chunk boundaries: check the first few only (slow path)
        assert list(itertools.islice(streamed, 3)) == expected[:3]
    else:
        assert list(streamed) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"asin": "B0"}', TypeError),
        ("", TypeError),
        ("[1, 2", json.JSONDecodeError),
        ("[1 2]", json.JSONDecodeError),
        ("[{]", json.JSONDecodeError),
        ("not json", TypeError),
    ],
)
def test_a_malformed_items_file_is_an_error_the_loaders_report(tmp_path: Path, text: str, error: type):
    path = tmp_path / "items_shuffle.json"
    path.write_text(text)
    with pytest.raises(error):
        list(iter_json_array(path, chunk_chars=3))


def test_streamed_arrays_keep_numbers_and_strings_whole_across_chunks(tmp_path: Path):
    values = [123456789, "a longer string, with ] and , inside", {"k": [1.5, None, True]}, []]
    path = tmp_path / "items.json"
    path.write_text(" \n[ " + " ,\n ".join(json.dumps(v) for v in values) + " ]\n")
    for chunk_chars in (1, 2, 5, 1000):
        assert list(iter_json_array(path, chunk_chars=chunk_chars)) == values
