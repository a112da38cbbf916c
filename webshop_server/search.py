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
from collections.abc import Iterable, Iterator
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
    terms, docs, counts, lengths = [], [], [], []
    first_doc = 0
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
        ids, doc_of_token = ids[kept], doc_of_token[kept]
        lengths.append(np.bincount(doc_of_token, minlength=len(chunk)))
        # Sorting the document-major key groups each document's terms; the counts are the frequencies.
        keys, tf = np.unique(doc_of_token * max(len(vocab), 1) + ids, return_counts=True)
        chunk_docs, chunk_terms = np.divmod(keys, max(len(vocab), 1))
        terms.append(chunk_terms.astype(np.int32))
        docs.append((chunk_docs + first_doc).astype(np.int32))
        counts.append(tf.astype(np.int32))
        first_doc += len(chunk)
    if not lengths:
        empty = np.zeros(0, dtype=np.int32)
        return Postings(empty, empty, empty, np.zeros(0, dtype=np.int64), vocab)
    # Term-major order by counting sort: each term's postings get a block of the output, filled chunk by
    # chunk (chunks come in document order, so each block stays in document order).  A chunk's arrays
    # are dropped once placed, so the sort adds two arrays to the postings, not a global argsort's four.
    df = np.zeros(len(vocab), dtype=np.int64)
    for chunk_terms in terms:
        df += np.bincount(chunk_terms, minlength=len(vocab))
    cursor = np.concatenate(([0], np.cumsum(df)[:-1]))
    sorted_docs = np.empty(int(df.sum()), dtype=np.int32)
    sorted_tf = np.empty_like(sorted_docs)
    while terms:
        chunk_terms, chunk_docs, chunk_tf = terms.pop(0), docs.pop(0), counts.pop(0)
        order = np.argsort(chunk_terms, kind="stable")
        chunk_terms = chunk_terms[order]
        within = np.arange(len(order)) - np.searchsorted(chunk_terms, chunk_terms)
        places = cursor[chunk_terms] + within
        sorted_docs[places] = chunk_docs[order]
        sorted_tf[places] = chunk_tf[order]
        cursor += np.bincount(chunk_terms, minlength=len(vocab))
    sorted_terms = np.repeat(np.arange(len(vocab), dtype=np.int32), df)
    return Postings(sorted_terms, sorted_docs, sorted_tf, np.concatenate(lengths), vocab)


#: Postings whose BM25 weights are computed at a time (in float64, then stored as float32).
_WEIGHT_SLICE = 1 << 18


class BM25Index:
    """An inverted index of precomputed BM25 weights (postings per term, as flat numpy arrays)."""

    def __init__(
        self,
        documents: Iterable[str],
        *,
        k1: float = 0.9,
        b: float = 0.4,
        max_results: int = SEARCH_RETURN_N,
        cache_size: int = 4096,
    ) -> None:
        postings = collect_postings(documents)
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
