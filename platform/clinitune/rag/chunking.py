"""Split documents into retrieval chunks.

Paragraphs are packed into chunks of at most ``max_chars`` characters; a paragraph longer than
that is split at sentence ends, and a sentence longer than that at word boundaries. Consecutive
chunks of one document overlap by up to ``overlap_chars`` characters (whole sentences) so a fact
that straddles a boundary is still retrievable. Markdown headings start a new chunk and become the
chunk's title (``Guide > Dosing``), which is also indexed.

Chunk ids are ``<doc_id>#<n>``: re-ingesting a document replaces its chunks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=\S)")


@dataclass(frozen=True)
class ChunkingOptions:
    """How documents are cut into chunks."""

    max_chars: int = 800
    overlap_chars: int = 120

    def __post_init__(self) -> None:
        from clinitune.errors import UserError

        if self.max_chars < 50:
            raise UserError(f"chunk size {self.max_chars} is too small. Fix: use at least 50 characters.")
        if not 0 <= self.overlap_chars < self.max_chars // 2:
            raise UserError(
                f"chunk overlap {self.overlap_chars} must be between 0 and half the chunk size ({self.max_chars // 2}).",
                fix="lower the overlap.",
            )


@dataclass(frozen=True)
class Document:
    """One source document: an id unique within its knowledge base, where it came from, its text."""

    doc_id: str
    source: str
    text: str
    title: str = ""
    markdown: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    source: str
    title: str
    text: str
    position: int


def _sections(doc: Document) -> list[tuple[str, list[str]]]:
    """(title, paragraphs) per section; markdown headings open sections, blank lines end paragraphs."""
    sections: list[tuple[str, list[str]]] = []
    path: list[tuple[int, str]] = []
    title = doc.title
    paragraphs: list[str] = []
    current: list[str] = []

    def end_paragraph() -> None:
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    for raw in doc.text.splitlines():
        line = raw.strip()
        heading = _HEADING.match(line) if doc.markdown else None
        if heading:
            end_paragraph()
            if paragraphs:
                sections.append((title, list(paragraphs)))
                paragraphs.clear()
            level, text = len(heading.group(1)), heading.group(2).strip()
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, text)]
            title = " > ".join([t for t in [doc.title] if t] + [t for _, t in path])
        elif not line:
            end_paragraph()
        else:
            current.append(line)
    end_paragraph()
    if paragraphs:
        sections.append((title, paragraphs))
    return sections


def _pieces(paragraph: str, max_chars: int) -> list[str]:
    """A paragraph as sentence-sized pieces, none longer than ``max_chars``."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    out: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            out.append(sentence)
    return out


def chunk_document(doc: Document, options: ChunkingOptions | None = None) -> list[Chunk]:
    """Cut ``doc`` into chunks (an empty document gives none)."""
    opts = options or ChunkingOptions()
    chunks: list[Chunk] = []

    def emit(title: str, parts: list[str]) -> None:
        text = " ".join(parts).strip()
        if text:
            chunks.append(Chunk(f"{doc.doc_id}#{len(chunks)}", doc.doc_id, doc.source, title, text, len(chunks)))

    for title, paragraphs in _sections(doc):
        pieces = [p for para in paragraphs for p in _pieces(para, opts.max_chars)]
        current: list[str] = []
        size = 0
        for piece in pieces:
            if current and size + 1 + len(piece) > opts.max_chars:
                emit(title, current)
                # carry whole trailing pieces as overlap, as long as they fit the budget
                carry: list[str] = []
                carried = 0
                for prev in reversed(current):
                    if carried + len(prev) + 1 > opts.overlap_chars or carried + len(prev) + len(piece) + 2 > opts.max_chars:
                        break
                    carry.insert(0, prev)
                    carried += len(prev) + 1
                current, size = carry, carried
            current.append(piece)
            size += len(piece) + 1
        emit(title, current)
    return chunks
