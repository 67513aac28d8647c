"""LanceDB storage for knowledge bases: one table per knowledge base under a root directory.

Each row is a chunk: ids, source, title, the chunk text (returned as the citation snippet), the
text that is indexed (title + text) and its 384-d embedding. A table carries two indexes: LanceDB's
native full-text (BM25) index on ``search_text`` and, once it holds ``vector_index_min_rows`` rows,
an IVF index with scalar-quantised vectors (cosine). Rows added after an index was built are
searched exhaustively until :meth:`KbStore.maintain` folds them into the indexes, so results are
always complete.

Readers open the database with a zero read-consistency interval: every query sees the newest
committed version, so an ingest is visible to the next request without a restart. ``root`` may be
a local directory or an object-store URI (``s3://...``) for a store shared by a cluster.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from clinitune.errors import UserError
from clinitune.rag.chunking import Chunk
from clinitune.rag.embed import DIM, MODEL_NAME

_KB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
RESULT_COLUMNS = ["chunk_id", "doc_id", "source", "title", "text"]
SCHEMA_META = {b"clinitune.embedding_model": MODEL_NAME.encode(), b"clinitune.embedding_dim": str(DIM).encode()}


class KbNotFound(UserError):
    """A knowledge base that does not exist was named."""

    def __init__(self, name: str, available: Sequence[str], root: str | None = None):
        self.name = name
        have = ", ".join(sorted(available)) or "none yet"
        where = f" in '{root}'" if root else ""
        super().__init__(
            f"knowledge base '{name}' does not exist{where} (available: {have}).",
            fix=f"ingest it with 'clinitune rag ingest --kb {name}{' --root ' + root if root else ''} PATH...' "
                "(--icd10 instead of PATH for the ICD-10-CM table), or name an existing knowledge base.",
        )


def validate_kb_name(name: str) -> str:
    if not isinstance(name, str) or not _KB_NAME.match(name):
        raise UserError(
            f"knowledge base name {name!r} is invalid.",
            fix="use 1-64 letters, digits, '-' or '_', starting with a letter or digit.",
        )
    return name


def _schema() -> pa.Schema:
    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("title", pa.string()),
            ("text", pa.string()),
            ("search_text", pa.string()),
            ("position", pa.int32()),
            ("ingested_at", pa.timestamp("ms", tz="UTC")),
            ("vector", pa.list_(pa.float32(), DIM)),
        ],
        metadata=SCHEMA_META,
    )


def search_text(chunk: Chunk) -> str:
    """What is indexed and embedded for a chunk: its title (section path) and its text."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


