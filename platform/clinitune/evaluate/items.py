"""Held-out examples and every prompt the evaluation asks both models.

Task prompts come from the same task builder that made the training data
(``clinitune.data.builders``), with the task options and system prompt the candidate was trained
with, so the models are asked exactly what they were trained to answer. Held-out rows are taken
in a fixed pseudo-random order (by a hash of the note id) so a ``max_examples`` cap is a fair
sample rather than the first notes of one file.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clinitune.data.builders import build_builder
from clinitune.errors import InputPathError, UserError
from clinitune.evaluate.canaries import Canary
from clinitune.evaluate.config import EvalConfig
from clinitune.evaluate.consistency import paraphrases_for
from clinitune.models.generate import make_item
from clinitune.evaluate.probes import load_probes

READ_COLUMNS = ["note_id", "patient_id", "text", "note_type", "attributes"]


@dataclass
class EvalSet:
    task: str
    examples: pd.DataFrame  # example_id, patient_id, reference, text, slice columns
    items: pd.DataFrame
    probes: dict[str, dict] = field(default_factory=dict)  # item_id -> probe
    canaries: dict[str, Canary] = field(default_factory=dict)  # item_id -> canary
    variants: dict[str, tuple[str, str]] = field(default_factory=dict)  # item_id -> (example_id, paraphrase|seed)
    dropped: dict[str, int] = field(default_factory=dict)  # held-out rows the builder could not use, by reason
    slice_keys: list[str] = field(default_factory=list)
    new_codes: list[str] = field(default_factory=list)  # codes held out of training (the new-knowledge slice)
    new_examples: pd.DataFrame | None = None  # held-out examples needing them (same columns as examples)
    candidate_items: pd.DataFrame | None = None  # items only the candidate answers (unconstrained check, its consistency)
    decoding: dict[str, str] = field(default_factory=dict)  # how consistency answers were decoded, in words
    consistency_arm: str = "task/"  # the answers consistency variants are compared with: task/ (no retrieval) or rag/

    def answered(self) -> pd.DataFrame:
        """Every example a task answer is asked for: the main ones, then the new-knowledge ones not among them."""
        if self.new_examples is None or self.new_examples.empty:
            return self.examples
        extra = self.new_examples[~self.new_examples["example_id"].isin(set(self.examples["example_id"]))]
        return pd.concat([self.examples, extra], ignore_index=True)


def _order_key(note_id: str) -> str:
    return hashlib.sha1(str(note_id).encode()).hexdigest()


def read_heldout(data: str | Path, split: str) -> pd.DataFrame:
    from clinitune.data.sources import check_source, split_files

    root = check_source(data)
    files, fmt = split_files(root, split)
    if not files:
        raise InputPathError(f"data: '{root}' has no '{split}' split.",
                             fix=f"point data at a curated dataset with {split}/*.parquet (clinitune curate output).")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        cols = [c for c in READ_COLUMNS if c in pq.read_schema(files[0]).names]
        df = pd.concat([pd.read_parquet(f, columns=cols) for f in files], ignore_index=True)
    else:
        from clinitune.data.sources import read_frame

        df = read_frame(files, fmt)
    if df.empty:
        raise UserError(f"data: the '{split}' split of '{root}' is empty.", fix="curate more notes so the held-out split has patients.")
    return df


def _slice_value(row: pd.Series, attrs: dict, key: str) -> str:
    if key in attrs:
        return str(attrs[key])
    if key in row.index and pd.notna(row[key]):
        return str(row[key])
    return "unknown"


def _builder_with_instruction(task_name: str, options: dict, system_prompt: str | None, instruction: str):
    from clinitune.data.builders import registered_builders

    cls = registered_builders().get(task_name)
    if cls is None or "instruction" not in inspect.signature(cls.__init__).parameters:
        return None
    return build_builder(task_name, {**options, "instruction": instruction}, system_prompt)


def answer_constraint(cfg: EvalConfig, task_name: str) -> str:
    """The constraint spec task answers decode under ('' = none): codes of a code system, for coded tasks."""
    from clinitune.constrain.registry import codes_spec
    from clinitune.evaluate.scoring import CODED_TASKS

    return codes_spec(cfg.generation.code_system) if task_name in CODED_TASKS else ""


def _record(cfg: EvalConfig, row: pd.Series, ex_id: str, messages_json: str) -> dict:
    messages = json.loads(messages_json)
    attrs = {}
    if "attributes" in row.index and isinstance(row["attributes"], str):
        try:
            attrs = json.loads(row["attributes"]) or {}
        except json.JSONDecodeError:
            attrs = {}
    source = row.get("text") if "text" in row.index else row.get("dialogue", "")  # documentation tasks: the dialogue
    rec = {"example_id": str(ex_id), "patient_id": str(row.get("patient_id", "")), "reference": messages[-1]["content"],
           "text": str(source if source is not None else ""), "messages": messages_json,
           "note_type": str(row["note_type"]) if "note_type" in row.index and pd.notna(row["note_type"]) else "unknown"}
    for key in cfg.fairness.slices:
        rec[f"slice.{key}"] = _slice_value(row, attrs, key)
    return rec


def _needing(df: pd.DataFrame, built: pd.DataFrame, codes: set[str], n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first ``n`` examples whose reference holds one of ``codes``."""
    from clinitune.terminology.icd10 import parse_codes

    hit = [bool(codes & set(parse_codes(json.loads(m)[-1]["content"]))) for m in built["messages"]]
    keep = [i for i, h in enumerate(hit) if h][:n]
    return df.iloc[keep].reset_index(drop=True), built.iloc[keep].reset_index(drop=True)


