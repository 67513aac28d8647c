"""``run_evaluation``: candidate vs baseline on held-out patients -> report.json + report.html (+ gate)."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from clinitune.artifacts import curated
from clinitune.artifacts.model import ModelSpec, base_spec, resolve_ref, training_config, training_metrics
from clinitune.errors import UserError
from clinitune.evaluate.canaries import read_canaries
from clinitune.evaluate.config import EvalConfig
from clinitune.evaluate.gate import Decision, GatePolicy, decide, load_policy
from clinitune.evaluate.items import EvalSet, build_eval_set
from clinitune.evaluate.rag_arm import rag_items, rag_settings, score_rag
from clinitune.evaluate.report import FORMAT, deltas, write_report
from clinitune.evaluate.scoring import primary_metric, score_model, score_new_knowledge, score_unconstrained

log = logging.getLogger(__name__)
Reporter = Callable[[str], None]
N_SAMPLE_ANSWERS = 20


@dataclass
class EvalResult:
    report_path: Path
    html_path: Path
    report: dict
    decision: Decision | None

    @property
    def output_dir(self) -> Path:
        return self.report_path.parent


def _registry(cfg: EvalConfig):
    from clinitune.registry import Registry

    return Registry(cfg.registry.tracking_uri, model_name=cfg.registry.model_name, workdir=cfg.workdir)


def resolve_models(cfg: EvalConfig) -> tuple[ModelSpec, ModelSpec]:
    """The candidate and baseline specs (UserError naming the field when a model does not exist)."""
    needs_registry = cfg.candidate.startswith("registry:") or cfg.baseline.startswith("registry:") or cfg.baseline == "production"
    reg = _registry(cfg) if needs_registry else None
    cand = resolve_ref(cfg.candidate, field_name="candidate", registry=reg)
    if cfg.baseline == "base":
        base = base_spec(cand)
    elif cfg.baseline == "production":
        info = reg.get_alias("production")
        if info is None:
            base = base_spec(cand)
        else:
            base = resolve_ref(f"registry:{info.version}", field_name="baseline", registry=reg)
    else:
        base = resolve_ref(cfg.baseline, field_name="baseline", registry=reg)
    return cand, base


def _artifact_task(spec: ModelSpec) -> tuple[dict | None, str | None]:
    if not spec.artifact_dir:
        return None, None
    conf = training_config(spec.artifact_dir)
    if not conf:
        return None, spec.descriptor.get("system_prompt")
    data = conf.get("data") or {}
    return data.get("task"), data.get("system_prompt", spec.descriptor.get("system_prompt"))


def _artifact_data(spec: ModelSpec) -> dict:
    """The candidate's training data config (passages, held-out codes); {} for a plain model."""
    if not spec.artifact_dir:
        return {}
    return (training_config(spec.artifact_dir) or {}).get("data") or {}


def _dataset_info(data: str | Path) -> dict:
    lin = curated.lineage(data)
    if lin is None:
        return {"path": str(data)}
    return {"path": lin.path, "manifest_sha256": lin.manifest_sha256,
            "dataset_hash": lin.dataset_hash, "parent_dataset_hash": lin.parent_dataset_hash}


def _training(spec: ModelSpec) -> dict:
    if not spec.artifact_dir:
        return {}
    m = training_metrics(spec.artifact_dir)
    if not m:
        return {}
    keep = ("step", "epoch", "train_loss", "val_loss", "learning_rate", "tokens_per_s")
    return {"final": m.get("final", {}), "history": [{k: h[k] for k in keep if k in h} for h in m.get("history", [])]}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60] or "model"