def content_fingerprint(chunks) -> str:
    """Hash of (chunk_id, title, text) triples, in any order."""
    import hashlib

    h = hashlib.sha256()
    for cid, title, text in sorted(chunks):
        h.update(f"{cid}\0{title}\0{text}\n".encode())
    return h.hexdigest()[:24]


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class KbStore:
    """Knowledge bases (LanceDB tables) under ``root``."""

    def __init__(self, root: str | Path, *, vector_index_min_rows: int = 10_000, nprobes: int = 20):
        self.root = str(root)
        self.vector_index_min_rows = vector_index_min_rows
        self.nprobes = nprobes
        self._db = None
        self._tables: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- connection and tables -------------------------------------------------------------
    def _conn(self):
        with self._lock:
            if self._db is None:
                import lancedb

                if "://" not in self.root:
                    Path(self.root).mkdir(parents=True, exist_ok=True)
                self._db = lancedb.connect(self.root, read_consistency_interval=timedelta(0))
            return self._db

    def names(self) -> list[str]:
        """Every knowledge base in the store, sorted."""
        db = self._conn()
        names: list[str] = []
        token = None
        while True:
            resp = db.list_tables(page_token=token)
            names.extend(resp.tables)
            token = getattr(resp, "page_token", None)
            if not token:
                return sorted(names)

    def exists(self, name: str) -> bool:
        return name in self._tables or name in self.names()

    def table(self, name: str):
        """The open table of knowledge base ``name``; :class:`KbNotFound` when there is none."""
        validate_kb_name(name)
        cached = self._tables.get(name)
        if cached is not None:
            return cached
        names = self.names()
        if name not in names:
            raise KbNotFound(name, names, self.root)
        tbl = self._conn().open_table(name)
        meta = tbl.schema.metadata or {}
        model = meta.get(b"clinitune.embedding_model", b"").decode()
        if model != MODEL_NAME:
            raise UserError(f"knowledge base '{name}' was embedded with '{model or 'an unknown model'}', not {MODEL_NAME}.",
                            fix=f"re-create it: clinitune rag ingest --kb {name} --recreate ...")
        with self._lock:
            self._tables[name] = tbl
        return tbl

    def create(self, name: str, *, recreate: bool = False):
        validate_kb_name(name)
        db = self._conn()
        with self._lock:
            self._tables.pop(name, None)
        mode = "overwrite" if recreate else "create"
        if not recreate and name in self.names():
            return self.table(name)
        tbl = db.create_table(name, schema=_schema(), mode=mode)
        with self._lock:
            self._tables[name] = tbl
        return tbl

    def count(self, name: str) -> int:
        return self.table(name).count_rows()

    def fingerprint(self, name: str) -> str:
        """A content hash of knowledge base ``name`` (its chunks' ids, titles and texts): its version,
        for caches that depend on what it holds (retrieval-aware training data)."""
        rows = self.table(name).search().select(["chunk_id", "title", "text"]).limit(None).to_arrow().to_pydict()
        return content_fingerprint(zip(rows["chunk_id"], rows["title"], rows["text"]))

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, name: str, chunks: Sequence[Chunk], vectors: np.ndarray, *, append: bool = False) -> int:
        """Insert or replace the chunks of the documents in ``chunks`` in one commit.

        Earlier chunks of those documents that the new chunking no longer produces are deleted in
        the same commit, so a reader never sees a document half-replaced. ``append=True`` skips
        the replacement (for documents known to be new: an empty or re-created knowledge base).
        """
        if not chunks:
            return 0
        if vectors.shape != (len(chunks), DIM):
            raise ValueError(f"expected {len(chunks)} vectors of dimension {DIM}, got {vectors.shape}")
        now = datetime.now(timezone.utc)
        data = pa.table(
            {
                "chunk_id": [c.chunk_id for c in chunks],
                "doc_id": [c.doc_id for c in chunks],
                "source": [c.source for c in chunks],
                "title": [c.title for c in chunks],
                "text": [c.text for c in chunks],
                "search_text": [search_text(c) for c in chunks],
                "position": pa.array([c.position for c in chunks], pa.int32()),
                "ingested_at": pa.array([now] * len(chunks), pa.timestamp("ms", tz="UTC")),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float32).ravel()), DIM),
            },
            schema=_schema(),
        )
        tbl = self.table(name)
        if append:
            tbl.add(data)
            return len(chunks)
        doc_ids = sorted({c.doc_id for c in chunks})
        stale = f"doc_id IN ({', '.join(_sql_str(d) for d in doc_ids)})"
        (
            tbl.merge_insert("chunk_id")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(stale)
            .execute(data)
        )
        return len(chunks)

    def maintain(self, name: str) -> dict[str, Any]:
        """Build missing indexes and fold new rows into existing ones; returns what was done."""
        from lancedb.index import FTS, IvfSq

        tbl = self.table(name)
        kinds = {tuple(ix.columns): ix.index_type for ix in tbl.list_indices()}
        done: dict[str, Any] = {"rows": tbl.count_rows()}
        if ("search_text",) not in kinds:
            tbl.create_index("search_text", config=FTS(with_position=False))
            done["fts_index"] = "created"
        if ("vector",) not in kinds and done["rows"] >= self.vector_index_min_rows:
            tbl.create_index("vector", config=IvfSq(distance_type="cosine"))
            done["vector_index"] = "created"
        tbl.optimize()
        return done

    # -- reading ---------------------------------------------------------------------------
    def vector_search(self, name: str, vector: np.ndarray, k: int) -> list[dict]:
        q = (
            self.table(name)
            .search(np.asarray(vector, dtype=np.float32), vector_column_name="vector", query_type="vector")
            .distance_type("cosine")
            .nprobes(self.nprobes)
            .limit(k)
            .select([*RESULT_COLUMNS, "_distance"])  # naming the score column keeps lance from warning per query
        )
        return q.to_list()

    def documents(self, name: str, doc_ids: Sequence[str]) -> list:
        """The first chunk of each named document, as retrieval hits (score 0), in the order asked;
        documents the knowledge base lacks are left out."""
        from clinitune.rag.retrieve import Hit

        if not doc_ids:
            return []
        where = f"doc_id IN ({', '.join(_sql_str(d) for d in doc_ids)}) AND position = 0"
        rows = self.table(name).search().where(where).select(RESULT_COLUMNS).limit(None).to_list()
        by_doc = {r["doc_id"]: r for r in rows}
        return [Hit(r["chunk_id"], r["doc_id"], r["source"], r["title"], r["text"], 0.0, None, None)
                for d in doc_ids if (r := by_doc.get(d)) is not None]

    def delete_documents(self, name: str, doc_ids: Sequence[str]) -> int:
        """Remove every chunk of the named documents; returns how many rows went."""
        if not doc_ids:
            return 0
        tbl = self.table(name)
        before = tbl.count_rows()
        tbl.delete(f"doc_id IN ({', '.join(_sql_str(d) for d in doc_ids)})")
        return before - tbl.count_rows()

    def text_search(self, name: str, query: str, k: int) -> list[dict]:
        if not query.strip():
            return []
        q = self.table(name).search(query, query_type="fts", fts_columns="search_text").limit(k).select([*RESULT_COLUMNS, "_score"])
        return q.to_list()
