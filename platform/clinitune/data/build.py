"""``build_dataset``: source -> task examples -> tokens, on Ray Data, cached by content hash.

The cache key covers everything that changes the tokens: the source's content hash (its
manifest, or its files), the task and its options, the system prompt, sequence length, overlong
policy, packing, caps and the tokenizer (its files and chat template). A second build with the
same inputs returns the cached directory without tokenising again.

The output is the tokenised dataset of :mod:`clinitune.artifacts.tokenized` (``<cache_dir>/<key>/``);
``load_manifest`` and ``load_split`` read it back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from pathlib import Path

from clinitune.artifacts.model import TOKENIZER_FILES
from clinitune.artifacts.publish import publish_whole
from clinitune.artifacts.tokenized import FORMAT, MANIFEST, is_built, load_manifest, load_split, write_manifest
from clinitune.data.builders import build_builder
from clinitune.data.passages import AddPassages, HoldOutCodes
from clinitune.data.replay import MixReplay, replay_examples, replay_fingerprint
from clinitune.data.config import DataConfig
from clinitune.data.sources import check_source, columns_of, count_rows, read_split, source_lineage, split_files
from clinitune.data.tokenize import Tokenize
from clinitune.errors import ConfigError, UserError

log = logging.getLogger(__name__)

__all__ = ["build_dataset", "check_tokenizer", "datasets_cache_dir", "load_manifest", "load_split", "plan",
           "tokenizer_fingerprint"]


def datasets_cache_dir(cfg: DataConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    from clinitune.models.catalog import clinitune_home

    return clinitune_home() / "datasets"


def tokenizer_fingerprint(model_dir: Path) -> str:
    h = hashlib.sha256()
    for name in TOKENIZER_FILES:
        p = model_dir / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def check_tokenizer(model_dir: Path) -> None:
    """The tokenizer loads and has a chat template (a one-line UserError otherwise)."""
    from clinitune.models.chat import load_tokenizer
    from clinitune.models.catalog import has_chat_template

    if not has_chat_template(model_dir):
        raise UserError(
            f"the tokenizer of model '{model_dir}' has no chat template, so chat examples cannot be rendered.",
            fix="use an instruct/chat model, or add a chat_template.jinja (e.g. ChatML) next to its tokenizer files.",
        )
    tok = load_tokenizer(str(model_dir))
    if tok.pad_token_id is None and tok.eos_token_id is None:
        raise UserError(f"the tokenizer of model '{model_dir}' has neither a pad nor an eos token.",
                        fix="set pad_token in its tokenizer_config.json.")


def plan(cfg: DataConfig, model_dir: Path) -> dict:
    """Everything checked and keyed before any data moves: files, row counts, the cache key."""
    root = check_source(cfg.source)
    if "train" not in cfg.splits:
        raise ConfigError("data.splits must include 'train'.", fix="add train to data.splits.")
    builder = build_builder(cfg.task.name, cfg.task.options, cfg.system_prompt)
    splits: dict[str, dict] = {}
    for split in cfg.splits:
        files, fmt = split_files(root, split)
        if not files:
            if split == "train":
                raise UserError(f"data.source '{root}' has no train split (no train/*.parquet, train/*.jsonl or train.jsonl).",
                                fix="point data.source at a curated dataset directory or add the train files.")
            log.warning("data.source has no '%s' split; it is skipped", split)
            continue
        columns = columns_of(files, fmt)
        builder.check_columns(columns, str(root))
        rows = count_rows(files, fmt)
        cap = cfg.max_examples.get(split)
        splits[split] = {"files": files, "format": fmt, "rows": rows if cap is None else min(rows, cap), "columns": columns}
    if splits["train"]["rows"] == 0:
        raise UserError(f"data.source '{root}': the train split is empty (0 rows).",
                        fix="curate more notes into it, or point data.source at a non-empty dataset.")
    check_tokenizer(model_dir)
    lineage = source_lineage(root, list(splits))
    key_fields = {
        "format": FORMAT,
        "source": lineage["content_hash"],
        "splits": sorted(splits),
        "task": cfg.task.model_dump(mode="json"),
        "system_prompt": cfg.system_prompt,
        "max_seq_len": cfg.max_seq_len,
        "overlong": cfg.overlong,
        "packing": cfg.packing,
        "pack_batch": cfg.batch_size if cfg.packing else None,
        "max_examples": dict(sorted(cfg.max_examples.items())),
        "tokenizer": tokenizer_fingerprint(model_dir),
    }
    if cfg.replay is not None:  # checked here, before any cluster time; self answers depend on the weights
        key_fields["replay"] = replay_fingerprint(cfg.replay, model_dir)
    if cfg.holdout_codes:
        key_fields["holdout_codes"] = sorted(cfg.holdout_codes)
    if cfg.passages is not None:  # the knowledge base must exist now; its content is part of the key
        key_fields["passages"] = {**cfg.passages.model_dump(mode="json"), "store": passages_store(cfg),
                                  "kb_version": kb_version(cfg)}
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()
    return {"root": root, "builder": builder, "splits": splits, "lineage": lineage, "key_fields": key_fields, "key": key}


def passages_store(cfg: DataConfig) -> str:
    from clinitune.artifacts.knowledge_base import store_root

    return store_root("work", cfg.passages.store)


def kb_version(cfg: DataConfig) -> str:
    """The content fingerprint of the passages' knowledge base; a one-line error naming it when it is missing."""
    from clinitune.rag.store import KbStore

    try:
        return KbStore(passages_store(cfg)).fingerprint(cfg.passages.kb)
    except UserError as err:
        raise UserError(f"data.passages.kb: {err}") from None


