"""Ingest sources into a knowledge base: read, chunk, embed in batches, upsert, index.

Every record read ends up ingested or in ``IngestReport.rejected`` with a reason (file and line,
never its text). Documents are committed batch by batch, so a server retrieving from the same
knowledge base sees them as they land; indexes are brought up to date at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Iterable

from clinitune.errors import UserError
from clinitune.rag.chunking import Chunk, ChunkingOptions, Document, chunk_document
from clinitune.rag.embed import Embedder
from clinitune.rag.sources import Rejected, check_paths, icd10_documents, read_documents
from clinitune.rag.store import KbStore, search_text, validate_kb_name


@dataclass
class IngestReport:
    kb: str
    documents: int = 0
    chunks: int = 0
    rows: int = 0  # rows in the knowledge base afterwards
    rejected: list[Rejected] = field(default_factory=list)
    indexes: dict = field(default_factory=dict)
    seconds: float = 0.0


def _unique(docs: Iterable[Document], rejected: list[Rejected]) -> Iterable[Document]:
    seen: dict[str, str] = {}
    for d in docs:
        if d.doc_id in seen:
            rejected.append(Rejected(f"{d.source} (id {d.doc_id})", f"duplicate document id; first seen in {seen[d.doc_id]}"))
            continue
        seen[d.doc_id] = d.source
        yield d


def ingest_kb(
    store: KbStore,
    kb: str,
    paths: Iterable[str | Path] = (),
    *,
    icd10: bool = False,
    icd10_categories: Collection[str] | None = None,
    icd10_exclude: Collection[str] = (),
    options: ChunkingOptions | None = None,
    embedder: Embedder | None = None,
    recreate: bool = False,
    batch_chunks: int = 512,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Ingest ``paths`` (and the ICD-10-CM table when ``icd10``) into knowledge base ``kb``.

    ``icd10_categories`` limits the table to those 3-character categories; ``icd10_exclude`` leaves
    out the listed codes.

    ``on_progress(documents, chunks)`` is called after each committed batch.
    """
    validate_kb_name(kb)
    paths = [Path(p) for p in paths]
    if not paths and not icd10:
        raise UserError("nothing to ingest: no source paths were given.", fix="pass files or directories, or --icd10.")
    check_paths(paths)
    started = time.perf_counter()
    embedder = embedder or Embedder()
    report = IngestReport(kb)
    tbl = store.create(kb, recreate=recreate)
    append = tbl.count_rows() == 0  # every document is new: no replacement needed

    def sources() -> Iterable[Document]:
        if icd10:
            yield from icd10_documents(icd10_categories, exclude=icd10_exclude)
        yield from read_documents(paths, report.rejected)

    pending: list[Chunk] = []

    def flush() -> None:
        if pending:
            vectors = embedder.encode([search_text(c) for c in pending])
            store.upsert(kb, pending, vectors, append=append)
            report.chunks += len(pending)
            pending.clear()
            if on_progress:
                on_progress(report.documents, report.chunks)

    for doc in _unique(sources(), report.rejected):
        chunks = chunk_document(doc, options)
        if not chunks:
            report.rejected.append(Rejected(f"{doc.source} (id {doc.doc_id})", "no text left after chunking"))
            continue
        report.documents += 1
        pending.extend(chunks)  # a document's chunks always land in one commit
        if len(pending) >= batch_chunks:
            flush()
    flush()
    if report.documents == 0:
        first = f" (first: {report.rejected[0].where}: {report.rejected[0].reason})" if report.rejected else ""
        raise UserError(f"no document could be ingested into '{kb}': {len(report.rejected)} rejected{first}.",
                        fix="check the sources' format (text, markdown or JSONL with a 'text' field).")
    report.indexes = store.maintain(kb)
    report.rows = report.indexes.get("rows", store.count(kb))
    report.seconds = time.perf_counter() - started
    return report
