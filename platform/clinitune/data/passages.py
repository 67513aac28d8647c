"""Retrieval-aware training data (RAFT-style): training prompts carry retrieved passages exactly
as serving adds them, so the adapter learns to use good context and to ignore bad.

For every task example the note's queries (``clinitune.rag.prompt.queries_of``, the builder
evaluation and serving use) retrieve passages from a knowledge base, and the example falls, by a
hash of its id, into one of three groups:

* **relevant** (``relevant_share``): the passages include the relevant ones: the knowledge-base
  entries of the example's reference codes, retrieved or, when retrieval missed one, added in
  its place (at a seeded position, so a passage's place says nothing);
* **distractors** (``distractor_share``): the same retrieval with the relevant entries removed:
  near misses only, so the answer must come from the note;
* the rest: no passages (the model still answers without retrieval).

The passages go into the system message through ``clinitune.rag.prompt.augment_messages``, the
function serving and evaluation call, so a training prompt is byte for byte a served one. When a
prompt overflows ``max_seq_len`` passages are cut (distractors first, then from the end), never the
note or the answer. Codes held out of training (``data.holdout_codes``) are never shown either.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from typing import Any

import pandas as pd

from clinitune.terminology.icd10 import parse_codes

log = logging.getLogger(__name__)

STATUS_OK = "ok"
GROUPS = ("relevant", "distractors", "none")


def group_of(example_id: str, seed: int, relevant_share: float, distractor_share: float) -> str:
    u = int(hashlib.sha256(f"{seed}:{example_id}".encode()).hexdigest()[:12], 16) / float(16 ** 12)
    if u < relevant_share:
        return "relevant"
    return "distractors" if u < relevant_share + distractor_share else "none"


def prompt_tokens(tok, messages: list[dict]) -> int | None:
    """Tokens of a whole training conversation, counted as tokenisation will count them."""
    from clinitune.models.chat import render_segments

    segments = render_segments(tok, messages)
    if segments is None:
        return None
    return sum(len(p) for p in tok([t for t, _ in segments], add_special_tokens=False)["input_ids"])


class AddPassages:
    """Ray Data batch step: (example_id, messages, status) -> the same with passages in the prompts.

    Adds ``passage_group`` and ``passages`` (how many ended in the prompt) for the manifest.
    """

    def __init__(self, kb: str, store: str, *, top_k: int, mode: str, passage_chars: int, relevant_share: float,
                 distractor_share: float, seed: int, model_dir: str, max_seq_len: int, holdout: list[str] = ()):
        self.kb, self.store, self.top_k, self.mode = kb, store, int(top_k), mode
        self.passage_chars = int(passage_chars)
        self.relevant_share, self.distractor_share, self.seed = float(relevant_share), float(distractor_share), int(seed)
        self.model_dir, self.max_seq_len = model_dir, int(max_seq_len)
        self.holdout = {str(c) for c in holdout}
        self._retriever = None

    def _ret(self):
        if self._retriever is None:
            from clinitune.rag.retrieve import HybridRetriever
            from clinitune.rag.store import KbStore

            self._retriever = HybridRetriever(KbStore(self.store))
        return self._retriever

    def choose(self, example_id: str, prompt: list[dict], gold: set[str]) -> tuple[str, list[Any]]:
        """(group, passages) for one example."""
        from clinitune.rag.prompt import queries_of

        group = group_of(example_id, self.seed, self.relevant_share, self.distractor_share)
        if group == "none":
            return group, []
        ret = self._ret()
        hits = ret.retrieve_many(self.kb, queries_of(prompt), self.top_k + len(gold), mode=self.mode)
        hits = [h for h in hits if h.doc_id not in self.holdout]
        if group == "distractors":
            return group, [h for h in hits if h.doc_id not in gold][: self.top_k]
        chosen = hits[: self.top_k]
        missing = sorted((gold - {h.doc_id for h in chosen}) - self.holdout)
        if missing:
            extra = ret.store.documents(self.kb, missing)
            rng = random.Random(f"{self.seed}:{example_id}")
            for h in extra:
                distractors = [i for i, c in enumerate(chosen) if c.doc_id not in gold]
                if len(chosen) >= self.top_k and distractors:
                    chosen.pop(distractors[-1])  # the lowest-ranked distractor makes room
                if len(chosen) < self.top_k:
                    chosen.insert(rng.randint(0, len(chosen)), h)
        return group, chosen

    def fit(self, tok, prompt: list[dict], answer: dict, passages: list[Any], gold: set[str]) -> tuple[list[dict], int]:
        """The augmented conversation, cutting passages until it fits ``max_seq_len``."""
        from clinitune.rag.prompt import augment_messages

        passages = list(passages)
        while True:
            messages = augment_messages(prompt, passages, self.passage_chars) + [answer]
            n = prompt_tokens(tok, messages)
            if n is None or n <= self.max_seq_len or not passages:
                return messages, len(passages)
            others = [i for i, p in enumerate(passages) if p.doc_id not in gold]
            passages.pop(others[-1] if others else -1)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from clinitune.models.chat import load_tokenizer

        tok = load_tokenizer(self.model_dir)
        out_msgs, groups, counts = [], [], []
        for ex_id, messages_json, status in zip(batch["example_id"], batch["messages"], batch["status"]):
            if status != STATUS_OK:
                out_msgs.append(messages_json)
                groups.append("")
                counts.append(0)
                continue
            messages = json.loads(messages_json)
            prompt, answer = messages[:-1], messages[-1]
            gold = set(parse_codes(answer["content"]))
            group, passages = self.choose(str(ex_id), prompt, gold)
            augmented, n = self.fit(tok, prompt, answer, passages, gold)
            out_msgs.append(json.dumps(augmented, ensure_ascii=False))
            groups.append(group)
            counts.append(n)
        return batch.assign(messages=out_msgs, passage_group=groups, passages=counts)


class HoldOutCodes:
    """Ray Data batch step: examples whose reference answer holds a held-out code are left out
    (status ``holdout_code``, counted in the manifest): those codes never appear in a training label."""

    def __init__(self, codes: list[str]):
        self.codes = {str(c) for c in codes}

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        status = list(batch["status"])
        for i, (messages_json, st) in enumerate(zip(batch["messages"], status)):
            if st != STATUS_OK:
                continue
            answer = json.loads(messages_json)[-1]["content"]
            if self.codes & set(parse_codes(answer)):
                status[i] = "holdout_code"
        return batch.assign(status=status)
