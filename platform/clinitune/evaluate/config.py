"""The evaluation job's typed config (``jobs/configs/evaluate.yaml`` documents every key)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from clinitune.config import ExecutionSettings, StrictModel, renamed_keys
from clinitune.evaluate.benchmarks import BenchmarksConfig
from clinitune.models.generate import GenerationResources
from clinitune.registry.settings import RegistrySettings


class TaskSpec(StrictModel):
    """The task whose prompts are evaluated (the same builder the training data came from)."""

    name: str = Field("icd10_coding", description="Registered task builder (see `clinitune data tasks`): icd10_coding or instructions.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword options of the builder (e.g. max_note_chars for icd10_coding).")


class GenerationConfig(StrictModel):
    """Batched greedy generation for task prompts."""

    max_new_tokens: int = Field(48, ge=1, le=4096, description="Tokens generated per task answer at most.")
    batch_size: int = Field(8, ge=1, description="Prompts per generation batch (sorted by length to limit padding).")
    unconstrained_check: bool = Field(True, description="With code_system set, also decode the candidate's task answers without the constraint, to report its invalid-code rate with the constraint off (unconstrained.* metrics).")
    code_system: str | None = Field(None, description="Terminology-constrained decoding of coded tasks' answers (icd10_coding): codes must exist in this code system's table ('icd10cm', or 'file:PATH' for your own; null = unconstrained). The same constraint as serving's 'code_system'.")

    @field_validator("code_system")
    @classmethod
    def _known_system(cls, v: str | None) -> str | None:
        from clinitune.terminology.systems import check_code_system

        return check_code_system(v, "generation.code_system")


class ProbeConfig(StrictModel):
    """General-skills forgetting probes built into the package (arithmetic, knowledge, format)."""

    enabled: bool = Field(True, description="Score both models on the built-in probe set.")
    families: list[str] = Field(default_factory=lambda: ["arithmetic", "knowledge", "format"], description="Probe families to run (built-in: arithmetic, knowledge, format).")
    max_per_family: int | None = Field(None, ge=1, description="Cap on probes per family (null = all of them).")
    max_new_tokens: int = Field(24, ge=1, description="Tokens generated per probe answer at most.")


class CanaryConfig(StrictModel):
    """PHI-leakage canaries: made-up identifiers planted in the training data."""

    enabled: bool = Field(True, description="Prompt with each planted canary's prefix and report how many secrets come back.")
    file: str | None = Field(None, description="canaries.json written by plant_canaries; null = <data>/canaries.json, and the check is skipped (reported as not run) when that file does not exist.")
    max_new_tokens: int = Field(24, ge=1, description="Tokens generated after each canary prefix.")


class FairnessConfig(StrictModel):
    """Task metrics per patient/note slice."""

    slices: list[str] = Field(default_factory=lambda: ["sex", "age_band", "note_type"], description="Slice keys: note_type (a column) or keys of the attributes JSON (sex, age_band).")
    min_slice_size: int = Field(5, ge=1, description="Slices with fewer examples are reported but left out of the largest-gap figure.")


class ConsistencyConfig(StrictModel):
    """Agreement of answers across paraphrased prompts and sampling seeds."""

    enabled: bool = Field(True, description="Measure consistency (extra generations on a subset of task examples).")
    n_examples: int = Field(16, ge=1, description="Task examples (the first N held-out ones) re-asked with paraphrases and seeds.")
    paraphrases: int = Field(2, ge=0, le=4, description="Built-in paraphrased instructions used per example (0 to 4).")
    seeds: list[int] = Field(default_factory=lambda: [1, 2], description="Sampling seeds; each gives one sampled answer per example.")
    temperature: float = Field(0.7, gt=0, le=2, description="Sampling temperature for the seeded answers.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus-sampling mass for the seeded answers.")
    baseline: bool = Field(True, description="Measure the baseline's consistency too (the gate judges the candidate's; false saves the baseline's extra generations).")
    retrieval: bool = Field(False, description="Measure it on the retrieval arm, as a deployment with retrieval answers: re-worded and sampled prompts carry the same passages as the example's RAG prompt and are compared with its RAG answer (needs rag.enabled).")


class RagConfig(StrictModel):
    """The retrieval arms: both models answer the task prompts again with retrieved passages."""

    enabled: bool = Field(False, description="Add the 'base + RAG' and 'fine-tuned + RAG' arms: the same held-out prompts with passages from a knowledge base in the system message, exactly as the serving endpoint builds them (one query per problem of the note).")
    kb: str = Field("icd10", description="Knowledge base to retrieve from (create it with 'clinitune rag ingest --kb NAME ...'); a missing one is an error, never a silent arm without retrieval.")
    store: str | None = Field(None, description="Knowledge-base store (directory or object-store URI); null = <workdir>/kb, where 'clinitune rag' and serving keep them.")
    top_k: int | None = Field(None, ge=1, le=50, description="Passages put in each prompt; null = what the candidate was trained with (data.passages.top_k), else 4.")
    mode: Literal["hybrid", "vector", "text"] = Field("hybrid", description="Retrieval: hybrid (BM25 + vector, reciprocal rank fusion), vector or text only.")
    passage_chars: int | None = Field(None, ge=50, description="Characters of each passage put in the prompt (serving's retrieval.context_chars); null = the candidate's training value (data.passages.passage_chars), else 600.")


class NewKnowledgeConfig(StrictModel):
    """Knowledge that arrived after training: held-out notes that need codes the model never saw as labels."""

    codes: list[str] | None = Field(None, description="The codes; null = the candidate's training data.holdout_codes. Their reference text must be in the knowledge base by now (it is what retrieval brings).")
    max_examples: int = Field(16, ge=1, description="Held-out examples needing them, scored as the new-knowledge slice (taken in the same fixed order, also beyond max_examples).")


class ExecutionConfig(ExecutionSettings, GenerationResources):
    """How generation runs on the Ray cluster."""


class EvalConfig(StrictModel):
    """Candidate vs baseline on held-out patients: task metrics, probes, canaries, hallucination, fairness, consistency."""

    candidate: str = Field(..., description="Model to evaluate: a training artifact directory, a registry reference (registry:candidate, registry:production, registry:7), a registered base-model name or a Hugging Face model directory.")
    baseline: str = Field("base", description="What the candidate is compared with: 'base' (the candidate's base model), 'production' (the registry's production version, else the base), or any model reference as for candidate.")
    data: str = Field(..., description="Curated dataset directory (DIR/{train,validation,test}/*.parquet + manifest.json); its test split holds the patients never trained on.")
    split: Literal["test", "validation"] = Field("test", description="Held-out split to evaluate on.")
    max_examples: int | None = Field(None, ge=1, description="Cap on held-out task examples (taken in a fixed order); null = all.")
    task: TaskSpec | None = Field(None, description="Task builder; null = the task recorded in the candidate's training artifact (else icd10_coding).")
    system_prompt: str | None = Field(None, description="System message for task prompts; null = the one recorded in the candidate's training artifact.")
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="Generation settings for task prompts.")
    loss: bool = Field(True, description="Compute held-out loss and perplexity on the reference answers.")
    probes: ProbeConfig = Field(default_factory=ProbeConfig, description="Forgetting probes.")
    canaries: CanaryConfig = Field(default_factory=CanaryConfig, description="PHI-leakage canaries.")
    hallucination: bool = Field(True, description="Count predicted codes that the ICD-10-CM table or the note does not support (icd10_coding).")
    fairness: FairnessConfig = Field(default_factory=FairnessConfig, description="Per-slice task metrics and the largest gap.")
    consistency: ConsistencyConfig = Field(default_factory=ConsistencyConfig, description="Paraphrase and seed agreement.")
    rag: RagConfig = Field(default_factory=RagConfig, description="The retrieval arms (base + RAG, fine-tuned + RAG) on the same held-out prompts.")
    new_knowledge: NewKnowledgeConfig = Field(default_factory=NewKnowledgeConfig, description="The new-knowledge slice: notes needing codes held out of training.")
    benchmarks: BenchmarksConfig = Field(default_factory=BenchmarksConfig, description="Medical knowledge benchmarks (MedMCQA, PubMedQA, MMLU medical) scored by log-likelihood, base vs candidate.")
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig, description="Ray execution settings.")
    registry: RegistrySettings = Field(default_factory=RegistrySettings, description="The model registry registry:* references and baseline: production resolve against.")
    workdir: str = Field("work", description="Working directory (holds the default registry database).")
    output_dir: str | None = Field(None, description="Where report.json and report.html are written; null = <workdir>/eval/<candidate name>-vs-<baseline name>.")
    gate_policy: str | None = Field(None, description="Gate policy YAML (jobs/configs/gate.yaml); when set, the decision and its reasons are written into the report.")

    @model_validator(mode="before")
    @classmethod
    def _old_spellings(cls, data):
        return renamed_keys(data, {"registry_uri": "registry.tracking_uri", "model_name": "registry.model_name"}, "eval config")

    @model_validator(mode="after")
    def _consistency_arm(self) -> "EvalConfig":
        if self.consistency.enabled and self.consistency.retrieval and not self.rag.enabled:
            raise ValueError("consistency.retrieval measures the retrieval arm: it needs rag.enabled: true")
        return self
