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
from collections.abc import Sequence

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


#: Documents tokenised per ``findall`` call when building an index (bounds the memory of one pass).
_INDEX_CHUNK = 20_000
#: Every byte but ``[a-z0-9]`` to a space, so ``bytes.split`` gives ``_TOKEN``'s tokens of a lower-cased,
#: UTF-8 encoded text (non-ASCII characters are only in bytes >= 0x80, so they delimit there too).
_DELIMITERS = bytes(c if chr(c) in "abcdefghijklmnopqrstuvwxyz0123456789" else 32 for c in range(256))


def _index_terms(documents: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Every document's term ids in order (concatenated), each document's term count, and the vocabulary.

    The same terms as ``analyze`` per document, computed in bulk: each document is tokenised by C
    string methods (lower, encode, translate, split) instead of a regular expression, each *distinct*
    token is analysed once per chunk, and the tokens are mapped to term ids in C (``np.fromiter`` over a
    dict lookup).  Per-token Python and regular expressions were most of a large catalogue's start-up.
    Term ids are given in order of first appearance, so the index is the same in every process.
    """
    vocab: dict[str, int] = {}
    token_ids: dict[bytes, int] = {}  # -1: a stop word
    parts: list[np.ndarray] = []
    lengths = np.zeros(len(documents), dtype=np.int64)
    for start in range(0, len(documents), _INDEX_CHUNK):
        chunk = [
            doc.lower().encode().translate(_DELIMITERS).split()
            for doc in documents[start : start + _INDEX_CHUNK]
        ]
        tokens = list(itertools.chain.from_iterable(chunk))
        for token in dict.fromkeys(tokens):  # distinct tokens, in order of first appearance
            if token not in token_ids:
                word = token.decode()
                token_ids[token] = -1 if word in STOP_WORDS else vocab.setdefault(_term(word), len(vocab))
        ids = np.fromiter(map(token_ids.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        doc_of_token = np.repeat(np.arange(len(chunk)), [len(doc_tokens) for doc_tokens in chunk])
        kept = ids >= 0
        lengths[start : start + len(chunk)] = np.bincount(doc_of_token[kept], minlength=len(chunk))
        parts.append(ids[kept])
    term_ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return term_ids, lengths, vocab


class BM25Index:
    """An inverted index of precomputed BM25 weights (postings per term, as flat numpy arrays)."""

    def __init__(
        self,
        documents: Sequence[str],
        *,
        k1: float = 0.9,
        b: float = 0.4,
        max_results: int = SEARCH_RETURN_N,
        cache_size: int = 4096,
    ) -> None:
        self.num_docs = len(documents)
        self.max_results = max_results
        term_ids, lengths, vocab = _index_terms(documents)
        self.vocab = vocab
        doc_ids = np.repeat(np.arange(self.num_docs, dtype=np.int64), lengths)
        # Count (term, doc) pairs: sorting the combined key groups each term's postings by document.
        keys, tf = np.unique(term_ids * max(self.num_docs, 1) + doc_ids, return_counts=True)
        post_terms, post_docs = np.divmod(keys, max(self.num_docs, 1))
        df = np.bincount(post_terms, minlength=len(vocab))
        idf = np.log1p((self.num_docs - df + 0.5) / (df + 0.5))
        avg_len = lengths.mean() if self.num_docs else 0.0
        norm = k1 * (1.0 - b + b * lengths[post_docs] / max(avg_len, 1e-9))
        self._weights = (idf[post_terms] * tf * (k1 + 1.0) / (tf + norm)).astype(np.float32)
        self._docs = post_docs.astype(np.int32)
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