def build_eval_set(cfg: EvalConfig, task_name: str, task_options: dict, system_prompt: str | None,
                   canaries: list[Canary], new_codes: list[str] | None = None) -> EvalSet:
    """Read the held-out split and make every item (task, loss, consistency, probes, canaries), plus the
    new-knowledge examples (held-out notes whose reference holds one of ``new_codes``)."""
    df = read_heldout(cfg.data, cfg.split)
    if "note_id" not in df.columns:
        df["note_id"] = [f"row-{i}" for i in range(len(df))]
    df = df.assign(_k=df["note_id"].map(_order_key)).sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True)
    builder = build_builder(task_name, task_options, system_prompt)
    builder.check_columns(list(df.columns), str(cfg.data))
    built = builder(df)
    ok = built["status"] == "ok"
    dropped = built.loc[~ok, "status"].value_counts().to_dict()
    df, built = df[ok.values].reset_index(drop=True), built[ok].reset_index(drop=True)
    new_codes = sorted({str(c) for c in (new_codes or [])})
    new_df, new_built = _needing(df, built, set(new_codes), cfg.new_knowledge.max_examples) if new_codes else (None, None)
    if cfg.max_examples:
        df, built = df.head(cfg.max_examples), built.head(cfg.max_examples)
    if built.empty:
        raise UserError(f"data: no usable '{cfg.split}' example for task '{task_name}' in '{cfg.data}' (dropped: {dropped}).",
                        fix="check that the held-out notes carry the task's labels.")

    items: list[dict] = []
    records = []
    gen = cfg.generation
    constraint = answer_constraint(cfg, task_name)
    for (_, row), ex_id, messages_json in zip(df.iterrows(), built["example_id"], built["messages"]):
        messages = json.loads(messages_json)
        records.append(_record(cfg, row, ex_id, messages_json))
        items.append(make_item(f"task/{ex_id}", "chat", messages[:-1], max_new_tokens=gen.max_new_tokens,
                               constraint=constraint))
        if cfg.loss:
            items.append(make_item(f"nll/{ex_id}", "nll", messages))
    examples = pd.DataFrame(records)
    main_ids = set(examples["example_id"])
    new_records = []
    if new_df is not None:
        for (_, row), ex_id, messages_json in zip(new_df.iterrows(), new_built["example_id"], new_built["messages"]):
            new_records.append(_record(cfg, row, ex_id, messages_json))
            if str(ex_id) not in main_ids:
                items.append(make_item(f"task/{ex_id}", "chat", json.loads(messages_json)[:-1],
                                       max_new_tokens=gen.max_new_tokens, constraint=constraint))
    free = []
    if constraint and gen.unconstrained_check:  # the candidate once more without the constraint
        free = [make_item(f"free/{r['example_id']}", "chat", json.loads(r["messages"])[:-1], max_new_tokens=gen.max_new_tokens)
                for r in records]

    es = EvalSet(task_name, examples, pd.DataFrame(), slice_keys=list(cfg.fairness.slices), dropped=dropped,
                 new_codes=new_codes, new_examples=pd.DataFrame(new_records, columns=examples.columns) if new_codes else None)
    cons: list[dict] = []
    if cfg.consistency.enabled:
        c = cfg.consistency
        under = f", under code system {gen.code_system}" if constraint else ""
        es.decoding = {"paraphrase": f"greedy, as the task answers{under}; each compared with the answer to the original prompt",
                       "seed": f"sampled at temperature {c.temperature}, top_p {c.top_p}, seeds {list(c.seeds)}{under}; "
                               "each compared with the greedy answer to the same prompt (lower by construction)"}
        subset = df.head(c.n_examples)
        for k, instruction in enumerate(paraphrases_for(task_name, c.paraphrases)):
            alt = _builder_with_instruction(task_name, task_options, system_prompt, instruction)
            if alt is None:
                break
            for ex_id, messages_json, status in alt(subset).itertuples(index=False):
                if status == "ok":
                    iid = f"para{k}/{ex_id}"
                    cons.append(make_item(iid, "chat", json.loads(messages_json)[:-1], max_new_tokens=gen.max_new_tokens,
                                           constraint=constraint))
                    es.variants[iid] = (str(ex_id), "paraphrase")
        for seed in c.seeds:
            for rec in records[: c.n_examples]:
                iid = f"seed{seed}/{rec['example_id']}"
                cons.append(make_item(iid, "chat", json.loads(rec["messages"])[:-1], max_new_tokens=gen.max_new_tokens,
                                       do_sample=True, seed=seed, temperature=c.temperature, top_p=c.top_p,
                                       constraint=constraint))
                es.variants[iid] = (rec["example_id"], "seed")
    (items if cfg.consistency.baseline else free).extend(cons)
    if cfg.probes.enabled:
        for probe in load_probes(cfg.probes.families, cfg.probes.max_per_family):
            iid = f"probe/{probe['id']}"
            items.append(make_item(iid, "chat", [{"role": "user", "content": probe["prompt"]}],
                                   max_new_tokens=cfg.probes.max_new_tokens))
            es.probes[iid] = probe
    if canaries:
        frame = pd.DataFrame({"note_id": [c.note_id for c in canaries], "patient_id": [c.patient_id for c in canaries],
                              "text": [c.text for c in canaries], "note_type": ["progress_note"] * len(canaries),
                              "attributes": [json.dumps({"icd10": list(c.icd10)}) for c in canaries]})
        for canary, (_, messages_json, status) in zip(canaries, builder(frame).itertuples(index=False)):
            if status != "ok":
                continue
            iid = f"canary/{canary.canary_id}"
            items.append(make_item(iid, "canary", json.loads(messages_json), cut=canary.secret,
                                   max_new_tokens=cfg.canaries.max_new_tokens))
            es.canaries[iid] = canary
    es.items = pd.DataFrame(items)
    es.candidate_items = pd.DataFrame(free) if free else None
    return es
