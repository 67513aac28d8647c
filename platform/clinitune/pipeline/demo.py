"""The whole story on one laptop, offline (``make demo``): synthetic notes -> curation with
de-identification -> ICD-10 coding training set -> LoRA fine-tuning of the embedded SmolLM2-135M
-> evaluation against the base model on held-out patients -> gate -> registry.

The demo drops synthetic notes into an inbox and runs one tick of the continuous pipeline
(``clinitune.pipeline``), so it exercises exactly the code a scheduled production loop runs.
Running it again finds nothing new in the inbox, does nothing, and prints the last report.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import Field

from clinitune.config import RayAddress, StrictModel
from clinitune.errors import UserError

log = logging.getLogger(__name__)


class DemoConfig(StrictModel):
    """Size and recipe of the demo (``jobs/configs/demo.yaml`` documents every key)."""

    workdir: str = Field("work/demo", description="Working directory: inbox, pipeline state and runs, MLflow database, reports.")
    notes: int = Field(600, ge=50, description="Synthetic notes generated into the inbox.")
    seed: int = Field(7, description="Seed of the synthetic notes.")
    max_chars: int = Field(1000, ge=800, description="Character budget per synthetic note (short notes keep CPU training fast).")
    code_pool: int = Field(0, ge=0, description="Chronic, acute and imaging diagnoses drawn from this many ICD-10 codes each (0 = all): a label space a small model can learn in minutes.")
    curate_overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted curation keys over the defaults (e.g. split fractions).")
    finetune_config: str = Field("jobs/configs/train.yaml", description="Finetune config YAML the demo starts from.")
    finetune_overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted finetune keys: the demo's training recipe.")
    eval_config: str | None = Field("jobs/configs/evaluate.yaml", description="Eval config YAML (null = defaults).")
    eval_overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted eval keys over eval_config.")
    gate_overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted gate-policy keys over gate_policy (the demo deploys retrieval: min_rag_gain).")
    gate_policy: str | None = Field("jobs/configs/gate.yaml", description="Gate policy YAML (null = the default policy).")
    canaries: int = Field(8, ge=0, description="Canary records planted in the training split (PHI-extraction check).")
    rag: bool = Field(True, description="Ingest every ICD-10-CM code of the categories the demo's notes use as knowledge base 'icd10-demo' (once; cached in $CLINITUNE_HOME/kb), train with retrieved passages in a share of the prompts (finetune data.passages) and report the four arms (base, base + RAG, fine-tuned, fine-tuned + RAG) on the same held-out notes.")
    new_codes: list[str] = Field(default_factory=list, description="Knowledge that arrives after training: codes never shown in training (data.holdout_codes: no training label holds them, their knowledge-base entries are absent while training); their reference text is ingested into the knowledge base after training, and held-out notes needing them are scored as the new-knowledge slice.")
    time_budget_s: int = Field(1200, ge=60, description="Wall-clock budget; the demo warns when it ran longer.")
    ray_address: RayAddress = None


@dataclass
class DemoResult:
    report_path: Path | None
    html_path: Path | None
    report: dict | None
    pipeline_status: str
    version: str | None
    seconds: float
    curated: Path | None = None  # the curated dataset (its manifest.json and DATASET_CARD.md inside)


def _resolve(path: str | None, root: Path) -> str | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    return str(p if p.is_absolute() or p.exists() else root / p)


def kb_root() -> Path:
    """Where the demo keeps its knowledge base: beside the converted models, reused by every run."""
    from clinitune.models.catalog import clinitune_home

    return clinitune_home() / "kb"


DEMO_KB = "icd10-demo"


def demo_categories() -> list[str]:
    """The ICD-10-CM categories the synthetic hospital codes from (every code of each, not only the labels)."""
    from clinitune.synth.codes import generation_codes

    return sorted({e.code[:3] for e in generation_codes()})


def ensure_icd10_kb(say: Callable[[str], None], kb: str = DEMO_KB, held_back: list[str] = ()) -> Path:
    """Knowledge base ``kb``: every billable code of :func:`demo_categories` but ``held_back`` (ingested
    once, then reused; entries a previous run added after training are removed again).

    About 4,700 codes, a minute of embedding on a 2-core CPU; the whole 74k-code table
    (``clinitune rag ingest --kb icd10 --icd10``) takes ~10 minutes there, too long for the demo.
    """
    from clinitune.rag.chunking import chunk_document
    from clinitune.rag.ingest import ingest_kb
    from clinitune.rag.sources import icd10_documents
    from clinitune.rag.store import KbStore, content_fingerprint

    root = kb_root()
    store = KbStore(root)
    cats = demo_categories()

    def fingerprint(exclude) -> str:
        docs = icd10_documents(cats, exclude=exclude)
        return content_fingerprint((c.chunk_id, c.title, c.text) for d in docs for c in chunk_document(d))

    expected = fingerprint(held_back)
    if kb in store.names():
        have = store.fingerprint(kb)
        if have == expected:  # same passages: reuse the embeddings
            return root
        if held_back and have == fingerprint(()):  # a previous run's post-training additions: take them out again
            store.delete_documents(kb, list(held_back))
            store.maintain(kb)
            return root
    t = time.time()
    rep = ingest_kb(store, kb, icd10=True, icd10_categories=cats, icd10_exclude=held_back, recreate=True)
    say(f"knowledge base '{kb}': {rep.chunks:,} ICD-10-CM codes of {len(cats)} categories embedded into {root} "
        f"({time.time() - t:.0f}s, once)")
    return root


def add_new_knowledge(root: Path, codes: list[str], workdir: Path, say: Callable[[str], None], kb: str = DEMO_KB) -> Path:
    """After training: the reference text of ``codes`` arrives (a JSONL drop, as a guidance update would)
    and is ingested into knowledge base ``kb`` through the ordinary ingest."""
    from clinitune.rag.ingest import ingest_kb
    from clinitune.rag.sources import icd10_document
    from clinitune.rag.store import KbStore
    from clinitune.terminology.icd10 import lookup

    drop = workdir / "new_guidance" / "icd10-update.jsonl"
    drop.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for code in codes:
        entry = lookup(code)
        if entry is None:
            raise UserError(f"demo new_codes: '{code}' is not a billable ICD-10-CM code.", fix="list billable codes (e.g. N20.1).")
        doc = icd10_document(entry)
        lines.append(json.dumps({"id": doc.doc_id, "title": doc.title, "text": doc.text, "source": "icd10cm-update"}))
    drop.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rep = ingest_kb(KbStore(root), kb, [drop])
    say(f"new knowledge after training: {rep.documents} ICD-10-CM entries ({', '.join(codes)}) ingested into '{kb}'")
    return drop


def pipeline_config(cfg: DemoConfig, root: Path | None = None, kb: Path | None = None):
    """The pipeline config the demo runs (relative config paths resolved against ``root``, the repo)."""
    from clinitune.pipeline.config import PipelineConfig

    root = root or Path.cwd()
    work = Path(cfg.workdir).expanduser().resolve()
    eval_overrides = dict(cfg.eval_overrides)
    finetune_overrides = dict(cfg.finetune_overrides)
    if cfg.new_codes:
        finetune_overrides["data.holdout_codes"] = list(cfg.new_codes)
    if kb is not None:  # retrieval is deployed: the retrieval arms, and consistency measured on the arm served
        eval_overrides.update({"rag.enabled": True, "rag.kb": DEMO_KB, "rag.store": str(kb), "consistency.retrieval": True})
        if "data.passages" in finetune_overrides:  # retrieval-aware training reads the same knowledge base
            finetune_overrides["data.passages"] = {**finetune_overrides["data.passages"], "kb": DEMO_KB, "store": str(kb)}
    gate_overrides = dict(cfg.gate_overrides)
    if kb is None:  # no retrieval: no passages in training, nothing for the retrieval check to compare
        finetune_overrides.pop("data.passages", None)
        gate_overrides.pop("min_rag_gain", None)
        gate_overrides.pop("deployed", None)
    return PipelineConfig(
        inbox=str(work / "inbox"), workdir=str(work), curate_overrides=cfg.curate_overrides,
        finetune_config=_resolve(cfg.finetune_config, root), finetune_overrides=finetune_overrides,
        eval_config=_resolve(cfg.eval_config, root), eval_overrides=eval_overrides,
        gate_policy=_resolve(cfg.gate_policy, root), gate_overrides=gate_overrides, start_from="base",
        canaries=cfg.canaries, ray_address=cfg.ray_address,
    )


def make_notes(cfg: DemoConfig) -> Path:
    """Synthetic notes in the inbox (generated once; the same seed and size are reused as they are)."""
    from clinitune.synth.generate import SynthOptions
    from clinitune.synth.writer import MANIFEST_NAME, generate_dataset

    out = Path(cfg.workdir).expanduser().resolve() / "inbox" / f"synth-s{cfg.seed}-n{cfg.notes}-c{cfg.code_pool}"
    if (out / MANIFEST_NAME).is_file():
        return out
    generate_dataset(cfg.notes, out, seed=cfg.seed, options=SynthOptions(max_chars=cfg.max_chars, code_pool=cfg.code_pool).validated(), use_ray=False, overwrite=True)
    return out


def _runs_newest_first(workdir: Path) -> list[dict]:
    """The pipeline's recorded runs in ``workdir``, most recent first (none before the first run)."""
    state = workdir / "pipeline" / "state.json"
    if not state.is_file():
        return []
    data = json.loads(state.read_text(encoding="utf-8"))
    return sorted(data.get("runs", {}).values(), key=lambda r: r.get("started_at", ""), reverse=True)


