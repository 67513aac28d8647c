"""The dataset-build config (``jobs/configs/data.yaml`` documents every key)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from clinitune.config import RayAddress, StrictModel


class TaskConfig(StrictModel):
    """Which task builder turns source rows into chat examples, and its options."""

    name: str = Field("icd10_coding", description="Registered task builder: icd10_coding (note -> ICD-10-CM codes) or instructions (chat JSONL / prompt-response columns).")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword options of the builder (see `clinitune data tasks`).")


class ReplayConfig(StrictModel):
    """General-skill examples mixed into the train split against catastrophic forgetting."""

    source: str = Field("builtin:general", description="Replay prompts: 'builtin:general' (about a hundred everyday questions and instructions shipped with Clinitune) or a chat JSONL file with a 'messages' list per line.")
    answers: Literal["self", "given"] = Field("self", description="'self': the model being fine-tuned answers the prompts itself before training (self-distillation: its general behaviour is what the replay preserves); 'given': use the assistant turns in the file.")
    fraction: float = Field(0.15, gt=0.0, lt=0.9, description="Share of replay examples in the train split (interleaved evenly through every batch).")
    max_new_tokens: int = Field(96, ge=8, le=2048, description="Longest self-generated answer in tokens.")
    max_prompts: int | None = Field(None, ge=1, description="Use at most this many replay prompts (null = all).")
    gpus: float = Field(0.0, ge=0.0, description="GPUs for the Ray actor that generates the self answers (0 = CPU).")


class PassagesConfig(StrictModel):
    """Retrieval-aware fine-tuning (RAFT-style): training prompts carry retrieved passages as serving adds them."""

    kb: str = Field(..., description="Knowledge base the passages come from (create it with 'clinitune rag ingest --kb NAME ...'); it must exist when the data is built.")
    store: str | None = Field(None, description="Knowledge-base store (directory or object-store URI; shared storage on a multi-node cluster); null = work/kb, as 'clinitune rag' and the eval default to.")
    top_k: int = Field(4, ge=1, le=50, description="Passages per prompt (use the number serving and evaluation put in prompts).")
    mode: Literal["hybrid", "vector", "text"] = Field("hybrid", description="Retrieval: hybrid (BM25 + vector, reciprocal rank fusion), vector or text only.")
    passage_chars: int = Field(600, ge=50, description="Characters of each passage put in the prompt (serving's retrieval.context_chars, the eval's rag.passage_chars).")
    relevant_share: float = Field(0.7, ge=0.0, le=1.0, description="Share of examples whose passages include the relevant ones (the knowledge-base entries of the reference codes, added when retrieval missed them).")
    distractor_share: float = Field(0.3, ge=0.0, le=1.0, description="Share of examples whose passages are distractors only (retrieved for the note, relevant entries removed); the rest get no passages.")
    seed: int = Field(0, description="Seed of the group each example falls in and of where added passages go.")

    @model_validator(mode="after")
    def _shares(self) -> "PassagesConfig":
        if self.relevant_share + self.distractor_share > 1.0 + 1e-9:
            raise ValueError("relevant_share + distractor_share must be at most 1")
        return self


class DataConfig(StrictModel):
    """Curated Parquet (or chat JSONL) in; tokenised, label-masked, optionally packed Parquet out."""

    source: str = Field(..., description="Input directory: a curated dataset (DIR/{train,validation,test}/*.parquet + manifest.json) or a directory of <split>.jsonl / <split>.parquet files or <split>/ folders.")
    task: TaskConfig = Field(default_factory=TaskConfig, description="Task builder and its options.")
    model: str | None = Field(None, description="Base model whose tokenizer and chat template are used (registered name or directory). In a finetune config leave it null: the training model is used.")
    splits: list[Literal["train", "validation", "test"]] = Field(default_factory=lambda: ["train", "validation"], description="Splits to build; 'train' is required, a missing 'validation' split only disables validation loss.")
    max_seq_len: int = Field(512, ge=16, le=131072, description="Maximum tokens per training sequence (prompt + answer, after the chat template).")
    overlong: Literal["drop", "truncate"] = Field("drop", description="Examples longer than max_seq_len: 'drop' them (counted in the manifest) or 'truncate' them at max_seq_len (the answer may be cut).")
    packing: bool = Field(False, description="Pack several examples into one max_seq_len sequence (attention stays within each example via position ids).")
    system_prompt: str | None = Field(None, description="System message prepended to every example; null keeps the builder's default (none for most tasks).")
    max_examples: dict[str, int] = Field(default_factory=dict, description="Optional cap on examples per split, e.g. {train: 2000, validation: 200} (taken in source order, for demos and smoke runs).")
    replay: ReplayConfig | None = Field(None, description="Mix general-skill replay examples into the train split (null = none). Keeps a small model from answering every prompt in the task's format.")
    passages: PassagesConfig | None = Field(None, description="Retrieval-aware fine-tuning: put retrieved passages in the task prompts (train and validation) as serving does (null = none).")
    holdout_codes: list[str] = Field(default_factory=list, description="Codes that must never be a training label: task examples whose reference holds one are left out (counted as holdout_code) and their knowledge-base entries are never shown as passages. Evaluation reports them as the new-knowledge slice.")
    batch_size: int = Field(256, ge=1, description="Examples per Ray Data batch during tokenisation (packing happens within a batch).")
    cache_dir: str | None = Field(None, description="Where built datasets are cached by content hash; null = $CLINITUNE_HOME/datasets (use shared storage on a multi-node cluster).")
    ray_address: RayAddress = None  # a standalone build's; a training run's scaling.ray_address wins
