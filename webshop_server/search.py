"""BM25 search in numpy, replacing the original's Lucene/pyserini index (no Java).

Analysis follows Lucene's English defaults where it matters for recall: lower-casing, splitting on
non-alphanumerics, the Lucene English stop-word list. Porter stemming is replaced by the much smaller
"S-stemmer" (plural endings only), which conflates the forms shoppers actually type ("shoe"/"shoes",
"battery"/"batteries") without a stemming dependency. Scores use Lucene's BM25 (k1=0.9, b=0.4, the
Anserini defaults) with the term weights precomputed per document, so a query costs one vector addition per
query term. Ties are broken by catalogue order, so results are the same in every process.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

#: The original returns the 50 best hits and shows them 10 per page.
SEARCH_RETURN_N = 50
RESULTS_PER_PAGE = 10

_TOKEN = re.compile(r"[a-z0-9]+")
# Lucene's EnglishAnalyzer default stop set.
_STOP_TEXT = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())


def s_stem(token: str) -> str:
    """Harman's S-stemmer: strip English plural endings (``ies``→``y``, ``es``→``e``, ``s``→``)."""
    if len(token) > 3 and token.endswith("ies") and not token.endswith(("eies", "aies")):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("es") and not token.endswith(("aes", "ees", "oes")):
        return token[:-1]
    if len(token) > 2 and token.endswith("s") and not token.endswith(("us", "ss")):
        return token[:-1]
    return token


@functools.lru_cache(maxsize=200_000)
def _term(token: str) -> str:
    return s_stem(token)


def analyze(text: str) -> list[str]:
    """The index terms of ``text``, in order (stop words removed, plurals folded)."""
    return [_term(t) for t in _TOKEN.findall(text.lower()) if t not in STOP_WORDS]


#: Characters of document text tokenised per pass when building an index.  A pass holds one Python object
#: per token of its text, so bounding its text (not its number of documents) bounds the build's memory
#: whatever the documents' lengths.  Measured on 30k real products: 2M characters a pass peaked 40 MB
#: higher than this, at the same speed.
_INDEX_CHUNK_CHARS = 1 << 19
#: Every byte but ``[a-z0-9]`` to a space, so ``bytes.split`` gives ``_TOKEN``'s tokens of a lower-cased,
#: UTF-8 encoded text (non-ASCII characters are only in bytes >= 0x80, so they delimit there too).
_DELIMITERS = bytes(c if chr(c) in "abcdefghijklmnopqrstuvwxyz0123456789" else 32 for c in range(256))


def _token_chunks(documents: Iterable[str]) -> Iterator[list[list[bytes]]]:
    """The documents' raw tokens (lower-cased, split on non-alphanumerics), a pass of text at a time."""
    chunk: list[list[bytes]] = []
    chars = 0
    for doc in documents:
        chunk.append(doc.lower().encode().translate(_DELIMITERS).split())
        chars += len(doc)
        if chars >= _INDEX_CHUNK_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


@dataclass
class Postings:
    """Each (term, document) pair of a collection with its term frequency, documents ascending within a term.

    ``terms``, ``docs`` and ``tf`` are parallel arrays sorted by term; ``lengths`` holds every document's
    term count and ``vocab`` maps each term to its id (ids in order of first appearance).
    """

    terms: np.ndarray
    docs: np.ndarray
    tf: np.ndarray
    lengths: np.ndarray
    vocab: dict[str, int]


