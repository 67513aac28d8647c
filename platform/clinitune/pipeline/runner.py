"""``run_pipeline``: new notes -> curate -> canaries -> train -> evaluate -> review -> gate -> register -> promote.

Each stage records its outputs in the run state when it finishes; a crashed or interrupted run is
resumed at its first unfinished stage by the next invocation (training itself resumes from its
last checkpoint: the run name is fixed per pipeline run). With no unfinished run and no new file
in the inbox an invocation does nothing (and says so in the run log). Production changes only in
the last stage, and only when the gate promotes: a failed or rejected run leaves it untouched.
When the gate policy requires clinician review, a tick whose campaign is still open ends with
status ``awaiting_review`` (the run stays current; ``pipeline.review``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from clinitune.artifacts import curated
from clinitune.artifacts import model as model_artifact
from clinitune.config import apply_dotted, config_hash, load_config, validate_config
from clinitune.errors import UserError
from clinitune.pipeline.config import PipelineConfig
from clinitune.pipeline.review import AwaitingReview, review_stage
from clinitune.pipeline.state import Lock, PipelineState

log = logging.getLogger(__name__)

STAGES = ("snapshot", "curate", "canaries", "start_model", "train", "eval", "review", "gate", "register", "promote")
StageHook = Callable[[str, str], None]  # (run_id, stage) before each stage runs


@dataclass
class PipelineResult:
    status: str  # noop | promoted | rejected | registered | awaiting_review
    run_id: str | None = None
    version: str | None = None
    report_path: str | None = None
    decision: str | None = None
    reasons: list[str] = field(default_factory=list)
    resumed: bool = False
    skipped_stages: list[str] = field(default_factory=list)


@dataclass
class Context:
    cfg: PipelineConfig
    state: PipelineState
    run_id: str
    run_dir: Path
    curate_cfg: object
    finetune_base: dict
    eval_base: dict
    policy: object
    registry: object


def _load_stage_configs(cfg: PipelineConfig):
    """Every stage config, validated before anything runs (one-line errors naming the file)."""
    from clinitune.curate.config import CurateConfig
    from clinitune.evaluate.config import EvalConfig
    from clinitune.evaluate.gate import GatePolicy, load_policy
    from clinitune.train.config import TrainConfig

    cur = apply_dotted(load_config(cfg.curate_config, CurateConfig).model_dump(mode="json"), cfg.curate_overrides, source="curate_overrides")
    curate_cfg = validate_config(cur, CurateConfig, source=f"{cfg.curate_config or 'curate defaults'} + curate_overrides")
    if cfg.ray_address:
        curate_cfg.execution.ray_address = cfg.ray_address
    ft = load_config(cfg.finetune_config, TrainConfig).model_dump(mode="json")
    ft = apply_dotted(ft, cfg.finetune_overrides, source="finetune_overrides")
    validate_config(ft, TrainConfig, source=f"{cfg.finetune_config} + finetune_overrides")
    ev = load_config(cfg.eval_config, EvalConfig, {"candidate": "-", "data": "-"}).model_dump(mode="json")
    ev = apply_dotted(ev, cfg.eval_overrides, source="eval_overrides")
    validate_config(ev, EvalConfig, source=f"{cfg.eval_config or 'eval defaults'} + eval_overrides")
    policy = load_policy(cfg.gate_policy) if cfg.gate_policy else GatePolicy()
    if cfg.gate_overrides:
        policy = validate_config(apply_dotted(policy.model_dump(mode="json"), cfg.gate_overrides), GatePolicy,
                                 source=f"{cfg.gate_policy or 'gate defaults'} + gate_overrides")
    return curate_cfg, ft, ev, policy


def _run_id(files: list[dict]) -> str:
    digest = hashlib.sha256("".join(sorted(f["sha256"] for f in files)).encode()).hexdigest()[:8]
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{digest}"


# --- stages ----------------------------------------------------------------------------------------


def _snapshot(ctx: Context) -> dict:
    from clinitune.pipeline.inbox import snapshot

    dest = snapshot(ctx.state.run(ctx.run_id)["files"], ctx.run_dir / "inputs")
    return {"inputs": str(dest)}


def _curate(ctx: Context) -> dict:
    from clinitune.curate.pipeline import run_curation

    inputs = ctx.state.stage_output(ctx.run_id, "snapshot")["inputs"]
    res = run_curation([inputs], ctx.run_dir / "curated", ctx.curate_cfg)
    counts = res.manifest.get("counts", {})
    return {"curated": str(res.output), "dataset_hash": res.manifest.get("dataset_hash"), "counts": counts.get("output", {})}


def _canaries(ctx: Context) -> dict:
    curated = ctx.state.stage_output(ctx.run_id, "curate")["curated"]
    if ctx.cfg.canaries <= 0:
        return {"dataset": curated, "canaries": 0}
    from clinitune.evaluate.canaries import plant_canaries

    seed = int(hashlib.sha256(f"{ctx.cfg.canary_seed}:{ctx.run_id}".encode()).hexdigest()[:8], 16)
    canaries = plant_canaries(curated, ctx.run_dir / "dataset", ctx.cfg.canaries, seed)
    return {"dataset": str(ctx.run_dir / "dataset"), "canaries": len(canaries)}


def _start_model(ctx: Context) -> dict:
    prod = ctx.registry.get_alias("production")
    if ctx.cfg.start_from == "base" or prod is None:
        return {"model": ctx.finetune_base["model"], "production_version": prod.version if prod else None, "from": "base"}
    from clinitune.artifacts.model import merge_to_dir, resolve_ref

    # A production adapter is merged into its base once, as a plain model directory kept under
    # the workdir (the candidate's artifact names it as its base); a full fine-tune is used as is.
    spec = resolve_ref(f"registry:{prod.version}", field_name="production", registry=ctx.registry)
    dest = Path(ctx.cfg.workdir) / "pipeline" / "bases" / f"{ctx.registry.model_name}-v{prod.version}"
    path = merge_to_dir(spec, dest)
    return {"model": str(path.resolve()), "production_version": prod.version, "from": "production"}


def _finetune_cfg(ctx: Context):
    from clinitune.train.config import TrainConfig

    start = ctx.state.stage_output(ctx.run_id, "start_model")
    dataset = ctx.state.stage_output(ctx.run_id, "canaries")["dataset"]
    ft = apply_dotted(ctx.finetune_base, {
        "model": start["model"], "data.source": dataset, "workdir": ctx.cfg.workdir,
        "output_dir": str(ctx.run_dir / "artifact"), "checkpoint.run_name": f"pipeline-{ctx.run_id}",
    })
    if ctx.cfg.registry.tracking_uri:
        ft = apply_dotted(ft, {"tracking.tracking_uri": ctx.cfg.registry.tracking_uri})
    if ctx.cfg.ray_address:
        ft = apply_dotted(ft, {"scaling.ray_address": ctx.cfg.ray_address})
    return validate_config(ft, TrainConfig, source="pipeline finetune config")


def _train(ctx: Context) -> dict:
    from clinitune.train.trainer import run_finetune

    ftcfg = _finetune_cfg(ctx)
    artifact = run_finetune(ftcfg)
    return {"artifact": str(artifact), "training_config_hash": config_hash(ftcfg)}


def _eval(ctx: Context) -> dict:
    from clinitune.evaluate.config import EvalConfig
    from clinitune.evaluate.runner import run_evaluation

    start = ctx.state.stage_output(ctx.run_id, "start_model")
    baseline = f"registry:{start['production_version']}" if start.get("production_version") else "base"
    ev = apply_dotted(ctx.eval_base, {
        "candidate": ctx.state.stage_output(ctx.run_id, "train")["artifact"], "baseline": baseline,
        "data": ctx.state.stage_output(ctx.run_id, "canaries")["dataset"], "workdir": ctx.cfg.workdir,
        "output_dir": str(ctx.run_dir / "eval"), "registry.tracking_uri": ctx.registry.uri, "registry.model_name": ctx.registry.model_name,
        "gate_policy": None,
    })
    if ctx.cfg.ray_address:
        ev = apply_dotted(ev, {"execution.ray_address": ctx.cfg.ray_address})
    res = run_evaluation(validate_config(ev, EvalConfig, source="pipeline eval config"))
    pm = res.report["task"]["primary_metric"]
    m = res.report["metrics"]
    return {"report": str(res.report_path), "html": str(res.html_path), "primary_metric": pm,
            "candidate": m["candidate"].get(pm), "baseline": m["baseline"].get(pm)}


def _review(ctx: Context) -> dict:
    return review_stage(ctx.cfg, ctx.run_id, ctx.state.stage_output(ctx.run_id, "eval")["report"], ctx.policy,
                        ctx.state.stage_output(ctx.run_id, "review"))


def _gate(ctx: Context) -> dict:
    from clinitune.evaluate.gate import decide
    from clinitune.evaluate.report import read_report, write_report

    path = Path(ctx.state.stage_output(ctx.run_id, "eval")["report"])
    rep = read_report(path)
    decision = decide(rep, ctx.policy)
    rep["gate"] = decision.to_json()
    write_report(rep, path.parent)
    return {"decision": decision.decision, "reasons": decision.reasons}


def _lineage(ctx: Context) -> dict:
    out = ctx.state.stage_output
    lin = curated.lineage(out(ctx.run_id, "canaries")["dataset"])
    training_config = model_artifact.training_config(out(ctx.run_id, "train")["artifact"])
    return {
        "pipeline_run_id": ctx.run_id,
        "dataset_hash": lin.dataset_hash if lin else None,
        "parent_dataset_hash": lin.parent_dataset_hash if lin else None,
        "dataset_manifest_sha256": lin.manifest_sha256 if lin else None,
        "training_config_hash": out(ctx.run_id, "train").get("training_config_hash"),
        "training_config": training_config,
        "base_model": training_config.get("model"),
        "started_from": out(ctx.run_id, "start_model").get("from"),
        "started_from_version": out(ctx.run_id, "start_model").get("production_version"),
        "eval_report": out(ctx.run_id, "eval")["report"],
        "gate_decision": out(ctx.run_id, "gate")["decision"],
        "inputs": [f["sha256"] for f in ctx.state.run(ctx.run_id)["files"]],
    }


def _register(ctx: Context) -> dict:
    existing = [v for v in ctx.registry.list_versions() if v.tags.get("clinitune.pipeline_run_id") == ctx.run_id]
    if existing:  # registered before a crash that lost the state update
        return {"version": existing[-1].version}
    from clinitune.evaluate.report import read_report
    from clinitune.review.publish import review_metrics

    report_path = ctx.state.stage_output(ctx.run_id, "eval")["report"]
    human_review = read_report(report_path).get("human_review")
    version = ctx.registry.register_candidate(ctx.state.stage_output(ctx.run_id, "train")["artifact"], report_path, _lineage(ctx),
                                              review_metrics(human_review) if human_review else None)
    return {"version": version}


def _promote(ctx: Context) -> dict:
    version = ctx.state.stage_output(ctx.run_id, "register")["version"]
    decision = ctx.state.stage_output(ctx.run_id, "gate")["decision"]
    if decision != "promote":
        return {"promoted": False, "why": "gate rejected"}
    if not ctx.cfg.registry.auto_promote:
        return {"promoted": False, "why": "registry.auto_promote is false"}
    info = ctx.registry.promote(version)
    return {"promoted": True, "version": info.version}


_STAGE_FNS = {"snapshot": _snapshot, "curate": _curate, "canaries": _canaries, "start_model": _start_model,
              "train": _train, "eval": _eval, "review": _review, "gate": _gate, "register": _register, "promote": _promote}


# --- driver ----------------------------------------------------------------------------------------


def run_pipeline(cfg: PipelineConfig, *, on_stage: StageHook | None = None, report: Callable[[str], None] | None = None) -> PipelineResult:
    """One tick of the continuous loop (see the module docstring)."""
    from clinitune.pipeline.inbox import scan
    from clinitune.registry import Registry

    say = report or log.info
    root = Path(cfg.workdir) / "pipeline"
    curate_cfg, ft, ev, policy = _load_stage_configs(cfg)
    registry = Registry(cfg.registry.tracking_uri, model_name=cfg.registry.model_name, workdir=cfg.workdir,
                        reload_url=cfg.registry.reload_url)
    state = PipelineState(root)
    with Lock(root):
        resumed = state.current is not None
        if resumed:
            run_id = state.current
            say(f"resuming run {run_id}")
            state.log(run_id, None, "resume")
        else:
            files = scan(cfg.inbox, curate_cfg.reader)
            new = [f for f in files if not state.is_processed(f["sha256"])]
            if not new:
                state.log(None, None, "noop", files_seen=len(files))
                say(f"nothing new in {cfg.inbox} ({len(files)} file(s) already processed)")
                return PipelineResult("noop")
            run_id = _run_id(new)
            state.new_run(run_id, new)
            state.log(run_id, None, "start", new_files=len(new))
            say(f"run {run_id}: {len(new)} new file(s)")
        ctx = Context(cfg, state, run_id, root / "runs" / run_id, curate_cfg, ft, ev, policy, registry)
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        skipped = []
        for stage in STAGES:
            if state.stage_done(run_id, stage):
                skipped.append(stage)
                continue
            if on_stage is not None:
                on_stage(run_id, stage)
            say(f"run {run_id}: {stage}")
            state.log(run_id, stage, "start")
            t0 = time.time()
            try:
                output = _STAGE_FNS[stage](ctx)
            except AwaitingReview as wait:  # not a failure: the run stays current and the next tick checks again
                state.mark_stage(run_id, stage, "waiting", wait.output, time.time() - t0)
                state.log(run_id, stage, "awaiting_review", campaign_id=wait.campaign_id)
                say(f"run {run_id}: {wait.message}")
                return PipelineResult("awaiting_review", run_id, report_path=state.stage_output(run_id, "eval").get("report"),
                                      reasons=[wait.message], resumed=resumed, skipped_stages=skipped)
            except BaseException as err:
                # Keep the run current: the next invocation resumes here. Never note text: error type only.
                state.mark_stage(run_id, stage, "failed", {"error": type(err).__name__}, time.time() - t0)
                state.log(run_id, stage, "failed", error=type(err).__name__)
                raise
            state.mark_stage(run_id, stage, "done", output, time.time() - t0)
            state.log(run_id, stage, "done", seconds=round(time.time() - t0, 1))
        gate = state.stage_output(run_id, "gate")
        promo = state.stage_output(run_id, "promote")
        status = "promoted" if promo.get("promoted") else ("rejected" if gate.get("decision") != "promote" else "registered")
        state.finish(run_id, status)
        state.log(run_id, None, "finish", status=status)
        return PipelineResult(status, run_id, state.stage_output(run_id, "register").get("version"),
                              state.stage_output(run_id, "eval").get("report"), gate.get("decision"), gate.get("reasons", []),
                              resumed, skipped)


def pipeline_status(cfg: PipelineConfig) -> dict:
    """The state file's summary: processed files, runs and their stages, the current run."""
    root = Path(cfg.workdir) / "pipeline"
    if not (root / "state.json").is_file():
        return {"runs": {}, "processed": 0, "current": None}
    st = PipelineState(root)
    return {"current": st.current, "processed": len(st.data["processed"]),
            "runs": {rid: {"status": r["status"], "stages": {s: v["status"] for s, v in r["stages"].items()}}
                     for rid, r in st.data["runs"].items()}}


def abandon_current(cfg: PipelineConfig) -> str | None:
    """Mark the unfinished run abandoned (its files count as processed); returns its id, or None."""
    root = Path(cfg.workdir) / "pipeline"
    state = PipelineState(root)
    with Lock(root):
        run_id = state.current
        if run_id is None:
            return None
        state.finish(run_id, "abandoned")
        state.log(run_id, None, "abandon")
    return run_id


__all__ = ["PipelineResult", "abandon_current", "run_pipeline", "pipeline_status", "STAGES", "UserError"]
