"""``clinitune rag ingest|list|search``: knowledge bases for retrieval-augmented generation."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

kb_app = typer.Typer(help="Knowledge bases for RAG: ingest text, markdown, JSONL or the ICD-10-CM table; list; search.",
                     no_args_is_help=True)

_WORKDIR = typer.Option("work", "--workdir", help="Working directory; knowledge bases live in <workdir>/kb.")
_ROOT = typer.Option(None, "--root", help="Knowledge-base store (a directory or object-store URI); overrides --workdir.")


def _store(workdir: str, root: Optional[str]):
    from clinitune.artifacts.knowledge_base import store_root
    from clinitune.rag.store import KbStore

    return KbStore(store_root(workdir, root))


@kb_app.command("ingest")
def ingest_cmd(
    paths: List[Path] = typer.Argument(None, help="Files or directories: .txt, .md, .jsonl (one {\"text\", \"id\"?, \"title\"?} per line)."),
    kb: str = typer.Option(..., "--kb", help="Knowledge base to add to (created when new)."),
    icd10: bool = typer.Option(False, "--icd10", help="Also ingest every billable ICD-10-CM code from the CMS table."),
    recreate: bool = typer.Option(False, "--recreate", help="Empty the knowledge base first."),
    chunk_chars: int = typer.Option(800, "--chunk-chars", help="Largest chunk, in characters."),
    overlap_chars: int = typer.Option(120, "--overlap-chars", help="Overlap between consecutive chunks of a document."),
    workdir: str = _WORKDIR,
    root: Optional[str] = _ROOT,
) -> None:
    """Chunk, embed (all-MiniLM-L6-v2, offline) and store documents; a running server sees them on its next request."""
    from clinitune.cli.common import progress
    from clinitune.rag.chunking import ChunkingOptions
    from clinitune.rag.ingest import ingest_kb

    options = ChunkingOptions(max_chars=chunk_chars, overlap_chars=overlap_chars)
    with progress(f"ingesting into '{kb}' (documents, chunks)") as (bar, task):
        report = ingest_kb(_store(workdir, root), kb, paths or [], icd10=icd10, options=options, recreate=recreate,
                           on_progress=lambda docs, chunks: bar.update(task, completed=chunks))
    typer.echo(f"ingested {report.documents:,} documents as {report.chunks:,} chunks into '{kb}' in {report.seconds:.1f}s; "
               f"it now holds {report.rows:,} chunks")
    built = [f"{k.replace('_index', '')} index {v}" for k, v in report.indexes.items() if k.endswith("_index")]
    if built:
        typer.echo("indexes: " + ", ".join(built))
    if report.rejected:
        typer.echo(f"rejected {len(report.rejected):,} record(s):", err=True)
        for r in report.rejected[:20]:
            typer.echo(f"  {r.where}: {r.reason}", err=True)
        if len(report.rejected) > 20:
            typer.echo(f"  ... and {len(report.rejected) - 20:,} more", err=True)


@kb_app.command("list")
def list_cmd(workdir: str = _WORKDIR, root: Optional[str] = _ROOT) -> None:
    """Knowledge bases and their sizes."""
    store = _store(workdir, root)
    names = store.names()
    if not names:
        typer.echo(f"no knowledge bases in {store.root}")
    for name in names:
        typer.echo(f"{name}\t{store.count(name):,} chunks")


@kb_app.command("search")
def search_cmd(
    query: str = typer.Argument(..., help="What to look for."),
    kb: str = typer.Option(..., "--kb", help="Knowledge base to search."),
    top_k: int = typer.Option(5, "--top-k", min=1, max=100, help="Results to show."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, vector or text."),
    workdir: str = _WORKDIR,
    root: Optional[str] = _ROOT,
) -> None:
    """Hybrid search, as the server does it (for checking a knowledge base)."""
    from clinitune.errors import UserError
    from clinitune.rag.retrieve import HybridRetriever

    if mode not in ("hybrid", "vector", "text"):
        raise UserError(f"--mode '{mode}' is not supported.", fix="use hybrid, vector or text.")
    for i, h in enumerate(HybridRetriever(_store(workdir, root)).retrieve(kb, query, top_k, mode=mode), 1):
        ranks = f"vector #{h.vector_rank or '-'}, text #{h.text_rank or '-'}"
        snippet = h.text if len(h.text) <= 160 else h.text[:159] + "…"
        typer.echo(f"[{i}] {h.chunk_id}  score {h.score:.4f} ({ranks})\n    {snippet}")


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="rag")
    app.add_typer(kb_app, name="kb", hidden=True, help="Old spelling of `clinitune rag`.")