def _stage_output(run: dict, stage: str) -> dict:
    return run.get("stages", {}).get(stage, {}).get("output", {})


def _last_report(workdir: Path) -> tuple[Path | None, str | None]:
    for run in _runs_newest_first(workdir):
        rep = _stage_output(run, "eval").get("report")
        if rep:
            return Path(rep), _stage_output(run, "register").get("version")
    return None, None


def _last_curated(workdir: Path) -> Path | None:
    for run in _runs_newest_first(workdir):
        out = _stage_output(run, "curate").get("curated")
        if out:
            return Path(out)
    return None


def run_demo(cfg: DemoConfig, *, root: Path | None = None, report: Callable[[str], None] | None = None) -> DemoResult:
    """Run (or re-show) the whole story; returns where the report is."""
    from clinitune.evaluate.report import REPORT_HTML, read_report
    from clinitune.pipeline.runner import run_pipeline

    say = report or log.info
    t0 = time.time()
    work = Path(cfg.workdir).expanduser().resolve()
    notes = make_notes(cfg)
    say(f"synthetic notes: {notes} ({time.time() - t0:.0f}s)")
    if cfg.rag:  # Ray first: starting it forks this process, which lancedb's runtime (used by the ingest) warns about
        from clinitune.ray_utils import connect

        connect(cfg.ray_address)
    kb = ensure_icd10_kb(say, held_back=cfg.new_codes) if cfg.rag else None

    def before(run_id: str, stage: str) -> None:
        if stage == "eval" and kb is not None and cfg.new_codes:  # knowledge that arrives after training
            add_new_knowledge(kb, cfg.new_codes, work, lambda m: say(f"[{time.time() - t0:5.0f}s] {m}"))

    result = run_pipeline(pipeline_config(cfg, root, kb), on_stage=before,
                          report=lambda m: say(f"[{time.time() - t0:5.0f}s] {m}"))
    path, version = (Path(result.report_path), result.version) if result.report_path else _last_report(work)
    rep = read_report(path) if path and path.is_file() else None
    seconds = time.time() - t0
    if seconds > cfg.time_budget_s:
        say(f"warning: the demo took {seconds:.0f}s, over its {cfg.time_budget_s}s budget")
    return DemoResult(path, path.parent / REPORT_HTML if path else None, rep, result.status, version, seconds,
                      _last_curated(work))
