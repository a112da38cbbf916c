"""BM25 search: ranking, analysis, limits and determinism."""

from __future__ import annotations

from webshop_server import Catalog
from webshop_server.search import SEARCH_RETURN_N, BM25Index, analyze, s_stem

DOCS = [
    "red running shoes for men",
    "blue running shoes",
    "red dress",
    "batteries for the remote",
    "shoes shoes shoes",
]


def test_analysis_drops_stop_words_and_folds_plurals():
    assert analyze("The Batteries, and Shoes!") == ["battery", "shoe"]
    for singular, plural in (("shoe", "shoes"), ("battery", "batteries"), ("candle", "candles")):
        assert s_stem(singular) == s_stem(plural)
    assert [s_stem(w) for w in ("bus", "dress", "glass", "tea")] == ["bus", "dress", "glass", "tea"]


def test_bm25_ranks_matching_documents_only():
    index = BM25Index(DOCS)
    assert index.search("red shoes")[:2] == (0, 4) or index.search("red shoes")[0] == 0
    assert set(index.search("red shoes")) == {0, 1, 2, 4}
    assert index.search("battery") == (3,)
    assert index.search("unknownword") == () and index.search("the and") == ()


def test_ties_break_by_catalogue_order():
    index = BM25Index(["same words here"] * 80)
    assert index.search("words") == tuple(range(SEARCH_RETURN_N))


def test_catalogue_search_returns_asins_best_first(synthetic_catalog: Catalog):
    goal = synthetic_catalog.goals[0]
    product = synthetic_catalog.product(goal["asin"])
    assert synthetic_catalog.search(product.title)[0] == product.asin
    hits = synthetic_catalog.search(goal["query"])
    assert 0 < len(hits) <= SEARCH_RETURN_N
    assert all(synthetic_catalog.product(a).asin == a for a in hits)


def test_bulk_indexing_gives_each_document_exactly_its_analysed_terms(monkeypatch):
    import random
    from collections import Counter

    from webshop_server import search

    words = ["Shoes", "the", "batteries", "a", "USB-C", "K\u212aelvin", "caf\u00e9", "x\x00y", "", "42in"]
    rng = random.Random(0)
    documents = [" ".join(rng.choices(words, k=rng.randint(0, 12))) for _ in range(57)] + ["", "the a"]
    monkeypatch.setattr(search, "_INDEX_CHUNK_CHARS", 100)  # many chunks of several documents each
    postings = search.collect_postings(iter(documents))
    terms = {term_id: term for term, term_id in postings.vocab.items()}
    expected = [search.analyze(doc.replace("\x00", " ")) for doc in documents]
    assert postings.lengths.tolist() == [len(doc_terms) for doc_terms in expected]
    found: list[Counter] = [Counter() for _ in documents]
    columns = (postings.terms.tolist(), postings.docs.tolist(), postings.tf.tolist())
    for term_id, doc, tf in zip(*columns, strict=True):
        found[doc][terms[term_id]] += tf
    assert found == [Counter(doc_terms) for doc_terms in expected]
    pairs = list(zip(postings.terms.tolist(), postings.docs.tolist(), strict=True))
    assert pairs == sorted(set(pairs))  # one posting per pair, by term, documents ascending
    assert list(postings.vocab) == list(dict.fromkeys(t for doc_terms in expected for t in doc_terms))
    assert len(search.collect_postings([]).lengths) == 0 and BM25Index([]).search("shoes") == ()


def test_bm25_weights_follow_the_formula_whatever_the_weight_slice(monkeypatch):
    import numpy as np

    from webshop_server import search

    documents = ["red shoes for running", "shoes shoes shoes", "blue running socks and shoes", "", "socks"]
    whole = BM25Index(documents, k1=0.9, b=0.4)
    monkeypatch.setattr(search, "_WEIGHT_SLICE", 2)
    sliced = BM25Index(documents, k1=0.9, b=0.4)
    assert np.array_equal(whole._weights, sliced._weights) and np.array_equal(whole._docs, sliced._docs)
    postings = search.collect_postings(documents)
    lengths = [len(search.analyze(d)) for d in documents]
    average = sum(lengths) / len(lengths)
    df = np.bincount(postings.terms)
    for at, (term, doc, tf) in enumerate(zip(postings.terms, postings.docs, postings.tf, strict=True)):
        idf = np.log1p((len(documents) - df[term] + 0.5) / (df[term] + 0.5))
        expected = idf * tf * 1.9 / (tf + 0.9 * (1 - 0.4 + 0.4 * lengths[doc] / average))
        assert sliced._weights[at] == np.float32(expected)