def assemble(cfg: EvalConfig, es: EvalSet, cand: ModelSpec, base: ModelSpec, sc: dict, sb: dict,
             task: dict, system_prompt: str | None, seconds: float, canaries_file: str | None,
             rag: dict | None = None) -> dict:
    """The report. ``rag``: {"settings", "candidate", "baseline"} of the retrieval arms, or None."""
    cm, bm = sc["metrics"], sb["metrics"]
    ab = "rag." if es.consistency_arm != "task/" else ""
    probes = {}
    for fam, d in (sc["details"].get("probes") or {}).items():
        b = (sb["details"].get("probes") or {}).get(fam, {})
        probes[fam] = {"n": d["n"], "candidate": d["accuracy"], "baseline": b.get("accuracy"),
                       "regression": (b["accuracy"] - d["accuracy"]) if "accuracy" in b else None}
    examples = []
    for ex_id, ref in list(zip(es.examples["example_id"], es.examples["reference"]))[:N_SAMPLE_ANSWERS]:
        examples.append({"example_id": ex_id, "reference": ref[:200], "candidate": sc["details"]["answers"][ex_id][:200],
                         "baseline": sb["details"]["answers"][ex_id][:200]})
    data = _dataset_info(cfg.data)
    data.update(split=cfg.split, examples=len(es.examples), patients=int(es.examples["patient_id"].nunique()),
                dropped=es.dropped)
    return {
        "format": FORMAT,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(seconds, 1),
        "task": {"name": task["name"], "options": task.get("options", {}), "system_prompt": system_prompt,
                 "primary_metric": primary_metric(task["name"])},
        "data": data,
        "candidate": cand.to_json(),
        "baseline": base.to_json(),
        "metrics": {"candidate": cm, "baseline": bm, "delta": deltas(cm, bm)},
        "probes": probes,
        "canaries": {"file": canaries_file, "candidate": sc["details"].get("canaries"), "baseline": sb["details"].get("canaries")}
        if es.canaries else {"file": None, "note": "no canaries planted in this dataset: PHI extraction not measured"},
        "hallucination": {"candidate": sc["details"].get("hallucination"), "baseline": sb["details"].get("hallucination"),
                          **({"candidate_rag": rag["candidate"]["details"].get("hallucination"),
                              "baseline_rag": rag["baseline"]["details"].get("hallucination")} if rag else {})},
        "fairness": {"candidate": sc["details"].get("fairness"), "baseline": sb["details"].get("fairness"),
                     "min_slice_size": cfg.fairness.min_slice_size},
        "consistency": {"candidate": sc["details"].get("consistency"), "baseline": sb["details"].get("consistency"),
                        "retrieval": es.consistency_arm != "task/",  # measured on the retrieval arm (as deployed with it)
                        "seeds": cfg.consistency.seeds, "temperature": cfg.consistency.temperature, "top_p": cfg.consistency.top_p,
                        "abstention_rate": {"candidate": cm.get(f"{ab}task.abstention_rate"), "baseline": bm.get(f"{ab}task.abstention_rate")}},
        "rag": _rag_section(es, rag),
        "arms": arms_section(cfg, cm, bm, cand, base, rag is not None),
        "new_knowledge": _new_knowledge_section(es, sc, sb),
        "training": _training(cand),
        "examples": examples,
        "config": cfg.model_dump(mode="json"),
    }


def _rag_section(es: EvalSet, rag: dict | None) -> dict:
    if rag is None:
        return {"enabled": False}
    st, rc, rb = rag["settings"], rag["candidate"], rag["baseline"]
    sample = [{"example_id": i, "retrieved": rc["details"]["retrieved"].get(i, [])[: st["top_k"]],
               "answer": rc["details"]["answers"][i][:200], "baseline_answer": rb["details"]["answers"][i][:200]}
              for i in list(map(str, es.examples["example_id"]))[:N_SAMPLE_ANSWERS]]
    return {"enabled": True, **st, "queries": "clinical (one per problem of the note, as serving builds them)",
            "retrieval_recall": rc["details"].get("retrieval_recall"), "metrics": rc["metrics"], "examples": sample}


ARMS = (("base", "baseline", ""), ("base_rag", "baseline", "rag."), ("finetuned", "candidate", ""),
        ("finetuned_rag", "candidate", "rag."))
ARM_LABELS = {"base": "base", "base_rag": "base + RAG", "finetuned": "fine-tuned", "finetuned_rag": "fine-tuned + RAG"}


def arms_section(cfg: EvalConfig, cm: dict, bm: dict, cand: ModelSpec, base: ModelSpec, rag: bool) -> dict:
    """The four arms side by side on the same held-out notes: base, base + RAG, fine-tuned, fine-tuned + RAG."""
    out = {}
    for arm, role, prefix in ARMS:
        if prefix and not rag:
            continue
        m = cm if role == "candidate" else bm
        out[arm] = {
            "label": ARM_LABELS[arm], "model": (cand if role == "candidate" else base).name, "retrieval": bool(prefix),
            "code_system": cfg.generation.code_system,
            **{k: m.get(f"{prefix}task.{k}") for k in ("code_f1", "code_precision", "code_recall", "exact_match",
                                                         "invalid_code_rate", "abstention_rate", "rouge_l")},
            "hallucination_rate": m.get(f"{prefix}hallucination.rate"),
            "retrieval_recall": m.get("rag.retrieval_recall") if prefix else None,
            "retrieval_recall_at_4": m.get("rag.retrieval_recall_at_4") if prefix else None,
            "new_knowledge_code_f1": m.get(f"{prefix}new_knowledge.code_f1"),
        }
    if "finetuned" in out and (cm.get("unconstrained.task.invalid_code_rate") is not None or cm.get("unconstrained.task.code_f1") is not None):
        out["finetuned"]["unconstrained"] = {"code_f1": cm.get("unconstrained.task.code_f1"),
                                             "invalid_code_rate": cm.get("unconstrained.task.invalid_code_rate")}
    return out


