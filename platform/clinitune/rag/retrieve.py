"""Hybrid retrieval: full-text (BM25) and vector search, fused by reciprocal rank fusion.

RRF scores each chunk ``sum(1 / (k + rank))`` over the ranked lists it appears in (rank from 1),
so a chunk near the top of both lists beats one at the top of only one, and neither list's raw
scores (BM25 and cosine live on different scales) need calibrating. ``k = 60`` is the constant of
Cormack et al. (2009).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Literal

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


class HybridRetriever:
    """Retrieves from any knowledge base in ``store``; thread-safe."""

    def __init__(self, store: KbStore, embedder: Embedder | None = None, *, candidates: int = 20, rrf_k: int = 60):
        self.store = store
        self.embedder = embedder or Embedder()
        self.candidates = candidates
        self.rrf_k = rrf_k
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kb-search")

    def retrieve(self, kb: str, query: str, top_k: int = 4, *, mode: Mode = "hybrid") -> list[Hit]:
        self.store.table(kb)  # raises KbNotFound before any work
        n = max(top_k, self.candidates)
        text_future = self._pool.submit(self.store.text_search, kb, query, n) if mode in ("hybrid", "text") else None
        vector_rows: list[dict] = []
        if mode in ("hybrid", "vector"):
            vector_rows = self.store.vector_search(kb, self.embedder.encode_one(query), n)
        text_rows = text_future.result() if text_future is not None else []
        rows = {r["chunk_id"]: r for r in [*text_rows, *vector_rows]}
        v_rank = {r["chunk_id"]: i for i, r in enumerate(vector_rows, 1)}
        t_rank = {r["chunk_id"]: i for i, r in enumerate(text_rows, 1)}
        fused = rrf_fuse([[r["chunk_id"] for r in vector_rows], [r["chunk_id"] for r in text_rows]], self.rrf_k)
        hits = []
        for cid, score in fused[:top_k]:
            r = rows[cid]
            hits.append(Hit(cid, r["doc_id"], r["source"], r["title"], r["text"], round(score, 6), v_rank.get(cid), t_rank.get(cid)))
        return hits
