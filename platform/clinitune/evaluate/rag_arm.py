"""The retrieval arms: both models answer the held-out task prompts again, with passages retrieved
from a knowledge base in their system message (base + RAG, fine-tuned + RAG).

Prompts are built as the serving endpoint builds them (``rag.prompt.queries_of``: one query per
problem of the note; ``rag.prompt.augment_messages`` for the passages), so the number is what a
client calling the endpoint with retrieval on gets. Retrieval runs once per example; both models
see the same passages. Metrics are the task metrics prefixed ``rag.``, plus, for coded tasks,
retrieval recall (reference codes among the retrieved document ids: the ICD-10-CM knowledge base
uses the code as the document id) at 1, 4 and ``top_k`` passages, overall and per note type.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pandas as pd

from clinitune.terminology.icd10 import parse_codes
from clinitune.evaluate.config import EvalConfig
from clinitune.evaluate.hallucination import hallucination_stats
from clinitune.evaluate.items import EvalSet, answer_constraint
from clinitune.evaluate.scoring import CODED_TASKS, invalid_rate, task_scores
from clinitune.models.generate import make_item

PREFIX = "rag/"
RECALL_AT = (1, 4)


def kb_store_root(cfg: EvalConfig) -> str:
    from clinitune.artifacts.knowledge_base import store_root

    return store_root(cfg.workdir, cfg.rag.store)


def rag_settings(cfg: EvalConfig, trained: dict | None = None) -> dict:
    """Knowledge base, store, passages per prompt and passage length: the config's, else what the
    candidate was trained with (``data.passages``), else serving's defaults."""
    r, t = cfg.rag, trained or {}
    return {"kb": r.kb, "store": kb_store_root(cfg), "mode": r.mode,
            "top_k": int(r.top_k or t.get("top_k") or 4), "passage_chars": int(r.passage_chars or t.get("passage_chars") or 600)}


def rag_items(cfg: EvalConfig, es: EvalSet, settings: dict, retriever=None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Task items with retrieved passages (for every answered example), and the document ids retrieved
    per example (ranked, at least 4 for recall@4; the prompt holds the first ``top_k``).

    A knowledge base that does not exist is a one-line :class:`~clinitune.rag.store.KbNotFound`.
    """
    from clinitune.rag.prompt import augment_messages, queries_of
    from clinitune.rag.retrieve import HybridRetriever
    from clinitune.rag.store import KbStore

    kb, top_k = settings["kb"], settings["top_k"]
    if retriever is None:
        retriever = HybridRetriever(KbStore(settings["store"]))
    retriever.store.table(kb)  # KbNotFound before any embedding work
    constraint = answer_constraint(cfg, es.task)
    items, retrieved, passages = [], {}, {}
    for ex_id, messages_json in zip(*(es.answered()[c] for c in ("example_id", "messages"))):
        prompt = json.loads(messages_json)[:-1]  # without the reference answer
        hits = retriever.retrieve_many(kb, queries_of(prompt), max(top_k, *RECALL_AT), mode=settings["mode"])
        retrieved[str(ex_id)] = [h.doc_id for h in hits]
        items.append(make_item(f"{PREFIX}{ex_id}", "chat", augment_messages(prompt, hits[:top_k], settings["passage_chars"]),
                               max_new_tokens=cfg.generation.max_new_tokens, constraint=constraint))
        passages[str(ex_id)] = hits[:top_k]
    if cfg.consistency.enabled and cfg.consistency.retrieval:
        with_passages(es, passages, settings["passage_chars"])
    return pd.DataFrame(items), retrieved


def with_passages(es: EvalSet, passages: dict[str, list], passage_chars: int) -> None:
    """Consistency on the retrieval arm: every re-worded or sampled prompt gets the passages of its
    example's RAG prompt (the same hits, put in the same way), and is compared with the RAG answer."""
    from clinitune.rag.prompt import augment_messages

    for frame in (es.items, es.candidate_items):
        if frame is None or frame.empty:
            continue
        rows = frame["item_id"].isin(list(es.variants))
        frame.loc[rows, "messages"] = [
            json.dumps(augment_messages(json.loads(m), passages.get(es.variants[iid][0], []), passage_chars), ensure_ascii=False)
            for iid, m in zip(frame.loc[rows, "item_id"], frame.loc[rows, "messages"])]
    es.consistency_arm = PREFIX
    es.decoding = {k: f"{v}; with the same {len(next(iter(passages.values()), []))} retrieved passages as the RAG answer "
                      "it is compared with" for k, v in es.decoding.items()}


def retrieval_recall(es: EvalSet, retrieved: dict[str, list[str]], top_k: int) -> dict:
    """Reference codes among the first k retrieved documents, for k in 1, 4 and top_k; overall and by note type."""
    ks = sorted({*RECALL_AT, top_k})
    found = {k: defaultdict(int) for k in ks}
    total: dict[str, int] = defaultdict(int)
    for ex_id, ref, note_type in zip(es.examples["example_id"], es.examples["reference"], es.examples["note_type"]):
        gold = set(parse_codes(ref))
        docs = retrieved.get(str(ex_id), [])
        for key in ("all", str(note_type)):
            total[key] += len(gold)
            for k in ks:
                found[k][key] += len(gold & set(docs[:k]))
    recall = lambda k, key: found[k][key] / total[key] if total[key] else None  # noqa: E731
    return {"k": ks, "overall": {f"@{k}": recall(k, "all") for k in ks},
            "by_note_type": {t: {"codes": total[t], **{f"@{k}": recall(k, t) for k in ks}} for t in sorted(total) if t != "all"}}


def score_rag(es: EvalSet, results: pd.DataFrame, retrieved: dict[str, list[str]], top_k: int) -> dict:
    """``rag.*`` metrics and details from one model's answers to the RAG items."""
    out = results.set_index("item_id")
    ids = [str(i) for i in es.examples["example_id"]]
    answers = [str(out.at[f"{PREFIX}{i}", "output"]) for i in ids]
    refs = list(es.examples["reference"])
    metrics = {f"rag.{k}": v for k, v in task_scores(es.task, answers, refs).items()}
    details: dict = {"answers": dict(zip(ids, answers)), "retrieved": retrieved}
    if es.task in CODED_TASKS:
        metrics["rag.task.invalid_code_rate"] = invalid_rate(answers)
        stats = hallucination_stats([(parse_codes(a), t) for a, t in zip(answers, es.examples["text"])])
        metrics["rag.task.abstention_rate"] = stats["abstention_rate"]
        metrics["rag.hallucination.rate"] = stats["rate"]
        metrics["rag.hallucination.answer_rate"] = stats["answer_rate"]
        details["hallucination"] = stats
        rec = retrieval_recall(es, retrieved, top_k)
        metrics["rag.retrieval_recall"] = rec["overall"][f"@{top_k}"]
        for k in RECALL_AT:
            metrics[f"rag.retrieval_recall_at_{k}"] = rec["overall"][f"@{k}"]
        details["retrieval_recall"] = rec
    return {"metrics": metrics, "details": details}
