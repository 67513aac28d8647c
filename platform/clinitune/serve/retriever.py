"""The retriever deployment: hybrid search over the knowledge bases, scaled on its own.

It reads the LanceDB store with a zero consistency interval, so a ``clinitune rag ingest`` into a
served knowledge base (or a new knowledge base) is visible to the next request.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray import serve

from clinitune.errors import UserError
from clinitune.rag.embed import Embedder
from clinitune.rag.retrieve import HybridRetriever
from clinitune.rag.store import KbNotFound, KbStore
from clinitune.serve.config import ServeArgs


@serve.deployment(name="Retriever")
class Retriever:
    def __init__(self, args: dict[str, Any]):
        cfg = ServeArgs.model_validate(args)
        r = cfg.retrieval
        self.store = KbStore(cfg.kb_root(), vector_index_min_rows=r.vector_index_min_rows)
        self.embedder = Embedder()
        self.embedder.encode(["warm up"])  # load the model now, not on the first request
        self.retriever = HybridRetriever(self.store, self.embedder, candidates=r.candidates, rrf_k=r.rrf_k)

    async def retrieve(self, kb: str, query: str | list[str], top_k: int) -> dict[str, Any]:
        """``{"hits": [...]}`` or ``{"error": {...}}`` when the knowledge base does not exist.

        ``query`` may be several queries (one per problem of a note): their hits are interleaved by
        rank (``HybridRetriever.retrieve_many``).
        """
        queries = [query] if isinstance(query, str) else list(query)
        try:
            hits = await asyncio.to_thread(self.retriever.retrieve_many, kb, queries, top_k)
        except KbNotFound as err:
            return {"error": {"status": 404, "code": "knowledge_base_not_found", "param": "retrieval.kb", "message": str(err)}}
        except UserError as err:  # an invalid name, a knowledge base built with another embedding model
            return {"error": {"status": 400, "code": "invalid_knowledge_base", "param": "retrieval.kb", "message": str(err)}}
        return {"hits": [h.to_dict() for h in hits]}

    async def knowledge_bases(self) -> list[str]:
        return await asyncio.to_thread(self.store.names)
