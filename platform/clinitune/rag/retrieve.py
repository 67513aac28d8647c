"""Hybrid retrieval: full-text (BM25) and vector search, fused by reciprocal rank fusion.

RRF scores each chunk ``sum(1 / (k + rank))`` over the ranked lists it appears in (rank from 1),
so a chunk near the top of both lists beats one at the top of only one, and neither list's raw
scores (BM25 and cosine live on different scales) need calibrating. ``k = 60`` is the constant of
Cormack et al. (2009).

The fused candidates are then re-ranked by ``rrf / best rrf + title_weight * F1(query words,
title words)``: when near-identical entries tie in both lists (``... with coma`` and ``...
without coma``; ``upper lobe, right`` and ``upper lobe, unspecified``), the one whose title says
what the query says comes first. For chunks of long documents titles overlap little with any
query, and fusion decides.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Literal, Sequence

from clinitune.rag.embed import Embedder
from clinitune.rag.store import KbStore

Mode = Literal["hybrid", "vector", "text"]


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its fused score and its rank in each list (None: not in that list)."""

    chunk_id: str
    doc_id: str
    source: str
    title: str
    text: str
    score: float
    vector_rank: int | None
    text_rank: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def rrf_fuse(ranked_lists: list[list[str]], k: int = 60) -> list[tuple[str, float]]:
    """Fuse ranked id lists; ties keep the order of first appearance (list order, then rank)."""
    scores: dict[str, float] = {}
    for ranked in ranked_lists:
        for rank, item in enumerate(ranked, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(str(text).lower()))


def _overlap(query: set[str], title: set[str]) -> float:
    """F1 of the query's words against the title's."""
    common = len(query & title)
    if not common:
        return 0.0
    p, r = common / len(title), common / len(query)
    return 2 * p * r / (p + r)


class HybridRetriever:
    """Retrieves from any knowledge base in ``store``; thread-safe."""

    def __init__(self, store: KbStore, embedder: Embedder | None = None, *, candidates: int = 20, rrf_k: int = 60,
                 title_weight: float = 1.0):
        self.store = store
        self.embedder = embedder or Embedder()
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.title_weight = title_weight
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kb-search")

    def retrieve(self, kb: str, query: str, top_k: int = 4, *, mode: Mode = "hybrid") -> list[Hit]:
        self.store.table(kb)  # raises KbNotFound before any work
        vector = self.embedder.encode_one(query) if mode in ("hybrid", "vector") else None
        return self._search(kb, query, vector, top_k, mode)

    def retrieve_many(self, kb: str, queries: Sequence[str], top_k: int = 4, *, mode: Mode = "hybrid") -> list[Hit]:
        """One ranked list for several queries (one per problem of a note): each query's best hit in
        query order, then each one's second best, and so on, without repeats, up to ``top_k``.

        Interleaving by rank gives every problem its best passage before any problem gets a second;
        the queries are embedded in one batch.
        """
        queries = [q for q in queries if q and q.strip()]
        if len(queries) <= 1:
            return self.retrieve(kb, queries[0] if queries else "", top_k, mode=mode)
        self.store.table(kb)
        vectors = self.embedder.encode(list(queries)) if mode in ("hybrid", "vector") else [None] * len(queries)
        lists = [self._search(kb, q, v, top_k, mode) for q, v in zip(queries, vectors)]
        out: list[Hit] = []
        seen: set[str] = set()
        for rank in range(top_k):
            for hits in lists:
                if rank < len(hits) and hits[rank].chunk_id not in seen:
                    seen.add(hits[rank].chunk_id)
                    out.append(hits[rank])
                    if len(out) == top_k:
                        return out
        return out

    def _search(self, kb: str, query: str, vector, top_k: int, mode: Mode) -> list[Hit]:
        n = max(top_k, self.candidates)
        text_future = self._pool.submit(self.store.text_search, kb, query, n) if mode in ("hybrid", "text") else None
        vector_rows: list[dict] = []
        if vector is not None:
            vector_rows = self.store.vector_search(kb, vector, n)
        text_rows = text_future.result() if text_future is not None else []
        rows = {r["chunk_id"]: r for r in [*text_rows, *vector_rows]}
        v_rank = {r["chunk_id"]: i for i, r in enumerate(vector_rows, 1)}
        t_rank = {r["chunk_id"]: i for i, r in enumerate(text_rows, 1)}
        fused = rrf_fuse([[r["chunk_id"] for r in vector_rows], [r["chunk_id"] for r in text_rows]], self.rrf_k)
        if fused and self.title_weight:
            best = fused[0][1]
            q = _words(query)
            rescored = [(cid, s / best + self.title_weight * _overlap(q, _words(rows[cid]["title"]))) for cid, s in fused]
            fused = sorted(rescored, key=lambda kv: -kv[1])  # stable: ties keep the fusion order
        hits = []
        for cid, score in fused[:top_k]:
            r = rows[cid]
            hits.append(Hit(cid, r["doc_id"], r["source"], r["title"], r["text"], round(score, 6), v_rank.get(cid), t_rank.get(cid)))
        return hits