def _new_knowledge_section(es: EvalSet, sc: dict, sb: dict) -> dict:
    if not es.new_codes:
        return {"enabled": False, "note": "no codes were held out of training: nothing new to know"}
    n = 0 if es.new_examples is None else len(es.new_examples)
    return {"enabled": True, "codes": es.new_codes, "examples": n,
            "example_ids": [] if not n else list(map(str, es.new_examples["example_id"])),
            "arms": {"base": sb["details"].get("new_knowledge"), "base_rag": sb["details"].get("rag_new_knowledge"),
                     "finetuned": sc["details"].get("new_knowledge"), "finetuned_rag": sc["details"].get("rag_new_knowledge")},
            "metric": "F1 over the held-out codes only (predicted and reference codes restricted to them)"}


def run_evaluation(cfg: EvalConfig, *, report: Reporter | None = None, local: bool = False,
                   policy: GatePolicy | None = None) -> EvalResult:
    """Evaluate ``cfg.candidate`` against ``cfg.baseline``; write the report (and the gate's decision)."""
    say = report or log.info
    t0 = time.time()
    if policy is None and cfg.gate_policy:
        policy = load_policy(cfg.gate_policy)  # fail on a bad policy before any model runs
    cand, base = resolve_models(cfg)
    task_cfg, art_prompt = _artifact_task(cand)
    task = cfg.task.model_dump() if cfg.task else (task_cfg or {"name": "icd10_coding", "options": {}})
    system_prompt = cfg.system_prompt if cfg.system_prompt is not None else art_prompt

    canaries, canaries_file = [], None
    if cfg.canaries.enabled:
        path = Path(cfg.canaries.file) if cfg.canaries.file else Path(cfg.data) / curated.CANARIES
        if cfg.canaries.file or path.is_file():
            canaries, canaries_file = read_canaries(path), str(path)
    trained = _artifact_data(cand)
    new_codes = cfg.new_knowledge.codes if cfg.new_knowledge.codes is not None else (trained.get("holdout_codes") or [])
    es = build_eval_set(cfg, task["name"], task.get("options") or {}, system_prompt, canaries, new_codes)
    retrieved: dict[str, list[str]] = {}
    rag_df = None
    settings = rag_settings(cfg, trained.get("passages"))
    if not local:  # Ray before lancedb (the RAG arm): starting Ray forks this process, which lancedb's runtime warns about
        from clinitune.ray_utils import connect

        connect(cfg.execution.ray_address, num_cpus=cfg.execution.num_cpus)
    if cfg.rag.enabled:  # retrieval first: a missing knowledge base fails before any model runs
        rag_df, retrieved = rag_items(cfg, es, settings)  # (consistency on the retrieval arm: its prompts get passages)
        say(f"retrieved {settings['top_k']} passages per example from knowledge base '{settings['kb']}' (one query per problem)")
    items = {"candidate": pd.concat([es.items, es.candidate_items, rag_df], ignore_index=True),
             "baseline": pd.concat([es.items, rag_df], ignore_index=True)}
    say(f"evaluating {cand.name} vs {base.name}: {len(es.examples)} held-out examples, "
        f"{len(items['candidate'])} prompts for the candidate, {len(items['baseline'])} for the baseline")

    results = {}
    if local:
        from clinitune.models.generate import run_local

        for role, spec in (("candidate", cand), ("baseline", base)):
            t = time.time()
            results[role] = run_local(spec, items[role], batch_size=cfg.generation.batch_size, dtype=cfg.execution.dtype,
                                      torch_threads=cfg.execution.torch_threads)
            say(f"{role} {spec.name}: answered in {time.time() - t:.0f}s")
    else:
        from clinitune.models.generate import run_on_ray

        for role, spec in (("candidate", cand), ("baseline", base)):
            t = time.time()
            results[role] = run_on_ray(spec, items[role], cfg.execution, batch_size=cfg.generation.batch_size)
            say(f"{role} {spec.name}: answered in {time.time() - t:.0f}s")
    sc = score_model(es, results["candidate"], cfg.fairness.min_slice_size)
    sb = score_model(es, results["baseline"], cfg.fairness.min_slice_size)
    sc["metrics"].update(score_unconstrained(es, results["candidate"]))
    knowledge = run_benchmarks(cfg, cand, base, local=local, say=say) if cfg.benchmarks.enabled else None
    if knowledge is not None:
        sc["metrics"].update(knowledge.metrics["candidate"])
        sb["metrics"].update(knowledge.metrics["baseline"])
    rag = None
    if cfg.rag.enabled:
        rag = {"settings": settings}
        for role, scored in (("candidate", sc), ("baseline", sb)):
            rag[role] = score_rag(es, results[role], retrieved, settings["top_k"])
            scored["metrics"].update(rag[role]["metrics"])
    for role, scored in (("candidate", sc), ("baseline", sb)):
        for prefix, key in (("task/", ""), ("rag/", "rag.")):
            nk = score_new_knowledge(es, results[role], prefix) if (prefix == "task/" or rag) else None
            if nk is not None:
                scored["metrics"][f"{key}new_knowledge.code_f1"] = nk["code_f1"]
                scored["details"][f"{key.replace('.', '_')}new_knowledge"] = nk
    rep = assemble(cfg, es, cand, base, sc, sb, task, system_prompt, time.time() - t0, canaries_file, rag)
    rep["knowledge"] = knowledge.section if knowledge is not None else {"enabled": False}
    decision = None
    if policy is not None:
        decision = decide(rep, policy)
        rep["gate"] = decision.to_json()
    out_dir = Path(cfg.output_dir) if cfg.output_dir else Path(cfg.workdir) / "eval" / f"{_slug(cand.name)}-vs-{_slug(base.name)}"
    rep["answers"] = persist_answers(cfg, es, out_dir, sc, sb, rag)
    jp, hp = write_report(rep, out_dir)
    say(f"report: {jp}")
    return EvalResult(jp, hp, rep, decision)


