"""The "fine-tuned + RAG" arm: the candidate answers the held-out task prompts again, with passages
retrieved from a knowledge base in its system message.

Prompts are built as the serving endpoint builds them (``rag.prompt.queries_of``: one query per
problem of the note; ``rag.prompt.augment_messages`` for the passages), so the number is what a client calling the
endpoint with retrieval on gets. Only the candidate runs this arm; its metrics are the task
metrics prefixed ``rag.`` plus ``rag.retrieval_recall`` for coded tasks (reference codes among the
retrieved document ids: the ICD-10-CM knowledge base uses the code as the document id).
"""

from __future__ import annotations

import json

import pandas as pd

from clinitune.terminology.icd10 import parse_codes
from clinitune.evaluate.config import EvalConfig
from clinitune.models.generate import make_item
from clinitune.evaluate.items import EvalSet, answer_constraint
from clinitune.evaluate.scoring import CODED_TASKS, task_scores

PREFIX = "rag/"


def kb_store_root(cfg: EvalConfig) -> str:
    from clinitune.artifacts.knowledge_base import store_root

    return store_root(cfg.workdir, cfg.rag.store)


def rag_items(cfg: EvalConfig, es: EvalSet, retriever=None) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Task items with retrieved passages, and the document ids retrieved per example.

    A knowledge base that does not exist is a one-line :class:`~clinitune.rag.store.KbNotFound`.
    """
    from clinitune.rag.prompt import augment_messages, queries_of
    from clinitune.rag.retrieve import HybridRetriever
    from clinitune.rag.store import KbStore

    r = cfg.rag
    if retriever is None:
        retriever = HybridRetriever(KbStore(kb_store_root(cfg)))
    retriever.store.table(r.kb)  # KbNotFound before any embedding work
    items, retrieved = [], {}
    for ex_id, messages_json in zip(es.examples["example_id"], es.examples["messages"]):
        prompt = json.loads(messages_json)[:-1]  # without the reference answer
        hits = retriever.retrieve_many(r.kb, queries_of(prompt), r.top_k, mode=r.mode)
        retrieved[str(ex_id)] = [h.doc_id for h in hits]
        items.append(make_item(f"{PREFIX}{ex_id}", "chat", augment_messages(prompt, hits, r.passage_chars),
                               max_new_tokens=cfg.generation.max_new_tokens, constraint=answer_constraint(cfg, es.task)))
    return pd.DataFrame(items), retrieved


def score_rag(es: EvalSet, results: pd.DataFrame, retrieved: dict[str, list[str]]) -> dict:
    """``rag.*`` metrics and details from the candidate's answers to the RAG items."""
    out = results.set_index("item_id")
    ids = [str(i) for i in es.examples["example_id"]]
    answers = [str(out.at[f"{PREFIX}{i}", "output"]) for i in ids]
    refs = list(es.examples["reference"])
    metrics = {f"rag.{k}": v for k, v in task_scores(es.task, answers, refs).items()}
    details: dict = {"answers": dict(zip(ids, answers)), "retrieved": retrieved}
    if es.task in CODED_TASKS:
        gold = [set(parse_codes(ref)) for ref in refs]
        found = sum(len(g & set(retrieved.get(i, []))) for g, i in zip(gold, ids))
        total = sum(len(g) for g in gold)
        metrics["rag.retrieval_recall"] = found / total if total else None
    return {"metrics": metrics, "details": details}
