"""Put retrieved passages in front of the model and describe them as citations.

The same functions serve the HTTP API and offline evaluation (fine-tuned + RAG accuracy), so both
see identical prompts.
"""

from __future__ import annotations

from typing import Any, Sequence

from clinitune.rag.retrieve import Hit

# Short: every served prompt with retrieval (and every retrieval-aware training prompt) carries it.
INSTRUCTION = "Reference passages (cite as [1] those you use; ignore those that do not help):"


def query_of(messages: Sequence[dict[str, Any]]) -> str:
    """The retrieval query of a chat: its last non-empty user message (else the last message)."""
    for m in reversed(messages):
        if m["role"] == "user" and str(m["content"]).strip():
            return str(m["content"])
    return str(messages[-1]["content"])


def queries_of(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The retrieval queries of a chat: one per problem of the note in its last user message
    (``clinitune.rag.query.clinical_queries``), or that message itself when it holds no note."""
    from clinitune.rag.query import clinical_queries

    return clinical_queries(query_of(messages))


def context_block(hits: Sequence[Hit], max_chars: int = 600) -> str:
    lines = [INSTRUCTION, ""]
    for i, h in enumerate(hits, 1):
        text = h.text if len(h.text) <= max_chars else h.text[: max_chars - 1].rstrip() + "…"
        label = f"{h.title} — " if h.title else ""
        lines.append(f"[{i}] {label}{text}")
    return "\n".join(lines)


def augment_messages(messages: list[dict[str, Any]], hits: Sequence[Hit], max_chars: int = 600) -> list[dict[str, Any]]:
    """Chat messages with the passages in the system message (appended to an existing one)."""
    if not hits:
        return list(messages)
    block = context_block(hits, max_chars)
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{block}"
    else:
        out.insert(0, {"role": "system", "content": block})
    return out


def augment_prompt(prompt: str, hits: Sequence[Hit], max_chars: int = 600) -> str:
    """A completion prompt with the passages before it."""
    if not hits:
        return prompt
    return f"{context_block(hits, max_chars)}\n\n{prompt}"


def citations(hits: Sequence[Hit], kb: str, snippet_chars: int = 240) -> list[dict[str, Any]]:
    """The ``citations`` field of a response: one entry per passage, numbered as in the prompt."""
    out = []
    for i, h in enumerate(hits, 1):
        snippet = h.text if len(h.text) <= snippet_chars else h.text[: snippet_chars - 1].rstrip() + "…"
        out.append({
            "index": i,
            "kb": kb,
            "chunk_id": h.chunk_id,
            "doc_id": h.doc_id,
            "source": h.source,
            "title": h.title,
            "snippet": snippet,
            "score": h.score,
        })
    return out