def persist_answers(cfg: EvalConfig, es: EvalSet, out_dir: Path, sc: dict, sb: dict, rag: dict | None) -> dict:
    """Every example's full answers, per arm, into ``answers.jsonl`` (clinician review samples from it)."""
    from clinitune.evaluate.answers import answer_records, inputs_status, write_answers

    arms = {"candidate": sc["details"]["answers"], "baseline": sb["details"]["answers"]}
    if rag is not None:
        arms["candidate_rag"] = rag["candidate"]["details"]["answers"]
        arms["baseline_rag"] = rag["baseline"]["details"]["answers"]
    inputs = inputs_status(cfg.data)
    records = answer_records(es.examples, arms, es.slice_keys, with_inputs=inputs != "not_deidentified")
    return write_answers(out_dir, records, task=es.task, slice_keys=es.slice_keys,
                         inputs="withheld" if inputs == "not_deidentified" else inputs)


def run_benchmarks(cfg: EvalConfig, cand: ModelSpec, base: ModelSpec, *, local: bool, say: Reporter):
    """The knowledge benchmarks for both models (``clinitune.evaluate.knowledge``)."""
    from clinitune.evaluate.knowledge import local_scorer, ray_scorer, run_knowledge

    b, ex = cfg.benchmarks, cfg.execution
    scorer = (local_scorer if local else ray_scorer)(ex, b.max_batch_tokens)
    if local:
        from clinitune.models.generate import run_local

        def run_items(spec, items):
            return run_local(spec, items, batch_size=cfg.generation.batch_size, dtype=ex.dtype, torch_threads=ex.torch_threads)
    else:
        from clinitune.models.generate import run_on_ray

        def run_items(spec, items):
            return run_on_ray(spec, items, ex, batch_size=cfg.generation.batch_size)
    cache = b.cache_dir or str(Path(cfg.workdir) / "cache" / "benchmarks")
    return run_knowledge(b, {"candidate": cand, "baseline": base}, scorer=scorer, cache_root=cache, run_items=run_items, say=say)


def gate_report(report_path: str | Path, policy_path: str | Path | None) -> Decision:
    """Re-decide an existing report under a policy and write the decision into it (json and html)."""
    from clinitune.evaluate.report import read_report

    policy = load_policy(policy_path)
    rep = read_report(report_path)
    decision = decide(rep, policy)
    rep["gate"] = decision.to_json()
    p = Path(report_path)
    write_report(rep, p if p.is_dir() else p.parent)
    return decision


__all__ = ["EvalResult", "run_evaluation", "gate_report", "resolve_models", "UserError"]
