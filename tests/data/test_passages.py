"""Retrieval-aware training data: passages in training prompts exactly as serving adds them, RAFT
groups, codes held out of training, passages cut (never the note or answer) when a prompt overflows,
and the knowledge base's content in the cache key."""

from __future__ import annotations

import asyncio
import json

import pyarrow.parquet as pq
import pytest

from clinitune.terminology.icd10 import parse_codes
from clinitune.errors import UserError

SYSTEM = "You are a clinical coding assistant."
HELD_OUT = "E78.5"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from clinitune.models.tiny import create_tiny_model

    return str(create_tiny_model(tmp_path_factory.mktemp("m") / "tiny", hidden_size=32, num_layers=1))


@pytest.fixture(scope="module")
def curated(tmp_path_factory, write_toy_curated):
    return write_toy_curated(tmp_path_factory.mktemp("c") / "cur", n_train=40, n_validation=6)


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    """The ICD-10-CM entries of the toy notes' categories (every code of each: near misses included)."""
    from clinitune.rag import KbStore, ingest_kb

    root = tmp_path_factory.mktemp("kb")
    ingest_kb(KbStore(root), "icd10", icd10=True, icd10_categories=["I10", "E11", "J44", "E78", "K21", "J18", "I48", "F32"])
    return str(root)


def _cfg(curated, cache, kb, **kw):
    from clinitune.data.config import DataConfig

    passages = {"kb": "icd10", "store": kb, "top_k": 3, "passage_chars": 120, "relevant_share": 0.5, "distractor_share": 0.3}
    passages.update(kw.pop("passages", {}))
    return DataConfig(source=str(curated), cache_dir=str(cache), max_seq_len=kw.pop("max_seq_len", 512), system_prompt=SYSTEM,
                      passages=passages, holdout_codes=[HELD_OUT], **kw)


def _rows(out, split="train"):
    return pq.read_table(next((out / split).glob("*.parquet"))).to_pylist()


@pytest.mark.ray
def test_training_prompts_with_passages_are_the_served_prompts(ray_session, model_dir, curated, kb, tmp_path):
    from clinitune.data.build import build_dataset, load_manifest
    from clinitune.data.builders import build_builder
    from clinitune.data.passages import AddPassages
    from clinitune.models.chat import load_tokenizer
    from clinitune.rag.retrieve import Hit
    from clinitune.serve.adapters import AdapterRef
    from clinitune.serve.audit import AuditRecord
    from clinitune.serve.config import ServeArgs
    from clinitune.serve.context import prepare
    from clinitune.serve.guard import PhiGuard
    from clinitune.serve.protocol import ChatCompletionRequest

    cfg = _cfg(curated, tmp_path, kb)
    out = build_dataset(cfg, model_dir)
    train = load_manifest(out)["splits"]["train"]
    assert set(train["passage_groups"]) == {"relevant", "distractors", "none"}
    assert train["dropped"].get("holdout_code", 0) > 0  # notes labelled with the held-out code are counted, not trained

    # one training example, rebuilt the way the data step builds it ...
    import pandas as pd

    note = pd.read_parquet(curated / "train").iloc[[0]]
    step = AddPassages("icd10", kb, top_k=3, mode="hybrid", passage_chars=120, relevant_share=1.0, distractor_share=0.0,
                       seed=0, model_dir=model_dir, max_seq_len=512)
    built = step(build_builder("icd10_coding", {}, SYSTEM)(note))
    messages = json.loads(built["messages"].iloc[0])
    _, passages = step.choose(str(note["note_id"].iloc[0]), json.loads(build_builder("icd10_coding", {}, SYSTEM)(note)["messages"].iloc[0])[:-1],
                              set(parse_codes(messages[-1]["content"])))
    assert passages and built["passage_group"].iloc[0] == "relevant"

    # ... and the endpoint's request for the same note, retrieval giving the same passages
    class Retriever:
        class retrieve:  # noqa: N801 - a Ray handle's method: .remote(...)
            @staticmethod
            async def remote(kb_name, queries, top_k):
                return {"hits": [h.to_dict() for h in passages]}

    args = ServeArgs(retrieval={"enabled": True, "default_kb": "icd10", "top_k": 3, "context_chars": 120},
                     phi_guard={"output": "off", "citations": False})
    req = ChatCompletionRequest(model="clinitune", messages=[messages[1]])
    ref = AdapterRef(key="k", name="clinitune", system_prompt=SYSTEM)
    prep = asyncio.run(prepare(args, req, ref, PhiGuard(args.phi_guard), Retriever, AuditRecord("r", "chat")))
    assert prep.job.messages == messages[:-1]  # the same conversation, byte for byte
    tok = load_tokenizer(model_dir)
    served = tok(tok.apply_chat_template(prep.job.messages, tokenize=False, add_generation_prompt=True),
                 add_special_tokens=False)["input_ids"]
    assert isinstance(passages[0], Hit)
    # the tokenised training sequence starts with exactly the tokens the endpoint feeds the model
    from clinitune.data.tokenize import Tokenize

    row = Tokenize(model_dir, 512)(built).iloc[0]
    first_target = next(i for i, x in enumerate(row["labels"]) if x != -100)
    assert list(row["input_ids"][:first_target]) == served