def collect_postings(documents: Iterable[str]) -> Postings:
    """The postings of ``documents`` (any iterable of strings, consumed once), with ``analyze``'s terms.

    Built in bulk, chunk by chunk: each document is tokenised by C string methods (lower, encode,
    translate, split) instead of a regular expression, each *distinct* token is analysed once, tokens
    are mapped to term ids in C (``np.fromiter`` over a dict lookup), and each chunk is reduced to its
    (document, term, count) triples before the next is read.  So memory holds one chunk's tokens and the
    postings, never one array entry per token of the whole collection (at 1.18M synthetic products,
    about 60M tokens: arrays of 480 MB each).  The result is the same in every process.
    """
    vocab: dict[str, int] = {}
    token_ids: dict[bytes, int] = {}  # -1: a stop word
    builder = _PostingsBuilder()
    for chunk in _token_chunks(documents):
        tokens = list(itertools.chain.from_iterable(chunk))
        for token in dict.fromkeys(tokens):  # distinct tokens, in order of first appearance
            if token not in token_ids:
                word = token.decode()
                token_ids[token] = -1 if word in STOP_WORDS else vocab.setdefault(_term(word), len(vocab))
        ids = np.fromiter(map(token_ids.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        del tokens  # the chunk's flat token list; the next chunk's is built beside the postings only
        doc_of_token = np.repeat(np.arange(len(chunk), dtype=np.int64), list(map(len, chunk)))
        kept = ids >= 0
        doc_of_token, ids = doc_of_token[kept], ids[kept]
        builder.add(
            *_count_terms(doc_of_token, ids, len(chunk)), np.bincount(doc_of_token, minlength=len(chunk))
        )
    return builder.finish(vocab)


#: ``_count_terms`` packs a token's multiplicity into the low bits of its sort key.
_TIMES_BITS = 3


def _count_terms(
    doc_of_token: np.ndarray, ids: np.ndarray, num_docs: int, times: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(document, term, frequency) of a chunk's tokens, by term and by document within a term.

    Each token counts ``times`` (1 when not given).  Sorting the term-major keys groups each term's
    documents, and the sort is most of a build's time: so keys are 32-bit where they fit, and a token
    that stands for several (``times``, below 8) is sorted once with its multiplicity in the key's low
    bits, instead of once per copy.
    """
    width = max(num_docs, 1)
    if times is None:
        key_type = np.uint32 if (int(ids.max(initial=0)) + 1) * width < 2**32 else np.int64
        keys, tf = np.unique(
            ids.astype(key_type) * key_type(width) + doc_of_token.astype(key_type), return_counts=True
        )
        keys = keys.astype(np.int64)
    else:
        if len(times) and (times.min() < 1 or times.max() >= 1 << _TIMES_BITS):
            raise ValueError(f"times must be in [1, {1 << _TIMES_BITS})")
        packed = np.sort(((ids * width + doc_of_token) << _TIMES_BITS) | times)
        keys = packed >> _TIMES_BITS
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        tf = np.add.reduceat(packed & ((1 << _TIMES_BITS) - 1), starts) if len(starts) else keys
        keys = keys[starts]
    terms, docs = np.divmod(keys, width)
    return docs, terms, tf


#: Documents whose fills ``postings_from_fills`` turns into postings at a time.
_FILL_CHUNK_DOCS = 1 << 16


def postings_from_fills(
    num_docs: int,
    values: Sequence[str],
    fills: Sequence[tuple[np.ndarray, np.ndarray, int]],
    common: str = "",
) -> Postings:
    """The postings of documents assembled from a table of ``values``, without building their text.

    Every document holds the text ``common``; besides, fill ``(docs, ids, times)`` puts ``values[ids[j]]``
    ``times`` times (1 to 7) into document ``docs[j]`` (``docs`` ascending).  A document's terms are the
    ``analyze`` terms of all its text, as often as it holds them.  That is ``collect_postings`` of the
    documents' text whenever the text joins its values with separators that are not letters or digits
    (so no token spans two values).

    Why: a generated catalogue knows its products' parts, and this skips formatting and tokenising
    millions of texts.  Each distinct value is analysed once, documents get their term ids by array
    gathers, and the terms of ``common`` (in every document) are counted in a dense table instead of
    being sorted with the rest.  Term ids are numbered from ``common`` and the table, not by first
    appearance in the text, which changes no score and no search result.
    """
    vocab: dict[str, int] = {}
    common_counts = Counter(vocab.setdefault(term, len(vocab)) for term in analyze(common))
    dense = len(vocab)  # terms 0 .. dense-1 are in every document
    base = np.array([common_counts[t] for t in range(dense)], dtype=np.int64)
    value_terms = [[vocab.setdefault(term, len(vocab)) for term in analyze(value)] for value in values]
    lengths = np.array([len(terms) for terms in value_terms], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    flat = np.array([t for terms in value_terms for t in terms], dtype=np.int64)
    builder = _PostingsBuilder()
    for lo in range(0, num_docs, _FILL_CHUNK_DOCS):
        size = min(lo + _FILL_CHUNK_DOCS, num_docs) - lo
        doc_parts, id_parts, times_parts = [], [], []
        for docs, ids, times in fills:
            first, last = np.searchsorted(docs, (lo, lo + size))
            chunk_ids = ids[first:last]
            token_counts = lengths[chunk_ids]
            doc_parts.append(np.repeat(docs[first:last] - lo, token_counts))
            # Token j of fill item i sits at offsets[value_i] + (j - where item i's tokens start).
            item_starts = np.cumsum(token_counts) - token_counts
            at = np.repeat(offsets[chunk_ids] - item_starts, token_counts) + np.arange(token_counts.sum())
            id_parts.append(flat[at])
            times_parts.append(np.full(len(at), times, dtype=np.int64))
        doc_of_token, ids, times = map(np.concatenate, (doc_parts, id_parts, times_parts))
        in_common = ids < dense
        table = np.bincount(
            ids[in_common] * size + doc_of_token[in_common], weights=times[in_common], minlength=dense * size
        )
        table = table.reshape(dense, size).astype(np.int64) + base[:, None]  # (term, doc): every doc has them
        rest = ~in_common
        docs, terms, tf = _count_terms(doc_of_token[rest], ids[rest], size, times[rest])
        # The dense block holds terms 0 .. dense-1, all the others come after: still sorted by term.
        builder.add(
            np.concatenate((np.tile(np.arange(size, dtype=np.int64), dense), docs)),
            np.concatenate((np.repeat(np.arange(dense, dtype=np.int64), size), terms)),
            np.concatenate((table.ravel(), tf)),
            table.sum(axis=0) + np.bincount(docs, weights=tf, minlength=size).astype(np.int64),
        )
    return builder.finish(vocab)


class _PostingsBuilder:
    """Postings gathered chunk by chunk of documents, then placed in term-major order."""

    def __init__(self) -> None:
        self.terms: list[np.ndarray] = []
        self.docs: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.lengths: list[np.ndarray] = []
        self.first_doc = 0

    def add(self, docs: np.ndarray, terms: np.ndarray, tf: np.ndarray, lengths: np.ndarray) -> None:
        """One chunk of documents: its (document, term, frequency) triples and each document's length.

        Documents are numbered from 0 within the chunk; triples come sorted by term, then document.
        """
        self.lengths.append(lengths)
        self.terms.append(terms.astype(np.int32))
        self.docs.append((docs + self.first_doc).astype(np.int32))
        self.counts.append(tf.astype(np.int32))
        self.first_doc += len(lengths)

    def finish(self, vocab: dict[str, int]) -> Postings:
        """The postings of all chunks, sorted by term and by document within a term; chunks are consumed."""
        if not self.lengths:
            empty = np.zeros(0, dtype=np.int32)
            return Postings(empty, empty, empty, np.zeros(0, dtype=np.int64), vocab)
        # Each term's postings get one block of the output, filled chunk by chunk (chunks come in
        # document order, so each block stays in document order).  A chunk's arrays are dropped once
        # placed, so this adds two arrays to the postings, not a global sort's four.
        df = np.zeros(len(vocab), dtype=np.int64)
        for chunk_terms in self.terms:
            df += np.bincount(chunk_terms, minlength=len(vocab))
        cursor = np.concatenate(([0], np.cumsum(df)[:-1])).astype(np.int64)
        sorted_docs = np.empty(int(df.sum()), dtype=np.int32)
        sorted_tf = np.empty_like(sorted_docs)
        while self.terms:
            chunk_terms, chunk_docs, chunk_tf = self.terms.pop(0), self.docs.pop(0), self.counts.pop(0)
            counts = np.bincount(chunk_terms, minlength=len(vocab))
            # A triple's place: its term's block, after what earlier chunks put there and after the
            # chunk's earlier triples of the same term.
            within = np.arange(len(chunk_terms)) - np.repeat(np.cumsum(counts) - counts, counts)
            places = cursor[chunk_terms] + within
            sorted_docs[places] = chunk_docs
            sorted_tf[places] = chunk_tf
            cursor += counts
        sorted_terms = np.repeat(np.arange(len(vocab), dtype=np.int32), df)
        return Postings(sorted_terms, sorted_docs, sorted_tf, np.concatenate(self.lengths), vocab)


#: Postings whose BM25 weights are computed at a time (in float64, then stored as float32).
_WEIGHT_SLICE = 1 << 18


class BM25Index:
    """An inverted index of precomputed BM25 weights (postings per term, as flat numpy arrays)."""

    def __init__(
        self,
        documents: Iterable[str] | Postings,
        *,
        k1: float = 0.9,
        b: float = 0.4,
        max_results: int = SEARCH_RETURN_N,
        cache_size: int = 4096,
    ) -> None:
        """Index ``documents``: strings (analysed here), or their postings already collected."""
        postings = documents if isinstance(documents, Postings) else collect_postings(documents)
        lengths = postings.lengths
        self.num_docs = len(lengths)
        self.max_results = max_results
        self.vocab = postings.vocab
        df = np.bincount(postings.terms, minlength=len(self.vocab))
        idf = np.log1p((self.num_docs - df + 0.5) / (df + 0.5))
        avg_len = lengths.mean() if self.num_docs else 0.0
        # idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_len)), in float64 in that order (so
        # the same floats as the expression), a slice of postings at a time: the build holds the float32
        # weights and one slice's temporaries, not five float64 arrays over all postings.
        self._weights = np.empty(len(postings.terms), dtype=np.float32)
        for lo in range(0, len(self._weights), _WEIGHT_SLICE):
            part = slice(lo, lo + _WEIGHT_SLICE)
            tf = postings.tf[part]
            weights = idf[postings.terms[part]]
            weights *= tf
            weights *= k1 + 1.0
            denominator = lengths[postings.docs[part]].astype(np.float64)
            denominator *= b
            denominator /= max(avg_len, 1e-9)
            denominator += 1.0 - b
            denominator *= k1
            denominator += tf
            weights /= denominator
            self._weights[part] = weights
        self._docs = postings.docs
        self._starts = np.concatenate(([0], np.cumsum(df))).astype(np.int64)
        self._cached_search = functools.lru_cache(maxsize=cache_size)(self._search)

    def search(self, query: str) -> tuple[int, ...]:
        """Indices of the best documents for ``query`` (score > 0), best first, at most ``max_results``."""
        return self._cached_search(query)

    def _search(self, query: str) -> tuple[int, ...]:
        counts = Counter(t for t in analyze(query) if t in self.vocab)
        if not counts:
            return ()
        scores = np.zeros(self.num_docs, dtype=np.float32)
        for term in sorted(counts):  # fixed order: float sums are identical in every process
            tid = self.vocab[term]
            lo, hi = self._starts[tid], self._starts[tid + 1]
            scores[self._docs[lo:hi]] += counts[term] * self._weights[lo:hi]
        hits = np.flatnonzero(scores > 0)
        if len(hits) > self.max_results:
            threshold = np.partition(scores[hits], len(hits) - self.max_results)[len(hits) - self.max_results]
            hits = hits[scores[hits] >= threshold]
        order = np.lexsort((hits, -scores[hits]))
        return tuple(int(i) for i in hits[order[: self.max_results]])

    def memory_bytes(self) -> int:
        """Bytes held by the posting arrays (the vocabulary dict is not counted)."""
        return self._weights.nbytes + self._docs.nbytes + self._starts.nbytes
