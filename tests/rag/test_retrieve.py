"""Hybrid retrieval on a real LanceDB store with the real MiniLM embedder."""

from __future__ import annotations

import json

import pytest

from clinitune.errors import UserError
from clinitune.rag import Embedder, HybridRetriever, KbNotFound, KbStore, ingest_kb, rrf_fuse

DOCS = [
    {"id": "E11.9", "title": "ICD-10-CM E11.9", "text": "E11.9 Type 2 diabetes mellitus without complications"},
    {"id": "I10", "title": "ICD-10-CM I10", "text": "I10 Essential (primary) hypertension"},
    {"id": "J45.909", "title": "ICD-10-CM J45.909", "text": "J45.909 Unspecified asthma, uncomplicated"},
    {"id": "N18.3", "title": "ICD-10-CM N18.3", "text": "N18.30 Chronic kidney disease, stage 3 unspecified"},
    {"id": "warfarin", "title": "Anticoagulation policy", "text": "Hold warfarin and give vitamin K when the INR is above 10."},
    {"id": "metformin", "title": "Formulary", "text": "Metformin is the first-line drug for adults with high blood sugar."},
]


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("kb")
    src = root / "src.jsonl"
    src.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n")
    store = KbStore(root / "db", vector_index_min_rows=5)
    report = ingest_kb(store, "ref", [src], embedder=embedder)
    assert report.documents == 6 and report.rows == 6 and not report.rejected
    assert report.indexes.get("fts_index") == "created" and report.indexes.get("vector_index") == "created"
    return store, root


def test_rrf_rewards_agreement():
    fused = rrf_fuse([["a", "b", "c"], ["b", "d"]], k=60)
    assert [i for i, _ in fused] == ["b", "a", "d", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_lexical_and_semantic_queries_both_find_the_right_chunk(kb, embedder):
    store, _ = kb
    r = HybridRetriever(store, embedder, candidates=6)
    code = r.retrieve("ref", "J45.909", top_k=3)
    assert code[0].doc_id == "J45.909" and code[0].text_rank == 1  # exact code: full-text wins
    meaning = r.retrieve("ref", "which medicine do we start for sugar disease in grown-ups", top_k=3)
    assert meaning[0].doc_id == "metformin" and meaning[0].vector_rank == 1  # no shared words needed
    both = r.retrieve("ref", "warfarin reversal vitamin K", top_k=2)
    assert both[0].doc_id == "warfarin" and both[0].vector_rank == 1 and both[0].text_rank == 1
    assert both[0].score > both[1].score


def test_modes_and_odd_queries(kb, embedder):
    store, _ = kb
    r = HybridRetriever(store, embedder, candidates=6)
    assert all(h.text_rank is None for h in r.retrieve("ref", "hypertension", top_k=3, mode="vector"))
    assert all(h.vector_rank is None for h in r.retrieve("ref", "hypertension", top_k=3, mode="text"))
    assert len(r.retrieve("ref", '"(AND OR* ?: -', top_k=2)) == 2  # query syntax is not interpreted
    assert len(r.retrieve("ref", "   ", top_k=2)) == 2  # vector side still answers


def test_reingest_replaces_a_document_and_is_visible_to_an_open_reader(kb, embedder, tmp_path):
    store, root = kb
    reader = HybridRetriever(KbStore(root / "db"), embedder, candidates=10)  # e.g. the serving replica
    assert reader.retrieve("ref", "vitamin K", top_k=1)[0].doc_id == "warfarin"
    long_policy = "# Warfarin\n\n" + "\n\n".join(f"Rule {i}: apixaban replaces warfarin in case {i}." for i in range(40))
    (tmp_path / "warfarin.md").write_text(long_policy)
    (tmp_path / "extra.jsonl").write_text(json.dumps({"id": "warfarin", "text": "Warfarin was withdrawn from the formulary."}) + "\n")
    ingest_kb(store, "ref", [tmp_path / "extra.jsonl"], embedder=embedder)
    hits = reader.retrieve("ref", "warfarin", top_k=10)
    assert [h.text for h in hits if h.doc_id == "warfarin"] == ["Warfarin was withdrawn from the formulary."]
    report = ingest_kb(store, "ref", [tmp_path / "warfarin.md"], embedder=embedder)
    assert report.chunks > 1
    assert any(h.doc_id == "warfarin.md" for h in reader.retrieve("ref", "apixaban", top_k=3))


def test_unknown_and_invalid_knowledge_bases(kb, embedder):
    store, _ = kb
    r = HybridRetriever(store, embedder)
    with pytest.raises(KbNotFound, match="knowledge base .nope. does not exist in .* \\(available: ref\\)"):
        r.retrieve("nope", "x")
    with pytest.raises(UserError, match="invalid"):
        r.retrieve("../etc", "x")


def test_nothing_ingestible_is_a_user_error(tmp_path, embedder):
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    with pytest.raises(UserError, match="no document could be ingested into 'k': 1 rejected"):
        ingest_kb(KbStore(tmp_path / "db"), "k", [tmp_path / "bad.jsonl"], embedder=embedder)
    with pytest.raises(UserError, match="nothing to ingest"):
        ingest_kb(KbStore(tmp_path / "db"), "k", [], embedder=embedder)


def test_retrieve_many_gives_each_problem_its_best_passage_first(kb, embedder):
    store, _ = kb
    r = HybridRetriever(store, embedder)
    hits = r.retrieve_many("ref", ["type 2 diabetes", "hypertension", "asthma, uncomplicated"], 3)
    assert [h.doc_id for h in hits] == ["E11.9", "I10", "J45.909"]
    assert len({h.chunk_id for h in r.retrieve_many("ref", ["hypertension", "essential hypertension"], 4)}) == 4
    assert [h.doc_id for h in r.retrieve_many("ref", ["hypertension"], 1)] == ["I10"]
    with pytest.raises(KbNotFound, match="clinitune rag ingest --kb nope"):
        r.retrieve_many("nope", ["a", "b"], 2)


def test_fingerprint_is_the_content(kb):
    store, root = kb
    ingest_kb(store, "fp1", [root / "src.jsonl"])
    before = store.fingerprint("fp1")
    assert before == store.fingerprint("fp1") and len(before) == 24
    extra = root / "more.jsonl"
    extra.write_text(json.dumps({"id": "Z99.2", "title": "ICD-10-CM Z99.2", "text": "Dependence on renal dialysis"}) + "\n")
    ingest_kb(store, "fp2", [root / "src.jsonl"])
    assert store.fingerprint("fp2") == before  # same chunks, another table: same version
    ingest_kb(store, "fp2", [extra])
    assert store.fingerprint("fp2") != before