@pytest.mark.ray
def test_held_out_codes_never_reach_training(ray_session, model_dir, curated, kb, tmp_path):
    from clinitune.data.build import build_dataset
    from clinitune.models.chat import load_tokenizer

    out = build_dataset(_cfg(curated, tmp_path, kb, passages={"relevant_share": 1.0, "distractor_share": 0.0}), model_dir)
    tok = load_tokenizer(model_dir)
    for split in ("train", "validation"):
        for row in _rows(out, split):
            if row["status"] != "ok":
                continue
            labels = tok.decode([t for t in row["labels"] if t != -100])
            assert HELD_OUT not in parse_codes(labels)  # no training label holds it
            assert HELD_OUT not in tok.decode(row["input_ids"])  # nor any passage or prompt


@pytest.mark.ray
def test_overflow_cuts_passages_never_the_note_or_the_answer(ray_session, model_dir, curated, kb, tmp_path):
    from clinitune.data.build import build_dataset, load_manifest
    from clinitune.models.chat import load_tokenizer

    roomy = load_manifest(build_dataset(_cfg(curated, tmp_path / "a", kb, passages={"relevant_share": 1.0, "distractor_share": 0.0}),
                                        model_dir))["splits"]["train"]
    tight_len = roomy["max_tokens"] - 40
    out = build_dataset(_cfg(curated, tmp_path / "b", kb, max_seq_len=tight_len,
                             passages={"relevant_share": 1.0, "distractor_share": 0.0}), model_dir)
    tight = load_manifest(out)["splits"]["train"]
    assert tight["examples"] == roomy["examples"] and tight["max_tokens"] <= tight_len  # nothing dropped: passages went
    tok = load_tokenizer(model_dir)
    for row in _rows(out):
        if row["status"] == "ok":
            text = tok.decode(row["input_ids"])
            assert "Note:" in text and "Follow up in clinic." in text  # the whole note is still there
            assert parse_codes(tok.decode([t for t in row["labels"] if t != -100]))  # and the answer


def test_missing_knowledge_base_and_cache_key(model_dir, curated, kb, tmp_path):
    from clinitune.data.build import plan
    from clinitune.models.catalog import resolve_model
    from clinitune.rag import KbStore, ingest_kb

    mdir = resolve_model(model_dir)
    with pytest.raises(UserError, match=r"data.passages.kb: knowledge base 'nope' does not exist .*clinitune rag ingest --kb nope ") as err:
        plan(_cfg(curated, tmp_path, kb, passages={"kb": "nope"}), mdir)
    assert "\n" not in str(err.value)
    before = plan(_cfg(curated, tmp_path, kb), mdir)["key"]
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "I10.X", "title": "local note", "text": "Local coding guidance."}) + "\n")
    ingest_kb(KbStore(kb), "icd10", [extra])
    try:
        assert plan(_cfg(curated, tmp_path, kb), mdir)["key"] != before  # the knowledge base's version is in the key
    finally:
        KbStore(kb).delete_documents("icd10", ["I10.X"])
    assert plan(_cfg(curated, tmp_path, kb), mdir)["key"] == before
