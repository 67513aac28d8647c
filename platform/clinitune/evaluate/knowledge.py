"""Running the knowledge benchmarks for base and candidate: scoring, the per-model cache, the report section.

``run_knowledge(cfg, {"candidate": spec, "baseline": spec})`` loads every benchmark of
``cfg.benchmarks`` (bad lines quarantined), scores each option of each question with every model
(Ray Data actors, or in process), and returns the report's ``knowledge`` section and the flat
metrics ``knowledge.<benchmark>`` (accuracy) and ``knowledge.mean`` per model.

Scores are cached per model fingerprint (a hash of the weight files' sizes and sampled contents,
the whole adapter and tokenizer files) and per exact request (a hash of context and continuation):
evaluating a second candidate against the same base scores the base once. The cache holds only
numbers keyed by hashes, never question text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from clinitune.artifacts.model import ModelSpec
from clinitune.artifacts.publish import write_whole
from clinitune.evaluate.benchmarks import (Benchmark, BenchmarksConfig, generation_prompt, grade, load_benchmark,
                                           paired_ci, parse_letter, requests, summarize)

log = logging.getLogger(__name__)
_SAMPLE_BYTES = 4 << 20
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


# --- the model fingerprint -----------------------------------------------------------------------


def _file_digest(p: Path, whole: bool) -> str:
    import xxhash

    h = xxhash.xxh3_128()
    size = p.stat().st_size
    h.update(f"{p.name}:{size}".encode())
    with p.open("rb") as f:
        if whole or size <= 2 * _SAMPLE_BYTES:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:  # a large weight file: its header (safetensors: every tensor's name, shape, offset) and its tail
            h.update(f.read(_SAMPLE_BYTES))
            f.seek(size - _SAMPLE_BYTES)
            h.update(f.read(_SAMPLE_BYTES))
    return h.hexdigest()


def model_fingerprint(spec: ModelSpec) -> str:
    """A short hash that changes when the model's weights, adapter or tokenizer change."""
    parts = [spec.kind]
    for root, whole in ((spec.model_path, False), (spec.adapter_path, True), (spec.tokenizer_path, True)):
        if not root:
            continue
        d = Path(root)
        files = sorted(d.iterdir()) if d.is_dir() else [d]
        for p in files:
            if not p.is_file():
                continue
            if whole or p.suffix in _WEIGHT_SUFFIXES or p.name == "config.json":
                parts.append(_file_digest(p, whole or p.suffix not in _WEIGHT_SUFFIXES))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


# --- the score cache ------------------------------------------------------------------------------


def request_key(context: str, continuation: str) -> str:
    return hashlib.sha256(f"{context}\x00{continuation}".encode("utf-8")).hexdigest()[:32]