def _split_stats(split_dir: Path) -> dict:
    import pyarrow.parquet as pq

    files = sorted(p for p in split_dir.rglob("*.parquet"))
    stats = Counter()
    dropped: Counter = Counter()
    by_group: Counter = Counter()
    for f in files:
        t = pq.read_table(f, columns=["status", "num_tokens", "num_target_tokens", "num_examples", "passage_groups"]).to_pydict()
        for status, ntok, ntgt, nex, groups in zip(t["status"], t["num_tokens"], t["num_target_tokens"], t["num_examples"],
                                                   t["passage_groups"]):
            stats["input_rows"] += nex
            if status == "ok":
                for g in groups:
                    if g:
                        by_group[g] += 1
                stats["examples"] += nex
                stats["sequences"] += 1
                stats["tokens"] += ntok
                stats["target_tokens"] += ntgt
                stats["max_tokens"] = max(stats["max_tokens"], ntok)
            else:
                dropped[status] += nex
    out = {k: int(stats.get(k, 0)) for k in ("input_rows", "examples", "sequences", "tokens", "target_tokens", "max_tokens")}
    out["dropped"] = dict(sorted(dropped.items()))
    if by_group:
        out["passage_groups"] = dict(sorted(by_group.items()))
    out["files"] = [str(f.relative_to(split_dir)) for f in files]
    return out


def build_dataset(cfg: DataConfig, model_dir: str | Path | None = None, *, force: bool = False) -> Path:
    """Build (or find in the cache) the tokenised dataset for ``cfg``; returns its directory.

    ``model_dir`` overrides ``cfg.model`` (the training job passes its resolved model).
    """
    from clinitune.models.catalog import resolve_model

    ref = model_dir or cfg.model
    if ref is None:
        raise ConfigError("data.model is not set.", fix="set data.model to a registered model name or a model directory.")
    mdir = resolve_model(str(ref))
    p = plan(cfg, mdir)
    out = datasets_cache_dir(cfg) / p["key"]
    if is_built(out) and not force:
        log.info("tokenised dataset found in the cache: %s", out)
        return out

    from clinitune import ray_utils

    ray_utils.connect(cfg.ray_address)
    t0 = time.time()
    tokenize = Tokenize(str(mdir), cfg.max_seq_len, cfg.overlong, cfg.packing)
    builder = p["builder"]
    need = sorted({c for cs in builder.column_sets for c in cs} | {"id"})
    split_manifest = {}
    replay = None
    if cfg.replay is not None:
        replay = replay_examples(cfg.replay, mdir)
    add_passages = None
    if cfg.passages is not None:
        pc = cfg.passages
        add_passages = AddPassages(pc.kb, passages_store(cfg), top_k=pc.top_k, mode=pc.mode, passage_chars=pc.passage_chars,
                                   relevant_share=pc.relevant_share, distractor_share=pc.distractor_share, seed=pc.seed,
                                   model_dir=str(mdir), max_seq_len=cfg.max_seq_len, holdout=cfg.holdout_codes)
    with publish_whole(out, require=MANIFEST) as staging:
        for split, info in p["splits"].items():
            columns = [c for c in need if c in info["columns"]]
            ds = read_split(info["files"], info["format"], columns)
            cap = cfg.max_examples.get(split)
            if cap is not None:
                ds = ds.limit(cap)
            ds = ds.map_batches(builder, batch_format="pandas", batch_size=cfg.batch_size)
            if cfg.holdout_codes:
                ds = ds.map_batches(HoldOutCodes(cfg.holdout_codes), batch_format="pandas", batch_size=cfg.batch_size)
            if add_passages is not None:
                ds = ds.map_batches(add_passages, batch_format="pandas", batch_size=cfg.batch_size)
            if split == "train" and replay is not None and not replay.empty:
                ds = ds.map_batches(MixReplay(replay, cfg.replay.fraction), batch_format="pandas", batch_size=cfg.batch_size)
            ds = ds.map_batches(tokenize, batch_format="pandas", batch_size=cfg.batch_size)
            ds.write_parquet(str(staging / split))
            split_manifest[split] = _split_stats(staging / split)
        train = split_manifest["train"]
        if train["sequences"] == 0:
            reasons = ", ".join(f"{k} {v}" for k, v in train["dropped"].items()) or "none"
            raise UserError(
                f"data: the train split produced no trainable examples (dropped by reason: {reasons}).",
                fix="raise data.max_seq_len or set data.overlong: truncate for too_long; check labels for no_label.",
            )
        from clinitune.models.chat import load_tokenizer

        tok = load_tokenizer(str(mdir))
        write_manifest(staging, {
            "format": FORMAT,
            "dataset_hash": p["key"],
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.time() - t0, 2),
            "source": p["lineage"],
            "task": cfg.task.model_dump(mode="json"),
            "system_prompt": cfg.system_prompt,
            "model": str(mdir),
            "tokenizer_fingerprint": p["key_fields"]["tokenizer"],
            "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            "max_seq_len": cfg.max_seq_len,
            "overlong": cfg.overlong,
            "packing": cfg.packing,
            "replay": None if cfg.replay is None else {**cfg.replay.model_dump(mode="json"), "conversations": len(replay)},
            "passages": p["key_fields"].get("passages"),
            "holdout_codes": sorted(cfg.holdout_codes),
            "splits": split_manifest,
        })
    log.info("built tokenised dataset %s in %.1fs", out, time.time() - t0)
    return out
