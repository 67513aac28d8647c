"""Chunking: paragraphs packed under the size limit, long text split at sentences and words, overlap,
markdown sections as titles, stable chunk ids."""

from __future__ import annotations

import pytest

from clinitune.errors import UserError
from clinitune.rag.chunking import ChunkingOptions, Document, chunk_document


def test_short_document_is_one_chunk():
    chunks = chunk_document(Document("d1", "f.txt", "Warfarin needs INR checks.\n\nGive vitamin K if INR > 10.", title="anticoag"))
    assert [c.chunk_id for c in chunks] == ["d1#0"]
    assert chunks[0].text == "Warfarin needs INR checks. Give vitamin K if INR > 10."
    assert chunks[0].title == "anticoag" and chunks[0].doc_id == "d1"


def test_long_text_is_split_under_the_limit_with_overlap():
    sentences = [f"Sentence number {i} talks about dosing rule {i}." for i in range(60)]
    doc = Document("d", "f.txt", " ".join(sentences))
    opts = ChunkingOptions(max_chars=300, overlap_chars=80)
    chunks = chunk_document(doc, opts)
    assert len(chunks) > 5
    assert all(len(c.text) <= 300 for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for a, b in zip(chunks, chunks[1:]):  # consecutive chunks share a sentence
        assert a.text.split(". ")[-1].rstrip(".") in b.text
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)  # nothing lost


def test_a_word_longer_than_the_limit_is_cut_hard():
    doc = Document("d", "f.txt", "x" * 250 + " tail")
    chunks = chunk_document(doc, ChunkingOptions(max_chars=100, overlap_chars=0))
    assert all(len(c.text) <= 100 for c in chunks)
    assert "".join(c.text.replace(" ", "") for c in chunks) == "x" * 250 + "tail"


def test_markdown_headings_become_titles():
    text = "# Anticoagulation\n\nIntro text.\n\n## Reversal\n\nVitamin K.\n\n### Bleeding\n\nGive PCC.\n\n## Monitoring\n\nINR daily."
    chunks = chunk_document(Document("p", "p.md", text, title="policy", markdown=True))
    titles = [c.title for c in chunks]
    assert titles == ["policy > Anticoagulation", "policy > Anticoagulation > Reversal",
                      "policy > Anticoagulation > Reversal > Bleeding", "policy > Anticoagulation > Monitoring"]
    assert chunks[2].text == "Give PCC."


def test_empty_document_gives_no_chunks():
    assert chunk_document(Document("e", "e.txt", "  \n\n ")) == []


@pytest.mark.parametrize("kwargs", [{"max_chars": 10}, {"max_chars": 100, "overlap_chars": 60}, {"overlap_chars": -1}])
def test_bad_options_are_user_errors(kwargs):
    with pytest.raises(UserError):
        ChunkingOptions(**kwargs)