class ScoreCache:
    """``<root>/<fingerprint>/*.json`` shards of {request key: log-probability}; each shard written whole."""

    def __init__(self, root: str | Path, fingerprint: str):
        self.dir = Path(root) / fingerprint

    def load(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.dir.is_dir():
            for p in sorted(self.dir.glob("*.json")):
                try:
                    out.update(json.loads(p.read_text(encoding="utf-8")))
                except (OSError, json.JSONDecodeError):
                    log.warning("score cache shard %s is unreadable; ignored", p.name)
        return out

    def add(self, scores: dict[str, float]) -> None:
        if not scores:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256("".join(sorted(scores)).encode()).hexdigest()[:16]
        write_whole(self.dir / f"{name}.json", json.dumps(scores, sort_keys=True))


# --- scoring --------------------------------------------------------------------------------------

Scorer = Callable[[ModelSpec, pd.DataFrame], pd.DataFrame]  # requests -> request_id, logprob, ...


def local_scorer(execution, max_batch_tokens: int) -> Scorer:
    from clinitune.models.loglik import score_local

    return lambda spec, reqs: score_local(spec, reqs, dtype=execution.dtype, torch_threads=execution.torch_threads,
                                          max_batch_tokens=max_batch_tokens)


def ray_scorer(execution, max_batch_tokens: int) -> Scorer:
    from clinitune.models.loglik import score_on_ray

    return lambda spec, reqs: score_on_ray(spec, reqs, execution, max_batch_tokens=max_batch_tokens)


def score_with_cache(spec: ModelSpec, reqs: pd.DataFrame, scorer: Scorer, cache: ScoreCache | None) -> tuple[dict[str, float], int]:
    """request_id -> log-probability for every request; (scores, how many came from the cache)."""
    keys = [request_key(c, x) for c, x in zip(reqs["context"], reqs["continuation"])]
    known = cache.load() if cache is not None else {}
    todo = reqs[[k not in known for k in keys]]
    # one scoring per distinct (context, continuation)
    todo = todo.assign(_key=[request_key(c, x) for c, x in zip(todo["context"], todo["continuation"])]).drop_duplicates("_key")
    fresh: dict[str, float] = {}
    if not todo.empty:
        res = scorer(spec, todo.drop(columns="_key").reset_index(drop=True))
        by_id = dict(zip(res["request_id"], res["logprob"]))
        fresh = {k: float(by_id[r]) for k, r in zip(todo["_key"], todo["request_id"])}
        if cache is not None:
            cache.add(fresh)
    allk = {**known, **fresh}
    return {rid: allk[k] for rid, k in zip(reqs["request_id"], keys)}, len(reqs) - len(todo)


# --- the run -----------------------------------------------------------------------------------------


@dataclass
class KnowledgeResult:
    section: dict
    metrics: dict[str, dict[str, float | None]]  # role -> flat metrics


def load_all(bcfg: BenchmarksConfig) -> list[Benchmark]:
    return [load_benchmark(f, sample=bcfg.sample, few_shot=bcfg.few_shot, seed=bcfg.seed) for f in bcfg.files]


def _generation(benches: list[Benchmark], specs: dict[str, ModelSpec], run_items) -> dict[str, dict[str, dict[str, int]]]:
    """role -> benchmark -> item id -> 1/0 when the generated letter is the answer."""
    from clinitune.models.generate import make_item

    items, index = [], {}
    for b in benches:
        for it in b.items:
            iid = f"gen/{b.name}/{it.item_id}"
            items.append(make_item(iid, "chat", [{"role": "user", "content": generation_prompt(it)}], max_new_tokens=8))
            index[iid] = (b.name, it)
    frame = pd.DataFrame(items)
    out: dict[str, dict[str, dict[str, int]]] = {}
    for role, spec in specs.items():
        res = run_items(spec, frame).set_index("item_id")
        per: dict[str, dict[str, int]] = {}
        for iid, (bname, it) in index.items():
            letter = parse_letter(str(res.at[iid, "output"]), [k for k, _ in it.options])
            per.setdefault(bname, {})[it.item_id] = int(letter == it.answer)
        out[role] = per
    return out


def run_knowledge(bcfg: BenchmarksConfig, specs: dict[str, ModelSpec], *, scorer: Scorer, cache_root: str | Path | None,
                  run_items=None, say: Callable[[str], None] = log.info) -> KnowledgeResult:
    """Score every model of ``specs`` (roles: candidate, baseline) on the benchmarks of ``bcfg``."""
    t0 = time.time()
    benches = load_all(bcfg)
    reqs = pd.DataFrame([r for b in benches for r in requests(b)], columns=["request_id", "context", "continuation"])
    say(f"knowledge benchmarks: {sum(len(b.items) for b in benches)} questions, {len(reqs)} options to score per model"
        + (f" ({sum(len(b.quarantine) for b in benches)} lines quarantined)" if any(b.quarantine for b in benches) else ""))
    per_role: dict[str, dict] = {}
    correct: dict[str, dict[str, dict[str, int]]] = {}
    timing: dict[str, dict] = {}
    for role, spec in specs.items():
        t = time.time()
        fp = model_fingerprint(spec)
        cache = ScoreCache(cache_root, fp) if cache_root else None
        scores, hits = score_with_cache(spec, reqs, scorer, cache)
        timing[role] = {"seconds": round(time.time() - t, 1), "cached": hits, "scored": len(reqs) - hits, "fingerprint": fp}
        say(f"knowledge: {role} {spec.name} scored {len(reqs) - hits} options ({hits} cached) in {time.time() - t:.0f}s")
        per_role[role], correct[role] = {}, {}
        for b in benches:
            c, cn = grade(b, scores), grade(b, scores, normalize=True)
            correct[role][b.name] = c
            per_role[role][b.name] = summarize(b, c, cn, bcfg)
    gen = _generation(benches, specs, run_items) if bcfg.generation and run_items is not None else None

    section = {"enabled": True, "template": {b.name: b.spec.template for b in benches}, "few_shot": bcfg.few_shot,
               "sample": bcfg.sample, "confidence": bcfg.confidence, "bootstrap": bcfg.bootstrap,
               "timing": timing, "benchmarks": {}}
    metrics: dict[str, dict[str, float | None]] = {role: {} for role in specs}
    for b in benches:
        entry = {"path": str(b.spec.path), "n": len(b.items), "lines": b.total_lines,
                 "quarantined": len(b.quarantine), "quarantine": b.quarantine[:50],
                 "few_shot_examples": [ex.item_id for ex in b.few_shot]}
        for role in specs:
            entry[role] = per_role[role][b.name]
            metrics[role][f"knowledge.{b.name}"] = per_role[role][b.name]["accuracy"]
            if gen is not None:
                g = gen[role][b.name]
                entry[role]["generation_accuracy"] = sum(g.values()) / len(g) if g else None
                metrics[role][f"knowledge.generation.{b.name}"] = entry[role]["generation_accuracy"]
        if "candidate" in specs and "baseline" in specs:
            order = [i.item_id for i in b.items]
            d, lo, hi = paired_ci([correct["candidate"][b.name][i] for i in order],
                                  [correct["baseline"][b.name][i] for i in order],
                                  resamples=bcfg.bootstrap, confidence=bcfg.confidence, seed=bcfg.seed)
            entry["delta"] = {"accuracy": d, "ci_low": lo, "ci_high": hi}
        section["benchmarks"][b.name] = entry
    for role in specs:
        vals = [metrics[role][f"knowledge.{b.name}"] for b in benches if metrics[role][f"knowledge.{b.name}"] is not None]
        metrics[role]["knowledge.mean"] = sum(vals) / len(vals) if vals else None
    section["seconds"] = round(time.time() - t0, 1)
    return KnowledgeResult(section, metrics)


def knowledge_lines(section: dict | None) -> list[str]:
    """What the terminal prints (demo, clinitune evaluate): per benchmark, candidate and base accuracy with
    their intervals and the paired interval of the difference, the sample size and quarantined lines."""
    if not section or not section.get("enabled"):
        return []
    conf = int(round(100 * section.get("confidence", 0.95)))

    def acc(b: dict | None) -> str:
        if not b or b.get("accuracy") is None:
            return "n/a"
        lo, hi = b.get("ci_low"), b.get("ci_high")
        return f"{b['accuracy']:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else "")

    out = []
    for name, e in section.get("benchmarks", {}).items():
        d = e.get("delta") or {}
        delta = "" if d.get("accuracy") is None else f"; delta {d['accuracy']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
        bad = f"; {e['quarantined']} lines quarantined" if e.get("quarantined") else ""
        out.append(f"knowledge {name} (n={e.get('n')}, {conf}% intervals): fine-tuned {acc(e.get('candidate'))}, "
                   f"base {acc(e.get('baseline'))}{delta}{bad}")
    return out


# --- HTML ---------------------------------------------------------------------------------------------


def knowledge_html(section: dict | None) -> str:
    """The report's knowledge table: accuracy with its interval per benchmark (and subject), base vs candidate."""
    from html import escape

    if not section or not section.get("enabled"):
        return ""

    def acc(b: dict | None) -> str:
        if not b or b.get("accuracy") is None:
            return "–"
        lo, hi = b.get("ci_low"), b.get("ci_high")
        return f"{b['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None else f"{b['accuracy']:.3f}"

    conf = int(round(100 * section.get("confidence", 0.95)))
    parts = [f"<h2>Medical knowledge benchmarks</h2><p class='muted'>log-likelihood scoring, "
             f"{section.get('few_shot', 0)}-shot, {conf}% bootstrap intervals; "
             f"sample: {section.get('sample') or 'all questions'}</p>",
             "<table><tr><th>benchmark</th><th>n</th><th>candidate</th><th>baseline</th><th>delta [paired interval]</th>"
             "<th>quarantined lines</th></tr>"]
    for name, e in section.get("benchmarks", {}).items():
        d = e.get("delta") or {}
        delta = "–" if d.get("accuracy") is None else f"{d['accuracy']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
        parts.append(f"<tr><td>{escape(name)}</td><td class='num'>{e['n']}</td><td class='num'>{acc(e.get('candidate'))}</td>"
                     f"<td class='num'>{acc(e.get('baseline'))}</td><td class='num'>{delta}</td>"
                     f"<td class='num'>{e.get('quarantined', 0)}</td></tr>")
        subjects = (e.get("candidate") or {}).get("subjects") or {}
        for s, sc in subjects.items():
            sb = ((e.get("baseline") or {}).get("subjects") or {}).get(s)
            parts.append(f"<tr><td class='muted'>&nbsp;&nbsp;{escape(s)}</td><td class='num'>{sc['n']}</td>"
                         f"<td class='num'>{acc(sc)}</td><td class='num'>{acc(sb)}</td><td></td><td></td></tr>")
    parts.append("</table>")
    return "".join(parts)


__all__ = ["KnowledgeResult", "ScoreCache", "knowledge_html", "knowledge_lines", "local_scorer", "model_fingerprint", "ray_scorer",
           "run_knowledge", "score_with_cache"]
